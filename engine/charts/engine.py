"""Figures of the engine view: an engine's layers as a graph (``EngineGraph`` nodes and edges in, ``go.Figure``
out). Layers sit on one line in execution order, each engine and PyTorch subgraph on a shaded band; a tensor passed
to the next layer is a straight link, one passed further ahead an arc over the layers it skips, the hand-over between
an engine and the PyTorch subgraph after it a dashed link. Colour = share of the profiled time, size grows with it,
the label = ms (every node up to ``LABEL_ALL`` nodes, the slowest ``LABEL_TOP`` beyond)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from engine.charts.theme import MARGIN, OTHER_COLOUR, RUNTIME_COLOURS, message_figure, module_colour, rgba, short

LABEL_ALL, LABEL_TOP = 40, 12
OPENS_ON = 160  # layers in view when the chart opens: a larger engine opens on its first ones (pan or zoom out)
PLOT_PX = 1100  # about the plot's width on a wide page: marker sizes keep neighbours from covering each other
SHARE_SCALE = "YlOrRd"
ARC_POINTS = 16


def _arc(x0: float, x1: float) -> tuple[list[float], list[float]]:
    """A half-ellipse from x0 to x1 over the line, higher the more layers it skips."""
    height = 0.35 + 0.22 * math.log2(max(2.0, abs(x1 - x0)))
    t = np.linspace(0.0, math.pi, ARC_POINTS)
    xs = (x0 + x1) / 2 - (x1 - x0) / 2 * np.cos(t)
    return [*xs, None], [*(height * np.sin(t)), None]


def _links(edges: pd.DataFrame, position: dict[str, int], kind: str) -> tuple[list, list, float]:
    xs: list = []
    ys: list = []
    top = 0.0
    for source, target in edges.loc[edges["kind"] == kind, ["source", "target"]].itertuples(index=False):
        a, b = position.get(source), position.get(target)
        if a is None or b is None:
            continue
        if abs(b - a) <= 1:
            xs += [a, b, None]
            ys += [0, 0, None]
        else:
            ax, ay = _arc(a, b)
            xs += ax
            ys += ay
            top = max(top, max(y for y in ay if y is not None))
    return xs, ys, top


def _hover(nodes: pd.DataFrame) -> list[str]:
    out = []
    for n in nodes.itertuples(index=False):
        ms = "not profiled" if pd.isna(n.avg_ms) else f"{n.avg_ms:.4f} ms ({n.share:.1%} of profiled time)"
        lines = [f"<b>{short(str(n.name), 70)}</b>", f"{n.engine} · {n.layer_type or '?'}", ms]
        if n.layers > 1:
            lines.append(f"{n.layers} layers")
        if n.module:
            source = f" (from {n.module_source})" if n.module_source else ""
            lines.append(f"module: {short(str(n.module), 60)}{source}")
        if n.precision or n.tactic:
            lines.append(" · ".join(p for p in (n.precision, short(str(n.tactic), 50)) if p))
        if n.output_shapes:
            lines.append(f"out: {short(str(n.output_shapes), 60)}")
        out.append("<br>".join(lines))
    return out


def engine_graph_figure(
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
    *,
    highlight: pd.Series | None = None,
    selected: str | None = None,
    title: str = "Layers in execution order",
) -> go.Figure:
    """The graph: ``highlight`` (bool per node, e.g. a search) dims the others; ``selected`` (a node id) is ringed.
    Each node's ``customdata`` is its node id (what a click selects)."""
    if nodes.empty:
        return message_figure("No layers to draw: this run stored no engine layers.")
    nodes = nodes.reset_index(drop=True)
    position = {nid: i for i, nid in enumerate(nodes["node_id"])}
    fig = go.Figure()
    top = 0.6
    for kind, style in (
        ("tensor", {"color": "#8C8C8C", "width": 1}),
        ("order", {"color": "#B0B0B0", "width": 1, "dash": "dot"}),
        ("handover", {"color": RUNTIME_COLOURS["pytorch"], "width": 1.5, "dash": "dash"}),
    ):
        xs, ys, arc_top = _links(edges, position, kind)
        top = max(top, arc_top)
        if xs:
            fig.add_scatter(x=xs, y=ys, mode="lines", line=style, hoverinfo="skip", showlegend=False, name=kind)
    # engines and PyTorch subgraphs as shaded bands with their names
    for engine, part in nodes.groupby("engine", sort=False):
        lo, hi = part.index.min() - 0.45, part.index.max() + 0.45
        colour = RUNTIME_COLOURS.get(part["runtime"].iloc[0], OTHER_COLOUR)
        fig.add_vrect(x0=lo, x1=hi, fillcolor=rgba(colour, 0.10), line_width=0, layer="below")
        fig.add_annotation(
            x=(lo + hi) / 2, y=-0.55, text=str(engine), showarrow=False, font={"size": 11, "color": colour}
        )
    share = nodes["share"].astype(float)
    timed = share.notna()
    # the smallest marker and the largest (the slowest layer) scale with the room per layer, so that a marker never
    # covers its neighbour's centre: the click lands on the layer under the mouse
    spacing_px = PLOT_PX / min(len(nodes), OPENS_ON)
    smallest = min(9.0, max(4.0, 0.6 * spacing_px))
    largest = min(36.0, max(smallest + 4.0, 1.6 * spacing_px))
    top_share = float(share.max()) if timed.any() and share.max() > 0 else 1.0
    size = np.where(timed, smallest + (largest - smallest) * np.sqrt(share.fillna(0.0) / top_share), smallest)
    opacity = np.where(highlight.reindex(nodes.index, fill_value=True), 1.0, 0.18) if highlight is not None else 1.0
    labels = [""] * len(nodes)
    ms = nodes["avg_ms"].astype(float)
    shown = nodes.index if len(nodes) <= LABEL_ALL else ms.nlargest(LABEL_TOP).index
    for i in shown:
        if not math.isnan(ms[i]):
            labels[i] = f"{ms[i]:.3f}"
    pytorch = nodes["runtime"].eq("pytorch").to_numpy()
    named = nodes["module"].astype(str).ne("")
    if named.any():  # a ribbon under the layers: one colour per module (its first three path parts)
        keys = nodes.loc[named, "module"].map(lambda m: ".".join(str(m).split(" + ")[0].split(".")[:3]))
        fig.add_scatter(
            x=nodes.index[named],
            y=np.full(int(named.sum()), -0.3),
            mode="markers",
            marker={"symbol": "square", "size": 7, "color": [module_colour(k) for k in keys]},
            hovertext=[f"module {k}" for k in keys],
            hoverinfo="text",
            showlegend=False,
            name="modules",
        )
    fig.add_scatter(
        x=nodes.index,
        y=np.zeros(len(nodes)),
        mode="markers+text",
        text=labels,
        textposition="bottom center",
        textfont={"size": 10},
        customdata=nodes["node_id"],
        hovertext=_hover(nodes),
        hoverinfo="text",
        marker={
            "size": size,
            "symbol": np.where(pytorch, "square", "circle"),
            "color": np.where(timed, share.fillna(0.0), np.nan),
            "colorscale": SHARE_SCALE,
            "cmin": 0.0,
            "cmax": max(float(share.max()) if timed.any() else 0.0, 1e-9),
            "colorbar": {"title": {"text": "share"}, "tickformat": ".0%", "thickness": 12},
            "line": {"color": np.where(pytorch, RUNTIME_COLOURS["pytorch"], "#444444"), "width": 1},
            "opacity": opacity,
        },
        name="layers",
        showlegend=False,
    )
    if selected is not None and selected in position:
        i = position[selected]
        fig.add_scatter(
            x=[i],
            y=[0],
            mode="markers",
            marker={"size": float(size[i]) + 12, "color": "rgba(0,0,0,0)", "line": {"color": "#1F77B4", "width": 3}},
            hoverinfo="skip",
            showlegend=False,
            name="selected",
        )
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"},
        height=420,
        margin={**MARGIN, "b": 30},
        clickmode="event+select",
        dragmode="pan",
        hovermode="closest",
        xaxis={
            "title": {"text": "execution order →"},
            "showgrid": False,
            "zeroline": False,
            "range": [-1, min(len(nodes), OPENS_ON)],
        },
        yaxis={"visible": False, "range": [-0.8, top + 0.3], "fixedrange": True},
        plot_bgcolor="white",
    )
    return fig


def engine_time_bar(summary: pd.DataFrame) -> go.Figure:
    """Profiled time per engine and PyTorch subgraph, in execution order."""
    if summary.empty or summary["avg_ms"].isna().all():
        return message_figure("No profiled times: the layers were not timed.")
    fig = go.Figure(
        go.Bar(
            x=summary["engine"],
            y=summary["avg_ms"],
            marker={"color": [RUNTIME_COLOURS.get(r, OTHER_COLOUR) for r in summary["runtime"]]},
            text=[f"{v:.3f} ms" for v in summary["avg_ms"]],
            textposition="outside",
            customdata=summary[["layers"]],
            hovertemplate="<b>%{x}</b><br>%{y:.4f} ms · %{customdata[0]} layers<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": "Profiled time per engine and PyTorch subgraph (profiling on: use the shares)", "x": 0.0},
        height=300,
        margin=MARGIN,
        yaxis={"title": {"text": "ms per inference"}},
    )
    return fig
