"""Stored auto-tunes: each search's plan and its Optuna study live in the data directory, so a search runs in a job
process, survives the page that started it, resumes after a cancel, a crash or a restart, and its report opens
from a link.

    <data dir>/autotune/<autotune_id>.json   the plan: base request, space, constraints, budget, seed, baselines
    <data dir>/autotune/optuna.db            Optuna's RDB storage (SQLite), one study per search, named by its id

``run_plan`` runs (or resumes) a plan through one ``evaluate(request)``; ``load_report`` rebuilds its report from the
stored study and the stored runs. Each search is also a study record of kind "autotune" under its id
(engine/studies/autotune/study_record.py), listed and settled with the sweeps, ladders and batch sweeps.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna

from engine.errors import UserError
from engine.result import RunResult
from engine.settings.request import RunRequest, validate
from engine.store import RunStore
from engine.studies.autotune.search import Evaluate, autotune, check_search, default_space, trial_budget
from engine.studies.autotune.stored_trials import SearchProgress, report_from_study, search_progress
from engine.studies.autotune.study_record import recording_evaluate
from engine.studies.autotune.trials import AutotuneReport, Constraints, SearchSpace, TrialRecord

AUTOTUNE_DIR = "autotune"
OPTUNA_DB = "optuna.db"
# the job process writes a trial while a page reads the study: SQLite waits this long for the other's lock
DB_TIMEOUT_S = 30.0


class AutotuneNotFound(UserError, LookupError):
    """No stored auto-tune has this id."""


@dataclass(frozen=True)
class AutotunePlan:
    """What one search measures; stored as JSON beside its study."""

    autotune_id: str
    base: dict[str, Any]  # the RunRequest every trial starts from (to_dict)
    space: dict[str, list[Any]]  # dotted knob -> candidate values
    constraints: dict[str, Any]  # Constraints as a dict
    n_trials: int
    seed: int = 0
    baselines: tuple[str, ...] = ("eager",)
    created_ts: float = field(default_factory=time.time)
    submitted_by: str = ""

    def request(self) -> RunRequest:
        return RunRequest.from_dict(self.base)

    def limits(self) -> Constraints:
        c = dict(self.constraints)
        return Constraints(c.get("max_build_s"), c.get("max_rel_l2"), tuple(c.get("precisions") or ()))

    def search_space(self) -> SearchSpace:
        return {k: [tuple(v) if isinstance(v, list) else v for v in vs] for k, vs in self.space.items()}

    def label(self) -> str:
        """E.g. "resnet18 · eager · 6 trials · 2026-11-30 04:30"."""
        when = dt.datetime.fromtimestamp(self.created_ts).strftime("%Y-%m-%d %H:%M")
        return f"{self.base['model']['source']} · {self.base['backend']} · {budget_of(self)} trials · {when}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1, default=list)

    @classmethod
    def from_json(cls, text: str) -> AutotunePlan:
        d = json.loads(text)
        d["baselines"] = tuple(d.get("baselines") or ("eager",))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def new_autotune_id() -> str:
    """A sortable id that is also a safe file name and study name: "at-20261130-043012-3f9a"."""
    return f"at-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def plan_autotune(
    base: RunRequest,
    *,
    space: SearchSpace | None = None,
    constraints: Constraints | None = None,
    n_trials: int = 20,
    seed: int = 0,
    baselines: Sequence[str] = ("eager",),
    submitted_by: str = "",
) -> AutotunePlan:
    """A checked plan (not stored yet): raises ConfigError naming a bad knob, value, limit or budget."""
    base = validate(base)
    constraints = constraints or Constraints()
    space = dict(space) if space is not None else default_space(constraints)
    check_search(base, space, constraints, n_trials, tuple(baselines))
    return AutotunePlan(
        new_autotune_id(),
        base.to_dict(),
        {k: list(v) for k, v in space.items()},
        asdict(constraints),
        n_trials,
        seed,
        tuple(baselines),
        submitted_by=submitted_by,
    )


def autotune_dir(root: Path | str) -> Path:
    p = Path(root) / AUTOTUNE_DIR
    p.mkdir(parents=True, exist_ok=True)
    return p


def save_plan(root: Path | str, plan: AutotunePlan) -> Path:
    path = autotune_dir(root) / f"{plan.autotune_id}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(plan.to_json())
    tmp.replace(path)  # atomic: a reader never sees half a plan
    return path


def load_plan(root: Path | str, autotune_id: str) -> AutotunePlan:
    path = autotune_dir(root) / f"{autotune_id}.json"
    if "/" in autotune_id or not path.is_file():
        raise AutotuneNotFound(
            f"No stored auto-tune {autotune_id!r}.", "Pick one from the list, or start a new search."
        )
    return AutotunePlan.from_json(path.read_text())


def list_plans(root: Path | str) -> list[AutotunePlan]:
    """Stored auto-tunes, newest first (a plan file that cannot be read is skipped)."""
    plans = []
    for path in autotune_dir(root).glob("at-*.json"):
        try:
            plans.append(AutotunePlan.from_json(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(plans, key=lambda p: p.created_ts, reverse=True)


_STORAGES: dict[str, optuna.storages.RDBStorage] = {}
_STORAGES_LOCK = threading.Lock()


def optuna_storage(root: Path | str) -> optuna.storages.RDBStorage:
    """The data directory's Optuna storage (one per process: it holds a connection pool)."""
    url = f"sqlite:///{(autotune_dir(root) / OPTUNA_DB).resolve()}"
    with _STORAGES_LOCK:
        storage = _STORAGES.get(url)
        if storage is None:
            storage = _STORAGES[url] = optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": DB_TIMEOUT_S}}
            )
            # write-ahead log (kept by the file once set): a page reading progress never blocks the job writing
            with storage.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        return storage


def _study(root: Path | str, autotune_id: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=autotune_id, storage=optuna_storage(root))
    except KeyError:  # planned, never started
        return None


def run_plan(
    root: Path | str,
    plan: AutotunePlan,
    store: RunStore,
    evaluate: Evaluate,
    *,
    on_trial: Callable[[TrialRecord], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> AutotuneReport:
    """Run a stored plan's search, or resume it: the trials already in its study count towards its budget. Each
    configuration measured is added to the search's study record (engine/studies/autotune/study_record.py)."""
    return autotune(
        plan.request(),
        recording_evaluate(store, plan, evaluate),
        space=plan.search_space(),
        constraints=plan.limits(),
        n_trials=plan.n_trials,
        seed=plan.seed,
        baselines=plan.baselines,
        on_trial=on_trial,
        should_stop=should_stop,
        storage=optuna_storage(root),
        study_name=plan.autotune_id,
        load_run=lambda run_id: _load_run(store, run_id),
    )


def load_report(root: Path | str, autotune_id: str, store: RunStore) -> AutotuneReport | None:
    """The report of a stored search from its study and stored runs; None until its defaults were measured.
    Raises AutotuneNotFound for an unknown id."""
    plan = load_plan(root, autotune_id)
    study = _study(root, autotune_id)
    if study is None:
        return None
    return report_from_study(
        study, plan.request(), plan.search_space(), plan.limits(), lambda run_id: _load_run(store, run_id)
    )


def progress_of(root: Path | str, plan: AutotunePlan) -> SearchProgress:
    """Trials done of the budget and the best so far, read from the stored study."""
    study = _study(root, plan.autotune_id)
    if study is None:
        return SearchProgress(0, budget_of(plan), None)
    return search_progress(study, budget_of(plan))


def budget_of(plan: AutotunePlan) -> int:
    """The trials the plan's search runs (every point once when its space is smaller than its budget)."""
    return trial_budget(plan.search_space(), plan.n_trials)


def _load_run(store: RunStore, run_id: str) -> RunResult | None:
    return store.get(run_id) if store.exists(run_id) else None


Progress = Callable[..., None]  # (stage, fraction=None, detail="")
MeasureFn = Callable[[RunRequest, Progress], RunResult]  # one run, reporting its own progress


def run_in_job(
    root: Path | str,
    autotune_id: str,
    store: RunStore,
    measure: MeasureFn,
    progress: Progress,
    should_stop: Callable[[], bool],
) -> AutotuneReport:
    """A stored search as one job: each trial measured by ``measure`` (``runner.execute`` in the job process),
    its progress reported as "trial k of n · <stage>" with the best so far; ``should_stop`` is asked between trials,
    and ``progress`` may raise ``Cancelled`` within one (the trial is queued again for a resume)."""
    plan = load_plan(root, autotune_id)
    so_far = progress_of(root, plan)
    budget, done, best = so_far.n_trials, [so_far.trials_done], [so_far.best_ms]
    calls = [0]

    def best_text() -> str:
        return "no feasible trial yet" if best[0] is None else f"best {best[0]:.3f} ms so far"

    def evaluate(request: RunRequest) -> RunResult:
        first = calls[0] == 0  # the search measures Torch-TensorRT's defaults (and baselines) first
        calls[0] += 1
        what = "defaults run" if first else f"trial {done[0] + 1} of {budget}"

        def trial_progress(stage: str, fraction: float | None = None, detail: str = "") -> None:
            overall = (done[0] + (0.0 if first else min(max(fraction or 0.0, 0.0), 1.0))) / budget
            progress(f"{what} · {stage}", overall, " · ".join(x for x in (detail, best_text()) if x))

        trial_progress("starting")
        return measure(request, trial_progress)

    def on_trial(record: TrialRecord) -> None:
        done[0] = record.number + 1
        if record.feasible and record.objective_ms is not None and (best[0] is None or record.objective_ms < best[0]):
            best[0] = record.objective_ms
        progress(f"{done[0]} of {budget} trials", done[0] / budget, best_text())

    return run_plan(root, plan, store, evaluate, on_trial=on_trial, should_stop=should_stop)
