"""Figures of the Compare page: metrics side by side, latency per inference, time per layer type. The long tables
of ``engine.compare.metrics`` in, ``go.Figure`` out; one colour per run (``theme.run_colours``) on every chart."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.charts.theme import MARGIN, message_figure, run_colours


def metric_bars(long: pd.DataFrame) -> go.Figure:
    """Grouped bars: one panel per metric (each with its own unit), one colour per run."""
    if long.empty:
        return message_figure("No metrics to compare.")
    metrics = list(dict.fromkeys(long["metric"]))
    colours = run_colours(list(dict.fromkeys(long["run"])))
    titles = [f"{long[long['metric'] == m]['label'].iloc[0]}" for m in metrics]
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=titles, horizontal_spacing=0.06)
    for i, m in enumerate(metrics, start=1):
        part = long[long["metric"] == m]
        unit = part["unit"].iloc[0]
        for _, row in part.iterrows():
            fig.add_bar(
                x=[row["run"][-8:]],
                y=[row["value"] if row["value"] is not None else 0],
                name=row["run"],
                legendgroup=row["run"],
                showlegend=i == 1,
                marker_color=colours[row["run"]],
                row=1,
                col=i,
                customdata=[[row["run"], "n/a" if row["value"] is None else f"{row['value']:.4g}"]],
                hovertemplate="%{customdata[0]}<br>%{customdata[1]} " + unit + "<extra></extra>",
            )
        fig.update_yaxes(title_text=unit, row=1, col=i)
        fig.update_xaxes(showticklabels=False, row=1, col=i)
    fig.update_layout(
        title="Runs side by side",
        height=380,
        barmode="group",
        legend={"orientation": "h", "y": -0.12},
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
    )
    return fig


def latency_distribution(samples: pd.DataFrame, max_ratio: float = 5.0) -> go.Figure:
    """Latency of every timed inference per run, on one axis.

    Overlaid histograms (dashed: medians) when the runs are on one scale; when the medians are more
    than ``max_ratio`` apart (a GPU engine next to a CPU run) the fast run would be a sliver, so each
    run gets a box plot on a shared logarithmic axis instead.
    """
    if samples.empty:
        return message_figure("These runs kept no per-inference latency samples.")
    runs = list(dict.fromkeys(samples["run"]))
    colours = run_colours(runs)
    medians = samples.groupby("run", sort=False)["latency_ms"].median()
    fig = go.Figure()
    if medians.min() > 0 and medians.max() / medians.min() > max_ratio:
        for run in runs:
            x = samples.loc[samples["run"] == run, "latency_ms"]
            fig.add_box(
                x=x,
                name=run,
                marker_color=colours[run],
                boxpoints="outliers",
                orientation="h",
                hovertemplate="%{x:.4f} ms<extra>" + run + "</extra>",
            )
        fig.update_layout(
            title="Latency per inference (runs on different scales: log axis)",
            showlegend=False,
            height=max(260, 60 * len(runs) + 120),
            xaxis_type="log",
            xaxis_title="latency per inference (ms, log scale)",
            yaxis={"autorange": "reversed", "tickfont": {"size": 10}},
            margin=MARGIN,
        )
        return fig
    for run in runs:
        x = samples.loc[samples["run"] == run, "latency_ms"]
        fig.add_histogram(
            x=x,
            name=run,
            marker_color=colours[run],
            opacity=0.55,
            histnorm="probability",
            nbinsx=60,
            hovertemplate="%{x} ms<br>%{y:.1%} of inferences<extra>" + run + "</extra>",
        )
        fig.add_vline(x=float(medians[run]), line_dash="dash", line_color=colours[run])
    fig.update_layout(
        title="Latency per inference (dashed: median)",
        barmode="overlay",
        height=380,
        xaxis_title="latency per inference (ms)",
        yaxis_title="share of timed inferences",
        yaxis_tickformat=".0%",
        legend={"orientation": "h", "y": -0.25},
        margin=MARGIN,
    )
    return fig


# TensorRT-RTX's layer types in the per-layer profile, in words (what a newcomer asks about "correlation", "kgen")
LAYER_TYPE_WORDS = {
    "correlation": "correlation (convolution)",
    "kgen": "kgen (generated kernel)",
    "runtime_fusion": "runtime_fusion (fused kernels)",
    "gemm": "gemm (matrix multiply)",
    "signal": "signal (sync between streams)",
    "wait": "wait (sync between streams)",
    "PyTorch subgraph": "PyTorch subgraph (between engines)",
}
VOCABULARY_TITLES = {
    "TensorRT": "Inside TensorRT engines: TensorRT layer types",
    "PyTorch": "In PyTorch: module types and the subgraphs between engines",
}


def layer_type_diff_bar(by_type: pd.DataFrame, max_types: int = 20) -> go.Figure:
    """Grouped bars of profiled time per layer type for each run; the smallest types fold into "other". TensorRT's
    layer types and PyTorch's (module classes, subgraphs between engines) are two vocabularies: each gets its own
    panel, never one axis."""
    if by_type.empty:
        return message_figure("None of these runs has a per-layer profile.")
    if "vocabulary" not in by_type:
        by_type = by_type.assign(vocabulary="PyTorch")
    vocabularies = [v for v in VOCABULARY_TITLES if (by_type["vocabulary"] == v).any()]
    ordered = by_type.sort_values("position", kind="stable") if "position" in by_type else by_type
    colours = run_colours(list(dict.fromkeys(ordered["run"])))  # by place, as on the other charts
    panels = []
    for vocabulary in vocabularies:
        part = by_type[by_type["vocabulary"] == vocabulary]
        order = list(dict.fromkeys(part["layer_type"]))
        keep = set(order[:max_types])
        df = part.assign(layer_type=[t if t in keep else "other" for t in part["layer_type"]])
        df = df.groupby(["run", "layer_type"], as_index=False, sort=False).agg(
            total_ms=("total_ms", "sum"), delta_ms=("delta_ms", "sum")
        )
        cats = [t for t in order if t in keep] + (["other"] if len(order) > max_types else [])
        panels.append((vocabulary, df, cats))
    heights = [max(2, len(cats)) for _, _, cats in panels]
    fig = make_subplots(
        rows=len(panels),
        cols=1,
        subplot_titles=[VOCABULARY_TITLES[v] for v, _, _ in panels],
        row_heights=[h / sum(heights) for h in heights],
        vertical_spacing=0.12 if len(panels) > 1 else 0.0,
    )
    for row, (_, df, cats) in enumerate(panels, start=1):
        for run in colours:
            part = df[df["run"] == run]
            fig.add_bar(
                y=[LAYER_TYPE_WORDS.get(t, t) for t in part["layer_type"]],
                x=part["total_ms"],
                orientation="h",
                name=run,
                legendgroup=run,
                showlegend=row == 1,
                marker_color=colours[run],
                customdata=part[["delta_ms"]].values.tolist(),
                hovertemplate="%{y}: %{x:.4f} ms (%{customdata[0]:+.4f} ms vs baseline)<extra>" + run + "</extra>",
                row=row,
                col=1,
            )
        words = [LAYER_TYPE_WORDS.get(t, t) for t in cats]
        fig.update_yaxes(categoryorder="array", categoryarray=words[::-1], row=row, col=1)
        fig.update_xaxes(title_text="time per inference (ms)" if row == len(panels) else None, row=row, col=1)
    height = max(320, 22 * sum(heights) * max(1, len(colours)) // 2 + 140 * len(panels))
    fig.update_layout(
        title="Profiled time per layer type",
        barmode="group",
        height=height,
        legend={"orientation": "h", "y": -80 / height},  # below the x-axis title
        margin={**MARGIN, "b": 90},
    )
    return fig
