"""Figure of an auto-tune search: ``engine.studies.autotune`` 's trials table in, ``go.Figure`` out."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from engine.charts.theme import LAYOUT, message_figure
from engine.studies.statistics import END_TO_END, GPU_TIME


def autotune_trials(trials: pd.DataFrame, objective: str = END_TO_END) -> go.Figure:
    """Each trial's objective (GPU time or end-to-end median; feasible filled, infeasible hollow, failed at the
    axis) and the best so far."""
    if trials.empty:
        return message_figure("No trials yet.")
    fig = go.Figure()
    y = "objective_ms" if "objective_ms" in trials and trials["objective_ms"].notna().any() else "median_ms"
    ok = trials[trials["feasible"]]
    bad = trials[~trials["feasible"] & trials[y].notna()]
    failed = trials[trials[y].isna()]
    fig.add_trace(
        go.Scatter(
            x=ok["trial"],
            y=ok[y],
            mode="markers",
            name="meets the constraints",
            marker={"size": 9, "color": "#1F77B4"},
            hovertemplate="trial %{x}<br>%{y:.3f} ms<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=bad["trial"],
            y=bad[y],
            mode="markers",
            name="breaks a constraint",
            marker={"size": 9, "color": "#D62728", "symbol": "circle-open"},
            text=bad["violation"],
            hovertemplate="trial %{x}<br>%{y:.3f} ms<br>%{text}<extra></extra>",
        )
    )
    if not failed.empty:
        fig.add_trace(
            go.Scatter(
                x=failed["trial"],
                y=[0] * len(failed),
                mode="markers",
                name="failed",
                marker={"size": 10, "color": "#7F7F7F", "symbol": "x"},
                text=failed["error"],
                hovertemplate="trial %{x}<br>%{text}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=trials["trial"],
            y=trials["best_so_far_ms"],
            mode="lines",
            name="best so far",
            line={"color": "#2CA02C", "shape": "hv"},
        )
    )
    what = "GPU time" if objective == GPU_TIME else "end-to-end median"
    fig.update_layout(
        title=f"Auto-tune trials (objective: {what})",
        xaxis={"title": "trial"},
        yaxis={"title": f"{what} (ms)", "rangemode": "tozero"},
        height=400,
        **LAYOUT,
    )
    return fig
