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
gains ``KNEE_GAIN_PER_DOUBLING`` (10 %) or more throughput per doubling of the batch.
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

from engine.config import MAX_BATCH_SIZE, ConfigError, RunRequest
from engine.inputs import BATCH_DIM, InputSpec, parse_inputs, with_batch_range
from engine.result import RunResult

STRATEGIES = ("static", "dynamic")
BATCH_KNOB = "model.batch_size"
DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
MAX_BATCH_POINTS = 32
KNEE_GAIN_PER_DOUBLING = 0.10
FIELD = "batch_sweep"

TABLE_COLUMNS = ["strategy", "batch_size", "median_ms", "p10_ms", "p90_ms", "throughput_per_s",
                 "throughput_low_per_s", "throughput_high_per_s", "peak_memory_bytes", "memory_per_sample_bytes",
                 "run_id", "backend", "device"]


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
        from engine.sweeps import sweep_tags

        return sweep_tags(self.sweep_id, (BATCH_KNOB,))


def plan_batch_sweep(base: RunRequest, batch_sizes: Iterable[int] = DEFAULT_BATCH_SIZES,
                     strategies: Sequence[str] = ("static",), *, opt_batch: int | None = None,
                     model_inputs: Sequence[InputSpec] | None = None,
                     sweep_id: str | None = None) -> BatchSweepPlan:
    """One run per batch size and strategy, validated.

    ``model_inputs`` are the model's inputs at any batch (needed for ``dynamic`` when
    ``base.model.inputs`` is empty; ``models.input_specs`` gives a registry model's). Raises
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
        rows.append({"strategy": strategy_of(r.request), "batch_size": b, "median_ms": lat.median_ms,
                     "p10_ms": lat.p10_ms, "p90_ms": lat.p90_ms, "throughput_per_s": lat.throughput_per_s,
                     "throughput_low_per_s": b * 1000.0 / lat.p90_ms if lat.p90_ms > 0 else math.nan,
                     "throughput_high_per_s": b * 1000.0 / lat.p10_ms if lat.p10_ms > 0 else math.nan,
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


def find_knee(table: pd.DataFrame, strategy: str = "static",
              min_gain: float = KNEE_GAIN_PER_DOUBLING) -> Knee | None:
    """The smallest measured batch after which no larger batch gains ``min_gain`` or more per doubling.

    Judging each point against every later one (not only its neighbour) keeps one noisy dip
    from being taken for the knee. None when the strategy has fewer than two points.
    """
    pts = table[table["strategy"] == strategy].sort_values("batch_size")
    if len(pts) < 2:
        return None
    b = pts["batch_size"].astype(int).tolist()
    t = pts["throughput_per_s"].astype(float).tolist()
    lat = pts["median_ms"].astype(float).tolist()
    best = int(np.argmax(t))
    for i in range(len(b) - 1):
        gains = [gain_per_doubling(b[i], t[i], b[j], t[j]) for j in range(i + 1, len(b))]
        if max(gains) < min_gain:
            msg = (f"Throughput levels off at batch {b[i]}: {t[i]:,.0f} samples/s at {lat[i]:.3g} ms; no larger "
                   f"batch measured gains {min_gain:.0%} per doubling (best {max(gains):+.0%}). The highest "
                   f"throughput measured is {t[best]:,.0f} samples/s at batch {b[best]} ({lat[best]:.3g} ms).")
            return Knee(strategy, True, b[i], t[i], lat[i], b[best], t[best], max(gains), msg)
    last = gain_per_doubling(b[-2], t[-2], b[-1], t[-1])
    msg = (f"No knee up to batch {b[-1]}: throughput still grows {last:+.0%} per doubling between batch {b[-2]} "
           f"and {b[-1]} ({t[-1]:,.0f} samples/s at {lat[-1]:.3g} ms). Try larger batches.")
    return Knee(strategy, False, b[-1], t[-1], lat[-1], b[best], t[best], last, msg)


# -- static against dynamic, memory -------------------------------------------------------------
def dynamic_cost(table: pd.DataFrame) -> pd.DataFrame:
    """Per batch measured both ways: what the dynamic engine's range costs against a static engine."""
    static = table[table["strategy"] == "static"].set_index("batch_size")["median_ms"]
    dynamic = table[table["strategy"] == "dynamic"].set_index("batch_size")["median_ms"]
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
