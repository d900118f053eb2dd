"""An auto-tune search's trials as its Optuna study keeps them: each trial's ``TrialRecord`` in the trial's user
attributes, the defaults run and the objective in the study's, so a stored study (Optuna's RDB storage) can be
resumed with its trials counted and its report rebuilt without the process that ran it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import optuna

from engine.result import RunResult
from engine.settings.request import RunRequest
from engine.studies.autotune.trials import AutotuneReport, Constraints, SearchSpace, TrialRecord, report_of
from engine.studies.statistics import END_TO_END, GPU_TIME, METRIC_NAMES

RECORD_ATTR = "record"  # trial user attribute: the TrialRecord as a dict
INTERRUPTED_ATTR = "interrupted"  # trial user attribute: stopped by cancel or a crash; not counted, queued again
DEFAULTS_ATTR = "defaults"  # study user attribute: Torch-TensorRT's defaults run as a TrialRecord dict
OBJECTIVE_ATTR = "objective"  # study user attribute: [objective, note]

_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)


def record_attrs(record: TrialRecord) -> dict[str, Any]:
    """A TrialRecord as JSON-safe values (op sets, tuples, become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(record)))


def record_from_attrs(d: dict[str, Any]) -> TrialRecord:
    fields = {f.name for f in dataclasses.fields(TrialRecord)}
    record = TrialRecord(**{k: v for k, v in d.items() if k in fields})
    record.params = {k: tuple(v) if isinstance(v, list) else v for k, v in record.params.items()}
    return record


def params_key(params: dict[str, Any]) -> str:
    """One configuration as text, to tell a repeated proposal."""
    return json.dumps(params, sort_keys=True, default=list)


def stored_records(study: optuna.Study) -> list[TrialRecord]:
    """The trials a study counts, in the order they ran (interrupted ones left out), numbered 0, 1, ..."""
    out: list[TrialRecord] = []
    for t in study.get_trials(deepcopy=False, states=_FINISHED):
        if RECORD_ATTR in t.user_attrs and not t.user_attrs.get(INTERRUPTED_ATTR):
            record = record_from_attrs(t.user_attrs[RECORD_ATTR])
            record.number = len(out)
            out.append(record)
    return out


def requeue_interrupted(study: optuna.Study) -> int:
    """Trials left running by a process that died (a crash, a killed worker): failed, marked interrupted and their
    point queued again, so a resume measures it. Returns how many. Only one process runs a study at a time (the
    job queue joins a second submission of the same search to the first)."""
    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for t in stale:
        study.enqueue_trial(t.params)
        optuna.trial.Trial(study, t._trial_id).set_user_attr(INTERRUPTED_ATTR, True)  # no public id-free way
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    return len(stale)


@dataclasses.dataclass(frozen=True)
class SearchProgress:
    """How far a stored search is: trials counted, the budget, the best feasible figure so far."""

    trials_done: int
    n_trials: int
    best_ms: float | None
    objective: str = END_TO_END

    @property
    def fraction(self) -> float:
        return min(self.trials_done / self.n_trials, 1.0) if self.n_trials else 0.0

    @property
    def complete(self) -> bool:
        return self.trials_done >= self.n_trials

    def text(self) -> str:
        """E.g. "trial 3 of 20 · best 1.234 ms GPU time so far"."""
        when = "" if self.complete else " so far"
        best = (
            f"no feasible trial{when}"
            if self.best_ms is None
            else f"best {self.best_ms:.3f} ms {METRIC_NAMES[self.objective]}{when}"
        )
        return f"{self.trials_done} of {self.n_trials} trials · {best}"


def search_progress(study: optuna.Study, n_trials: int) -> SearchProgress:
    records = stored_records(study)
    feasible = [r.objective_ms for r in records if r.feasible and r.objective_ms is not None]
    objective = (study.user_attrs.get(OBJECTIVE_ATTR) or [END_TO_END])[0]
    return SearchProgress(
        len(records),
        n_trials,
        min(feasible) if feasible else None,
        objective if objective in (END_TO_END, GPU_TIME) else END_TO_END,
    )


def report_from_study(
    study: optuna.Study,
    base: RunRequest,
    space: SearchSpace,
    constraints: Constraints,
    load_run: Callable[[str], RunResult | None],
) -> AutotuneReport | None:
    """The report of a stored search from its trials and their stored runs; None before the defaults were measured."""
    defaults = study.user_attrs.get(DEFAULTS_ATTR)
    if defaults is None:
        return None
    records = stored_records(study)
    defaults_record = record_from_attrs(defaults)
    objective, note = study.user_attrs.get(OBJECTIVE_ATTR) or [END_TO_END, ""]
    runs = []
    for run_id in dict.fromkeys(r.run_id for r in [defaults_record, *records] if r.run_id):
        run = load_run(run_id)
        if run is not None:
            runs.append(run)
    return report_of(records, runs, defaults_record, space, constraints, base, objective, note)
