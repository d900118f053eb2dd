"""An auto-tune search's trials and its report: the constraints a configuration must meet, one record per trial,
the fastest feasible configuration against Torch-TensorRT's defaults and the baselines, and every trial as a
table. The search itself is engine/studies/autotune/search.py."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from engine.errors import ConfigError
from engine.result import RunResult
from engine.settings.defaults import PRECISIONS
from engine.settings.request import RunRequest
from engine.studies.knobs import SWEEPABLE_KNOBS, value_label
from engine.studies.statistics import END_TO_END, GPU_TIME, METRIC_NAMES, value_ms
from engine.studies.sweeps.results import measure_drift

SearchSpace = dict[str, Sequence[Any]]  # dotted knob -> candidate values


@dataclass(frozen=True)
class Constraints:
    """What a configuration must satisfy to count. ``None`` leaves a limit off."""

    max_build_s: float | None = None
    max_rel_l2: float | None = None  # output error against eager fp32
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


@dataclass
class TrialRecord:
    number: int
    params: dict[str, Any]
    run_id: str | None
    median_ms: float | None
    build_s: float | None
    rel_l2: float | None
    feasible: bool
    violation: str = ""  # why it does not count ("" when feasible)
    error: str = ""  # the evaluation failed (build error, out of memory ...)
    repeated: bool = False  # the sampler proposed a configuration already measured
    gpu_ms: float | None = None  # GPU time per inference (None: not measured)
    objective_ms: float | None = None  # the figure the search minimises (GPU time or median_ms)

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
    baselines_ms: dict[str, float]  # "eager_fp16", "inductor" ... measured with the best run
    speedups: dict[str, float]  # baseline name -> baseline / best
    trials: pd.DataFrame
    space: SearchSpace
    constraints: Constraints
    notes: list[str] = field(default_factory=list)
    objective: str = END_TO_END  # engine.studies.statistics.GPU_TIME | END_TO_END: what the search minimised

    def _figure(self, r: TrialRecord) -> str:
        if self.objective == GPU_TIME and r.gpu_ms is not None:
            return f"{r.gpu_ms:.4f} ms GPU time (end-to-end {r.median_ms:.3f} ms)"
        return f"{r.median_ms:.3f} ms"

    def summary(self) -> str:
        """One paragraph from the numbers in the report."""
        if self.best is None:
            return (
                "No configuration met the constraints in "
                f"{len(self.trials)} trials: {_why_infeasible(self.trials)}. Relax a limit and search again."
            )
        knobs = ", ".join(f"{SWEEPABLE_KNOBS.get(k, k)}={value_label(k, v)}" for k, v in self.best.params.items())
        text = f"Fastest: {knobs} at {self._figure(self.best)} (build {_fmt_s(self.best.build_s)})"
        if self.speedup_vs_defaults is not None and self.defaults is not None:
            on = " on GPU time" if self.objective == GPU_TIME else ""
            text += f", {self.speedup_vs_defaults:.2f}× Torch-TensorRT's defaults{on} ({self._figure(self.defaults)})"
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
    build = result.build_s
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
        return 0.0  # the reference itself
    return None


def trial_record(
    number: int,
    params: dict[str, Any],
    result: RunResult | None,
    error: str,
    constraints: Constraints,
    objective: str = END_TO_END,
) -> TrialRecord:
    if result is None:
        return TrialRecord(number, params, None, None, None, None, False, error=error or "failed")
    violation = check(result, constraints)
    gpu = value_ms(result, GPU_TIME)
    figure = value_ms(result, objective)
    return TrialRecord(
        number,
        params,
        result.run_id,
        result.latency.median_ms,
        result.build_s,
        _rel_l2(result),
        figure is not None and not violation,
        violation,
        error="" if figure is not None else f"no {METRIC_NAMES[objective]} measured",
        gpu_ms=gpu,
        objective_ms=figure,
    )


def report_of(
    records: list[TrialRecord],
    runs: Sequence[RunResult],
    defaults: TrialRecord,
    space: SearchSpace,
    constraints: Constraints,
    base: RunRequest,
    objective: str = END_TO_END,
    objective_note: str = "",
) -> AutotuneReport:
    """The report of a search from its trials and the runs they measured (any order; unknown ones are skipped)."""
    by_run = {r.run_id: r for r in runs}
    feasible = [r for r in records if r.feasible and r.objective_ms is not None]
    best = min(feasible, key=lambda r: (r.objective_ms, r.number)) if feasible else None
    best_result = by_run.get(best.run_id) if best and best.run_id else None
    notes = [objective_note] if objective_note else []
    speedup = None
    if best is not None and best.objective_ms and defaults.objective_ms:
        speedup = defaults.objective_ms / best.objective_ms
        if not defaults.feasible:
            notes.append(
                f"Torch-TensorRT's defaults break the constraints ({defaults.violation or defaults.error}); "
                "the speedup over them is shown for reference."
            )
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
        notes.append(
            f"Runs that timed the same build differed by {drift.fraction:.1%}{what} in this search; the "
            f"best configuration's lead over the defaults ({lead:.1%}) is {verdict} that drift."
        )
    if base.backend == "tensorrt" and not any(n.startswith("inductor") for n in baselines):
        notes.append(
            "No inductor baseline measured: choose one (default, or max-autotune: minutes) to compare "
            "with torch.compile."
        )
    return AutotuneReport(
        best,
        best_result,
        defaults,
        speedup,
        baselines,
        speedups,
        trials_table(records, space),
        space,
        constraints,
        notes,
        objective,
    )


def trials_table(records: list[TrialRecord], space: SearchSpace) -> pd.DataFrame:
    """One row per trial: knob values, end-to-end and GPU time, the objective, build time, error, feasibility,
    best feasible objective so far."""
    rows = []
    best = math.inf
    for r in records:
        if r.feasible and r.objective_ms is not None:
            best = min(best, r.objective_ms)
        rows.append(
            {
                "trial": r.number,
                **r.params,
                "median_ms": r.median_ms,
                "gpu_ms": r.gpu_ms,
                "objective_ms": r.objective_ms,
                "build_s": r.build_s,
                "rel_l2": r.rel_l2,
                "feasible": r.feasible,
                "violation": r.violation,
                "error": r.error,
                "repeated": r.repeated,
                "best_so_far_ms": best if math.isfinite(best) else None,
                "run_id": r.run_id,
            }
        )
    cols = [
        "trial",
        *space,
        "median_ms",
        "gpu_ms",
        "objective_ms",
        "build_s",
        "rel_l2",
        "feasible",
        "violation",
        "error",
        "repeated",
        "best_so_far_ms",
        "run_id",
    ]
    df = pd.DataFrame(rows, columns=cols)
    for k in space:  # knob values as given (unset stays None)
        df[k] = pd.Series([r.params[k] for r in records], dtype=object)
    return df
