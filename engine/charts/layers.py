"""Figures of the Layers page: the slowest layers, time by layer type and by precision, the execution timeline,
time up the nn.Module tree and the profiling overhead. Tables from ``engine.charts.layer_tables`` in,
``go.Figure`` out; every builder returns a figure with a message instead of an empty plot."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from engine.charts.layer_tables import (
    HOVER,
    UNATTRIBUTED,
    hover_data,
    layer_label,
    module_rollup,
    slowest_layers,
    tidy_layers,
    time_by,
    timeline_rows,
)
from engine.charts.theme import (
    MARGIN,
    OTHER_COLOUR,
    RUNTIME_COLOURS,
    RUNTIME_NAMES,
    layer_type_colour,
    message_figure,
    module_colour,
    precision_colour,
    short,
)
from engine.result import FUSED


def top_layers_bar(layers: pd.DataFrame, n: int = 20) -> go.Figure:
    """Horizontal bars of the slowest ``n`` layers (slowest on top) plus the folded tail."""
    df = slowest_layers(layers, n)
    if df.empty:
        return message_figure("No per-layer profile in this run.")
    fig = go.Figure()
    for layer_type, part in df.groupby("layer_type", sort=False):
        fig.add_bar(
            y=part["label"],
            x=part["avg_ms"],
            orientation="h",
            name=str(layer_type),
            marker_color=layer_type_colour(str(layer_type)),
            customdata=hover_data(part),
            text=[f"{s:.1%}" for s in part["share"]],
            textposition="outside",
            cliponaxis=False,
            hovertemplate=HOVER + "<br>%{x:.4f} ms/inference<extra></extra>",
        )
    fig.update_layout(
        title=f"Slowest {min(n, len(df))} layers (mean time per inference)",
        barmode="overlay",
        height=max(320, 24 * len(df) + 120),
        legend_title_text="Layer type",
        yaxis={"categoryorder": "array", "categoryarray": list(df["label"])[::-1], "title": None},
        xaxis_title="time per inference (ms)",
        margin=MARGIN,
    )
    return fig


def layer_type_treemap(layers: pd.DataFrame, max_leaves: int = 150) -> go.Figure:
    """Treemap layer type → layer, area = time. Only the ``max_leaves`` slowest layers get their own
    tile; the rest of each type is one "other" tile."""
    df = tidy_layers(layers)
    if df.empty or df["avg_ms"].sum() <= 0:
        return message_figure("No per-layer profile in this run.")
    keep = set(df.sort_values("avg_ms", ascending=False).head(max_leaves).index)
    ids, labels, parents, values, colours, hover = [], [], [], [], [], []
    for layer_type, part in df.groupby("layer_type"):
        t = str(layer_type)
        ids.append(f"type/{t}")
        labels.append(t)
        parents.append("")
        values.append(float(part["avg_ms"].sum()))
        colours.append(layer_type_colour(t))
        hover.append(f"{len(part)} layers")
        for idx, row in part.iterrows():
            if idx in keep:
                ids.append(f"layer/{row['order']}")
                labels.append(short(layer_label(row["name"], row["module_path"], row["layer_type"]), 32))
                parents.append(f"type/{t}")
                values.append(float(row["avg_ms"]))
                colours.append(layer_type_colour(t))
                hover.append(f"{row['name']}<br>{row['precision']} · {row['runtime']}")
        rest = part.loc[[i for i in part.index if i not in keep]]
        if len(rest):
            ids.append(f"other/{t}")
            labels.append(f"other ({len(rest)} layers)")
            parents.append(f"type/{t}")
            values.append(float(rest["avg_ms"].sum()))
            colours.append(OTHER_COLOUR)
            hover.append(f"{len(rest)} smaller {t} layers")
    fig = go.Figure(
        go.Treemap(
            ids=ids,
            labels=labels,
            parents=parents,
            values=values,
            branchvalues="total",
            marker={"colors": colours},
            customdata=hover,
            hovertemplate="<b>%{label}</b><br>%{value:.4f} ms/inference"
            "<br>%{percentRoot:.1%} of profiled time<br>%{customdata}"
            "<extra></extra>",
            texttemplate="%{label}<br>%{value:.3f} ms",
        )
    )
    fig.update_layout(
        title="Time by layer type → layer (area = ms per inference)",
        height=520,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def precision_share_bar(layers: pd.DataFrame) -> go.Figure:
    """Share of profiled time per output precision of the layers."""
    df = time_by(layers, "precision")
    if df.empty:
        return message_figure("No per-layer profile in this run.")
    fig = go.Figure(
        go.Bar(
            x=df["total_ms"],
            y=df["precision"],
            orientation="h",
            marker_color=[precision_colour(p) for p in df["precision"]],
            text=[f"{s:.1%}" for s in df["share"]],
            textposition="auto",
            customdata=df[["layers", "share"]].values.tolist(),
            hovertemplate="<b>%{y}</b><br>%{x:.4f} ms/inference (%{customdata[1]:.1%})"
            "<br>%{customdata[0]} layers<extra></extra>",
        )
    )
    fig.update_layout(
        title="Time share by layer precision",
        height=max(220, 60 * len(df) + 100),
        xaxis_title="time per inference (ms)",
        yaxis_title="precision",
        yaxis={"autorange": "reversed"},
        margin=MARGIN,
    )
    return fig


def execution_timeline(layers: pd.DataFrame, max_bars: int = 150) -> go.Figure:
    """Waterfall in execution order: each layer starts where the previous one ended.

    Coloured by runtime (TensorRT vs PyTorch) when the run mixes both, else by layer type.
    """
    df = timeline_rows(layers, max_bars)
    if df.empty:
        return message_figure("No per-layer profile in this run.")
    by_runtime = df["runtime"].nunique() > 1
    key = "runtime" if by_runtime else "layer_type"
    fig = go.Figure()
    for value, part in df.groupby(key, sort=False):
        v = str(value)
        colour = RUNTIME_COLOURS.get(v, OTHER_COLOUR) if by_runtime else layer_type_colour(v)
        fig.add_bar(
            y=part["label"],
            x=part["avg_ms"],
            base=part["start_ms"],
            orientation="h",
            name=RUNTIME_NAMES.get(v, v) if by_runtime else v,
            marker_color=colour,
            customdata=hover_data(part),
            hovertemplate=HOVER + "<br>starts at %{base:.4f} ms, takes %{x:.4f} ms<extra></extra>",
        )
    grouped = " (consecutive layers grouped)" if len(df) < len(layers) else ""
    fig.update_layout(
        title=f"Execution timeline{grouped}: cumulative profiled time",
        barmode="overlay",
        height=min(1800, max(360, 14 * len(df) + 120)),
        legend_title_text=key.replace("_", " "),
        yaxis={
            "categoryorder": "array",
            "categoryarray": list(df["label"])[::-1],
            "title": "layer (execution order)",
            "tickfont": {"size": 10},
        },
        xaxis_title="cumulative time per inference (ms)",
        margin=MARGIN,
    )
    return fig


def module_tree(layers: pd.DataFrame, max_depth: int = 4) -> go.Figure:
    """Icicle of time rolled up the nn.Module tree (click a module to zoom in)."""
    df = module_rollup(layers)
    if df.empty:
        return message_figure("This run's layers carry no nn.Module paths, so time cannot be rolled up.")
    fig = go.Figure(
        go.Icicle(
            ids=df["id"],
            parents=df["parent"],
            labels=df["label"],
            values=df["total_ms"],
            branchvalues="total",
            customdata=df[["id", "layers"]].values.tolist(),
            maxdepth=max_depth,
            marker={"colors": _module_colours(df["id"])},
            textfont={"color": "#111111"},
            hovertemplate="<b>%{customdata[0]}</b><br>%{value:.4f} ms/inference (%{percentRoot:.1%})"
            "<br>%{customdata[1]} layers<extra></extra>",
            texttemplate="%{label}<br>%{value:.3f} ms",
        )
    )
    fig.update_layout(
        title="Time rolled up the nn.Module tree (ms per inference)",
        height=520,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def _module_colours(ids: pd.Series) -> list[str]:
    """Each top-level module (and everything under it) one colour; fused/unattributed time grey."""
    colours = []
    for node in ids:
        top = node.split("/", 1)[1].split(".")[0] if "/" in node else ""
        if not top:
            colours.append("#E4E4E4")
        elif top in (FUSED, UNATTRIBUTED):
            colours.append(OTHER_COLOUR)
        else:
            colours.append(module_colour(top))
    return colours


def profiling_overhead_bar(e2e_median_ms: float | None, profiled_sum_ms: float | None) -> go.Figure:
    """End-to-end median next to the sum of per-layer averages."""
    if profiled_sum_ms is None:
        return message_figure("This run has no per-layer profile.")
    if e2e_median_ms is None:
        return message_figure("This run was not timed end to end (analyze mode): nothing to compare with.")
    fig = go.Figure(
        go.Bar(
            y=["end-to-end median", "sum of per-layer averages"],
            x=[e2e_median_ms, profiled_sum_ms],
            orientation="h",
            marker_color=["#4C78A8", OTHER_COLOUR],
            text=[f"{e2e_median_ms:.3f} ms", f"{profiled_sum_ms:.3f} ms"],
            textposition="auto",
            hovertemplate="%{y}: %{x:.4f} ms<extra></extra>",
        )
    )
    fig.update_layout(
        title="Profiling overhead",
        height=220,
        xaxis_title="time per inference (ms)",
        yaxis={"autorange": "reversed"},
        margin=MARGIN,
    )
    return fig
