"""Auto-tune: search the compile-knob space for the fastest configuration that meets constraints.

The search is Optuna's (TPE, or an exhaustive grid when the space is no larger than the trial
budget), driven through its ask/tell interface so that every evaluation goes through one
``evaluate(request) -> RunResult`` callable: the job queue in the dashboard, ``runner.execute``
in the CLI and tests. A configuration is feasible when its build time and its output error
against eager fp32 (relative L2) stay within the limits and its precision is allowed.

The objective is the figure that judges the searched knobs (``engine.studies.judging``): GPU time when every
searched knob changes kernels and the runs measure it, end-to-end latency when a host knob (CUDA graphs,
the runtime) is searched or GPU time is missing; the report says which and why.

The report holds the fastest feasible configuration, its speedup over Torch-TensorRT's defaults
(same model, same precision, every other knob at its default) and over the eager / inductor
baselines measured with it (end-to-end: baselines have no GPU time), and every trial as a table.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import optuna

from engine.backends.base import Cancelled
from engine.errors import ConfigError, UserError
from engine.result import RunResult
from engine.settings.defaults import INDUCTOR_MODES, OPTIMIZATION_LEVELS
from engine.settings.request import CompileSettings, RunRequest
from engine.studies.autotune.stored_trials import (
    DEFAULTS_ATTR,
    INTERRUPTED_ATTR,
    OBJECTIVE_ATTR,
    RECORD_ATTR,
    params_key,
    record_attrs,
    requeue_interrupted,
    stored_records,
)
from engine.studies.autotune.trials import (
    AutotuneReport,
    Constraints,
    SearchSpace,
    TrialRecord,
    report_of,
    trial_record,
)
from engine.studies.judging import gpu_time_absence, preferred_metric
from engine.studies.knobs import (
    CUDAGRAPHS_KNOB,
    MIN_BLOCK_SIZE_KNOB,
    OPTIMIZATION_LEVEL_KNOB,
    PRECISION_KNOB,
    RUNTIME_KNOB,
    SWEEPABLE_KNOBS,
    default_values,
    min_block_size_values,
)
from engine.studies.statistics import END_TO_END, GPU_TIME

log = logging.getLogger(__name__)

Evaluate = Callable[[RunRequest], RunResult]
MAX_TRIALS = 200
# the knobs ``default_space`` searches, in the order a form lists them
SEARCHABLE_KNOBS = (PRECISION_KNOB, MIN_BLOCK_SIZE_KNOB, OPTIMIZATION_LEVEL_KNOB, RUNTIME_KNOB, CUDAGRAPHS_KNOB)


def default_space(constraints: Constraints, recommended_min_block_size: Sequence[int] = ()) -> SearchSpace:
    """The knobs worth searching for a TensorRT run: precision, min_block_size (default, dryrun's
    recommendations, 1), optimization_level 0-5, the runtime and CUDA graphs (off / on)."""
    space: SearchSpace = {
        PRECISION_KNOB: list(constraints.precisions),
        MIN_BLOCK_SIZE_KNOB: min_block_size_values(recommended_min_block_size, [1]),
        OPTIMIZATION_LEVEL_KNOB: list(OPTIMIZATION_LEVELS),
        RUNTIME_KNOB: default_values(RUNTIME_KNOB),
        CUDAGRAPHS_KNOB: default_values(CUDAGRAPHS_KNOB),
    }
    return {k: space[k] for k in SEARCHABLE_KNOBS}


def defaults_request(base: RunRequest, constraints: Constraints) -> RunRequest:
    """Torch-TensorRT's defaults for the base model: every compile knob at its default, at the base's
    precision when allowed (else the first allowed one)."""
    precision = (
        base.compile.precision if base.compile.precision in constraints.precisions else constraints.precisions[0]
    )
    return RunRequest(
        model=base.model,
        backend=base.backend,
        device=base.device,
        mode=base.mode,
        compile=CompileSettings(precision=precision),
        measure=base.measure,
    )


def autotune(
    base: RunRequest,
    evaluate: Evaluate,
    *,
    space: SearchSpace | None = None,
    constraints: Constraints | None = None,
    n_trials: int = 20,
    seed: int = 0,
    on_trial: Callable[[TrialRecord], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    baselines: tuple[str, ...] = ("eager",),
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    load_run: Callable[[str], RunResult | None] | None = None,
) -> AutotuneReport:
    """Search ``space`` around ``base`` for the fastest feasible configuration.

    ``evaluate`` measures one request (cached runs come back at no cost); a configuration the
    sampler proposes twice is measured once. ``should_stop`` is polled between trials (cancel); a
    ``Cancelled`` raised by ``evaluate`` (cancel within a trial) ends the search at once, the trial
    marked interrupted and queued again for a resume.
    ``baselines`` are timed once, with the defaults run, not with every trial: "eager", and
    "inductor_default" or "inductor_max-autotune" (plain "inductor" is max-autotune, as it was before
    the modes existed); the result names them the same way.

    With ``storage`` (an Optuna storage or URL) and ``study_name`` the study is stored and resumable:
    a second call with the same name continues it, the trials already done counted towards
    ``n_trials`` and kept in the report (their runs read back with ``load_run``).
    """
    constraints = constraints or Constraints()
    space = dict(space) if space is not None else default_space(constraints)
    check_search(base, space, constraints, n_trials, baselines)
    base = base.with_changes(**{"measure.accuracy": True}) if constraints.max_rel_l2 is not None else base
    inductor = inductor_mode(baselines)
    base = base.with_changes(**{"measure.compare_eager": False, "measure.compare_inductor": "off"})

    measured: dict[tuple, tuple[RunResult | None, str]] = {}

    def measure(request: RunRequest) -> tuple[RunResult | None, str]:
        key = _key(request)
        if key not in measured:
            try:
                measured[key] = (evaluate(request), "")
            except Cancelled:
                raise
            except Exception as e:  # noqa: BLE001 - a failed build is a failed trial, not a failed search
                log.info("autotune trial failed: %s", e)
                measured[key] = (None, e.message if isinstance(e, UserError) else str(e) or type(e).__name__)
        return measured[key]

    defaults_req = defaults_request(base, constraints)
    if base.backend == "tensorrt":  # the eager backend has no baselines to time
        defaults_req = defaults_req.with_changes(
            **{"measure.compare_eager": "eager" in baselines, "measure.compare_inductor": inductor}
        )
    defaults_result, defaults_error = measure(defaults_req)
    objective, objective_note = _objective(space, defaults_result)
    defaults = trial_record(-1, _params(defaults_req, space), defaults_result, defaults_error, constraints, objective)

    choices = {k: _choices(v) for k, v in space.items()}
    distributions: dict[str, optuna.distributions.BaseDistribution] = {
        k: optuna.distributions.CategoricalDistribution(c) for k, c in choices.items()
    }
    grid_size = math.prod(len(c) for c in choices.values())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(8, n_trials // 2 or 1))
    study = optuna.create_study(
        direction="minimize", sampler=sampler, storage=storage, study_name=study_name, load_if_exists=True
    )
    fresh = not study.trials
    records = stored_records(study)  # a resumed study's trials count, in the order they ran
    requeue_interrupted(study)
    study.set_user_attr(DEFAULTS_ATTR, record_attrs(defaults))
    study.set_user_attr(OBJECTIVE_ATTR, [objective, objective_note])
    if grid_size <= n_trials:  # == trial_budget(space, n_trials)
        # small space: measure every point once (GridSampler stops the study, which ask/tell cannot take)
        if fresh:
            for combo in itertools.product(*choices.values()):
                study.enqueue_trial(dict(zip(choices, combo, strict=True)))
        n_trials = grid_size
    elif fresh:
        # start the search from the defaults when they lie in the space
        defaults_params = {k: _encode(v) for k, v in _params(defaults_req, space).items()}
        if all(defaults_params[k] in choices[k] for k in space):
            study.enqueue_trial(defaults_params)

    seen = {params_key(r.params) for r in records}
    while len(records) < n_trials:
        if should_stop is not None and should_stop():
            break
        trial = study.ask(distributions)
        number = len(records)
        params = {k: _decode(trial.params[k]) for k in space}
        try:
            request = base.with_changes(**params)
        except ConfigError as e:
            record = TrialRecord(number, params, None, None, None, None, False, error=e.message)
            trial.set_user_attr(RECORD_ATTR, record_attrs(record))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            records.append(record)
            continue
        try:
            result, error = measure(request)
        except Cancelled:
            _interrupt(study, trial)
            raise
        record = trial_record(number, params, result, error, constraints, objective)
        record.repeated = params_key(params) in seen
        seen.add(params_key(params))
        trial.set_constraint("violated", 0.0 if record.feasible else 1.0)  # TPE steers away from these
        trial.set_user_attr(RECORD_ATTR, record_attrs(record))
        if record.objective_ms is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, record.objective_ms)
        records.append(record)
        if on_trial is not None:
            on_trial(record)

    runs = [r for r, _ in measured.values() if r is not None]
    known = {r.run_id for r in runs}
    for r in records:  # runs of trials measured before a resume
        if r.run_id and r.run_id not in known and load_run is not None and (run := load_run(r.run_id)) is not None:
            runs.append(run)
            known.add(r.run_id)
    return report_of(records, runs, defaults, space, constraints, base, objective, objective_note)


def trial_budget(space: SearchSpace, n_trials: int) -> int:
    """How many trials a search of ``n_trials`` over ``space`` runs: every point once when the space is smaller."""
    grid_size = math.prod(len(_choices(v)) for v in space.values())
    return grid_size if grid_size <= n_trials else n_trials


def check_search(
    base: RunRequest, space: SearchSpace, constraints: Constraints, n_trials: int, baselines: Sequence[str]
) -> None:
    """Raise a ConfigError naming what is wrong with a search before anything is measured: an unknown knob, a
    value the knob refuses, a precision the constraints forbid, a trial budget or baseline out of range."""
    _check_space(space, constraints)
    for knob, values in space.items():
        if knob not in SWEEPABLE_KNOBS:
            raise ConfigError(knob, "is not a searchable knob; choose from " + ", ".join(SEARCHABLE_KNOBS))
        for v in values:  # a value the knob itself refuses; one refused only with other knobs is a failed trial
            try:
                base.with_changes(**{knob: _decode(_encode(tuple(v) if isinstance(v, list) else v))})
            except ConfigError as e:
                if e.field == knob:
                    raise
    if not 1 <= n_trials <= MAX_TRIALS:
        raise ConfigError("autotune.n_trials", f"{n_trials} is outside 1..{MAX_TRIALS}")
    inductor_mode(baselines)


def _interrupt(study: optuna.Study, trial: optuna.Trial) -> None:
    """A trial stopped by cancel: failed and marked interrupted (not counted), its point queued again."""
    study.enqueue_trial(trial.params)
    trial.set_user_attr(INTERRUPTED_ATTR, True)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _objective(space: SearchSpace, defaults: RunResult | None) -> tuple[str, str]:
    """The figure the search minimises, and a note saying why when it is not the one the knobs call for."""
    knobs = ", ".join(SWEEPABLE_KNOBS.get(k, k) for k in space)
    if preferred_metric(space) == END_TO_END:
        return END_TO_END, (
            f"Objective: end-to-end latency (a searched knob changes the host's work per call, "
            f"which GPU time cannot show; searched: {knobs})."
        )
    if defaults is not None and defaults.gpu_time is not None:
        return GPU_TIME, f"Objective: GPU time (every searched knob changes kernels: {knobs})."
    why = gpu_time_absence(defaults) if defaults is not None else "not measured (the defaults run failed)"
    return END_TO_END, f"Objective: end-to-end latency; GPU time {why}."


def inductor_mode(baselines: Sequence[str]) -> str:
    """The ``measure.compare_inductor`` mode that ``baselines`` ask for ("off" when none)."""
    modes = []
    for name in baselines:
        if name == "inductor":
            modes.append("max-autotune")
        elif name.startswith("inductor_") and name.removeprefix("inductor_") in INDUCTOR_MODES[1:]:
            modes.append(name.removeprefix("inductor_"))
        elif name != "eager":
            raise ConfigError(
                "autotune.baselines",
                f"{name!r} is not a baseline; choose eager, " + ", ".join(f"inductor_{m}" for m in INDUCTOR_MODES[1:]),
            )
    if len(set(modes)) > 1:
        raise ConfigError("autotune.baselines", f"one inductor baseline per search, got {', '.join(modes)}")
    return modes[0] if modes else "off"


def _check_space(space: SearchSpace, constraints: Constraints) -> None:
    if not space:
        raise ConfigError("autotune.space", "no knob to search; pick at least one")
    for knob, values in space.items():
        if not values:
            raise ConfigError(knob, "no candidate values to search")
    if PRECISION_KNOB in space:
        bad = [p for p in space[PRECISION_KNOB] if p not in constraints.precisions]
        if bad:
            raise ConfigError(PRECISION_KNOB, f"{', '.join(bad)} searched but not allowed by the constraints")


def _params(request: RunRequest, space: SearchSpace) -> dict[str, Any]:
    d = request.to_dict()
    out = {}
    for knob in space:
        v: Any = d
        for part in knob.split("."):
            v = v[part]
        out[knob] = tuple(v) if isinstance(v, list) else v
    return out


def _key(request: RunRequest) -> tuple:
    return tuple(sorted(_flatten(request.to_dict()).items()))


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = tuple(v) if isinstance(v, list) else v
    return out


# Optuna's categorical choices must be None, bool, int, float or str: op sets travel as text.
_OPS_SEP = "|"


def _encode(v: Any) -> Any:
    return _OPS_SEP.join(v) if isinstance(v, tuple) else v


def _decode(v: Any) -> Any:
    return tuple(x for x in v.split(_OPS_SEP) if x) if isinstance(v, str) and (v == "" or "torch.ops." in v) else v


def _choices(values: Sequence[Any]) -> tuple:
    return tuple(dict.fromkeys(_encode(tuple(v) if isinstance(v, list) else v) for v in values))
