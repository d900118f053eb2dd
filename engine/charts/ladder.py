"""Figure of a precision ladder: ``engine.studies.ladder.ladder_table`` in, ``go.Figure`` out."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from engine.charts.theme import message_figure, spread


def precision_ladder(table: pd.DataFrame) -> go.Figure:
    """The judged figure per rung as bars (the one the verdict compares: CUDA-graph replay, GPU busy time or
    end-to-end, named in the table's ``judged`` column) with its own spread as error bars, conversion problems in
    red; the end-to-end median beside it as a hollow marker when the judged figure is another one."""
    if table.empty:
        return message_figure("No rung of this ladder was timed.")
    judged = str(table["judged"].iloc[0]) if "judged" in table else "end-to-end latency"
    colours = [
        "#d62728" if bad else ("#1f77b4" if scheme == "none" else "#2ca02c")
        for scheme, bad in zip(table["scheme"], table["conversion_problem"].fillna(False), strict=True)
    ]
    ms, low, high = (
        (table["judged_ms"], table["judged_low_ms"], table["judged_high_ms"])
        if "judged_ms" in table
        else (table["median_ms"], table["p10_ms"], table["p90_ms"])
    )
    fig = go.Figure(
        go.Bar(
            x=table["label"],
            y=ms,
            marker_color=colours,
            error_y=spread(ms, low.astype(float).fillna(ms), high.astype(float).fillna(ms)),
            customdata=table[["build_s", "rel_l2", "median_ms"]].to_numpy(),
            name=f"{judged} (judged)",
            hovertemplate=f"%{{x}}<br>{judged} %{{y:.4f}} ms<br>end-to-end %{{customdata[2]:.3f}} ms<br>"
            "build %{customdata[0]:.1f} s<br>rel. L2 vs fp32 %{customdata[1]:.3g}<extra></extra>",
        )
    )
    if judged != "end-to-end latency":
        fig.add_trace(
            go.Scatter(
                x=table["label"],
                y=table["median_ms"],
                mode="markers",
                name="end-to-end median (not judged)",
                marker={"size": 10, "symbol": "circle-open", "color": "#111"},
                error_y=spread(table["median_ms"], table["p10_ms"], table["p90_ms"]),
                hovertemplate="%{x}<br>end-to-end %{y:.3f} ms<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"Precision ladder: {judged}, what the verdict judges (bars with their spread; red: conversion "
        "problem)" + ("; ○ end-to-end median" if judged != "end-to-end latency" else ""),
        legend={"orientation": "h", "y": -0.25},
        yaxis_title="latency per inference (ms)",
        xaxis_title="precision / scheme",
        height=360,
        margin={"t": 50},
    )
    return fig
