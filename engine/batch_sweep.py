"""Batch sweeps: latency and throughput against batch size, and where batching stops paying.

Two ways to serve many batch sizes with TensorRT, planned side by side:

- ``static``: one engine per batch size, each built for exactly that shape;
- ``dynamic``: one engine whose inputs have a batch range (min = smallest, max = largest batch,
  opt = the upper median by default), measured at every batch size inside it. Its points share
  ``model.inputs``, and the plan turns the engine cache on, so the engine is built once.

The runs are ordinary stored runs tagged like any sweep (``sweep:<id>``, ``knob:model.batch_size``);
a plan has the ``sweep_id`` / ``tags`` / ``points[].request`` that ``sweeps.SweepExecution`` runs.
Which strategy a run belongs to is read back from its request (a dynamic batch range or not).

The knee is read from measured points only: the smallest batch after which no larger batch
gains ``KNEE_GAIN_PER_DOUBLING`` (10 %) or more throughput per doubling of the batch. The batch changes
the kernels, so the knee and the dynamic range's cost are judged on GPU time (batch / GPU time per
call) when every run has it, and on end-to-end latency otherwise, the verdict saying why.

Stored batch sweeps are found by their ``knob:model.batch_size`` tag (``list_batch_sweeps``,
``load_batch_sweep``); ``verdict`` writes what they measured: the knee of each strategy, what the
dynamic range costs at each batch measured both ways, and the peak-memory line with the largest
batch it puts inside a given GPU memory.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from engine.capabilities import Capabilities
from engine.errors import ConfigError
from engine.judging import END_TO_END, GPU_TIME, gpu_time_absence
from engine.judging import format_ms as format_figure
from engine.result import RunResult
from engine.settings.defaults import MAX_BATCH_SIZE
from engine.settings.inputs import BATCH_DIM, InputSpec, parse_inputs, with_batch_range
from engine.settings.request import RunRequest
from engine.store import RunNotFound, RunStore
from engine.sweeps import KNOB_TAG, list_sweeps, sweep_tags, tagged_results

STRATEGIES = ("static", "dynamic")
BATCH_KNOB = "model.batch_size"
DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
MAX_BATCH_POINTS = 32
KNEE_GAIN_PER_DOUBLING = 0.10
FIELD = "batch_sweep"

TABLE_COLUMNS = ["strategy", "batch_size", "median_ms", "p10_ms", "p90_ms", "throughput_per_s",
                 "throughput_low_per_s", "throughput_high_per_s", "gpu_ms", "gpu_low_ms", "gpu_high_ms",
                 "gpu_throughput_per_s", "kernels", "host_overhead_ms", "plan", "peak_memory_bytes",
                 "memory_per_sample_bytes", "run_id", "backend", "device"]


# -- planning ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchPoint:
    request: RunRequest
    batch_size: int
    strategy: str

    @property
    def label(self) -> str:
        return f"batch {self.batch_size} ({self.strategy})"


@dataclass(frozen=True)
class BatchSweepPlan:
    sweep_id: str
    base: RunRequest
    batch_sizes: tuple[int, ...]
    strategies: tuple[str, ...]
    points: tuple[BatchPoint, ...]
    dynamic_inputs: tuple[InputSpec, ...] | None = None   # the one dynamic engine's inputs
    notes: tuple[str, ...] = ()

    @property
    def tags(self) -> list[str]:
        return sweep_tags(self.sweep_id, (BATCH_KNOB,))


def plan_batch_sweep(base: RunRequest, batch_sizes: Iterable[int] = DEFAULT_BATCH_SIZES,
                     strategies: Sequence[str] = ("static",), *, opt_batch: int | None = None,
                     model_inputs: Sequence[InputSpec] | None = None,
                     sweep_id: str | None = None) -> BatchSweepPlan:
    """One run per batch size and strategy, validated.

    ``model_inputs`` are the model's inputs at any batch (needed for ``dynamic`` when
    ``base.model.inputs`` is empty; ``registry.input_specs`` gives a registry model's). Raises
    ``ConfigError`` naming the setting and the rule.
    """
    sizes = sorted(set(batch_sizes))
    if not sizes:
        raise ConfigError(f"{FIELD}.batch_sizes", "no batch sizes; list at least one, e.g. 1,8,32")
    bad = [b for b in sizes if not isinstance(b, int) or isinstance(b, bool) or not 1 <= b <= MAX_BATCH_SIZE]
    if bad:
        raise ConfigError(f"{FIELD}.batch_sizes", f"{bad} outside 1..{MAX_BATCH_SIZE}")
    strategies = tuple(dict.fromkeys(strategies))
    unknown = [s for s in strategies if s not in STRATEGIES]
    if not strategies or unknown:
        raise ConfigError(f"{FIELD}.strategies", f"{unknown or 'none'}: pick from {', '.join(STRATEGIES)}")
    if len(sizes) * len(strategies) > MAX_BATCH_POINTS:
        raise ConfigError(f"{FIELD}.batch_sizes", f"{len(sizes) * len(strategies)} runs is more than the "
                                                  f"{MAX_BATCH_POINTS} a batch sweep may hold; list fewer sizes")
    if "dynamic" in strategies and base.backend != "tensorrt":
        raise ConfigError(f"{FIELD}.strategies", "a dynamic engine needs the tensorrt backend; the eager "
                                                 "backend runs every batch the same way (use static)")
    specs = tuple(base.model.inputs or model_inputs or ())
    points: list[BatchPoint] = []
    notes: list[str] = []
    dynamic_specs = None
    if "static" in strategies:
        for b in sizes:
            points.append(BatchPoint(_at(base, b, _static(specs, b) if base.model.inputs else None), b, "static"))
    if "dynamic" in strategies:
        if not specs:
            raise ConfigError(f"{FIELD}.strategies", "a dynamic engine needs the model's inputs: set model.inputs "
                                                     "or pass the registry model's own")
        opt = opt_batch if opt_batch is not None else sizes[len(sizes) // 2]
        if not sizes[0] <= opt <= sizes[-1]:
            raise ConfigError(f"{FIELD}.opt_batch", f"{opt} is outside the swept range {sizes[0]}..{sizes[-1]}; "
                                                    "need min ≤ opt ≤ max")
        dynamic_specs = with_batch_range(specs, sizes[0], opt, sizes[-1])
        for b in sizes:
            request = _at(base, b, dynamic_specs, {"compile.cache_built_engines": True,
                                                   "compile.reuse_cached_engines": True})
            points.append(BatchPoint(request, b, "dynamic"))
        notes.append(f"One dynamic engine for batch {sizes[0]}..{sizes[-1]}, tuned for batch {opt}; it is built "
                     "once and reused from the engine cache for the other batch sizes.")
    if base.device == "cpu" or base.backend == "eager":
        notes.append("GPU memory per batch is recorded on CUDA devices only.")
    return BatchSweepPlan(sweep_id or new_batch_sweep_id(base), base, tuple(sizes), strategies, tuple(points),
                          dynamic_specs, tuple(notes))


def new_batch_sweep_id(base: RunRequest) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", base.model.source)
    return f"{model}_{base.compile.precision}_batch_{stamp}"


def _static(specs: Sequence[InputSpec], b: int) -> tuple[InputSpec, ...]:
    return with_batch_range(specs, b, b, b)


def _at(base: RunRequest, b: int, specs: tuple[InputSpec, ...] | None,
        extra: dict[str, Any] | None = None) -> RunRequest:
    changes: dict[str, Any] = {BATCH_KNOB: b, **(extra or {})}
    if specs is not None:
        changes["model.inputs"] = [s.to_dict() for s in specs]
    try:
        return base.with_changes(**changes)
    except ConfigError as e:
        raise ConfigError(e.field, f"at batch {b}: {e.message}") from None


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
        g = r.gpu_time
        rows.append({"strategy": strategy_of(r.request), "batch_size": b, "median_ms": lat.median_ms,
                     "p10_ms": lat.p10_ms, "p90_ms": lat.p90_ms, "throughput_per_s": lat.throughput_per_s,
                     "throughput_low_per_s": b * 1000.0 / lat.p90_ms if lat.p90_ms > 0 else math.nan,
                     "throughput_high_per_s": b * 1000.0 / lat.p10_ms if lat.p10_ms > 0 else math.nan,
                     "gpu_ms": g.median_ms if g else None, "gpu_low_ms": g.min_ms if g else None,
                     "gpu_high_ms": g.max_ms if g else None,
                     "gpu_throughput_per_s": b * 1000.0 / g.median_ms if g and g.median_ms > 0 else None,
                     "kernels": g.kernels_per_inference if g else None, "host_overhead_ms": r.host_overhead_ms,
                     "plan": r.plan_fingerprint,
                     "peak_memory_bytes": mem, "memory_per_sample_bytes": mem / b if mem else None,
                     "run_id": r.run_id, "backend": r.request["backend"], "device": r.env.get("device", "")})
    if not rows:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    df = df.drop_duplicates(["strategy", "batch_size"], keep="last")
    return df.sort_values(["strategy", "batch_size"]).reset_index(drop=True)


# -- the knee ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Knee:
    strategy: str
    reached: bool                     # False: throughput still rising at the largest measured batch
    batch_size: int                   # the knee, or the largest batch when not reached
    throughput_per_s: float
    latency_ms: float
    best_batch_size: int              # highest measured throughput
    best_throughput_per_s: float
    gain_per_doubling: float | None   # best gain any larger batch offers per doubling, from the knee
    message: str


def gain_per_doubling(b0: int, t0: float, b1: int, t1: float) -> float:
    """Throughput growth per doubling of the batch between two points (0.10 = +10 % per doubling)."""
    return (t1 / t0) ** (1.0 / math.log2(b1 / b0)) - 1.0


@dataclass(frozen=True)
class Judged:
    """Which columns of a batch table judge it: GPU time when every row has it (the batch changes kernels),
    else end-to-end latency."""

    metric: str
    ms: str                  # "gpu_ms" | "median_ms"
    throughput: str          # "gpu_throughput_per_s" | "throughput_per_s"

    @property
    def what(self) -> str:
        """How a latency figure reads: "of GPU time" or "" (end-to-end)."""
        return " of GPU time" if self.metric == GPU_TIME else ""


def judged(table: pd.DataFrame) -> Judged:
    if len(table) and "gpu_ms" in table and table["gpu_ms"].notna().all():
        return Judged(GPU_TIME, "gpu_ms", "gpu_throughput_per_s")
    return Judged(END_TO_END, "median_ms", "throughput_per_s")


def find_knee(table: pd.DataFrame, strategy: str = "static",
              min_gain: float = KNEE_GAIN_PER_DOUBLING) -> Knee | None:
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
    what = "GPU-time throughput" if j.metric == GPU_TIME else "Throughput"
    best = int(np.argmax(t))
    for i in range(len(b) - 1):
        gains = [gain_per_doubling(b[i], t[i], b[j_], t[j_]) for j_ in range(i + 1, len(b))]
        if max(gains) < min_gain:
            msg = (f"{what} levels off at batch {b[i]}: {t[i]:,.0f} samples/s at {lat[i]:.3g} ms{j.what}; no larger "
                   f"batch measured gains {min_gain:.0%} per doubling (best {max(gains):+.0%}). The highest "
                   f"throughput measured is {t[best]:,.0f} samples/s at batch {b[best]} ({lat[best]:.3g} ms{j.what}).")
            return Knee(strategy, True, b[i], t[i], lat[i], b[best], t[best], max(gains), msg)
    last = gain_per_doubling(b[-2], t[-2], b[-1], t[-1])
    msg = (f"No knee up to batch {b[-1]}: {what.lower()} still grows {last:+.0%} per doubling between batch {b[-2]} "
           f"and {b[-1]} ({t[-1]:,.0f} samples/s at {lat[-1]:.3g} ms{j.what}). Try larger batches.")
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


# -- the batch sizes as typed ----------------------------------------------------------------------
def parse_batch_sizes(text: str) -> list[int]:
    """Batch sizes from text such as ``1, 8, 32`` (commas or spaces); raises ``ConfigError`` naming the bad values."""
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    if not parts:
        raise ConfigError(f"{FIELD}.batch_sizes", "no batch sizes; list at least one, e.g. 1,8,32")
    bad = [p for p in parts if not re.fullmatch(r"\+?\d+", p)]
    if bad:
        listed = ", ".join(repr(p) for p in bad)
        what = "is not a whole number" if len(bad) == 1 else "are not whole numbers"
        raise ConfigError(f"{FIELD}.batch_sizes", f"{listed} {what}; list batch sizes 1..{MAX_BATCH_SIZE} "
                                                  "separated by commas, e.g. 1,8,32")
    return [int(p) for p in parts]


def registry_inputs(base: RunRequest) -> tuple[InputSpec, ...] | None:
    """A registry model's own inputs for ``base`` (what a dynamic engine's range is built on); None for
    a custom model file, whose inputs are known only once it is built: give it ``model.inputs`` instead."""
    from engine.errors import ModelError
    from engine.models import registry  # noqa: PLC0415 - torchvision only when a plan needs it

    entry = registry.REGISTRY.get(base.model.source)
    if entry is None:
        return None
    try:
        return registry.input_specs(entry, base.model)
    except ModelError as e:
        raise ConfigError("model", f"{e.message} {e.hint}".strip()) from None


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
    dynamic_range: tuple[int, int, int] | None = None   # (min, opt, max) batch of the dynamic engine

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
    """The runs tagged ``sweep:<sweep_id>``; raises ``RunNotFound`` naming the sweep when there are none."""
    results = tagged_results(store, sweep_id, "batch sweep")
    if not any(f"{KNOB_TAG}{BATCH_KNOB}" in r.tags for r in results):
        err = RunNotFound(sweep_id)
        err.message = (f"Sweep {sweep_id!r} varies compile knobs, not the batch size: open it in the "
                       "'Sweep results' tab.")
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


# -- the verdict -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchVerdict:
    """What a batch sweep measured, in words: knee per strategy, the dynamic range's cost, the memory ceiling."""

    headline: str
    lines: tuple[str, ...]
    knees: dict[str, Knee]
    cost: pd.DataFrame
    memory: dict[str, MemoryFit]

    def markdown(self) -> str:
        return "\n".join([f"**{self.headline}**", "", *(f"- {line}" for line in self.lines)])


def strategy_name(strategy: str, dynamic_range: tuple[int, int, int] | None = None) -> str:
    if strategy == "dynamic":
        if dynamic_range:
            lo, opt, hi = dynamic_range
            return f"One dynamic engine (batch {lo}..{hi}, tuned for {opt})"
        return "One dynamic engine"
    return "Static engines (one per batch size)"


def verdict(sweep: BatchSweep, capacity_bytes: float | None = None) -> BatchVerdict:
    """The written verdict of a batch sweep from its measured numbers.

    ``capacity_bytes`` (the GPU's memory) turns the memory line into the largest batch that fits.
    """
    table = sweep.table
    if table.empty:
        return BatchVerdict("No timed run in this batch sweep", ("Its runs timed nothing (analyze mode) or were "
                                                                "all cancelled: run the sweep again.",),
                            {}, dynamic_cost(table), {})
    present = [s for s in STRATEGIES if (table["strategy"] == s).any()]
    j = judged(table)
    lines: list[str] = []
    missing = sorted({gpu_time_absence(r) for r in sweep.results if r.gpu_time is None})
    if j.metric == END_TO_END and missing:
        lines.append(f"Judged on end-to-end latency: GPU time {'; '.join(missing)} for "
                     f"{'this sweep' if len(missing) == 1 else 'some of its runs'} (the batch changes kernels, which "
                     "GPU time measures steadily; end-to-end also carries the host's work per call).")
    knees: dict[str, Knee] = {}
    for s in present:
        name = strategy_name(s, sweep.dynamic_range)
        knee = find_knee(table, s)
        if knee is None:
            row = table[table["strategy"] == s].iloc[0]
            lines.append(f"{name}: only batch {int(row['batch_size'])} measured ({format_figure(row[j.ms], j.metric)}"
                         f"{j.what}, {row[j.throughput]:,.0f} samples/s); a knee needs two batch sizes or more.")
        else:
            knees[s] = knee
            lines.append(f"{name}: {knee.message}")
    if j.metric == GPU_TIME:
        lines += _host_lines(table)
    cost = dynamic_cost(table)
    lines += _cost_lines(table, cost, "dynamic" in present and "static" in present)
    fits: dict[str, MemoryFit] = {}
    for s in present:
        fit = memory_fit(table, s)
        if fit is not None:
            fits[s] = fit
    lines += _memory_lines(table, present, fits, capacity_bytes, sweep.dynamic_range)
    return BatchVerdict(_batch_headline(table, knees), tuple(lines), knees, cost, fits)


def _mib(v: float) -> str:
    return f"{v / 2**20:,.0f} MiB" if abs(v) >= 10 * 2**20 else f"{v / 2**20:,.2f} MiB"


def _batch_headline(table: pd.DataFrame, knees: dict[str, Knee]) -> str:
    j = judged(table)
    best = table.loc[table[j.throughput].idxmax()]
    s = str(best["strategy"])
    what = "GPU-time throughput" if j.metric == GPU_TIME else "throughput"
    text = (f"Best {what} {best[j.throughput]:,.0f} samples/s at batch {int(best['batch_size'])} "
            f"({'static engine' if s == 'static' else 'dynamic engine'}, {format_figure(best[j.ms], j.metric)}"
            f"{j.what})")
    knee = knees.get(s)
    if knee is not None:
        text += (f"; throughput levels off from batch {knee.batch_size}" if knee.reached
                 else f"; still rising at batch {knee.batch_size}")
    return text


def _host_lines(table: pd.DataFrame) -> list[str]:
    """End-to-end beside GPU time: what the host adds per call, and what it does to throughput at small batch."""
    rows = table.sort_values(["strategy", "batch_size"])
    parts = [f"batch {int(r.batch_size)} {r.throughput_per_s:,.0f} samples/s (host {r.host_overhead_ms:.3f} ms "
             f"per call)" for r in rows.itertuples() if r.host_overhead_ms is not None
             and not pd.isna(r.host_overhead_ms) and r.strategy == rows["strategy"].iloc[0]]
    if not parts:
        return []
    return ["End-to-end, host overhead included: " + "; ".join(parts) + ". A larger batch spreads the host's "
            "work per call over more samples; CUDA graphs remove most of it."]


def _cost_lines(table: pd.DataFrame, cost: pd.DataFrame, both: bool) -> list[str]:
    if not both:
        return []
    if cost.empty:
        return ["No batch size was measured with both a static and the dynamic engine: nothing to say about what "
                "the dynamic range costs."]
    j = judged(table)
    lo_col, hi_col = ("gpu_low_ms", "gpu_high_ms") if j.metric == GPU_TIME else ("p10_ms", "p90_ms")
    spread = "GPU-time windows" if j.metric == GPU_TIME else "p10-p90 spread"
    bands = table.set_index(["strategy", "batch_size"])
    parts = []
    for row in cost.itertuples():
        b = int(row.batch_size)
        st_lo, st_hi = bands.loc[("static", b), [lo_col, hi_col]]
        dy_lo, dy_hi = bands.loc[("dynamic", b), [lo_col, hi_col]]
        overlap = dy_lo <= st_hi and st_lo <= dy_hi
        plans = [bands.loc[(strategy, b), "plan"] if "plan" in bands else None for strategy in STRATEGIES]
        text = (f"batch {b}: {format_figure(row.dynamic_ms, j.metric)} against "
                f"{format_figure(row.static_ms, j.metric)} static{j.what}, "
                f"{row.overhead_ms:+.{4 if j.metric == GPU_TIME else 3}f} ms ({row.overhead_pct:+.0f}%)")
        if isinstance(plans[0], str) and plans[0] == plans[1]:
            text += ", the same engine plan at this batch: no cost"
        elif overlap:
            text += f", within the {spread} of both: no clear cost"
        parts.append(text)
    lines = ["What the dynamic range costs against a static engine built for that batch: " + "; ".join(parts) + "."]
    if len(cost) > 1:
        worst = cost.loc[cost["overhead_pct"].idxmax()]
        least = cost.loc[cost["overhead_pct"].idxmin()]
        lines.append(f"It costs most at batch {int(worst['batch_size'])} ({worst['overhead_pct']:+.0f}%) and least "
                     f"at batch {int(least['batch_size'])} ({least['overhead_pct']:+.0f}%): one engine for every "
                     "batch trades that latency for a single build.")
    return lines


def _memory_lines(table: pd.DataFrame, present: list[str], fits: dict[str, MemoryFit],
                  capacity_bytes: float | None, dynamic_range: tuple[int, int, int] | None) -> list[str]:
    if table["peak_memory_bytes"].isna().all():
        return ["No GPU memory recorded: peak memory is measured on CUDA devices only (CPU runs have none)."]
    lines = []
    for s in present:
        pts = table[(table["strategy"] == s) & table["peak_memory_bytes"].notna()]
        if pts.empty:
            continue
        name = "static engines" if s == "static" else "dynamic engine"
        top = pts.loc[pts["batch_size"].idxmax()]
        measured = f"largest measured: batch {int(top['batch_size'])} at {_mib(top['peak_memory_bytes'])}"
        fit = fits.get(s)
        if fit is None:
            lines.append(f"Peak GPU memory ({name}): {measured}; two batch sizes are needed for a line.")
            continue
        if fit.per_sample_bytes <= 0:
            lines.append(f"Peak GPU memory ({name}) did not grow with the batch ({measured}): no ceiling follows "
                         "from these points.")
            continue
        text = (f"Peak GPU memory ({name}): about {_mib(fit.fixed_bytes)} fixed + {_mib(fit.per_sample_bytes)} per "
                f"sample (a line through {fit.points} batch sizes; {measured})")
        if capacity_bytes:
            ceiling = fit.max_batch_for(capacity_bytes)
            text += (f". By that line batch {ceiling:,} would fill the GPU's {capacity_bytes / 2**30:.0f} GiB "
                     "(an extrapolation: the workspace TensorRT takes and other processes lower it)")
            if s == "dynamic" and dynamic_range:
                text += f"; the engine itself accepts batch {dynamic_range[2]} at most"
        lines.append(text + ".")
    return lines
