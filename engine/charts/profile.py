"""Figures of the Run page beside the timing cards: where the set-up time went (``RunResult.stages_s``)."""

from __future__ import annotations

import plotly.graph_objects as go

from engine.charts.theme import MARGIN, STAGE_PALETTE, message_figure
from engine.stage_times import NESTED_IN_COMPILE


def stage_bar(stages_s: dict[str, float]) -> go.Figure:
    """Where the set-up time went: the top-level stages stacked, and what the compile call spent
    partitioning, lowering and building engines (nested in ``compile_s``)."""
    stages = {k: float(v) for k, v in (stages_s or {}).items() if v is not None}
    if not stages:
        return message_figure("This run recorded no stage timings.")
    nested = NESTED_IN_COMPILE if "compile_s" in stages else ()
    rows = [("set-up", k, v) for k, v in stages.items() if k not in nested]
    if nested:
        inside = [(k, stages[k]) for k in nested if k in stages]
        rest = stages["compile_s"] - sum(v for _, v in inside)
        rows += [("inside compile", k, v) for k, v in inside] + [("inside compile", "other compile work", max(rest, 0))]
    palette = STAGE_PALETTE
    names = list(dict.fromkeys(name for _, name, _ in rows))
    fig = go.Figure()
    for i, name in enumerate(names):
        part = [(bar, v) for bar, n, v in rows if n == name]
        label = name.removesuffix("_s").replace("_", " ")
        fig.add_bar(
            y=[b for b, _ in part],
            x=[v for _, v in part],
            name=label,
            orientation="h",
            marker_color=palette[i % len(palette)],
            text=[label] * len(part),
            textposition="inside",
            insidetextanchor="middle",
            hovertemplate="%{fullData.name}: %{x:.3f} s<extra></extra>",
        )
    fig.update_layout(
        title="Set-up stages",
        barmode="stack",
        height=300,
        xaxis_title="seconds",
        showlegend=True,
        yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": -0.5, "yanchor": "top"},
        margin=MARGIN,
    )
    return fig
