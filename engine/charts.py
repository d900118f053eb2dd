"""Plotly figure builders: DataFrames and results in, ``go.Figure`` out. No streamlit here.

Colours mean the same thing on every chart: TensorRT green vs PyTorch orange, one colour per
precision, and one stable colour per layer type (hashed from its name, so ``Conv2d`` looks the
same on the Layers and Compare pages). Charts stay readable at 1000+ layers by folding the tail
into "other" rows; every builder returns a figure with a message instead of an empty plot when
there is nothing to draw.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from engine.result import FUSED, NESTED_IN_COMPILE, Segmentation, normalise_layers

RUNTIME_COLOURS = {"tensorrt": "#76B900", "pytorch": "#EE4C2C"}
RUNTIME_NAMES = {"tensorrt": "TensorRT", "pytorch": "PyTorch"}
PRECISION_COLOURS = {"fp32": "#1F77B4", "fp16": "#FF7F0E", "bf16": "#9467BD", "int8": "#D62728",
                     "fp8": "#8C564B", "int32": "#17BECF", "int64": "#BCBD22", "bool": "#7F7F7F"}
OTHER_COLOUR = "#B8B8B8"
UNKNOWN = "(unknown)"
UNATTRIBUTED = "(no module)"
_LAYER_TYPE_PALETTE = qualitative.Dark24 + qualitative.Light24
_RUN_PALETTE = qualitative.Set2
_LIGHT_PALETTE = qualitative.Pastel + qualitative.Set3
LABEL_CHARS = 48


def layer_type_colour(layer_type: str) -> str:
    """A stable colour per layer type (CRC of the name, so it survives restarts and pages)."""
    if layer_type.startswith("other"):
        return OTHER_COLOUR
    return _LAYER_TYPE_PALETTE[zlib.crc32(layer_type.encode()) % len(_LAYER_TYPE_PALETTE)]


def precision_colour(precision: str) -> str:
    return PRECISION_COLOURS.get(precision, OTHER_COLOUR)


def run_colours(labels: Sequence[str]) -> dict[str, str]:
    """One colour per compared run, by position, the same on every Compare chart."""
    return {label: _RUN_PALETTE[i % len(_RUN_PALETTE)] for i, label in enumerate(labels)}


def message_figure(message: str, height: int = 220) -> go.Figure:
    """A figure that says why there is no chart."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 14})
    fig.update_layout(height=height, xaxis={"visible": False}, yaxis={"visible": False},
                      margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def _short(text: str, n: int = LABEL_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _layers(layers: pd.DataFrame | None) -> pd.DataFrame:
    """The layer table with every column present and blanks named, tolerant of partial tables."""
    if layers is None or layers.empty or "avg_ms" not in layers:
        return normalise_layers(pd.DataFrame(columns=["avg_ms"])).iloc[0:0]
    df = normalise_layers(layers)
    df["layer_type"] = df["layer_type"].fillna("").astype(str).replace("", UNKNOWN)
    df["precision"] = df["precision"].fillna("").astype(str).replace("", UNKNOWN)
    df["runtime"] = df["runtime"].fillna("").astype(str).replace("", UNKNOWN)
    df["name"] = df["name"].fillna("").astype(str)
    df["module_path"] = df["module_path"].fillna("").astype(str)
    return df


_HOVER_COLUMNS = ["name", "layer_type", "precision", "runtime", "segment", "input_shapes", "output_shapes",
                  "tactic"]
_HOVER = ("<b>%{customdata[0]}</b><br>%{customdata[1]} · %{customdata[2]} · %{customdata[3]} "
          "(%{customdata[4]})<br>in: %{customdata[5]}<br>out: %{customdata[6]}<br>tactic: %{customdata[7]}")


def _hover_data(df: pd.DataFrame) -> list[list[str]]:
    return df[_HOVER_COLUMNS].fillna("").astype(str).values.tolist()


# -- tables behind the layer charts ------------------------------------------------------------

def slowest_layers(layers: pd.DataFrame, n: int = 20) -> pd.DataFrame:
    """The ``n`` slowest layers, slowest first, then one "other (k layers)" row for the rest."""
    df = _layers(layers)
    top = df.sort_values("avg_ms", ascending=False, kind="stable").head(n).copy()
    top["label"] = [f"{o}: {_short(name)}" for o, name in zip(top["order"], top["name"], strict=True)]
    rest = df.drop(top.index)
    if len(rest):
        other: dict[str, object] = {c: "" for c in df.columns}
        other.update(order=-1, name=f"other ({len(rest)} layers)", layer_type="other",
                     avg_ms=float(rest["avg_ms"].sum()), share=float(rest["share"].sum()),
                     label=f"other ({len(rest)} layers)")
        top = pd.concat([top, pd.DataFrame([other])], ignore_index=True)
    return top.reset_index(drop=True)


def time_by(layers: pd.DataFrame, column: str) -> pd.DataFrame:
    """Total time, share and layer count per value of ``column`` (precision, layer_type, runtime)."""
    df = _layers(layers)
    g = df.groupby(column, as_index=False).agg(total_ms=("avg_ms", "sum"), layers=("avg_ms", "size"))
    total = g["total_ms"].sum()
    g["share"] = g["total_ms"] / total if total > 0 else 0.0
    return g.sort_values("total_ms", ascending=False).reset_index(drop=True)


def timeline_rows(layers: pd.DataFrame, max_bars: int = 150) -> pd.DataFrame:
    """Layers in execution order with start/end times; above ``max_bars`` consecutive layers are
    merged into groups ("#a-#b (k layers)") so the waterfall keeps a readable number of bars."""
    df = _layers(layers).sort_values("order", kind="stable").reset_index(drop=True)
    df["start_ms"] = df["avg_ms"].cumsum() - df["avg_ms"]
    df["label"] = [f"{o}: {_short(n, 40)}" for o, n in zip(df["order"], df["name"], strict=True)]
    if len(df) <= max_bars:
        return df
    size = math.ceil(len(df) / max_bars)
    rows = []
    for start in range(0, len(df), size):
        chunk = df.iloc[start:start + size]
        by_type = chunk.groupby("layer_type")["avg_ms"].sum().sort_values(ascending=False)
        runtimes = chunk["runtime"].unique()
        first, last = int(chunk["order"].iloc[0]), int(chunk["order"].iloc[-1])
        rows.append({**{c: "" for c in _HOVER_COLUMNS},
                     "order": first, "name": f"layers {first}-{last} ({len(chunk)} layers)",
                     "label": f"{first}-{last} ({len(chunk)})", "layer_type": by_type.index[0],
                     "runtime": runtimes[0] if len(runtimes) == 1 else "mixed",
                     "segment": ", ".join(chunk["segment"].astype(str).unique()[:3]),
                     "precision": ", ".join(chunk["precision"].unique()[:3]),
                     "avg_ms": float(chunk["avg_ms"].sum()), "start_ms": float(chunk["start_ms"].iloc[0])})
    return pd.DataFrame(rows)


def module_rollup(layers: pd.DataFrame) -> pd.DataFrame:
    """Layer time summed up the nn.Module tree: one row per module path prefix.

    Columns ``id`` (dotted path), ``parent``, ``label``, ``total_ms``, ``layers``. Fused TensorRT
    layers hang under ``<fused>`` and layers without attribution under ``(no module)``, both
    directly below the model root ``""``. Empty when no layer has a module path.
    """
    df = _layers(layers)
    cols = ["id", "parent", "label", "total_ms", "layers"]
    if df.empty or not df["module_path"].ne("").any():
        return pd.DataFrame(columns=cols)
    totals: dict[str, float] = {"model": 0.0}
    counts: dict[str, int] = {"model": 0}
    parents: dict[str, str] = {"model": ""}
    for path, ms in zip(df["module_path"], df["avg_ms"], strict=True):
        path = path.split("#")[0] or UNATTRIBUTED
        parts = [path] if path in (FUSED, UNATTRIBUTED) else path.split(".")
        node, parent = "model", "model"
        totals[node] += ms
        counts[node] += 1
        for i in range(len(parts)):
            node = "model/" + ".".join(parts[: i + 1])
            parents.setdefault(node, parent)
            totals[node] = totals.get(node, 0.0) + ms
            counts[node] = counts.get(node, 0) + 1
            parent = node
    rows = [{"id": n, "parent": parents[n], "label": _module_label(n), "total_ms": totals[n], "layers": counts[n]}
            for n in totals]
    return pd.DataFrame(rows, columns=cols)


def _module_label(node: str) -> str:
    """``model/layer3.1`` -> ``layer3.1`` (an index alone says nothing), ``model/layer3.1.conv1`` -> ``conv1``."""
    if node == "model":
        return "model"
    parts = node.split("/", 1)[1].split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1]


def search_layers(layers: pd.DataFrame, query: str = "") -> pd.DataFrame:
    """Rows whose name, type, module path, precision or tactic contains ``query`` (case-insensitive)."""
    df = normalise_layers(layers) if layers is not None and "avg_ms" in layers else _layers(None)
    q = query.strip().lower()
    if not q:
        return df
    text = df[["name", "layer_type", "module_path", "precision", "tactic", "segment"]].fillna("").astype(str)
    hit = text.apply(lambda col: col.str.lower().str.contains(q, regex=False)).any(axis=1)
    return df[hit].reset_index(drop=True)


# -- layer figures -----------------------------------------------------------------------------

def top_layers_bar(layers: pd.DataFrame, n: int = 20) -> go.Figure:
    """Horizontal bars of the slowest ``n`` layers (slowest on top) plus the folded tail."""
    df = slowest_layers(layers, n)
    if df.empty:
        return message_figure("No per-layer profile in this run.")
    fig = go.Figure()
    for layer_type, part in df.groupby("layer_type", sort=False):
        fig.add_bar(y=part["label"], x=part["avg_ms"], orientation="h", name=str(layer_type),
                    marker_color=layer_type_colour(str(layer_type)), customdata=_hover_data(part),
                    text=[f"{s:.1%}" for s in part["share"]], textposition="outside", cliponaxis=False,
                    hovertemplate=_HOVER + "<br>%{x:.4f} ms/inference<extra></extra>")
    fig.update_layout(
        title=f"Slowest {min(n, len(df))} layers (mean time per inference)", barmode="overlay",
        height=max(320, 24 * len(df) + 120), legend_title_text="Layer type",
        yaxis={"categoryorder": "array", "categoryarray": list(df["label"])[::-1], "title": None},
        xaxis_title="time per inference (ms)", margin={"l": 10, "r": 10, "t": 50, "b": 40})
    return fig


def layer_type_treemap(layers: pd.DataFrame, max_leaves: int = 150) -> go.Figure:
    """Treemap layer type → layer, area = time. Only the ``max_leaves`` slowest layers get their own
    tile; the rest of each type is one "other" tile."""
    df = _layers(layers)
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
                labels.append(_short(row["name"], 32))
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
    fig = go.Figure(go.Treemap(ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
                               marker={"colors": colours}, customdata=hover,
                               hovertemplate="<b>%{label}</b><br>%{value:.4f} ms/inference"
                                             "<br>%{percentRoot:.1%} of profiled time<br>%{customdata}"
                                             "<extra></extra>",
                               texttemplate="%{label}<br>%{value:.3f} ms"))
    fig.update_layout(title="Time by layer type → layer (area = ms per inference)", height=520,
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def precision_share_bar(layers: pd.DataFrame) -> go.Figure:
    """Share of profiled time per output precision of the layers."""
    df = time_by(layers, "precision")
    if df.empty:
        return message_figure("No per-layer profile in this run.")
    fig = go.Figure(go.Bar(
        x=df["total_ms"], y=df["precision"], orientation="h",
        marker_color=[precision_colour(p) for p in df["precision"]],
        text=[f"{s:.1%}" for s in df["share"]], textposition="auto",
        customdata=df[["layers", "share"]].values.tolist(),
        hovertemplate="<b>%{y}</b><br>%{x:.4f} ms/inference (%{customdata[1]:.1%})"
                      "<br>%{customdata[0]} layers<extra></extra>"))
    fig.update_layout(title="Time share by layer precision", height=max(220, 60 * len(df) + 100),
                      xaxis_title="time per inference (ms)", yaxis_title="precision",
                      yaxis={"autorange": "reversed"}, margin={"l": 10, "r": 10, "t": 50, "b": 40})
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
        fig.add_bar(y=part["label"], x=part["avg_ms"], base=part["start_ms"], orientation="h",
                    name=RUNTIME_NAMES.get(v, v) if by_runtime else v, marker_color=colour,
                    customdata=_hover_data(part),
                    hovertemplate=_HOVER + "<br>starts at %{base:.4f} ms, takes %{x:.4f} ms<extra></extra>")
    grouped = " (consecutive layers grouped)" if len(df) < len(layers) else ""
    fig.update_layout(
        title=f"Execution timeline{grouped}: cumulative profiled time", barmode="overlay",
        height=min(1800, max(360, 14 * len(df) + 120)), legend_title_text=key.replace("_", " "),
        yaxis={"categoryorder": "array", "categoryarray": list(df["label"])[::-1], "title": "layer (execution order)",
               "tickfont": {"size": 10}},
        xaxis_title="cumulative time per inference (ms)", margin={"l": 10, "r": 10, "t": 50, "b": 40})
    return fig


def module_tree(layers: pd.DataFrame, max_depth: int = 4) -> go.Figure:
    """Icicle of time rolled up the nn.Module tree (click a module to zoom in)."""
    df = module_rollup(layers)
    if df.empty:
        return message_figure("This run's layers carry no nn.Module paths, so time cannot be rolled up.")
    fig = go.Figure(go.Icicle(
        ids=df["id"], parents=df["parent"], labels=df["label"], values=df["total_ms"], branchvalues="total",
        customdata=df[["id", "layers"]].values.tolist(), maxdepth=max_depth,
        marker={"colors": _module_colours(df["id"])}, textfont={"color": "#111111"},
        hovertemplate="<b>%{customdata[0]}</b><br>%{value:.4f} ms/inference (%{percentRoot:.1%})"
                      "<br>%{customdata[1]} layers<extra></extra>",
        texttemplate="%{label}<br>%{value:.3f} ms"))
    fig.update_layout(title="Time rolled up the nn.Module tree (ms per inference)", height=520,
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
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
            colours.append(_LIGHT_PALETTE[zlib.crc32(top.encode()) % len(_LIGHT_PALETTE)])
    return colours


def profiling_overhead_bar(e2e_median_ms: float | None, profiled_sum_ms: float | None) -> go.Figure:
    """End-to-end median next to the sum of per-layer averages."""
    if profiled_sum_ms is None:
        return message_figure("This run has no per-layer profile.")
    if e2e_median_ms is None:
        return message_figure("This run was not timed end to end (analyze mode): nothing to compare with.")
    fig = go.Figure(go.Bar(
        y=["end-to-end median", "sum of per-layer averages"], x=[e2e_median_ms, profiled_sum_ms],
        orientation="h", marker_color=["#4C78A8", OTHER_COLOUR],
        text=[f"{e2e_median_ms:.3f} ms", f"{profiled_sum_ms:.3f} ms"], textposition="auto",
        hovertemplate="%{y}: %{x:.4f} ms<extra></extra>"))
    fig.update_layout(title="Profiling overhead", height=220, xaxis_title="time per inference (ms)",
                      yaxis={"autorange": "reversed"},
                      margin={"l": 10, "r": 10, "t": 50, "b": 40})
    return fig


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
    palette = qualitative.Safe
    names = list(dict.fromkeys(name for _, name, _ in rows))
    fig = go.Figure()
    for i, name in enumerate(names):
        part = [(bar, v) for bar, n, v in rows if n == name]
        label = name.removesuffix("_s").replace("_", " ")
        fig.add_bar(y=[b for b, _ in part], x=[v for _, v in part], name=label, orientation="h",
                    marker_color=palette[i % len(palette)], text=[label] * len(part), textposition="inside",
                    insidetextanchor="middle", hovertemplate="%{fullData.name}: %{x:.3f} s<extra></extra>")
    fig.update_layout(title="Set-up stages", barmode="stack", height=300, xaxis_title="seconds", showlegend=True,
                      yaxis={"autorange": "reversed"}, legend={"orientation": "h", "y": -0.5, "yanchor": "top"},
                      margin={"l": 10, "r": 10, "t": 50, "b": 40})
    return fig


# -- segmentation ------------------------------------------------------------------------------

def segments_table(seg: Segmentation | None) -> pd.DataFrame:
    """Segments in execution order with where each starts in the op sequence."""
    cols = ["position", "kind", "segment", "name", "op_count", "first_op", "inputs", "outputs"]
    if seg is None or not seg.segments:
        return pd.DataFrame(columns=cols)
    rows, start = [], 0
    for i, s in enumerate(seg.segments):
        title = f"TRT Engine #{s.index}" if s.kind == "tensorrt" else f"PyTorch #{s.index}"
        rows.append({"position": i, "kind": s.kind, "segment": title, "name": s.name, "op_count": s.op_count,
                     "first_op": start, "inputs": "; ".join(s.inputs), "outputs": "; ".join(s.outputs)})
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
        fig.add_bar(y=["graph"] * len(part), x=part["op_count"], base=part["first_op"], orientation="h",
                    name=RUNTIME_NAMES[kind], marker={"color": RUNTIME_COLOURS[kind],
                                                      "line": {"color": "white", "width": 1}},
                    text=part["segment"].str.replace("TRT Engine ", "TRT ").str.replace("PyTorch ", "PT "),
                    textposition="inside", insidetextanchor="middle",
                    customdata=part[["segment", "name", "op_count", "inputs", "outputs"]].values.tolist(),
                    hovertemplate="<b>%{customdata[0]}</b> (%{customdata[1]})<br>%{customdata[2]} ops"
                                  "<br>in: %{customdata[3]}<br>out: %{customdata[4]}<extra></extra>")
    if seg is not None and seg.supported_ops < seg.total_ops and (df["kind"] == "pytorch").sum() == 0:
        fig.add_annotation(text=f"{seg.total_ops - seg.supported_ops} ops run in PyTorch between the engines "
                                "(their subgraphs are not listed in dryrun text)",
                           xref="paper", yref="paper", x=0, y=1.02, showarrow=False, xanchor="left",
                           font={"size": 11, "color": "#555"})
    fig.update_layout(title="Graph segments in execution order (width = operator count)", barmode="overlay",
                      height=230, xaxis_title="operators (cumulative, in graph order)",
                      yaxis={"visible": False}, legend={"orientation": "h", "y": -0.6},
                      margin={"l": 10, "r": 10, "t": 50, "b": 40})
    return fig


def ops_per_engine_bar(seg: Segmentation | None, min_block_size: int | None = None) -> go.Figure:
    """Operators in each TensorRT engine, with the run's min_block_size as a line."""
    df = segments_table(seg)
    df = df[df["kind"] == "tensorrt"]
    if df.empty:
        return message_figure("No TensorRT engine in this run.")
    fig = go.Figure(go.Bar(x=df["segment"], y=df["op_count"], marker_color=RUNTIME_COLOURS["tensorrt"],
                           customdata=df[["name", "inputs", "outputs"]].values.tolist(),
                           hovertemplate="<b>%{x}</b> (%{customdata[0]})<br>%{y} ops<br>in: %{customdata[1]}"
                                         "<br>out: %{customdata[2]}<extra></extra>"))
    if min_block_size is not None:
        fig.add_hline(y=min_block_size, line_dash="dash", line_color="#555",
                      annotation_text=f"min_block_size = {min_block_size}", annotation_position="top left")
    fig.update_layout(title="Operators per TensorRT engine", height=340, xaxis_title="engine",
                      yaxis_title="operators", margin={"l": 10, "r": 10, "t": 50, "b": 40})
    return fig


def unsupported_ops_bar(seg: Segmentation | None) -> go.Figure:
    """Ops left to PyTorch (unsupported or excluded), with their count in the graph."""
    if seg is None or not seg.unsupported_ops:
        return message_figure("Every operator is supported by TensorRT.")
    items = sorted(seg.unsupported_ops.items(), key=lambda kv: kv[1], reverse=True)
    fig = go.Figure(go.Bar(y=[k for k, _ in items], x=[v for _, v in items], orientation="h",
                           marker_color=RUNTIME_COLOURS["pytorch"], text=[v for _, v in items],
                           textposition="auto", hovertemplate="%{y}: %{x} nodes<extra></extra>"))
    fig.update_layout(title="Unsupported or excluded ops (run in PyTorch)", xaxis_title="nodes in the graph",
                      height=max(200, 32 * len(items) + 110), yaxis={"autorange": "reversed"},
                      margin={"l": 10, "r": 10, "t": 50, "b": 40})
    return fig


# -- comparison --------------------------------------------------------------------------------

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
            fig.add_bar(x=[row["run"][-8:]], y=[row["value"] if row["value"] is not None else 0],
                        name=row["run"], legendgroup=row["run"], showlegend=i == 1,
                        marker_color=colours[row["run"]], row=1, col=i,
                        customdata=[[row["run"], "n/a" if row["value"] is None else f"{row['value']:.4g}"]],
                        hovertemplate="%{customdata[0]}<br>%{customdata[1]} " + unit + "<extra></extra>")
        fig.update_yaxes(title_text=unit, row=1, col=i)
        fig.update_xaxes(showticklabels=False, row=1, col=i)
    fig.update_layout(title="Runs side by side", height=380, barmode="group",
                      legend={"orientation": "h", "y": -0.12}, margin={"l": 10, "r": 10, "t": 70, "b": 10})
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
            fig.add_box(x=x, name=run, marker_color=colours[run], boxpoints="outliers", orientation="h",
                        hovertemplate="%{x:.4f} ms<extra>" + run + "</extra>")
        fig.update_layout(title="Latency per inference (runs on different scales: log axis)", showlegend=False,
                          height=max(260, 60 * len(runs) + 120), xaxis_type="log",
                          xaxis_title="latency per inference (ms, log scale)",
                          yaxis={"autorange": "reversed", "tickfont": {"size": 10}},
                          margin={"l": 10, "r": 10, "t": 50, "b": 40})
        return fig
    for run in runs:
        x = samples.loc[samples["run"] == run, "latency_ms"]
        fig.add_histogram(x=x, name=run, marker_color=colours[run], opacity=0.55, histnorm="probability",
                          nbinsx=60, hovertemplate="%{x} ms<br>%{y:.1%} of inferences<extra>" + run + "</extra>")
        fig.add_vline(x=float(medians[run]), line_dash="dash", line_color=colours[run])
    fig.update_layout(title="Latency per inference (dashed: median)", barmode="overlay", height=380,
                      xaxis_title="latency per inference (ms)", yaxis_title="share of timed inferences",
                      yaxis_tickformat=".0%", legend={"orientation": "h", "y": -0.25},
                      margin={"l": 10, "r": 10, "t": 50, "b": 40})
    return fig


def layer_type_diff_bar(by_type: pd.DataFrame, max_types: int = 20) -> go.Figure:
    """Grouped bars of profiled time per layer type for each run; the smallest types fold into
    "other"."""
    if by_type.empty:
        return message_figure("None of these runs has a per-layer profile.")
    order = list(dict.fromkeys(by_type["layer_type"]))
    keep = set(order[:max_types])
    df = by_type.assign(layer_type=[t if t in keep else "other" for t in by_type["layer_type"]])
    df = df.groupby(["run", "layer_type"], as_index=False, sort=False).agg(total_ms=("total_ms", "sum"),
                                                                          delta_ms=("delta_ms", "sum"))
    colours = run_colours(list(dict.fromkeys(by_type["run"])))
    fig = go.Figure()
    for run in colours:
        part = df[df["run"] == run]
        fig.add_bar(y=part["layer_type"], x=part["total_ms"], orientation="h", name=run,
                    marker_color=colours[run], customdata=part[["delta_ms"]].values.tolist(),
                    hovertemplate="%{y}: %{x:.4f} ms (%{customdata[0]:+.4f} ms vs baseline)<extra>"
                                  + run + "</extra>")
    cats = [t for t in order if t in keep] + (["other"] if len(order) > max_types else [])
    fig.update_layout(title="Profiled time per layer type", barmode="group", xaxis_title="time per inference (ms)",
                      yaxis={"categoryorder": "array", "categoryarray": cats[::-1], "title": "layer type"},
                      height=max(320, 22 * len(cats) * max(1, len(colours)) // 2 + 140),
                      legend={"orientation": "h", "y": -0.15}, margin={"l": 10, "r": 10, "t": 50, "b": 40})
    return fig
