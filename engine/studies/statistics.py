"""The figures that judge runs and how steady each is: a run's figure per call (``Reading``: the CUDA-graph replay
median with its p10-p90 band, GPU busy time with the spread of its trace windows, or the end-to-end median with
its bootstrap interval), and the drift of one build's figure between fresh processes (``Drift``). Which figure
judges what is engine/studies/judging.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.result import RunResult

GRAPH_REPLAY = "graph_replay"
GPU_TIME = "gpu_time"
END_TO_END = "e2e"
METRIC_NAMES = {GRAPH_REPLAY: "CUDA-graph replay", GPU_TIME: "GPU time", END_TO_END: "end-to-end latency"}
METRIC_SHORT = {GRAPH_REPLAY: "graph", GPU_TIME: "GPU", END_TO_END: "e2e"}
# figures without the host's launch work: they hold still to a few microseconds, so verdicts give four digits
DEVICE_METRICS = frozenset({GRAPH_REPLAY, GPU_TIME})
NOISE_SOURCES = {GRAPH_REPLAY: "replay p10-p90", GPU_TIME: "trace windows", END_TO_END: "bootstrap CI"}

NOISE_CONFIDENCE = 0.90
BOOTSTRAP_RESAMPLES = 2000


# -- one run's figure ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    """One run's value of a metric per call, with the noise inside that run."""

    metric: str  # GRAPH_REPLAY | GPU_TIME | END_TO_END
    ms: float  # the median
    low_ms: float | None  # e2e: the median's bootstrap interval; GPU time: fastest and slowest trace window;
    # graph replay: its p10 and p90
    high_ms: float | None

    @property
    def half_width_ms(self) -> float | None:
        if self.low_ms is None or self.high_ms is None:
            return None
        return (self.high_ms - self.low_ms) / 2

    @property
    def noise_source(self) -> str:
        return NOISE_SOURCES[self.metric]


def median_ci_ms(
    samples_ms: Sequence[float],
    confidence: float = NOISE_CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap confidence interval of the median latency (percentile method, fixed seed)."""
    x = np.asarray(samples_ms, dtype=float)
    if x.size == 0:
        raise ValueError("no latency samples")
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(x, size=(resamples, x.size), replace=True), axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(medians, alpha)), float(np.quantile(medians, 1 - alpha))


def reading(run: RunResult, metric: str) -> Reading | None:
    """The run's figure for ``metric``; None where it was not measured (no GPU time, no captured replay, an
    analyze run)."""
    if metric == GRAPH_REPLAY:
        gr = run.graph_replay
        if gr is None or not gr.captured or not gr.median_ms:
            return None
        return Reading(GRAPH_REPLAY, gr.median_ms, gr.p10_ms, gr.p90_ms)
    if metric == GPU_TIME:
        g = run.gpu_time
        if g is None or not g.median_ms > 0:
            return None
        return Reading(GPU_TIME, g.median_ms, g.min_ms, g.max_ms)
    if not run.latency.timed:
        return None
    lo = hi = None
    if run.latency_samples_ms:
        lo, hi = median_ci_ms(run.latency_samples_ms)
    return Reading(END_TO_END, run.latency.median_ms, lo, hi)


def value_ms(run: RunResult, metric: str) -> float | None:
    """The run's median of ``metric`` (ms per call), None where not measured."""
    if metric == GRAPH_REPLAY:
        gr = run.graph_replay
        return gr.median_ms if gr is not None and gr.captured and gr.median_ms else None
    if metric == GPU_TIME:
        return run.gpu_time.median_ms if run.gpu_time is not None and run.gpu_time.median_ms > 0 else None
    return run.latency.median_ms if run.latency.timed else None


# -- between fresh processes ---------------------------------------------------------------------------
@dataclass
class Drift:
    """Run-to-run variation of one figure: one build timed in separate runs (fresh processes)."""

    fraction: float  # (slowest - fastest) / fastest of that build's medians
    runs: list[tuple[str, float]]  # (what the run was, its median ms), fastest first
    metric: str = END_TO_END
    repeats: int = 2  # runs of that build


def worst_drift(
    groups: Iterable[Sequence[RunResult]], metric: str, describe: Callable[[RunResult], str]
) -> Drift | None:
    """The largest relative spread of ``metric`` within any group of runs that timed the same thing."""
    worst: Drift | None = None
    for runs in groups:
        have = sorted(((v, r) for r in runs if (v := value_ms(r, metric)) is not None), key=lambda p: p[0])
        if len(have) < 2 or not have[0][0] > 0:
            continue
        (fast_ms, fast), (slow_ms, slow) = have[0], have[-1]
        fraction = (slow_ms - fast_ms) / fast_ms
        if worst is None or fraction > worst.fraction:
            worst = Drift(fraction, [(describe(fast), fast_ms), (describe(slow), slow_ms)], metric, len(have))
    return worst


def format_ms(v: float, metric: str = END_TO_END) -> str:
    """Milliseconds as verdicts write them: a device figure with the digits its steadiness earns (0.3866 ms)."""
    if metric in DEVICE_METRICS and v < 1:
        return f"{v:.4f} ms"
    return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"
