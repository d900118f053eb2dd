"""Tables about runs: the numbers the Compare, History and run pages show, as DataFrames.

Pages only place what these functions return ("no number is computed inside a page"):
metric tables with deltas and speedups against a baseline run, the knobs that differ
between runs, which GPU measured each run (two GPUs of one type told apart: "H200 #0", "H200 #1"),
per-layer-type time per run, a run's headline numbers and the history listing. Deltas and speedups are
on the figure that judges what differs between the runs (``engine.differences``): GPU time for kernel
settings, end-to-end for host settings, per sample when batch sizes differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from engine import differences
from engine.judging import knob, same_engine
from engine.result import RunResult

MAX_COMPARED = 6
MB = 1024 * 1024


def run_label(run: RunResult) -> str:
    """Short, unique name of a run for legends and column headers (``RunResult.label``)."""
    return run.label


def gpu_label(run: RunResult, with_host: bool = False) -> str:
    """The device that measured a run: "H200 #0" (GPU 0 of its host, as job workers record it),
    "H100 80GB HBM3" (a run that recorded no index), "CPU"."""
    env = run.env
    if env.get("device") != "cuda":
        return "CPU"
    name = str(env.get("device_name") or "GPU").removeprefix("NVIDIA ").strip() or "GPU"
    index = env.get("gpu_index")
    label = name if index is None else f"{name} #{index}"
    return f"{label} @{env['host']}" if with_host and env.get("host") else label


def gpu_labels(runs: Sequence[RunResult]) -> dict[str, str]:
    """Run id -> ``gpu_label``, with the host added when the runs come from several hosts (each has a #0)."""
    hosts = {r.env.get("host") for r in runs if r.env.get("gpu_index") is not None}
    return {r.run_id: gpu_label(r, with_host=len(hosts) > 1) for r in runs}


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    value: Callable[[RunResult], float | None]
    lower_is_better: bool = True
    chart: str = ""     # panel title when it is one of the grouped bars on the Compare page


def timed(run: RunResult) -> bool:
    """False for runs that time nothing (analyze / dryrun): their latency figures are placeholders."""
    return run.latency.iters > 0


def _latency(field: str) -> Callable[[RunResult], float | None]:
    return lambda r: getattr(r.latency, field) if timed(r) else None


# stages the backend times inside ``compile_s`` (the compile call's wall time): not added again
NESTED_IN_COMPILE = ("lowering_s", "partition_s", "build_s")


def setup_total_s(stages_s: dict[str, float]) -> float | None:
    """Seconds from request to a module ready to time: every top-level stage once."""
    if not stages_s:
        return None
    nested = NESTED_IN_COMPILE if "compile_s" in stages_s else ()
    return float(sum(v for k, v in stages_s.items() if k not in nested and v is not None))


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
    Metric("accuracy_rel_l2", "Output rel. L2 error vs fp32", "ratio",
           lambda r: r.accuracy.rel_l2 if r.accuracy else None, chart="rel. L2 error"),
    Metric("top1_agreement", "Top-1 agreement vs fp32", "fraction",
           lambda r: r.accuracy.top1_agreement if r.accuracy else None, lower_is_better=False),
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
    base_ms = differences.judged_ms(base, b)
    gpus = gpu_labels(runs)
    rows = []
    for r in runs:
        row: dict[str, Any] = {
            "run": run_label(r), "run_id": r.run_id, "baseline": r.run_id == base.run_id,
            "sample": r.is_sample, "device": r.env.get("device_name", "?"), "gpu": gpus[r.run_id],
            "flavour": r.env.get("flavour", ""), "batch_size": r.latency.batch_size,
        }
        for m in METRICS:
            row[m.key] = _num(m.value(r))
        row["gpu_spread_pct"] = r.gpu_time.spread_pct if r.gpu_time is not None else None
        row["kernels"] = r.gpu_time.kernels_per_inference if r.gpu_time is not None else None
        row["same_plan"] = r.run_id != base.run_id and same_engine(r, base)
        row["judged_on"] = b.label
        ms = differences.judged_ms(r, b)
        row["judged_ms"] = ms
        row["delta_ms"] = row["delta_pct"] = row["speedup"] = None
        if ms is not None and base_ms is not None and ms > 0 and base_ms > 0:
            row["delta_ms"] = ms - base_ms
            row["delta_pct"] = (ms / base_ms - 1.0) * 100.0
            row["speedup"] = base_ms / ms
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_basis(runs: Sequence[RunResult]) -> differences.Basis:
    """How ``runs`` are judged against each other (``engine.differences.basis``)."""
    differ = differing_settings(runs) if len(runs) > 1 else pd.DataFrame()
    return differences.basis(runs, list(differ.index))


def comparison_header(runs: Sequence[RunResult]) -> list[str]:
    """What Compare says before any number: what differs (settings that matter, batch named), the judged
    figure and why, and which runs ran the same engine plan."""
    if len(runs) < 2:
        return []
    b = comparison_basis(runs)
    lines = [differences.header(runs, b, differing_values(runs))]
    return differences.same_engine_notes(runs, short_labels(runs)) + lines


def differing_values(runs: Sequence[RunResult]) -> dict[str, list[str]]:
    """Each differing setting -> the runs' values in run order, as a reader wants them (dynamic inputs as
    "dynamic batch 1..32", not their JSON)."""
    differ = differing_settings(runs)
    out = {}
    for setting, values in differ.iterrows():
        if setting == "model.inputs":
            out[setting] = [differences.inputs_text(r.request) for r in runs]
        else:
            out[setting] = [str(v) for v in values]
    return out


def metric_long(runs: Sequence[RunResult], keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table (run, metric, label, unit, value) for grouped bars; metrics no run has are dropped."""
    keys = list(keys) if keys is not None else [m.key for m in METRICS if m.chart]
    rows = []
    for key in keys:
        m = METRIC_BY_KEY[key]
        values = [(_num(m.value(r)), r) for r in runs]
        if all(not v for v, _ in values):    # no run has it (or none built an engine): an empty panel
            continue
        for v, r in values:
            rows.append({"run": run_label(r), "run_id": r.run_id, "metric": key, "label": m.chart or m.label,
                         "unit": m.unit, "value": v})
    return pd.DataFrame(rows, columns=["run", "run_id", "metric", "label", "unit", "value"])


def _flatten(prefix: str, obj: Any, out: dict[str, Any]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, (list, tuple)):
        out[prefix] = ", ".join(str(v) for v in obj) if obj else "—"
    else:
        out[prefix] = "—" if obj is None else obj


ENV_KEYS = ("device_name", "flavour", "torch", "torch_tensorrt", "tensorrt")


def _setting_rank(setting: str) -> tuple[int, int, str]:
    return differences.setting_rank(setting)


_ALIASES = {"compile.optimization_level": "opt", "compile.min_block_size": "mbs", "model.batch_size": "batch",
            "compile.precision": "prec", "env.device_name": "device", "env.gpu": "gpu", "model.source": "model",
            "model.inputs": "shapes", "compile.enable_cudagraphs": "cudagraphs",
            "compile.use_python_runtime": "python rt"}


def _alias(setting: str) -> str:
    return _ALIASES.get(setting, setting.rsplit(".", 1)[-1])


def short_labels(runs: Sequence[RunResult]) -> dict[str, str]:
    """Run id -> what tells it apart from the other runs (the two most telling settings that differ; incidental
    ones such as engine caching only when nothing else does), plus its id tail.

    e.g. ``opt=0 cdb315ba`` when only optimization_level differs; fits a narrow card.
    """
    values = differing_values(runs) if len(runs) > 1 else {}
    ranked = sorted(values, key=_setting_rank)
    shown = [s for s in ranked if knob(s).matters][:2] or ranked[:2]
    labels = {}
    for i, r in enumerate(runs):
        parts = [f"{_alias(setting)}={values[setting][i]}" for setting in shown]
        labels[r.run_id] = " ".join(parts + [r.run_id[-8:]]) if parts else r.run_id[-8:]
    return labels


def settings_table(runs: Sequence[RunResult]) -> pd.DataFrame:
    """Every request setting and environment version, one row per setting, one column per run,
    with a ``differs`` column that is True where the runs disagree. ``env.gpu`` (which GPU, "H200 #1")
    is there when a run recorded its GPU index."""
    columns: dict[str, dict[str, Any]] = {}
    gpus = gpu_labels(runs) if any(r.env.get("gpu_index") is not None for r in runs) else {}
    for r in runs:
        flat: dict[str, Any] = {}
        _flatten("", r.request, flat)
        for k in ENV_KEYS:
            flat[f"env.{k}"] = r.env.get(k) if r.env.get(k) is not None else "—"
        if gpus:
            flat["env.gpu"] = gpus[r.run_id]
        columns[run_label(r)] = flat
    df = pd.DataFrame(columns)
    df = df.loc[sorted(df.index, key=_setting_rank)]
    df.index.name = "setting"
    df = df.astype(str).fillna("—")
    df["differs"] = df.nunique(axis=1) > 1
    return df


def differing_settings(runs: Sequence[RunResult]) -> pd.DataFrame:
    """Only the settings (knobs, versions, GPU) whose values differ between the runs."""
    df = settings_table(runs)
    return df[df["differs"]].drop(columns="differs")


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
        rows.append({"settings": group[0].label.rsplit(" · ", 1)[0], "gpus": gpus,
                     "runs": [r.run_id for r in group], "median_ms_min": lo, "median_ms_max": hi,
                     "spread_pct": (hi / lo - 1.0) * 100.0})
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
        notes.append(f"Runs come from different GPUs of one type ({', '.join(gpus)}): differences include "
                     "GPU-to-GPU variation.")
    for row in same_settings_across_gpus(runs).itertuples(index=False):
        notes.append(f"The same settings ({row.settings}) were measured on {' and '.join(row.gpus)}: their e2e "
                     f"medians differ by {row.spread_pct:.1f}%, which is GPU-to-GPU variation (plus run-to-run "
                     "noise), not an effect of the settings.")
    return notes


def layer_type_time(runs: Sequence[RunResult], baseline_id: str | None = None) -> pd.DataFrame:
    """Profiled time per layer type for each run (long: layer_type, run, total_ms, layers, delta_ms).

    ``delta_ms`` is against the baseline run's time for the same layer type (0 where it has none).
    Layer types differ between backends (nn.Module classes vs TensorRT layer types): both show.
    """
    base = pick_baseline(runs, baseline_id) if runs else None
    parts = []
    for r in runs:
        if r.layers.empty:
            continue
        g = (r.layers.assign(layer_type=r.layers["layer_type"].replace("", "(unknown)"))
             .groupby("layer_type", as_index=False)
             .agg(total_ms=("avg_ms", "sum"), layers=("avg_ms", "size")))
        g["run"] = run_label(r)
        g["run_id"] = r.run_id
        parts.append(g)
    cols = ["layer_type", "run", "run_id", "total_ms", "layers", "delta_ms"]
    if not parts:
        return pd.DataFrame(columns=cols)
    df = pd.concat(parts, ignore_index=True)
    base_ms = df[df["run_id"] == base.run_id].set_index("layer_type")["total_ms"] if base else pd.Series()
    df["delta_ms"] = df["total_ms"] - df["layer_type"].map(base_ms).fillna(0.0)
    order = df.groupby("layer_type")["total_ms"].max().sort_values(ascending=False).index
    df["layer_type"] = pd.Categorical(df["layer_type"], categories=list(order), ordered=True)
    return df.sort_values(["layer_type", "run"]).reset_index(drop=True)[cols].astype({"layer_type": str})


def latency_samples(runs: Sequence[RunResult]) -> pd.DataFrame:
    """Long table (run, latency_ms) of every timed inference of every run."""
    rows = [{"run": run_label(r), "run_id": r.run_id, "latency_ms": float(s)}
            for r in runs for s in r.latency_samples_ms]
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
    return {"e2e_median_ms": e2e, "profiled_sum_ms": profiled, "ratio": ratio, "overhead_ms": overhead,
            "gpu_time_ms": gpu, "gpu_ratio": gpu_ratio}


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
            rows.append({"metric": f"Speedup vs {name}", "value": stats.median_ms / run.latency.median_ms,
                         "unit": "×"})
    return pd.DataFrame(rows, columns=["metric", "value", "unit"])


# -- history -----------------------------------------------------------------------------------

HISTORY_FILTERS = ("model", "device_name", "flavour", "precision", "backend")


def history_filter_options(summary: pd.DataFrame) -> dict[str, list[str]]:
    """The distinct values each History filter can take, sorted."""
    return {c: sorted(summary[c].dropna().astype(str).unique()) for c in HISTORY_FILTERS if c in summary}


def filter_history(summary: pd.DataFrame, *, since: date | None = None, until: date | None = None,
                   **chosen: Sequence[str] | None) -> pd.DataFrame:
    """Rows of ``RunStore.list_runs()`` matching every non-empty filter; dates are inclusive (UTC)."""
    df = summary
    for col, values in chosen.items():
        if col not in HISTORY_FILTERS:
            raise ValueError(f"unknown history filter {col!r}; known: {', '.join(HISTORY_FILTERS)}")
        if values:
            df = df[df[col].astype(str).isin(list(values))]
    day = df["created_at"].astype(str).str[:10]
    if since is not None:
        df = df[day >= since.isoformat()]
        day = day[df.index]
    if until is not None:
        df = df[day <= until.isoformat()]
    return df.reset_index(drop=True)


def summary_labels(summary: pd.DataFrame) -> dict[str, str]:
    """Run id -> one-line description for pickers, from ``RunStore.list_runs()`` rows."""
    labels = {}
    for row in summary.itertuples(index=False):
        latency = f"{row.e2e_median_ms:.3f} ms" if row.e2e_median_ms > 0 else "not timed"
        # the run id's tail tells apart runs the summary columns do not (quantization schemes, other knobs)
        text = (f"{row.model} b{row.batch_size} {row.backend} {row.precision} · {row.run_id[-8:]} · "
                f"{row.device_name} · {str(row.created_at)[:16].replace('T', ' ')} · {latency}")
        if row.is_sample:
            text += " · sample"
        if row.is_baseline:
            text = "★ " + text
        labels[row.run_id] = text
    return labels


def history_table(summary: pd.DataFrame, gpu_time: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The History listing: readable columns, newest first, samples and baselines flagged. ``gpu_time`` maps
    run ids to their GPU-time cell (``run_figures.gpu_time_cell``: "0.3866 ms" or why there is none)."""
    df = summary.copy()
    df["created"] = pd.to_datetime(df["created_at"], utc=True, errors="coerce")
    df["tags"] = df["tags"].fillna("").astype(str)
    df["e2e_median_ms"] = df["e2e_median_ms"].where(df["e2e_median_ms"] > 0)   # analyze runs time nothing
    df["gpu_time"] = df["run_id"].map(lambda i: (gpu_time or {}).get(i, "not loaded"))
    cols = ["run_id", "created", "model", "backend", "precision", "batch_size", "device_name", "flavour",
            "e2e_median_ms", "gpu_time", "engine_count", "is_sample", "is_baseline", "tags"]
    return df[cols].reset_index(drop=True)


def marked_baselines(summary: pd.DataFrame) -> list[str]:
    """Run ids marked as a baseline in History."""
    return list(summary.loc[summary["is_baseline"].astype(bool), "run_id"])


def baseline_index(run_ids: Sequence[str], marked: Sequence[str]) -> int:
    """Position of the first compared run marked as a baseline, else 0."""
    return next((i for i, r in enumerate(run_ids) if r in set(marked)), 0)


DIFF_STYLE = "background-color: #FFF3CD; font-weight: 600"


def highlight_differences(row: pd.Series) -> list[str]:
    """Styler row function: highlight a setting whose values differ between the runs."""
    values = row.drop(labels=["differs"], errors="ignore")
    differs = bool(row["differs"]) if "differs" in row else values.astype(str).nunique() > 1
    return [DIFF_STYLE if differs else ""] * len(row)
