"""Figure of a precision ladder: ``engine.studies.ladder`` 's table in, ``go.Figure`` out."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from engine.charts.theme import message_figure, spread


def precision_ladder(table: pd.DataFrame) -> go.Figure:
    """Median latency per rung (p10-p90 as error bars), conversion problems in red."""
    if table.empty:
        return message_figure("No rung of this ladder was timed.")
    colours = [
        "#d62728" if bad else ("#1f77b4" if scheme == "none" else "#2ca02c")
        for scheme, bad in zip(table["scheme"], table["conversion_problem"].fillna(False), strict=True)
    ]
    fig = go.Figure(
        go.Bar(
            x=table["label"],
            y=table["median_ms"],
            marker_color=colours,
            error_y=spread(table["median_ms"], table["p10_ms"], table["p90_ms"]),
            customdata=table[["build_s", "rel_l2"]].to_numpy(),
            name="end-to-end median",
            hovertemplate="%{x}<br>median %{y:.3f} ms<br>build %{customdata[0]:.1f} s<br>"
            "rel. L2 vs fp32 %{customdata[1]:.3g}<extra></extra>",
        )
    )
    gpu = table.dropna(subset=["gpu_ms"]) if "gpu_ms" in table else table.iloc[0:0]
    if not gpu.empty:
        fig.add_trace(
            go.Scatter(
                x=gpu["label"],
                y=gpu["gpu_ms"],
                mode="markers",
                name="GPU time (judged)",
                marker={"size": 12, "symbol": "diamond", "color": "#111"},
                error_y=spread(gpu["gpu_ms"], gpu["gpu_low_ms"], gpu["gpu_high_ms"]),
                hovertemplate="%{x}<br>GPU time %{y:.4f} ms<extra></extra>",
            )
        )
    title = "Precision ladder: end-to-end median (bars: p10-p90; red: conversion problem)" + (
        "; ◆ GPU time, what the verdict judges" if not gpu.empty else ""
    )
    fig.update_layout(
        title=title,
        legend={"orientation": "h", "y": -0.25},
        yaxis_title="latency per inference (ms)",
        xaxis_title="precision / scheme",
        height=360,
        margin={"t": 50},
    )
    return fig
