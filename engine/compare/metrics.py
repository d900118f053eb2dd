"""The numbers the Compare page and a run's summary show, as DataFrames: headline metrics per run with deltas and
speedups against a baseline run, per-layer-type time, latency samples, the profiling overhead, and what the GPUs
that measured the runs mean for the comparison.

Pages only place what these functions return ("no number is computed inside a page"). Deltas and speedups are on
the figure that judges what differs between the runs (engine/compare/differences.py): GPU time for kernel settings,
end-to-end for host settings, per sample when batch sizes differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from engine.compare.differences import comparison_basis, judged_ms
from engine.compare.settings_table import gpu_labels, run_label
from engine.result import RunResult
from engine.stage_times import setup_total_s
from engine.studies.judging import same_engine

MAX_COMPARED = 6
MB = 1024 * 1024


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    value: Callable[[RunResult], float | None]
    lower_is_better: bool = True
    chart: str = ""  # panel title when it is one of the grouped bars on the Compare page


def timed(run: RunResult) -> bool:
    """False for runs that time nothing (analyze / dryrun): their latency figures are placeholders."""
    return run.latency.iters > 0


def _latency(field: str) -> Callable[[RunResult], float | None]:
    return lambda r: getattr(r.latency, field) if timed(r) else None


def _compile_s(run: RunResult) -> float | None:
    return setup_total_s(run.stages_s)


def _mb(n: int | None) -> float | None:
    return n / MB if n else None


def _gpu_ms(run: RunResult) -> float | None:
    return run.gpu_time.median_ms if run.gpu_time is not None else None


def _graph_ms(run: RunResult) -> float | None:
    r = run.graph_replay
    return r.median_ms if r is not None and r.captured else None


METRICS: list[Metric] = [
    Metric("e2e_median_ms", "End-to-end median", "ms", _latency("median_ms"), chart="e2e median"),
    Metric("gpu_time_ms", "GPU time", "ms", _gpu_ms, chart="GPU time"),
    Metric("graph_replay_ms", "CUDA-graph replay", "ms", _graph_ms),
    Metric("host_overhead_ms", "Host overhead (e2e − GPU time)", "ms", lambda r: r.host_overhead_ms),
    Metric("e2e_p90_ms", "End-to-end p90", "ms", _latency("p90_ms")),
    Metric("e2e_p99_ms", "End-to-end p99", "ms", _latency("p99_ms")),
    Metric("throughput_per_s", "Throughput", "samples/s", _latency("throughput_per_s"), lower_is_better=False),
    Metric("compile_s", "Compile + prepare time", "s", _compile_s, chart="compile time"),
    Metric("engine_count", "TensorRT engines", "count", lambda r: float(r.engine_count), chart="engines"),
    Metric("engine_mb", "Engine size", "MiB", lambda r: _mb(r.engine_bytes)),
    Metric("peak_memory_mb", "Peak GPU memory", "MiB", lambda r: _mb(r.peak_memory_bytes), chart="peak memory"),
    Metric(
        "accuracy_rel_l2",
        "Output rel. L2 error vs fp32",
        "ratio",
        lambda r: r.accuracy.rel_l2 if r.accuracy else None,
        chart="rel. L2 error",
    ),
    Metric(
        "top1_agreement",
        "Top-1 agreement vs fp32",
        "fraction",
        lambda r: r.accuracy.top1_agreement if r.accuracy else None,
        lower_is_better=False,
    ),
]
METRIC_BY_KEY = {m.key: m for m in METRICS}


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) or math.isinf(v) else v


def pick_baseline(runs: Sequence[RunResult], baseline_id: str | None) -> RunResult:
    """The run others are measured against: the chosen one, else the first."""
    if not runs:
        raise ValueError("no runs to compare")
    for r in runs:
        if r.run_id == baseline_id:
            return r
    return runs[0]


def metric_table(runs: Sequence[RunResult], baseline_id: str | None = None) -> pd.DataFrame:
    """One row per run: identity, the headline metrics (end-to-end and GPU time beside each other), and the
    delta and speedup against the baseline on the judged figure (``judged_on``, the same for every row: GPU
    time when only kernel settings differ and every run has it, else end-to-end; per sample when the batch
    sizes differ). ``same_plan``: the run ran the baseline's engine plan (its gap is noise).

    ``speedup`` is baseline figure / run figure (above 1: faster than the baseline).
    """
    base = pick_baseline(runs, baseline_id)
    b = comparison_basis(runs)
    base_ms = judged_ms(base, b)
    gpus = gpu_labels(runs)
    rows = []
    for r in runs:
        row: dict[str, Any] = {
            "run": run_label(r),
            "run_id": r.run_id,
            "baseline": r.run_id == base.run_id,
            "sample": r.is_sample,
            "device": r.env.get("device_name", "?"),
            "gpu": gpus[r.run_id],
            "flavour": r.env.get("flavour", ""),
            "batch_size": r.latency.batch_size,
        }
        for m in METRICS:
            row[m.key] = _num(m.value(r))
        row["gpu_spread_pct"] = r.gpu_time.spread_pct if r.gpu_time is not None else None
        row["kernels"] = r.gpu_time.kernels_per_inference if r.gpu_time is not None else None
        row["same_plan"] = r.run_id != base.run_id and same_engine(r, base)
        row["judged_on"] = b.label
        ms = judged_ms(r, b)
        row["judged_ms"] = ms
        row["delta_ms"] = row["delta_pct"] = row["speedup"] = None
        if ms is not None and base_ms is not None and ms > 0 and base_ms > 0:
            row["delta_ms"] = ms - base_ms
            row["delta_pct"] = (ms / base_ms - 1.0) * 100.0
            row["speedup"] = base_ms / ms
        rows.append(row)
    return pd.DataFrame(rows)


def metric_long(runs: Sequence[RunResult], keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table (run, metric, label, unit, value) for grouped bars; metrics no run has are dropped."""
    keys = list(keys) if keys is not None else [m.key for m in METRICS if m.chart]
    rows = []
    for key in keys:
        m = METRIC_BY_KEY[key]
        values = [(_num(m.value(r)), r) for r in runs]
        if all(not v for v, _ in values):  # no run has it (or none built an engine): an empty panel
            continue
        for v, r in values:
            rows.append(
                {
                    "run": run_label(r),
                    "run_id": r.run_id,
                    "metric": key,
                    "label": m.chart or m.label,
                    "unit": m.unit,
                    "value": v,
                }
            )
    return pd.DataFrame(rows, columns=["run", "run_id", "metric", "label", "unit", "value"])


def same_settings_across_gpus(runs: Sequence[RunResult]) -> pd.DataFrame:
    """Runs of one configuration (one cache key: settings, model, versions, GPU type) measured on
    different GPUs: one row per configuration with the GPUs, their e2e medians and the spread
    (slowest / fastest - 1, in %), which is GPU-to-GPU variation plus run-to-run noise."""
    cols = ["settings", "gpus", "runs", "median_ms_min", "median_ms_max", "spread_pct"]
    labels = gpu_labels(runs)
    by_key: dict[str, list[RunResult]] = {}
    for r in runs:
        if timed(r):
            by_key.setdefault(r.key, []).append(r)
    rows = []
    for group in by_key.values():
        gpus = sorted({labels[r.run_id] for r in group})
        medians = [r.latency.median_ms for r in group]
        lo, hi = min(medians), max(medians)
        if len(gpus) < 2 or lo <= 0:
            continue
        rows.append(
            {
                "settings": group[0].label.rsplit(" · ", 1)[0],
                "gpus": gpus,
                "runs": [r.run_id for r in group],
                "median_ms_min": lo,
                "median_ms_max": hi,
                "spread_pct": (hi / lo - 1.0) * 100.0,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def hardware_notes(runs: Sequence[RunResult]) -> list[str]:
    """What the reader must know about where the compared runs were measured, one sentence each."""
    notes = []
    devices = sorted({str(r.env.get("device_name", "?")) for r in runs})
    if len(devices) > 1:
        notes.append(f"Runs come from different machines ({', '.join(devices)}): differences include the hardware.")
    labels = gpu_labels(runs)
    gpus = sorted({labels[r.run_id] for r in runs if r.env.get("gpu_index") is not None})
    if len(devices) == 1 and len(gpus) > 1:
        notes.append(
            f"Runs come from different GPUs of one type ({', '.join(gpus)}): differences include GPU-to-GPU variation."
        )
    for row in same_settings_across_gpus(runs).itertuples(index=False):
        notes.append(
            f"The same settings ({row.settings}) were measured on {' and '.join(row.gpus)}: their e2e "
            f"medians differ by {row.spread_pct:.1f}%, which is GPU-to-GPU variation (plus run-to-run "
            "noise), not an effect of the settings."
        )
    return notes


def layer_type_time(runs: Sequence[RunResult], baseline_id: str | None = None) -> pd.DataFrame:
    """Profiled time per layer type for each run (long: vocabulary, layer_type, run, total_ms, layers, delta_ms).

    ``vocabulary`` says whose names the layer types are: TensorRT's layer types inside engines ("TensorRT"), or
    PyTorch's (nn.Module classes of an eager run, the subgraphs between engines: "PyTorch"); a chart keeps one
    vocabulary per axis. ``delta_ms`` is against the baseline run's time for the same layer type (0 where it has none).
    """
    base = pick_baseline(runs, baseline_id) if runs else None
    parts: list[pd.DataFrame] = []
    for r in runs:
        if r.layers.empty:
            continue
        runtime = r.layers["runtime"] if "runtime" in r.layers else pd.Series("", index=r.layers.index)
        g = (
            r.layers.assign(
                layer_type=r.layers["layer_type"].replace("", "(unknown)"),
                vocabulary=["TensorRT" if v == "tensorrt" else "PyTorch" for v in runtime],
            )
            .groupby(["vocabulary", "layer_type"], as_index=False)
            .agg(total_ms=("avg_ms", "sum"), layers=("avg_ms", "size"))
        )
        g["run"] = run_label(r)
        g["run_id"] = r.run_id
        g["position"] = len(parts)  # the run's place among the compared: its colour on every chart
        parts.append(g)
    cols = ["vocabulary", "layer_type", "run", "run_id", "position", "total_ms", "layers", "delta_ms"]
    if not parts:
        return pd.DataFrame(columns=cols)
    df = pd.concat(parts, ignore_index=True)
    keys = list(zip(df["vocabulary"], df["layer_type"], strict=True))
    base_id = base.run_id if base is not None else None
    base_ms = {k: v for k, v, run_id in zip(keys, df["total_ms"], df["run_id"], strict=True) if run_id == base_id}
    df["delta_ms"] = df["total_ms"] - [base_ms.get(k, 0.0) for k in keys]
    order = df.groupby("layer_type")["total_ms"].max().sort_values(ascending=False).index
    df["layer_type"] = pd.Categorical(df["layer_type"], categories=list(order), ordered=True)
    return df.sort_values(["layer_type", "position"]).reset_index(drop=True)[cols].astype({"layer_type": str})


def latency_samples(runs: Sequence[RunResult]) -> pd.DataFrame:
    """Long table (run, latency_ms) of every timed inference of every run."""
    rows = [
        {"run": run_label(r), "run_id": r.run_id, "latency_ms": float(s)} for r in runs for s in r.latency_samples_ms
    ]
    return pd.DataFrame(rows, columns=["run", "run_id", "latency_ms"])


# -- one run -----------------------------------------------------------------------------------


def profiling_overhead(run: RunResult) -> dict[str, float | None]:
    """Sum of per-layer averages against the end-to-end median.

    Per-layer profiling synchronises after every layer, so the sum is usually larger than
    e2e; ``ratio`` says by how much (None without a layer profile), ``gpu_ratio`` against the GPU time
    measured with profiling off (None where there is none).
    """
    e2e = run.latency.median_ms if timed(run) else None
    profiled = run.profiled_sum_ms
    if profiled is None and not run.layers.empty:
        profiled = float(run.layers["avg_ms"].sum())
    ratio = overhead = gpu_ratio = None
    if profiled is not None and e2e is not None and e2e > 0:
        ratio, overhead = profiled / e2e, profiled - e2e
    gpu = run.gpu_time.median_ms if run.gpu_time is not None else None
    if profiled is not None and gpu:
        gpu_ratio = profiled / gpu
    return {
        "e2e_median_ms": e2e,
        "profiled_sum_ms": profiled,
        "ratio": ratio,
        "overhead_ms": overhead,
        "gpu_time_ms": gpu,
        "gpu_ratio": gpu_ratio,
    }


def run_summary(run: RunResult) -> pd.DataFrame:
    """Headline numbers of one run (metric, value, unit), metrics the run lacks left out."""
    rows = []
    for m in METRICS:
        v = _num(m.value(run))
        if v is None or (m.key in ("engine_count", "engine_mb") and run.request["backend"] == "eager"):
            continue
        rows.append({"metric": m.label, "value": v, "unit": m.unit})
    for name, stats in sorted(run.baselines.items()):
        rows.append({"metric": f"Baseline {name} median", "value": stats.median_ms, "unit": "ms"})
        if timed(run) and run.latency.median_ms > 0:
            rows.append({"metric": f"Speedup vs {name}", "value": stats.median_ms / run.latency.median_ms, "unit": "×"})
    return pd.DataFrame(rows, columns=["metric", "value", "unit"])
