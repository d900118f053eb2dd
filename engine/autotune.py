"""Auto-tune: search the compile-knob space for the fastest configuration that meets constraints.

The search is Optuna's (TPE, or an exhaustive grid when the space is no larger than the trial
budget), driven through its ask/tell interface so that every evaluation goes through one
``evaluate(request) -> RunResult`` callable: the job queue in the dashboard, ``runner.execute``
in the CLI and tests. A configuration is feasible when its build time and its output error
against eager fp32 (relative L2) stay within the limits and its precision is allowed.

The objective is the figure that judges the searched knobs (``engine.judging``): GPU time when every
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
from dataclasses import dataclass, field
from typing import Any

import optuna
import pandas as pd

from engine.config import INDUCTOR_MODES, PRECISIONS, CompileSettings, ConfigError, RunRequest
from engine.judging import END_TO_END, GPU_TIME, METRIC_NAMES, gpu_time_absence, preferred_metric, value_ms
from engine.result import RunResult
from engine.sweeps import (
    CUDAGRAPHS_KNOB,
    MIN_BLOCK_SIZE_KNOB,
    OPTIMIZATION_LEVEL_KNOB,
    PRECISION_KNOB,
    RUNTIME_KNOB,
    SWEEPABLE_KNOBS,
    build_time_s,
    measure_drift,
    min_block_size_values,
    value_label,
)

log = logging.getLogger(__name__)

Evaluate = Callable[[RunRequest], RunResult]
SearchSpace = dict[str, Sequence[Any]]    # dotted knob -> candidate values
MAX_TRIALS = 200
# the knobs ``default_space`` searches, in the order a form lists them
SEARCHABLE_KNOBS = (PRECISION_KNOB, MIN_BLOCK_SIZE_KNOB, OPTIMIZATION_LEVEL_KNOB, RUNTIME_KNOB, CUDAGRAPHS_KNOB)


@dataclass(frozen=True)
class Constraints:
    """What a configuration must satisfy to count. ``None`` leaves a limit off."""

    max_build_s: float | None = None
    max_rel_l2: float | None = None        # output error against eager fp32
    precisions: tuple[str, ...] = PRECISIONS

    def __post_init__(self) -> None:
        if not self.precisions:
            raise ConfigError("autotune.precisions", "allow at least one precision")
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad:
            raise ConfigError("autotune.precisions", f"{', '.join(bad)} not one of {', '.join(PRECISIONS)}")
        for name in ("max_build_s", "max_rel_l2"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ConfigError(f"autotune.{name}", f"{v!r} must be above 0 (or empty for no limit)")


def default_space(constraints: Constraints, recommended_min_block_size: Sequence[int] = ()) -> SearchSpace:
    """The knobs worth searching for a TensorRT run: precision, min_block_size (default, dryrun's
    recommendations, 1), optimization_level 0-5, the runtime and CUDA graphs (off / on)."""
    space: SearchSpace = {
        PRECISION_KNOB: list(constraints.precisions),
        MIN_BLOCK_SIZE_KNOB: min_block_size_values(recommended_min_block_size, [1]),
        OPTIMIZATION_LEVEL_KNOB: [0, 1, 2, 3, 4, 5],
        RUNTIME_KNOB: [False, True],
        CUDAGRAPHS_KNOB: [False, True],
    }
    return {k: space[k] for k in SEARCHABLE_KNOBS}


def defaults_request(base: RunRequest, constraints: Constraints) -> RunRequest:
    """Torch-TensorRT's defaults for the base model: every compile knob at its default, at the base's
    precision when allowed (else the first allowed one)."""
    precision = base.compile.precision if base.compile.precision in constraints.precisions \
        else constraints.precisions[0]
    return RunRequest(model=base.model, backend=base.backend, device=base.device, mode=base.mode,
                      compile=CompileSettings(precision=precision), measure=base.measure)


@dataclass
class TrialRecord:
    number: int
    params: dict[str, Any]
    run_id: str | None
    median_ms: float | None
    build_s: float | None
    rel_l2: float | None
    feasible: bool
    violation: str = ""          # why it does not count ("" when feasible)
    error: str = ""              # the evaluation failed (build error, out of memory ...)
    repeated: bool = False       # the sampler proposed a configuration already measured
    gpu_ms: float | None = None  # GPU time per inference (None: not measured)
    objective_ms: float | None = None   # the figure the search minimises (GPU time or median_ms)

    def progress(self, n_trials: int) -> tuple[float, str]:
        """A progress bar after this trial of ``n_trials``: the fraction done, and "trial 3: 1.234 ms ok"."""
        ms = "not timed" if self.median_ms is None else f"{self.median_ms:.3f} ms"
        outcome = "ok" if self.feasible else self.violation or self.error
        return min((self.number + 1) / n_trials, 1.0), f"trial {self.number + 1}: {ms} {outcome}"


@dataclass
class AutotuneReport:
    best: TrialRecord | None
    best_result: RunResult | None
    defaults: TrialRecord | None
    speedup_vs_defaults: float | None
    baselines_ms: dict[str, float]          # "eager_fp16", "inductor" ... measured with the best run
    speedups: dict[str, float]              # baseline name -> baseline / best
    trials: pd.DataFrame
    space: SearchSpace
    constraints: Constraints
    notes: list[str] = field(default_factory=list)
    objective: str = END_TO_END             # engine.judging.GPU_TIME | END_TO_END: what the search minimised

    def _figure(self, r: TrialRecord) -> str:
        if self.objective == GPU_TIME and r.gpu_ms is not None:
            return f"{r.gpu_ms:.4f} ms GPU time (end-to-end {r.median_ms:.3f} ms)"
        return f"{r.median_ms:.3f} ms"

    def summary(self) -> str:
        """One paragraph from the numbers in the report."""
        if self.best is None:
            return ("No configuration met the constraints in "
                    f"{len(self.trials)} trials: {_why_infeasible(self.trials)}. Relax a limit and search again.")
        knobs = ", ".join(f"{SWEEPABLE_KNOBS.get(k, k)}={value_label(k, v)}" for k, v in self.best.params.items())
        text = f"Fastest: {knobs} at {self._figure(self.best)} (build {_fmt_s(self.best.build_s)})"
        if self.speedup_vs_defaults is not None and self.defaults is not None:
            on = " on GPU time" if self.objective == GPU_TIME else ""
            text += (f", {self.speedup_vs_defaults:.2f}× Torch-TensorRT's defaults{on} "
                     f"({self._figure(self.defaults)})")
        for name, s in self.speedups.items():
            text += f", {s:.2f}× {name} ({self.baselines_ms[name]:.3f} ms"
            text += " end to end)" if self.objective == GPU_TIME else ")"
        return text + "."


def _fmt_s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f} s"


def _why_infeasible(trials: pd.DataFrame) -> str:
    reasons = [r for r in trials["violation"].tolist() + trials["error"].tolist() if r]
    return "; ".join(sorted(set(reasons))) or "no trial finished"


def check(result: RunResult, constraints: Constraints) -> str:
    """Why a measured run breaks the constraints, or "" when it meets them."""
    problems = []
    precision = result.request["compile"]["precision"]
    if precision not in constraints.precisions:
        problems.append(f"precision {precision} not allowed")
    build = build_time_s(result)
    if constraints.max_build_s is not None and build is not None and build > constraints.max_build_s:
        problems.append(f"build {build:.1f} s > {constraints.max_build_s:g} s")
    if constraints.max_rel_l2 is not None:
        rel = _rel_l2(result)
        if rel is None:
            problems.append("accuracy not measured")
        elif rel > constraints.max_rel_l2:
            problems.append(f"rel. L2 error {rel:.2g} > {constraints.max_rel_l2:g}")
    return "; ".join(problems)


def _rel_l2(result: RunResult) -> float | None:
    if result.accuracy is not None:
        return result.accuracy.rel_l2
    if result.request["backend"] == "eager" and result.request["compile"]["precision"] == "fp32":
        return 0.0          # the reference itself
    return None


def autotune(base: RunRequest, evaluate: Evaluate, *, space: SearchSpace | None = None,
             constraints: Constraints | None = None, n_trials: int = 20, seed: int = 0,
             on_trial: Callable[[TrialRecord], None] | None = None,
             should_stop: Callable[[], bool] | None = None,
             baselines: tuple[str, ...] = ("eager",)) -> AutotuneReport:
    """Search ``space`` around ``base`` for the fastest feasible configuration.

    ``evaluate`` measures one request (cached runs come back at no cost); a configuration the
    sampler proposes twice is measured once. ``should_stop`` is polled between trials (cancel).
    ``baselines`` are timed once, with the defaults run, not with every trial: "eager", and
    "inductor_default" or "inductor_max-autotune" (plain "inductor" is max-autotune, as it was before
    the modes existed); the result names them the same way.
    """
    constraints = constraints or Constraints()
    space = dict(space) if space is not None else default_space(constraints)
    _check_space(space, constraints)
    if not 1 <= n_trials <= MAX_TRIALS:
        raise ConfigError("autotune.n_trials", f"{n_trials} is outside 1..{MAX_TRIALS}")
    base = base.with_changes(**{"measure.accuracy": True}) if constraints.max_rel_l2 is not None else base
    inductor = inductor_mode(baselines)
    base = base.with_changes(**{"measure.compare_eager": False, "measure.compare_inductor": "off"})

    measured: dict[tuple, tuple[RunResult | None, str]] = {}

    def measure(request: RunRequest) -> tuple[RunResult | None, str]:
        key = _key(request)
        if key not in measured:
            try:
                measured[key] = (evaluate(request), "")
            except Exception as e:  # noqa: BLE001 - a failed build is a failed trial, not a failed search
                log.info("autotune trial failed: %s", e)
                measured[key] = (None, getattr(e, "message", None) or str(e) or type(e).__name__)
        return measured[key]

    defaults_req = defaults_request(base, constraints)
    if base.backend == "tensorrt":   # the eager backend has no baselines to time
        defaults_req = defaults_req.with_changes(**{
            "measure.compare_eager": "eager" in baselines, "measure.compare_inductor": inductor})
    defaults_result, defaults_error = measure(defaults_req)
    objective, objective_note = _objective(space, defaults_result)
    defaults = _record(-1, _params(defaults_req, space), defaults_result, defaults_error, constraints, objective)

    choices = {k: _choices(v) for k, v in space.items()}
    distributions: dict[str, optuna.distributions.BaseDistribution] = {
        k: optuna.distributions.CategoricalDistribution(c) for k, c in choices.items()}
    grid_size = math.prod(len(c) for c in choices.values())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(8, n_trials // 2 or 1))
    study = optuna.create_study(direction="minimize", sampler=sampler)
    if grid_size <= n_trials:
        # small space: measure every point once (GridSampler stops the study, which ask/tell cannot take)
        for combo in itertools.product(*choices.values()):
            study.enqueue_trial(dict(zip(choices, combo, strict=True)))
        n_trials = grid_size
    else:
        # start the search from the defaults when they lie in the space
        defaults_params = {k: _encode(v) for k, v in _params(defaults_req, space).items()}
        if all(defaults_params[k] in choices[k] for k in space):
            study.enqueue_trial(defaults_params)

    records: list[TrialRecord] = []
    seen: set[tuple] = set()
    for number in range(n_trials):
        if should_stop is not None and should_stop():
            break
        trial = study.ask(distributions)
        params = {k: _decode(trial.params[k]) for k in space}
        try:
            request = base.with_changes(**params)
        except ConfigError as e:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            records.append(TrialRecord(number, params, None, None, None, None, False, error=e.message))
            continue
        result, error = measure(request)
        record = _record(number, params, result, error, constraints, objective)
        record.repeated = _key(request) in seen
        seen.add(_key(request))
        trial.set_constraint("violated", 0.0 if record.feasible else 1.0)   # TPE steers away from these
        if record.objective_ms is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, record.objective_ms)
        records.append(record)
        if on_trial is not None:
            on_trial(record)

    report = _report(records, measured, defaults, space, constraints, base, objective)
    if objective_note:
        report.notes.insert(0, objective_note)
    return report


def _objective(space: SearchSpace, defaults: RunResult | None) -> tuple[str, str]:
    """The figure the search minimises, and a note saying why when it is not the one the knobs call for."""
    knobs = ", ".join(SWEEPABLE_KNOBS.get(k, k) for k in space)
    if preferred_metric(space) == END_TO_END:
        return END_TO_END, (f"Objective: end-to-end latency (a searched knob changes the host's work per call, "
                            f"which GPU time cannot show; searched: {knobs}).")
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
            raise ConfigError("autotune.baselines", f"{name!r} is not a baseline; choose eager, "
                                                    + ", ".join(f"inductor_{m}" for m in INDUCTOR_MODES[1:]))
    if len(set(modes)) > 1:
        raise ConfigError("autotune.baselines", f"one inductor baseline per search, got {', '.join(modes)}")
    return modes[0] if modes else "off"


def _record(number: int, params: dict[str, Any], result: RunResult | None, error: str,
            constraints: Constraints, objective: str = END_TO_END) -> TrialRecord:
    if result is None:
        return TrialRecord(number, params, None, None, None, None, False, error=error or "failed")
    violation = check(result, constraints)
    gpu = value_ms(result, GPU_TIME)
    figure = value_ms(result, objective)
    if figure is None:
        return TrialRecord(number, params, result.run_id, result.latency.median_ms, build_time_s(result),
                           _rel_l2(result), False, violation, error=f"no {METRIC_NAMES[objective]} measured",
                           gpu_ms=gpu)
    return TrialRecord(number, params, result.run_id, result.latency.median_ms, build_time_s(result),
                       _rel_l2(result), not violation, violation, gpu_ms=gpu, objective_ms=figure)


def _report(records: list[TrialRecord], measured: dict[tuple, tuple[RunResult | None, str]],
            defaults: TrialRecord, space: SearchSpace, constraints: Constraints,
            base: RunRequest, objective: str = END_TO_END) -> AutotuneReport:
    by_run = {r.run_id: r for r, _ in measured.values() if r is not None}
    feasible = [r for r in records if r.feasible and r.objective_ms is not None]
    best = min(feasible, key=lambda r: (r.objective_ms, r.number)) if feasible else None
    best_result = by_run.get(best.run_id) if best and best.run_id else None
    notes = []
    speedup = None
    if best is not None and best.objective_ms and defaults.objective_ms:
        speedup = defaults.objective_ms / best.objective_ms
        if not defaults.feasible:
            notes.append(f"Torch-TensorRT's defaults break the constraints ({defaults.violation or defaults.error}); "
                         "the speedup over them is shown for reference.")
    elif defaults.error:
        notes.append(f"Torch-TensorRT's defaults failed to run: {defaults.error}")
    baselines: dict[str, float] = {}
    for source in (best_result, by_run.get(defaults.run_id or "")):
        for name, stats in (source.baselines if source else {}).items():
            baselines.setdefault(name, stats.median_ms)
    speedups = {n: ms / best.median_ms for n, ms in baselines.items() if best is not None and best.median_ms}
    drift = measure_drift(list(by_run.values()), metric=objective)
    if drift is not None and speedup is not None:
        lead = speedup - 1
        verdict = "larger than" if lead > drift.fraction else "within"
        what = " in GPU time" if objective == GPU_TIME else ""
        notes.append(f"Runs that timed the same build differed by {drift.fraction:.1%}{what} in this search; the "
                     f"best configuration's lead over the defaults ({lead:.1%}) is {verdict} that drift.")
    if base.backend == "tensorrt" and not any(n.startswith("inductor") for n in baselines):
        notes.append("No inductor baseline measured: choose one (default, or max-autotune: minutes) to compare "
                     "with torch.compile.")
    return AutotuneReport(best, best_result, defaults, speedup, baselines, speedups, trials_table(records, space),
                          space, constraints, notes, objective)


def trials_table(records: list[TrialRecord], space: SearchSpace) -> pd.DataFrame:
    """One row per trial: knob values, end-to-end and GPU time, the objective, build time, error, feasibility,
    best feasible objective so far."""
    rows = []
    best = math.inf
    for r in records:
        if r.feasible and r.objective_ms is not None:
            best = min(best, r.objective_ms)
        rows.append({"trial": r.number, **r.params, "median_ms": r.median_ms, "gpu_ms": r.gpu_ms,
                     "objective_ms": r.objective_ms, "build_s": r.build_s,
                     "rel_l2": r.rel_l2, "feasible": r.feasible, "violation": r.violation, "error": r.error,
                     "repeated": r.repeated, "best_so_far_ms": best if math.isfinite(best) else None,
                     "run_id": r.run_id})
    cols = ["trial", *space, "median_ms", "gpu_ms", "objective_ms", "build_s", "rel_l2", "feasible", "violation",
            "error", "repeated", "best_so_far_ms", "run_id"]
    df = pd.DataFrame(rows, columns=cols)
    for k in space:   # knob values as given (unset stays None)
        df[k] = pd.Series([r.params[k] for r in records], dtype=object)
    return df


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
