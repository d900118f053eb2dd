"""Figures of knob sweeps: ``engine.studies.sweeps.sweep_table`` in, ``go.Figure`` out. No analysis here: the Pareto
flags, intervals and build times (``RunResult.build_s``) come computed in the table."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.charts.theme import LAYOUT, RUNTIME_COLOURS, SERIES_PALETTE, band_and_median, message_figure, spread
from engine.studies.knobs import SWEEPABLE_KNOBS
from engine.studies.statistics import DEVICE_METRICS, END_TO_END, GPU_TIME, GRAPH_REPLAY, METRIC_NAMES


def _knob_title(knob: str) -> str:
    return SWEEPABLE_KNOBS.get(knob, knob)


def _series(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame, str]]:
    """(name, rows, colour) per value of the second knob, in table order."""
    names = list(dict.fromkeys(table["series"]))
    return [
        (name, table[table["series"] == name], SERIES_PALETTE[i % len(SERIES_PALETTE)]) for i, name in enumerate(names)
    ]


def _x_axis(table: pd.DataFrame, knob: str) -> dict:
    return {
        "title": _knob_title(knob),
        "type": "category",
        "categoryorder": "array",
        "categoryarray": list(dict.fromkeys(table["x_label"])),
    }


def _judged(table: pd.DataFrame, judged: str | None) -> str:
    """The figure the sweep is judged on: the table's own ``judged`` column (page and report read the same)."""
    if judged is not None:
        return judged
    return str(table["judged"].iloc[0]) if "judged" in table and len(table) else END_TO_END


def latency_vs_knob(table: pd.DataFrame, knob: str, judged: str | None = None) -> go.Figure:
    """The judged figure per knob value (``judged``, engine.studies.judging: CUDA-graph replay, GPU time or the
    end-to-end median; the table's ``judged_ms`` with its own spread as bars), the end-to-end median with its
    p10-p90 band dashed beside a device figure, and the repeated runs of a point as hollow markers."""
    if table.empty:
        return message_figure("No runs in this sweep yet.")
    judged = _judged(table, judged)
    fig = go.Figure()
    name_of = METRIC_NAMES[judged]
    device = judged in DEVICE_METRICS
    digits = ".4f" if device else ".3f"
    first = table[table["repeat"] == 0] if "repeat" in table else table
    repeats = table[table["repeat"] > 0] if "repeat" in table else table.iloc[0:0]
    for name, rows, colour in _series(first):
        label = name or name_of
        fig.add_traces(
            band_and_median(
                rows["x_label"],
                rows["p10_ms"],
                rows["p90_ms"],
                rows["median_ms"],
                colour=colour,
                label=(name or "end-to-end (not judged)") if device else label,
                error_y=None
                if device
                else spread(rows["median_ms"], rows["ci_low_ms"], rows["ci_high_ms"], thickness=1.5, width=4),
                customdata=rows[["p10_ms", "p90_ms", "ci_low_ms", "ci_high_ms", "run_id"]].to_numpy(),
                hovertemplate="%{x}<br>e2e median %{y:.3f} ms<br>p10-p90 %{customdata[0]:.3f}-%{customdata[1]:.3f} ms"
                "<br>median CI %{customdata[2]:.3f}-%{customdata[3]:.3f} ms<br>%{customdata[4]}<extra></extra>",
            )
        )
        if not device:  # the end-to-end median is the judged figure: it is the main mark
            continue
        fig.data[-1].line.dash = "dash"
        have = rows.dropna(subset=["judged_ms"])
        fig.add_trace(
            go.Scatter(
                x=have["x_label"],
                y=have["judged_ms"],
                mode="lines+markers",
                name=f"{name} {name_of} (judged)" if name else f"{name_of} (judged)",
                legendgroup=label,
                line={"color": colour, "width": 3},
                marker={"size": 9, "symbol": "square"},
                error_y=spread(
                    have["judged_ms"],
                    have["judged_low_ms"].astype(float).fillna(have["judged_ms"]),
                    have["judged_high_ms"].astype(float).fillna(have["judged_ms"]),
                    thickness=1.5,
                    width=4,
                ),
                customdata=have[["kernels", "run_id"]].to_numpy(),
                hovertemplate=f"%{{x}}<br>{name_of} %{{y:{digits}}} ms<br>%{{customdata[0]}} kernels / inference"
                "<br>%{customdata[1]}<extra></extra>",
            )
        )
    if not repeats.empty:
        fig.add_trace(
            go.Scatter(
                x=repeats["x_label"],
                y=repeats["judged_ms"] if device else repeats["median_ms"],
                mode="markers",
                name=f"repeated runs ({name_of})",
                marker={"size": 9, "symbol": "square-open" if device else "circle-open", "color": "#444"},
                customdata=repeats[["repeat", "run_id"]].to_numpy(),
                hovertemplate=f"%{{x}} repeat %{{customdata[0]}}<br>{name_of} %{{y:{digits}}} ms"
                "<br>%{customdata[1]}<extra></extra>",
            )
        )
    spread_name = {GRAPH_REPLAY: "replay p10-p90", GPU_TIME: "fastest/slowest trace window"}.get(judged, "")
    how = (
        f"bold: {name_of}, bars = {spread_name}; dashed: end-to-end median, band = p10-p90"
        if device
        else "e2e median, bars = its 90% CI, band = p10-p90"
    )
    fig.update_layout(
        title=f"Latency vs {_knob_title(knob)}, judged on {name_of}<br><sup>{how}; hollow = repeated runs</sup>",
        xaxis=_x_axis(table, knob),
        yaxis={"title": "latency (ms)", "rangemode": "tozero"},
        height=440,
        **LAYOUT,
    )
    return fig


def build_time_vs_knob(table: pd.DataFrame, knob: str) -> go.Figure:
    """Build time (export + partition + engine build) per knob value (first runs: repeats build again)."""
    have = table.dropna(subset=["build_s"]) if not table.empty else table
    if "repeat" in have:
        have = have[have["repeat"] == 0]
    if have.empty:
        return message_figure("No build times: these runs compiled nothing (eager) or did not record them.")
    fig = go.Figure()
    for name, rows, colour in _series(have):
        fig.add_trace(
            go.Bar(
                x=rows["x_label"],
                y=rows["build_s"],
                name=name or "build time",
                marker_color=colour,
                hovertemplate="%{x}<br>build %{y:.1f} s<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"Build time vs {_knob_title(knob)}",
        barmode="group",
        xaxis=_x_axis(have, knob),
        yaxis={"title": "build time (s)"},
        height=380,
        **LAYOUT,
    )
    return fig


def engines_vs_min_block_size(table: pd.DataFrame, knob: str = "compile.min_block_size") -> go.Figure:
    """TensorRT engines and PyTorch subgraphs per value (bars) and operator coverage (line)."""
    have = table.dropna(subset=["coverage"]) if not table.empty else table
    if "repeat" in have:
        have = have[have["repeat"] == 0]  # a repeat builds the same partition again
    if have.empty:
        return message_figure("No segmentation recorded: engine counts come from TensorRT runs.")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            x=have["x_label"],
            y=have["engine_count"],
            name="TensorRT engines",
            marker_color=RUNTIME_COLOURS["tensorrt"],
            text=have["series"],
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Bar(
            x=have["x_label"],
            y=have["pytorch_segments"],
            name="PyTorch subgraphs",
            marker_color=RUNTIME_COLOURS["pytorch"],
            text=have["series"],
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=have["x_label"],
            y=have["coverage"] * 100,
            name="ops in TensorRT (%)",
            mode="lines+markers",
            line={"color": "#444", "dash": "dot"},
        ),
        secondary_y=True,
    )
    fig.update_layout(
        title=f"Engines and coverage vs {_knob_title(knob)}",
        barmode="group",
        xaxis=_x_axis(have, knob),
        height=380,
        **LAYOUT,
    )
    fig.update_yaxes(title_text="count", secondary_y=False)
    fig.update_yaxes(title_text="coverage (%)", range=[0, 105], tickvals=[0, 25, 50, 75, 100], secondary_y=True)
    return fig


def pareto_latency_build(table: pd.DataFrame, judged: str | None = None) -> go.Figure:
    """Every run as (build time, judged latency: ``judged_ms``); the Pareto-optimal runs joined by a line."""
    have = table.dropna(subset=["build_s"]) if not table.empty else table
    if have.empty:
        return message_figure("No build times to trade latency against.")
    y = "judged_ms" if "judged_ms" in have else "median_ms"
    if "repeat" in have:
        have = have[have["repeat"] == 0]  # a repeat measures the noise of its point, not another choice
    fig = go.Figure()
    text = have["x_label"] + have["series"].map(lambda s: f" · {s}" if s else "")
    fig.add_trace(
        go.Scatter(
            x=have["build_s"],
            y=have[y],
            mode="markers+text",
            text=text,
            textposition="top center",
            name="runs",
            marker={"size": 10, "color": ["#2CA02C" if p else "#AAAAAA" for p in have["pareto"]]},
            hovertemplate="%{text}<br>build %{x:.1f} s<br>%{y:.4f} ms<extra></extra>",
        )
    )
    front = have[have["pareto"]].sort_values("build_s")
    fig.add_trace(
        go.Scatter(
            x=front["build_s"],
            y=front[y],
            mode="lines",
            name="Pareto front",
            line={"color": "#2CA02C", "shape": "hv"},
            hoverinfo="skip",
        )
    )
    # green: no other run is both faster and quicker to build
    judged = _judged(table, judged)
    what = METRIC_NAMES[judged] if judged in DEVICE_METRICS else "end-to-end median"
    fig.update_layout(
        title=f"{what[0].upper()}{what[1:]} vs build time (green: Pareto front)",
        xaxis={"title": "build time (s)"},
        yaxis={"title": f"{what} (ms)"},
        height=420,
        **LAYOUT,
    )
    return fig
