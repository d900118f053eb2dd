"""Figures of Compare's kernel section: the kernel diff by launcher and kind (``KernelDiff.groups()`` in) and each
run's time split (``time_split.split_table`` in)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from engine.charts.theme import MARGIN, OTHER_COLOUR, RUNTIME_COLOURS, STAGE_PALETTE, message_figure, short
from engine.compare.kernels import ORIGIN_NAMES

ORIGIN_COLOURS = {"tensorrt": RUNTIME_COLOURS["tensorrt"], "pytorch": RUNTIME_COLOURS["pytorch"], "library": "#7F7F7F"}
PART_COLOURS = {
    "gpu_busy": "#2CA02C",
    "removed_by_graphs": "#D62728",
    "idle_under_replay": "#FF9896",
    "host_idle": "#D62728",
}


def kernel_group_bar(groups: pd.DataFrame, base: str, other: str) -> go.Figure:
    """Kernel time per inference gained (right) or lost (left) by the compared run, per launcher and kind."""
    if groups.empty:
        return message_figure("The same kernels at the same speed in both runs.")
    g = groups.iloc[::-1]  # biggest change on top
    names = [f"{ORIGIN_NAMES.get(o, o)} · {f}" for o, f in zip(g["origin"], g["family"], strict=True)]
    fig = go.Figure(
        go.Bar(
            y=names,
            x=g["ms_delta"],
            orientation="h",
            marker={"color": [ORIGIN_COLOURS.get(o, OTHER_COLOUR) for o in g["origin"]]},
            text=[f"{ms:+.3f} ms ({n:+.0f} launches)" for ms, n in zip(g["ms_delta"], g["calls_delta"], strict=True)],
            textposition="auto",
            customdata=g[["calls_delta"]],
            hovertemplate="<b>%{y}</b><br>%{x:+.4f} ms per inference<br>%{customdata[0]:+.0f} launches<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": f"Kernel time per inference, {short(other, 40)} against {short(base, 40)}", "x": 0.0},
        height=max(260, 40 + 30 * len(g)),
        margin={**MARGIN, "l": 10},
        xaxis={"title": {"text": "Δ ms per inference (right: the compared run spends more)"}, "zeroline": True},
        yaxis={"automargin": True},
    )
    return fig


def time_split_bar(table: pd.DataFrame) -> go.Figure:
    """Each run's end-to-end time split into GPU running kernels and GPU idle, stacked."""
    if table.empty:
        return message_figure("No time split: the runs stored no GPU kernel time.")
    fig = go.Figure()
    runs = list(dict.fromkeys(table["run"]))
    for i, (key, part) in enumerate(table.groupby("key", sort=False)):
        fig.add_bar(
            y=part["run"],
            x=part["ms"],
            orientation="h",
            name=str(part["part"].iloc[0]),
            marker={"color": PART_COLOURS.get(str(key), STAGE_PALETTE[i % len(STAGE_PALETTE)])},
            text=[f"{ms:.3f} ms ({s:.0%})" for ms, s in zip(part["ms"], part["share"], strict=True)],
            textposition="inside",
            customdata=part[["how"]],
            hovertemplate="<b>%{y}</b><br>%{x:.4f} ms<br>%{customdata[0]}<extra></extra>",
        )
    fig.update_layout(
        barmode="stack",
        title={"text": "Where one inference's time goes (end-to-end median)", "x": 0.0},
        height=max(220, 120 + 50 * len(runs)),
        margin=MARGIN,
        xaxis={"title": {"text": "ms per inference"}},
        yaxis={"automargin": True, "categoryorder": "array", "categoryarray": runs[::-1]},
        legend={"orientation": "h", "y": -0.35, "traceorder": "normal"},
    )
    return fig
