"""Figures of the Segmentation page: the partitioned graph as a strip of TensorRT engines and PyTorch subgraphs,
operators per engine against min_block_size, and the ops left to PyTorch. ``Segmentation`` in, ``go.Figure`` out."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from engine.charts.theme import MARGIN, RUNTIME_COLOURS, RUNTIME_NAMES, message_figure
from engine.result import Segmentation


def segments_table(seg: Segmentation | None) -> pd.DataFrame:
    """Segments in execution order with where each starts in the op sequence."""
    cols = ["position", "kind", "segment", "name", "op_count", "first_op", "inputs", "outputs"]
    if seg is None or not seg.segments:
        return pd.DataFrame(columns=cols)
    rows, start = [], 0
    for i, s in enumerate(seg.segments):
        title = f"TRT Engine #{s.index}" if s.kind == "tensorrt" else f"PyTorch #{s.index}"
        rows.append(
            {
                "position": i,
                "kind": s.kind,
                "segment": title,
                "name": s.name,
                "op_count": s.op_count,
                "first_op": start,
                "inputs": "; ".join(s.inputs),
                "outputs": "; ".join(s.outputs),
            }
        )
        start += s.op_count
    return pd.DataFrame(rows, columns=cols)


def segment_strip(seg: Segmentation | None) -> go.Figure:
    """The partitioned graph as one ordered strip: TensorRT engines vs PyTorch subgraphs,
    width = operator count."""
    df = segments_table(seg)
    if df.empty:
        return message_figure("No segments: the graph was not partitioned (no TensorRT engine was generated).")
    fig = go.Figure()
    for kind in ("tensorrt", "pytorch"):
        part = df[df["kind"] == kind]
        if part.empty:
            continue
        fig.add_bar(
            y=["graph"] * len(part),
            x=part["op_count"],
            base=part["first_op"],
            orientation="h",
            name=RUNTIME_NAMES[kind],
            marker={"color": RUNTIME_COLOURS[kind], "line": {"color": "white", "width": 1}},
            text=part["segment"].str.replace("TRT Engine ", "TRT ").str.replace("PyTorch ", "PT "),
            textposition="inside",
            insidetextanchor="middle",
            customdata=part[["segment", "name", "op_count", "inputs", "outputs"]].values.tolist(),
            hovertemplate="<b>%{customdata[0]}</b> (%{customdata[1]})<br>%{customdata[2]} ops"
            "<br>in: %{customdata[3]}<br>out: %{customdata[4]}<extra></extra>",
        )
    if seg is not None and seg.supported_ops < seg.total_ops and (df["kind"] == "pytorch").sum() == 0:
        fig.add_annotation(
            text=f"{seg.total_ops - seg.supported_ops} ops run in PyTorch between the engines "
            "(their subgraphs are not listed in dryrun text)",
            xref="paper",
            yref="paper",
            x=0,
            y=1.02,
            showarrow=False,
            xanchor="left",
            font={"size": 11, "color": "#555"},
        )
    fig.update_layout(
        title="Graph segments in execution order (width = operator count)",
        barmode="overlay",
        height=230,
        xaxis_title="operators (cumulative, in graph order)",
        yaxis={"visible": False},
        legend={"orientation": "h", "y": -0.6},
        margin=MARGIN,
    )
    return fig


def ops_per_engine_bar(seg: Segmentation | None, min_block_size: int | None = None) -> go.Figure:
    """Operators in each TensorRT engine, with the run's min_block_size as a line."""
    df = segments_table(seg)
    df = df[df["kind"] == "tensorrt"]
    if df.empty:
        return message_figure("No TensorRT engine in this run.")
    fig = go.Figure(
        go.Bar(
            x=df["segment"],
            y=df["op_count"],
            marker_color=RUNTIME_COLOURS["tensorrt"],
            customdata=df[["name", "inputs", "outputs"]].values.tolist(),
            hovertemplate="<b>%{x}</b> (%{customdata[0]})<br>%{y} ops<br>in: %{customdata[1]}"
            "<br>out: %{customdata[2]}<extra></extra>",
        )
    )
    if min_block_size is not None:
        # the line's label right of the plot, on white: at the line's left end the first bar covered it
        fig.add_hline(
            y=min_block_size,
            line_dash="dash",
            line_color="#555",
            annotation_text=f"min_block_size = {min_block_size}",
            annotation_position="right",
            annotation_xanchor="left",
            annotation_bgcolor="white",
        )
    fig.update_layout(
        title="Operators per TensorRT engine",
        height=340,
        xaxis_title="engine",
        yaxis_title="operators",
        margin={**MARGIN, "r": 130},  # room for the min_block_size label
    )
    return fig


def unsupported_ops_bar(seg: Segmentation | None) -> go.Figure:
    """Ops left to PyTorch (unsupported or excluded), with their count in the graph."""
    if seg is None or not seg.unsupported_ops:
        return message_figure("Every operator is supported by TensorRT.")
    items = sorted(seg.unsupported_ops.items(), key=lambda kv: kv[1], reverse=True)
    fig = go.Figure(
        go.Bar(
            y=[k for k, _ in items],
            x=[v for _, v in items],
            orientation="h",
            marker_color=RUNTIME_COLOURS["pytorch"],
            text=[v for _, v in items],
            textposition="auto",
            hovertemplate="%{y}: %{x} nodes<extra></extra>",
        )
    )
    fig.update_layout(
        title="Unsupported or excluded ops (run in PyTorch)",
        xaxis_title="nodes in the graph",
        height=max(200, 32 * len(items) + 110),
        yaxis={"autorange": "reversed"},
        margin=MARGIN,
    )
    return fig
