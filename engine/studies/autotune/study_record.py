"""An auto-tune as a stored study (engine/studies/record.py), like a sweep, a ladder or a batch sweep: kind
"autotune", its id the search's own (``at-...``, so ``?autotune=`` links and the Optuna study keep their name), its
runs tagged ``autotune:<id>``.

    point 0        the search job (the study's state follows it: running, finished, cancelled, incomplete);
                   a resume records its new job there
    points 1, ...  each configuration the search measured, added by the engine as it is evaluated (in the job
                   process, or the CLI's process): done with its run, or failed with why

The plan keeps what a picker and a report need without opening Optuna: model, backend, knobs searched, the
objective the knobs call for (the search may fall back to end-to-end when GPU time is missing), constraints and
the trial budget.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from engine.backends.base import Cancelled
from engine.errors import UserError
from engine.result import RunResult
from engine.settings.request import RunRequest
from engine.store import RunStore
from engine.store.studies import StudyTable, process_job_id
from engine.studies import record
from engine.studies.autotune.search import Evaluate, trial_budget
from engine.studies.judging import preferred_metric
from engine.studies.knobs import SWEEPABLE_KNOBS

if TYPE_CHECKING:
    from engine.studies.autotune.stored import AutotunePlan

KIND = "autotune"
TAG = "autotune:"
SEARCH_POINT = 0
DEFAULTS_LABEL = "Torch-TensorRT defaults"

log = logging.getLogger(__name__)


def study_plan(plan: AutotunePlan) -> dict[str, Any]:
    """What the study record keeps of a search's plan."""
    space = plan.search_space()
    budget = trial_budget(space, plan.n_trials)
    return record.driver_plan(
        {
            "model": plan.base["model"]["source"],
            "backend": plan.base["backend"],
            "knobs": list(space),
            "objective": preferred_metric(space),
            "n_trials": budget,
            "planned_points": budget + 1,  # the trials and the defaults run they are judged against
            "constraints": plan.constraints,
            "baselines": list(plan.baselines),
            "base": plan.base,
        },
        SEARCH_POINT,
    )


def record_search(store: RunStore, plan: AutotunePlan) -> record.Study:
    """The search's study record, created once (point 0, the search, never submitted yet); the record when it
    exists (a resume, a search planned before records existed gets one)."""
    found = record.find_study(store, plan.autotune_id, KIND)
    if found is not None:
        return found
    record.create_study(
        store, KIND, plan.autotune_id, [TAG + plan.autotune_id], study_plan(plan), [("search", plan.base)]
    )
    return record.load_study(store, plan.autotune_id, KIND)


def record_search_job(store: RunStore, plan: AutotunePlan, job: Any) -> None:
    """The search was queued (or joined) as ``job`` (an engine.jobs.Job): the study follows that job now."""
    record_search(store, plan)
    state = record.job_state(job.state)
    run_id = job.run_id if state == "done" else None
    StudyTable(store).submitted(plan.autotune_id, SEARCH_POINT, job.job_id, state, run_id, job.error or "")


def trial_label(request: RunRequest, knobs: list[str]) -> str:
    """E.g. "precision=fp16 · min_block_size=1": the searched knobs' values of one measured configuration."""
    d = request.to_dict()
    parts = []
    for knob in knobs:
        v: Any = d
        for part in knob.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        short = SWEEPABLE_KNOBS.get(knob, knob).split(" ")[0]
        parts.append(f"{short}={','.join(v) if isinstance(v, list) else v}")
    return " · ".join(parts)


def recording_evaluate(store: RunStore, plan: AutotunePlan, evaluate: Evaluate) -> Evaluate:
    """``evaluate`` that adds each configuration it measures to the search's study (its run, tagged; or its error),
    the first one being the defaults run. A configuration already recorded with the same run (the defaults again on
    a resume, answered from the store) is not added twice. A failure to record never fails the trial."""
    knobs = list(plan.space)
    first = [True]

    def evaluate_and_record(request: RunRequest) -> RunResult:
        label = DEFAULTS_LABEL if first[0] else trial_label(request, knobs)
        first[0] = False
        try:
            result = evaluate(request)
        except Cancelled:  # measured again on resume: not a finding
            raise
        except Exception as e:
            _record(store, plan, label, request, None, e.message if isinstance(e, UserError) else str(e))
            raise
        _record(store, plan, label, request, result.run_id, "")
        return result

    return evaluate_and_record


def record_in_process(store: RunStore, plan: AutotunePlan, state: str) -> None:
    """The CLI runs the search in its own process, no job: the search point says so (running, done, cancelled).
    A process that dies leaves it running until a settle finds the process gone (failed)."""
    record_search(store, plan)
    StudyTable(store).submitted(plan.autotune_id, SEARCH_POINT, process_job_id(), state)


def _record(
    store: RunStore, plan: AutotunePlan, label: str, request: RunRequest, run_id: str | None, error: str
) -> None:
    try:
        study = record_search(store, plan)
        if run_id and any(m.run_id == run_id and m.label == label for m in study.points):
            return
        StudyTable(store).add_measured(plan.autotune_id, label, request.to_dict(), run_id, error)
    except Exception:  # a locked database, say: the search goes on, its Optuna study holds the trial
        log.exception("auto-tune %s: recording a trial in its study failed", plan.autotune_id)
