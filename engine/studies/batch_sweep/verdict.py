"""The written verdict of a batch sweep, from its measured numbers: the knee of each strategy, what the dynamic
range costs at each batch measured both ways, and the peak-memory line with the largest batch it puts inside a
given GPU memory."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.studies.batch_sweep.plan import STRATEGIES
from engine.studies.batch_sweep.results import BatchSweep, Knee, MemoryFit, dynamic_cost, find_knee, judged, memory_fit
from engine.studies.judging import verdict_context
from engine.studies.statistics import DEVICE_METRICS, GPU_TIME, format_ms


@dataclass(frozen=True)
class BatchVerdict:
    """What a batch sweep measured, in words: knee per strategy, the dynamic range's cost, the memory ceiling."""

    headline: str
    lines: tuple[str, ...]
    knees: dict[str, Knee]
    cost: pd.DataFrame
    memory: dict[str, MemoryFit]
    context: str = ""  # where it was measured and the figure that judges it: "NVIDIA H200 · TensorRT-RTX · judged on …"

    def markdown(self) -> str:
        context = f" ({self.context})" if self.context else ""
        return "\n".join([f"**{self.headline}**{context}", "", *(f"- {line}" for line in self.lines)])


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
        return BatchVerdict(
            "No timed run in this batch sweep",
            ("Its runs timed nothing (analyze mode) or were all cancelled: run the sweep again.",),
            {},
            dynamic_cost(table),
            {},
        )
    present = [s for s in STRATEGIES if (table["strategy"] == s).any()]
    j = judged(table)
    lines: list[str] = []
    if j.reason:
        lines.append(
            f"Judged on {j.name}: {j.reason} (the batch changes kernels, which a device figure measures steadily; "
            "end-to-end also carries the host's work per call)."
        )
    knees: dict[str, Knee] = {}
    for s in present:
        name = strategy_name(s, sweep.dynamic_range)
        knee = find_knee(table, s)
        if knee is None:
            row = table[table["strategy"] == s].iloc[0]
            lines.append(
                f"{name}: only batch {int(row['batch_size'])} measured ({format_ms(row[j.ms], j.metric)}"
                f"{j.what}, {row[j.throughput]:,.0f} samples/s); a knee needs two batch sizes or more."
            )
        else:
            knees[s] = knee
            lines.append(f"{name}: {knee.message}")
    if j.metric in DEVICE_METRICS:
        lines += _host_lines(table)
    cost = dynamic_cost(table)
    lines += _cost_lines(table, cost, "dynamic" in present and "static" in present)
    fits: dict[str, MemoryFit] = {}
    for s in present:
        fit = memory_fit(table, s)
        if fit is not None:
            fits[s] = fit
    lines += _memory_lines(table, present, fits, capacity_bytes, sweep.dynamic_range)
    # only a line that grows with the batch is drawn: a flat or falling one ("-4.28 MiB/sample") means nothing
    growing = {s: fit for s, fit in fits.items() if _grows(table, s, fit)}
    context = verdict_context(sweep.results, j.metric)
    return BatchVerdict(_batch_headline(table, knees), tuple(lines), knees, cost, growing, context)


def _mib(v: float) -> str:
    return f"{v / 2**20:,.0f} MiB" if abs(v) >= 10 * 2**20 else f"{v / 2**20:,.2f} MiB"


def _batch_headline(table: pd.DataFrame, knees: dict[str, Knee]) -> str:
    j = judged(table)
    best = table.loc[table[j.throughput].idxmax()]
    s = str(best["strategy"])
    what = j.throughput_name if j.metric == GPU_TIME else j.throughput_name.lower()  # "GPU" keeps its capitals
    text = (
        f"Best {what} {best[j.throughput]:,.0f} samples/s at batch {int(best['batch_size'])} "
        f"({'static engine' if s == 'static' else 'dynamic engine'}, {format_ms(best[j.ms], j.metric)}"
        f"{j.what})"
    )
    knee = knees.get(s)
    if knee is not None:
        text += (
            f"; throughput levels off from batch {knee.batch_size}"
            if knee.reached
            else f"; still rising at batch {knee.batch_size}"
        )
    return text


def _host_lines(table: pd.DataFrame) -> list[str]:
    """End-to-end beside GPU time: what the host adds per call, and what it does to throughput at small batch."""
    rows = table.sort_values(["strategy", "batch_size"])
    rows = rows[rows["strategy"] == rows["strategy"].iloc[0]]
    parts, unmeasured = [], []
    for r in rows.itertuples():
        if r.host_overhead_ms is None or pd.isna(r.host_overhead_ms):
            continue
        # end-to-end at or below GPU time (they come from separate passes): the host's share is not measured there,
        # and "host 0.000 ms per call" would say it costs nothing
        if r.host_overhead_ms <= 0:
            unmeasured.append(int(r.batch_size))
            parts.append(f"batch {int(r.batch_size)} {r.throughput_per_s:,.0f} samples/s")
            continue
        parts.append(
            f"batch {int(r.batch_size)} {r.throughput_per_s:,.0f} samples/s (host {r.host_overhead_ms:.3f} ms per call)"
        )
    if not parts:
        return []
    text = (
        "End-to-end, host overhead included: " + "; ".join(parts) + ". A larger batch spreads the host's "
        "work per call over more samples; CUDA graphs remove most of it."
    )
    if unmeasured:
        at = ", ".join(str(b) for b in unmeasured)
        text += (
            f" At batch {at} the end-to-end median is not above the GPU time (separate passes), so the host's "
            "share is not measured there."
        )
    return [text]


def _cost_lines(table: pd.DataFrame, cost: pd.DataFrame, both: bool) -> list[str]:
    if not both:
        return []
    if cost.empty:
        return [
            "No batch size was measured with both a static and the dynamic engine: nothing to say about what "
            "the dynamic range costs."
        ]
    j = judged(table)
    lo_col, hi_col = j.low, j.high
    spread = {"gpu_low_ms": "GPU-time windows", "graph_low_ms": "replay p10-p90 spread"}.get(lo_col, "p10-p90 spread")
    bands = table.set_index(["strategy", "batch_size"])
    parts = []
    for row in cost.itertuples():
        b = int(row.batch_size)
        st_lo, st_hi = bands.loc[("static", b), [lo_col, hi_col]]
        dy_lo, dy_hi = bands.loc[("dynamic", b), [lo_col, hi_col]]
        overlap = dy_lo <= st_hi and st_lo <= dy_hi
        plans = [bands.loc[(strategy, b), "plan"] if "plan" in bands else None for strategy in STRATEGIES]
        text = (
            f"batch {b}: {format_ms(row.dynamic_ms, j.metric)} against "
            f"{format_ms(row.static_ms, j.metric)} static{j.what}, "
            f"{row.overhead_ms:+.{4 if j.metric in DEVICE_METRICS else 3}f} ms ({row.overhead_pct:+.0f}%)"
        )
        if isinstance(plans[0], str) and plans[0] == plans[1]:
            text += ", the same engine plan at this batch: no cost"
        elif overlap:
            text += f", within the {spread} of both: no clear cost"
        parts.append(text)
    lines = ["What the dynamic range costs against a static engine built for that batch: " + "; ".join(parts) + "."]
    if len(cost) > 1:
        worst = cost.loc[cost["overhead_pct"].idxmax()]
        least = cost.loc[cost["overhead_pct"].idxmin()]
        lines.append(
            f"It costs most at batch {int(worst['batch_size'])} ({worst['overhead_pct']:+.0f}%) and least "
            f"at batch {int(least['batch_size'])} ({least['overhead_pct']:+.0f}%): one engine for every "
            "batch trades that latency for a single build."
        )
    return lines


MEASURABLE_GROWTH_BYTES = 2**20  # less than 1 MiB between the smallest and largest batch measured: flat


def _grows(table: pd.DataFrame, strategy: str, fit: MemoryFit) -> bool:
    """Whether peak memory grows measurably with the batch along ``fit``: only then does a per-sample figure or a
    ceiling make physical sense."""
    pts = table[(table["strategy"] == strategy) & table["peak_memory_bytes"].notna()]
    span = float(pts["batch_size"].max() - pts["batch_size"].min()) if len(pts) else 0.0
    return fit.per_sample_bytes > 0 and fit.per_sample_bytes * span >= MEASURABLE_GROWTH_BYTES


def _memory_lines(
    table: pd.DataFrame,
    present: list[str],
    fits: dict[str, MemoryFit],
    capacity_bytes: float | None,
    dynamic_range: tuple[int, int, int] | None,
) -> list[str]:
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
        if not _grows(table, s, fit):
            # a flat line (a dynamic engine holds its memory for the whole range up front) extrapolates to batches
            # of 10^19, a falling one to negative memory: no ceiling follows from either
            low = pts.loc[pts["batch_size"].idxmin()]
            growth = fit.per_sample_bytes * float(pts["batch_size"].max() - pts["batch_size"].min())
            change = (
                f"{growth / 2**20:+.2f} MiB across the measured batches"
                if growth >= 0
                else f"less than at batch {int(low['batch_size'])}, {_mib(low['peak_memory_bytes'])}"
            )
            lines.append(
                f"Peak GPU memory ({name}) did not grow measurably with the batch ({measured}; {change}): no ceiling "
                "follows from these points."
            )
            continue
        text = (
            f"Peak GPU memory ({name}): about {_mib(fit.fixed_bytes)} fixed + {_mib(fit.per_sample_bytes)} per "
            f"sample (a line through {fit.points} batch sizes; {measured})"
        )
        if capacity_bytes:
            ceiling = fit.max_batch_for(capacity_bytes)
            text += (
                f". By that line batch {ceiling:,} would fill the GPU's {capacity_bytes / 2**30:.0f} GiB "
                "(an extrapolation: the workspace TensorRT takes and other processes lower it)"
            )
            if s == "dynamic" and dynamic_range:
                text += f"; the engine itself accepts batch {dynamic_range[2]} at most"
        lines.append(text + ".")
    return lines
