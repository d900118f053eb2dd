"""A batch sweep read back from the store: one table row per (strategy, batch size), where throughput levels off
(the knee), what the dynamic range costs against static engines, and the peak-memory line.

The knee is read from measured points only: the smallest batch after which no larger batch gains
``KNEE_GAIN_PER_DOUBLING`` (10 %) or more throughput per doubling of the batch. The batch changes the kernels, so
the knee and the dynamic range's cost are judged on a device figure (``judged``: the CUDA-graph replay when every
run captured one, else GPU busy time when every run's passed its checks; throughput is batch / figure per call),
and on end-to-end latency otherwise (a dynamic engine is never replayed; its busy time must have settled).
Stored batch sweeps are found by their ``knob:model.batch_size`` tag.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.capabilities import Capabilities
from engine.result import RunResult
from engine.settings.inputs import BATCH_DIM, parse_inputs
from engine.store import RunNotFound, RunStore
from engine.studies.batch_sweep.plan import BATCH_KNOB
from engine.studies.judging import figure_problem, pick
from engine.studies.knobs import KNOB_TAG
from engine.studies.record import find_study
from engine.studies.statistics import END_TO_END, GPU_TIME, GRAPH_REPLAY, METRIC_NAMES
from engine.studies.sweeps.results import list_sweeps, tagged_results

KNEE_GAIN_PER_DOUBLING = 0.10

TABLE_COLUMNS = [
    "strategy",
    "batch_size",
    "median_ms",
    "p10_ms",
    "p90_ms",
    "throughput_per_s",
    "throughput_low_per_s",
    "throughput_high_per_s",
    "gpu_ms",
    "gpu_low_ms",
    "gpu_high_ms",
    "gpu_throughput_per_s",
    "graph_ms",
    "graph_low_ms",
    "graph_high_ms",
    "graph_throughput_per_s",
    "replay_problem",  # why the replay cannot judge this point ("" when it can; engine.studies.judging)
    "gpu_problem",  # why its GPU time cannot
    "kernels",
    "host_overhead_ms",
    "plan",
    "peak_memory_bytes",
    "memory_per_sample_bytes",
    "run_id",
    "backend",
    "device",
]


# -- reading results back ------------------------------------------------------------------------
def strategy_of(request: dict[str, Any]) -> str:
    """``dynamic`` when the run's inputs give the batch dimension a range, else ``static``."""
    raw = (request.get("model") or {}).get("inputs")
    if not raw:
        return "static"
    for s in parse_inputs(raw):
        for d in s.dynamic_dims():
            if s.dim_name(d) == BATCH_DIM:
                return "dynamic"
    return "static"


def batch_table(results: Iterable[RunResult]) -> pd.DataFrame:
    """One row per (strategy, batch size), the newest run where there are several.

    Throughput low/high are the batch over the p90/p10 latency: the spread the latency band implies.
    """
    rows = []
    for r in sorted(results, key=lambda r: r.created_at):
        lat = r.latency
        b = lat.batch_size
        mem = r.peak_memory_bytes
        g, gr = r.gpu_time, r.graph_replay
        replayed = gr is not None and gr.captured and bool(gr.median_ms)
        rows.append(
            {
                "strategy": strategy_of(r.request),
                "batch_size": b,
                "median_ms": lat.median_ms,
                "p10_ms": lat.p10_ms,
                "p90_ms": lat.p90_ms,
                "throughput_per_s": lat.throughput_per_s,
                "throughput_low_per_s": b * 1000.0 / lat.p90_ms if lat.p90_ms > 0 else math.nan,
                "throughput_high_per_s": b * 1000.0 / lat.p10_ms if lat.p10_ms > 0 else math.nan,
                "gpu_ms": g.median_ms if g else None,
                "gpu_low_ms": g.min_ms if g else None,
                "gpu_high_ms": g.max_ms if g else None,
                "gpu_throughput_per_s": b * 1000.0 / g.median_ms if g and g.median_ms > 0 else None,
                "graph_ms": gr.median_ms if replayed and gr else None,
                "graph_low_ms": gr.p10_ms if replayed and gr else None,
                "graph_high_ms": gr.p90_ms if replayed and gr else None,
                "graph_throughput_per_s": b * 1000.0 / gr.median_ms if replayed and gr and gr.median_ms else None,
                "replay_problem": figure_problem(r, GRAPH_REPLAY),
                "gpu_problem": figure_problem(r, GPU_TIME),
                "kernels": g.kernels_per_inference if g else None,
                "host_overhead_ms": r.host_overhead_ms,
                "plan": r.plan_fingerprint,
                "peak_memory_bytes": mem,
                "memory_per_sample_bytes": mem / b if mem else None,
                "run_id": r.run_id,
                "backend": r.request["backend"],
                "device": r.env.get("device", ""),
            }
        )
    if not rows:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    df = df.drop_duplicates(["strategy", "batch_size"], keep="last")
    return df.sort_values(["strategy", "batch_size"]).reset_index(drop=True)


# -- the knee ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Knee:
    strategy: str
    reached: bool  # False: throughput still rising at the largest measured batch
    batch_size: int  # the knee, or the largest batch when not reached
    throughput_per_s: float
    latency_ms: float
    best_batch_size: int  # highest measured throughput
    best_throughput_per_s: float
    gain_per_doubling: float | None  # best gain any larger batch offers per doubling, from the knee
    message: str


def gain_per_doubling(b0: int, t0: float, b1: int, t1: float) -> float:
    """Throughput growth per doubling of the batch between two points (0.10 = +10 % per doubling)."""
    return (t1 / t0) ** (1.0 / math.log2(b1 / b0)) - 1.0


@dataclass(frozen=True)
class Judged:
    """Which columns of a batch table judge it (the batch changes kernels, so a device figure when every row has
    a steady one: ``engine.studies.judging.pick``), its spread's columns, and why it is not the replay."""

    metric: str
    ms: str  # "graph_ms" | "gpu_ms" | "median_ms"
    throughput: str  # "graph_throughput_per_s" | "gpu_throughput_per_s" | "throughput_per_s"
    low: str = "p10_ms"  # the figure's own spread: replay p10/p90, fastest/slowest trace window, e2e p10/p90
    high: str = "p90_ms"
    reason: str = ""

    @property
    def name(self) -> str:
        return METRIC_NAMES[self.metric]

    @property
    def throughput_name(self) -> str:
        """ "GPU-time throughput", "Graph-replay throughput" or "Throughput" (end-to-end)."""
        return {GRAPH_REPLAY: "Graph-replay throughput", GPU_TIME: "GPU-time throughput"}.get(self.metric, "Throughput")

    @property
    def what(self) -> str:
        """How a latency figure reads: " of GPU time", " of CUDA-graph replay" or "" (end-to-end)."""
        return f" of {self.name}" if self.metric != END_TO_END else ""


_COLUMNS = {
    GRAPH_REPLAY: ("graph_ms", "graph_throughput_per_s", "graph_low_ms", "graph_high_ms"),
    GPU_TIME: ("gpu_ms", "gpu_throughput_per_s", "gpu_low_ms", "gpu_high_ms"),
    END_TO_END: ("median_ms", "throughput_per_s", "p10_ms", "p90_ms"),
}


def judged(table: pd.DataFrame) -> Judged:
    if not len(table):
        return Judged(END_TO_END, *_COLUMNS[END_TO_END])
    unknown = ["not recorded"] * len(table)  # a table built before the columns existed
    replay = [str(p) for p in table["replay_problem"]] if "replay_problem" in table else unknown
    gpu = [str(p) for p in table["gpu_problem"]] if "gpu_problem" in table else unknown
    j = pick(GPU_TIME, replay, gpu)
    return Judged(j.metric, *_COLUMNS[j.metric], reason=j.reason)


def find_knee(table: pd.DataFrame, strategy: str = "static", min_gain: float = KNEE_GAIN_PER_DOUBLING) -> Knee | None:
    """The smallest measured batch after which no larger batch gains ``min_gain`` or more per doubling,
    on the judged throughput (``judged``: GPU-time throughput when every point has it).

    Judging each point against every later one (not only its neighbour) keeps one noisy dip
    from being taken for the knee. None when the strategy has fewer than two points.
    """
    j = judged(table)
    pts = table[table["strategy"] == strategy].sort_values("batch_size")
    if len(pts) < 2:
        return None
    b = pts["batch_size"].astype(int).tolist()
    t = pts[j.throughput].astype(float).tolist()
    lat = pts[j.ms].astype(float).tolist()
    what = j.throughput_name
    best = int(np.argmax(t))
    for i in range(len(b) - 1):
        gains = [gain_per_doubling(b[i], t[i], b[j_], t[j_]) for j_ in range(i + 1, len(b))]
        if max(gains) < min_gain:
            msg = (
                f"{what} levels off at batch {b[i]}: {t[i]:,.0f} samples/s at {lat[i]:.3g} ms{j.what}; no larger "
                f"batch measured gains {min_gain:.0%} per doubling (best {max(gains):+.0%}). The highest "
                f"throughput measured is {t[best]:,.0f} samples/s at batch {b[best]} ({lat[best]:.3g} ms{j.what})."
            )
            return Knee(strategy, True, b[i], t[i], lat[i], b[best], t[best], max(gains), msg)
    last = gain_per_doubling(b[-2], t[-2], b[-1], t[-1])
    msg = (
        f"No knee up to batch {b[-1]}: {what.lower()} still grows {last:+.0%} per doubling between batch {b[-2]} "
        f"and {b[-1]} ({t[-1]:,.0f} samples/s at {lat[-1]:.3g} ms{j.what}). Try larger batches."
    )
    return Knee(strategy, False, b[-1], t[-1], lat[-1], b[best], t[best], last, msg)


# -- static against dynamic, memory -------------------------------------------------------------
def dynamic_cost(table: pd.DataFrame) -> pd.DataFrame:
    """Per batch measured both ways: what the dynamic engine's range costs against a static engine, on the
    judged figure (GPU time when every point has it)."""
    col = judged(table).ms
    static = table[table["strategy"] == "static"].set_index("batch_size")[col]
    dynamic = table[table["strategy"] == "dynamic"].set_index("batch_size")[col]
    both = pd.DataFrame({"static_ms": static, "dynamic_ms": dynamic}).dropna()
    both["overhead_ms"] = both["dynamic_ms"] - both["static_ms"]
    both["overhead_pct"] = 100.0 * both["overhead_ms"] / both["static_ms"]
    return both.reset_index().rename(columns={"index": "batch_size"})


@dataclass(frozen=True)
class MemoryFit:
    """Peak memory ≈ fixed_bytes + per_sample_bytes × batch (least squares over measured points)."""

    fixed_bytes: float
    per_sample_bytes: float
    points: int

    def max_batch_for(self, capacity_bytes: float) -> int | None:
        """The largest batch the line predicts fits in ``capacity_bytes``; None when memory does not grow."""
        if self.per_sample_bytes <= 0:
            return None
        # the small tolerance keeps a fit that is exact up to rounding from losing a whole batch
        return max(0, math.floor((capacity_bytes - self.fixed_bytes) / self.per_sample_bytes + 1e-9))


def fit_memory(batch_sizes: Sequence[int], peak_bytes: Sequence[float]) -> MemoryFit | None:
    """The line through measured (batch, peak memory) pairs; None with fewer than two batch sizes."""
    pairs = [(b, m) for b, m in zip(batch_sizes, peak_bytes, strict=True) if m is not None and not pd.isna(m)]
    if len({b for b, _ in pairs}) < 2:
        return None
    x = np.array([p[0] for p in pairs], dtype=float)
    y = np.array([p[1] for p in pairs], dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    return MemoryFit(float(intercept), float(slope), len(pairs))


def memory_fit(table: pd.DataFrame, strategy: str = "static") -> MemoryFit | None:
    pts = table[table["strategy"] == strategy]
    return fit_memory(pts["batch_size"].tolist(), pts["peak_memory_bytes"].tolist())


def gpu_capacity_bytes(device_name: str, caps: Capabilities) -> int | None:
    """The memory of this machine's GPU of the same model as ``device_name`` (where a sweep was recorded)."""
    for gpu in caps.gpus:
        if gpu.name == device_name:
            return gpu.memory_bytes
    return None


# -- stored batch sweeps ---------------------------------------------------------------------------
@dataclass
class BatchSweep:
    """A batch sweep read back from the store: its timed runs and one table row per (strategy, batch)."""

    sweep_id: str
    results: list[RunResult]
    table: pd.DataFrame
    dynamic_range: tuple[int, int, int] | None = None  # (min, opt, max) batch of the dynamic engine

    @property
    def device_name(self) -> str:
        return self.results[0].env.get("device_name", "?") if self.results else "?"

    @property
    def model(self) -> str:
        return self.results[0].request["model"]["source"] if self.results else "?"

    @property
    def precision(self) -> str:
        return self.results[0].request["compile"]["precision"] if self.results else "?"


def list_batch_sweeps(store: RunStore) -> pd.DataFrame:
    """Stored sweeps that vary the batch size: sweep_id, runs, model, device_name, is_sample, newest."""
    listed = list_sweeps(store)
    mask = listed["knobs"].map(lambda k: BATCH_KNOB in str(k).split(", ")).astype(bool)
    return listed.loc[mask].drop(columns=["knobs"]).reset_index(drop=True)


def load_batch_sweep(store: RunStore, sweep_id: str) -> BatchSweep:
    """A batch sweep's runs (its stored record's, else those tagged ``sweep:<sweep_id>``); raises ``RunNotFound``
    naming the sweep when there are none."""
    results = tagged_results(store, sweep_id, "batch sweep")
    study = find_study(store, sweep_id)
    is_batch = (
        study.kind == "batch_sweep" if study is not None else any(f"{KNOB_TAG}{BATCH_KNOB}" in r.tags for r in results)
    )
    if not is_batch:
        err = RunNotFound(sweep_id)
        err.message = (
            f"Sweep {sweep_id!r} varies compile knobs, not the batch size: open it in the 'Sweep results' tab."
        )
        raise err
    return batch_sweep_from_results(sweep_id, results)


def batch_sweep_from_results(sweep_id: str, results: Sequence[RunResult]) -> BatchSweep:
    """A batch sweep from its runs; runs that timed nothing (analyze mode) are left out."""
    timed = [r for r in results if r.latency.iters > 0]
    ranges = {_batch_range(r.request) for r in timed if strategy_of(r.request) == "dynamic"}
    ranges.discard(None)
    # several dynamic ranges in one sweep: the newest run's (batch_table keeps the newest too)
    newest = max((r for r in timed if _batch_range(r.request) in ranges), key=lambda r: r.created_at, default=None)
    return BatchSweep(sweep_id, timed, batch_table(timed), _batch_range(newest.request) if newest else None)


def _batch_range(request: dict[str, Any]) -> tuple[int, int, int] | None:
    raw = (request.get("model") or {}).get("inputs")
    if not raw:
        return None
    for s in parse_inputs(raw):
        for d in s.dynamic_dims():
            if s.dim_name(d) == BATCH_DIM:
                return s.lower[d], s.shape[d], s.upper[d]
    return None
