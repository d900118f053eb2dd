"""Figures of generative runs (engine/generative/tables.py in, ``go.Figure`` out): prefill vs prompt length, decode
step vs context, tokens/s vs batch with the latency budget and the knee, the per-layer split and the host overhead
of one decode step. No analysis here."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from engine.charts.theme import LAYOUT, RUNTIME_COLOURS, SERIES_PALETTE, band_and_median, message_figure, rgba

BACKEND_COLOURS = {"tensorrt": RUNTIME_COLOURS["tensorrt"], "eager": RUNTIME_COLOURS["pytorch"], "inductor": "#1F77B4"}
PART_COLOURS = {"attention": "#9467BD", "mlp": "#FF7F0E", "norms": "#17BECF", "rest": "#B8B8B8"}


def _colours(series: pd.Series) -> dict[str, str]:
    names = list(dict.fromkeys(series))
    out = {}
    for i, name in enumerate(names):
        backend = name.split(" ")[0]
        colour = BACKEND_COLOURS.get(backend) if sum(n.split(" ")[0] == backend for n in names) <= 2 else None
        out[name] = colour or SERIES_PALETTE[i % len(SERIES_PALETTE)]
    return out


def _lines(table: pd.DataFrame, x: str, y: str = "median_ms", hover_x: str = "") -> list[go.Scatter]:
    traces: list[go.Scatter] = []
    colours = _colours(table["series"])
    for name, rows in table.groupby("series", sort=False):
        rows = rows.sort_values(x)
        colour = colours[str(name)]
        graph = bool(rows["graph"].iloc[0]) if "graph" in rows else False
        if y == "median_ms":
            traces += band_and_median(
                rows[x], rows["p10_ms"], rows["p90_ms"], rows["median_ms"], colour=colour, label=str(name),
                customdata=rows[["p10_ms", "p90_ms"]].to_numpy(),
                hovertemplate=f"{hover_x or x} %{{x}}<br>median %{{y:.3f}} ms<br>"
                "p10-p90 %{customdata[0]:.3f}-%{customdata[1]:.3f} ms<extra></extra>",
            )  # fmt: skip
            if graph:
                traces[-1].line.dash = "dot"
            if rows["gpu_ms"].notna().any():
                have = rows.dropna(subset=["gpu_ms"])
                traces.append(
                    go.Scatter(
                        x=have[x], y=have["gpu_ms"], mode="lines+markers", name=f"{name} (GPU time)",
                        legendgroup=str(name), line={"color": colour, "dash": "dash"}, marker={"symbol": "square"},
                        hovertemplate=f"{hover_x or x} %{{x}}<br>GPU time %{{y:.4f}} ms<extra></extra>",
                    )
                )  # fmt: skip
        else:
            traces.append(
                go.Scatter(
                    x=rows[x], y=rows[y], mode="lines+markers", name=str(name), line={"color": colour,
                    "dash": "dot" if graph else "solid"}, hovertemplate=f"{hover_x or x} %{{x}}<br>%{{y:.0f}}"
                    "<extra></extra>",
                )
            )  # fmt: skip
    return traces


def _log_axis(values: pd.Series, title: str) -> dict:
    ticks = sorted({int(v) for v in values})
    return {"title": title, "type": "log", "tickvals": ticks, "ticktext": [str(t) for t in ticks]}


def prefill_vs_prompt(table: pd.DataFrame) -> go.Figure:
    if table.empty:
        return message_figure("No prefill measured.")
    fig = go.Figure(_lines(table, "prompt_len", hover_x="prompt"))
    fig.update_layout(
        title="Prefill (time to first token) vs prompt length — band p10-p90, dashed: GPU time",
        xaxis=_log_axis(table["prompt_len"], "prompt length (tokens)"),
        yaxis={"title": "prefill (ms)", "rangemode": "tozero"}, height=400, **LAYOUT,
    )  # fmt: skip
    return fig


def decode_vs_context(table: pd.DataFrame) -> go.Figure:
    if table.empty:
        return message_figure("No decode step measured.")
    fig = go.Figure(_lines(table, "context"))
    fig.update_layout(
        title="Decode step (inter-token latency) vs context, batch 1 — dotted: CUDA-graph replay",
        xaxis=_log_axis(table["context"], "context (cache length, tokens)"),
        yaxis={"title": "decode step (ms)", "rangemode": "tozero"}, height=400, **LAYOUT,
    )  # fmt: skip
    return fig


def tokens_per_s_vs_batch(table: pd.DataFrame, budget_ms: float | None = None) -> go.Figure:
    """Tokens/s by batch; a point whose step exceeds ``budget_ms`` is hollow, each series' knee is marked."""
    if table.empty:
        return message_figure("No batch measured.")
    fig = go.Figure(_lines(table, "batch", y="tokens_per_s"))
    if budget_ms is not None:
        over = table[table["median_ms"] > budget_ms]
        if len(over):
            fig.add_trace(
                go.Scatter(
                    x=over["batch"], y=over["tokens_per_s"], mode="markers", name=f"step over {budget_ms:g} ms",
                    marker={"size": 14, "symbol": "circle-open", "color": "#D62728"}, hoverinfo="skip",
                )
            )  # fmt: skip
    knees = table.dropna(subset=["knee_batch"]) if "knee_batch" in table else table.iloc[0:0]
    knees = knees[knees["batch"] == knees["knee_batch"]]
    if len(knees):
        fig.add_trace(
            go.Scatter(
                x=knees["batch"], y=knees["tokens_per_s"], mode="markers+text", name="knee", text=["knee"] * len(knees),
                textposition="top center", marker={"size": 13, "symbol": "diamond", "color": rgba("#000000", 0.6)},
            )
        )  # fmt: skip
    title = "Tokens/s vs batch — dotted: CUDA graph"
    if budget_ms is not None:
        title += f"; hollow red: a step over the {budget_ms:g} ms budget"
    fig.update_layout(
        title=title, xaxis=_log_axis(table["batch"], "batch"), yaxis={"title": "tokens/s", "rangemode": "tozero"},
        height=400, **LAYOUT,
    )  # fmt: skip
    return fig


def budget_line(table: pd.DataFrame, budget_ms: float) -> go.Figure:
    """Decode step by batch with the latency budget as a horizontal line."""
    if table.empty:
        return message_figure("No batch measured.")
    fig = go.Figure(_lines(table, "batch"))
    fig.add_hline(y=budget_ms, line={"color": "#D62728", "dash": "dash"}, annotation_text=f"budget {budget_ms:g} ms")
    fig.update_layout(
        title="Decode step vs batch, with the per-token latency budget",
        xaxis=_log_axis(table["batch"], "batch"), yaxis={"title": "decode step (ms)", "rangemode": "tozero"},
        height=400, **LAYOUT,
    )  # fmt: skip
    return fig


def layer_split(table: pd.DataFrame) -> go.Figure:
    if table.empty:
        return message_figure("No per-layer split (measured for the eager backend).")
    fig = go.Figure(
        [
            go.Bar(y=rows["series"], x=rows["ms"], name=str(part), orientation="h",
                   marker={"color": PART_COLOURS.get(str(part), "#888888")},
                   hovertemplate=f"{part} %{{x:.3f}} ms<extra></extra>")
            for part, rows in table.groupby("part", sort=False)
        ]
    )  # fmt: skip
    fig.update_layout(
        barmode="stack", title="One decode step: attention vs MLP vs norms vs the rest",
        xaxis={"title": "ms per step"}, height=160 + 40 * table["series"].nunique(), **LAYOUT,
    )  # fmt: skip
    return fig


def host_overhead(table: pd.DataFrame) -> go.Figure:
    if table.empty:
        return message_figure("No host overhead (measured on the GPU).")
    fig = go.Figure(
        [
            go.Bar(y=table["series"], x=table["gpu_ms"], name="GPU busy", orientation="h",
                   marker={"color": RUNTIME_COLOURS["tensorrt"]}),
            go.Bar(y=table["series"], x=table["host_ms"], name="waiting for the host", orientation="h",
                   marker={"color": "#B8B8B8"}),
        ]
    )  # fmt: skip
    graphs = table.dropna(subset=["graph_ms"])
    if len(graphs):
        fig.add_trace(
            go.Scatter(y=graphs["series"], x=graphs["graph_ms"], mode="markers", name="CUDA-graph replay",
                       marker={"symbol": "line-ns-open", "size": 22, "color": "#000000"})
        )  # fmt: skip
    fig.update_layout(
        barmode="stack", title="Host overhead of one decode step (what CUDA graphs remove)",
        xaxis={"title": "ms per step"}, height=160 + 40 * len(table), **LAYOUT,
    )  # fmt: skip
    return fig
