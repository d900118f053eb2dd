"""Figures of batch sweeps: ``engine.studies.batch_sweep.batch_table`` (and the knees, memory lines and dynamic
cost computed from it there) in, ``go.Figure`` out. No analysis here. The main mark of the latency and
throughput charts is the figure the verdict judges (``batch_sweep.judged``); end-to-end runs beside it dashed.

The batch axis is logarithmic with a tick at every measured batch size: sweeps double the batch."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

from engine.charts.theme import LAYOUT, STRATEGY_COLOURS, band_and_median, fit_title, message_figure, titled
from engine.studies.batch_sweep import STRATEGIES, Knee, MemoryFit
from engine.studies.batch_sweep.results import Judged, judged

STRATEGY_LABELS = {"static": "static engine per batch", "dynamic": "one dynamic engine"}
_MIB = 2**20


def _strategies(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame, str]]:
    """(strategy, its rows by batch size, colour) for each strategy in the table, static first."""
    return [
        (s, table[table["strategy"] == s].sort_values("batch_size"), STRATEGY_COLOURS[s])
        for s in STRATEGIES
        if (table["strategy"] == s).any()
    ]


def _batch_axis(batch_sizes: pd.Series) -> dict:
    sizes = sorted({int(b) for b in batch_sizes})
    return {"title": "batch size", "type": "log", "tickvals": sizes, "ticktext": [str(b) for b in sizes]}


def _e2e_line(fig: go.Figure, rows: pd.DataFrame, column: str, colour: str, label: str, hover: str) -> None:
    """The end-to-end counterpart of a strategy's judged curve, dashed (not judged: it carries host time)."""
    have = rows.dropna(subset=[column])
    fig.add_trace(
        go.Scatter(
            x=have["batch_size"],
            y=have[column],
            mode="lines+markers",
            name=f"{label} (end-to-end, not judged)",
            legendgroup=label,
            line={"color": colour, "dash": "dash"},
            marker={"size": 7, "symbol": "square"},
            hovertemplate="batch %{x}<br>" + hover + "<extra></extra>",
        )
    )


def _digits(j: Judged) -> str:
    return ".3f" if j.ms == "median_ms" else ".4f"


def latency_vs_batch(table: pd.DataFrame) -> go.Figure:
    """The judged figure per batch size for each strategy, with its own spread as the band (replay p10-p90,
    fastest/slowest trace window, or end-to-end p10-p90); end-to-end dashed beside a device figure."""
    if table.empty:
        return message_figure("No timed runs in this batch sweep yet.")
    j = judged(table)
    device = j.ms != "median_ms"
    fig = go.Figure()
    for s, rows, colour in _strategies(table):
        label = STRATEGY_LABELS[s]
        d = _digits(j)
        fig.add_traces(
            band_and_median(
                rows["batch_size"],
                rows[j.low].astype(float),
                rows[j.high].astype(float),
                rows[j.ms].astype(float),
                colour=colour,
                label=label,
                customdata=rows[[j.low, j.high, "run_id"]].to_numpy(),
                hovertemplate=f"batch %{{x}}<br>{j.name} %{{y:{d}}} ms<br>spread %{{customdata[0]:{d}}}-"
                f"%{{customdata[1]:{d}}} ms<br>%{{customdata[2]}}<extra></extra>",
            )
        )
        if device:
            _e2e_line(fig, rows, "median_ms", colour, label, "end-to-end %{y:.3f} ms")
    fig.update_layout(
        title=titled(
            "Latency vs batch size",
            f"{j.name}, what the verdict judges; band = its spread" + ("; dashed: end-to-end median" if device else ""),
        ),
        xaxis=_batch_axis(table["batch_size"]),
        yaxis={"title": "latency per call (ms)", "rangemode": "tozero"},
        height=420,
        **LAYOUT,
    )
    return fit_title(fig)


def throughput_vs_batch(table: pd.DataFrame, knees: Mapping[str, Knee] | None = None) -> go.Figure:
    """Samples per second per batch size for each strategy on the judged figure (band: batch over the slow and
    fast end of its spread), with each strategy's knee annotated (or where throughput was still rising)."""
    if table.empty:
        return message_figure("No timed runs in this batch sweep yet.")
    j = judged(table)
    fig = go.Figure()
    for s, rows, colour in _strategies(table):
        label = STRATEGY_LABELS[s]
        batch = rows["batch_size"].astype(float)
        device = j.ms != "median_ms"
        fig.add_traces(
            band_and_median(
                rows["batch_size"],
                # the slow end of the spread is the low throughput (end-to-end: batch / p90, in the table)
                batch * 1000.0 / rows[j.high].astype(float) if device else rows["throughput_low_per_s"],
                batch * 1000.0 / rows[j.low].astype(float) if device else rows["throughput_high_per_s"],
                rows[j.throughput].astype(float),
                colour=colour,
                label=label,
                customdata=rows[[j.ms]].to_numpy(),
                hovertemplate=f"batch %{{x}}<br>%{{y:,.0f}} samples/s<br>{j.name} %{{customdata[0]:{_digits(j)}}} ms"
                "<extra></extra>",
            )
        )
        if device:
            _e2e_line(fig, rows, "throughput_per_s", colour, label, "end-to-end %{y:,.0f} samples/s")
        knee = (knees or {}).get(s)
        if knee is None:
            continue
        text = (
            f"knee: batch {knee.batch_size}<br>{knee.throughput_per_s:,.0f}/s"
            if knee.reached
            else f"no knee up to batch {knee.batch_size}"
        )
        # annotations on a log axis take log10 of the value (a plain 32 would stretch the axis to 10^32)
        fig.add_annotation(
            x=math.log10(knee.batch_size),
            y=knee.throughput_per_s,
            text=text,
            name=f"knee:{s}",
            showarrow=True,
            arrowhead=2,
            arrowcolor=colour,
            ax=0,
            ay=-45 if s == "static" else 45,
            font={"color": colour},
            bgcolor="rgba(255,255,255,0.8)",
        )
        if knee.reached:
            fig.add_trace(
                go.Scatter(
                    x=[knee.batch_size],
                    y=[knee.throughput_per_s],
                    mode="markers",
                    name=f"knee ({label})",
                    legendgroup=label,
                    hoverinfo="skip",
                    marker={"size": 16, "symbol": "diamond-open", "color": colour, "line": {"width": 2}},
                )
            )
    fig.update_layout(
        title=titled(
            "Throughput vs batch size",
            f"batch / {j.name}, what the knee is judged on; band: batch over its spread"
            + ("; dashed: batch / end-to-end median" if j.ms != "median_ms" else ""),
        ),
        xaxis=_batch_axis(table["batch_size"]),
        yaxis={"title": "samples / s", "rangemode": "tozero"},
        height=420,
        **LAYOUT,
    )
    return fit_title(fig)


def memory_vs_batch(
    table: pd.DataFrame, fits: Mapping[str, MemoryFit] | None = None, capacity_bytes: float | None = None
) -> go.Figure:
    """Peak GPU memory per batch size for each strategy, the fitted line through it, and the largest batch
    that line puts inside ``capacity_bytes``."""
    have = table.dropna(subset=["peak_memory_bytes"]) if not table.empty else table
    if have.empty:
        return message_figure("No GPU memory recorded: peak memory is measured on CUDA devices only.")
    fig = go.Figure()
    notes = []
    for s, rows, colour in _strategies(have):
        label = STRATEGY_LABELS[s]
        fig.add_trace(
            go.Scatter(
                x=rows["batch_size"],
                y=rows["peak_memory_bytes"] / _MIB,
                mode="markers",
                name=f"{label} peak",
                legendgroup=label,
                marker={"size": 10, "color": colour},
                hovertemplate="batch %{x}<br>peak %{y:,.1f} MiB<extra></extra>",
            )
        )
        fit = (fits or {}).get(s)
        if fit is None:
            continue
        xs = [int(rows["batch_size"].min()), int(rows["batch_size"].max())]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[(fit.fixed_bytes + fit.per_sample_bytes * b) / _MIB for b in xs],
                mode="lines",
                name=f"{label}: {fit.per_sample_bytes / _MIB:,.2f} MiB/sample",
                legendgroup=label,
                line={"color": colour, "dash": "dot"},
                hoverinfo="skip",
            )
        )
        ceiling = fit.max_batch_for(capacity_bytes) if capacity_bytes else None
        if capacity_bytes and ceiling is not None:
            notes.append(f"{label}: batch {ceiling:,} fills {capacity_bytes / 2**30:.0f} GiB")
    if notes:
        fig.add_annotation(
            text="; ".join(notes),
            name="ceiling",
            x=0.01,
            y=0.99,
            xref="paper",
            yref="paper",
            showarrow=False,
            xanchor="left",
            yanchor="top",
            bgcolor="rgba(255,255,255,0.8)",
        )
    fig.update_layout(
        title=titled("Peak GPU memory vs batch size", "dotted: the fitted line, where memory grows with the batch"),
        xaxis=_batch_axis(have["batch_size"]),
        yaxis={"title": "peak memory (MiB)", "rangemode": "tozero"},
        height=380,
        **LAYOUT,
    )
    return fit_title(fig)


def dynamic_cost(cost: pd.DataFrame) -> go.Figure:
    """Median latency of the dynamic engine beside a static engine at each batch measured both ways,
    the overhead written on the dynamic bar (``batch_sweep.dynamic_cost`` computes it)."""
    if cost.empty:
        return message_figure("No batch size was measured with both a static and the dynamic engine.")
    x = [f"batch {int(b)}" for b in cost["batch_size"]]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=x,
            y=cost["static_ms"],
            name=STRATEGY_LABELS["static"],
            marker_color=STRATEGY_COLOURS["static"],
            hovertemplate="%{x}<br>static %{y:.3f} ms<extra></extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            x=x,
            y=cost["dynamic_ms"],
            name=STRATEGY_LABELS["dynamic"],
            marker_color=STRATEGY_COLOURS["dynamic"],
            text=[f"{p:+.0f}%" for p in cost["overhead_pct"]],
            textposition="outside",
            hovertemplate="%{x}<br>dynamic %{y:.3f} ms (%{text})<extra></extra>",
        )
    )
    fig.update_layout(
        title=titled("What the dynamic range costs", "median latency at the same batch"),
        barmode="group",
        yaxis={"title": "median latency (ms)", "rangemode": "tozero"},
        height=360,
        **LAYOUT,
    )
    return fit_title(fig)
