"""The tables behind the layer charts: a run's per-layer profile (``RunResult.layers``) in, the slowest layers with
the tail folded, time per precision or layer type, execution-order rows with start times, time rolled up the
nn.Module tree, and a search over it, out. Charts stay readable at 1000+ layers because these fold the tail into
"other" rows."""

from __future__ import annotations

import math
import re

import pandas as pd

from engine.charts.theme import short
from engine.result import FUSED, normalise_layers

UNKNOWN = "(unknown)"
UNATTRIBUTED = "(no module)"
HOVER_COLUMNS = ["name", "layer_type", "precision", "runtime", "segment", "input_shapes", "output_shapes", "tactic"]
HOVER = (
    "<b>%{customdata[0]}</b><br>%{customdata[1]} · %{customdata[2]} · %{customdata[3]} "
    "(%{customdata[4]})<br>in: %{customdata[5]}<br>out: %{customdata[6]}<br>tactic: %{customdata[7]}"
)


_ATEN_OP = re.compile(r"aten_ops\.(\w+?)(?:\.default)?\]")
_MYELIN = re.compile(r"^__myl_(\w+?)_myl\d+_\d+$")  # a TensorRT-RTX generated kernel: __myl_CorrMulAddRelu_myl0_1


def layer_label(name: str, module_path: str = "", layer_type: str = "") -> str:
    """A layer as people read it: the module it came from first, then what it does ("layer1.0.conv1 ·
    convolution"), not TensorRT's "[CONVOLUTION]-[aten_ops.convolution.default]-[layer1/0/conv1/convolution]_myl0_3"
    that a label cut at its start shows the same for every convolution. A fused TensorRT-RTX kernel reads as its
    fused ops ("fused CorrMulAddRelu"); any other name stays as it is."""
    op = _ATEN_OP.search(name)
    what = op.group(1) if op else ("" if layer_type in ("", UNKNOWN) else layer_type)
    if module_path and module_path != FUSED:
        return f"{module_path} · {what}" if what else module_path
    fused = _MYELIN.match(name)
    if fused:
        return f"fused {fused.group(1)}"
    return name


def _labels(df: pd.DataFrame, n: int) -> list[str]:
    """ "<order>: <layer_label>" per row, cut to ``n`` characters after the order."""
    return [
        f"{o}: {short(layer_label(name, path, kind), n)}"
        for o, name, path, kind in zip(df["order"], df["name"], df["module_path"], df["layer_type"], strict=True)
    ]


def tidy_layers(layers: pd.DataFrame | None) -> pd.DataFrame:
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


def hover_data(df: pd.DataFrame) -> list[list[str]]:
    """The hover fields (``HOVER``) of each row."""
    return df[HOVER_COLUMNS].fillna("").astype(str).values.tolist()


def slowest_layers(layers: pd.DataFrame, n: int = 20) -> pd.DataFrame:
    """The ``n`` slowest layers, slowest first, then one "other (k layers)" row for the rest."""
    df = tidy_layers(layers)
    top = df.sort_values("avg_ms", ascending=False, kind="stable").head(n).copy()
    top["label"] = _labels(top, 48)
    rest = df.drop(top.index)
    if len(rest):
        other: dict[str, object] = {c: "" for c in df.columns}
        other.update(
            order=-1,
            name=f"other ({len(rest)} layers)",
            layer_type="other",
            avg_ms=float(rest["avg_ms"].sum()),
            share=float(rest["share"].sum()),
            label=f"other ({len(rest)} layers)",
        )
        top = pd.concat([top, pd.DataFrame([other])], ignore_index=True)
    return top.reset_index(drop=True)


def time_by(layers: pd.DataFrame, column: str) -> pd.DataFrame:
    """Total time, share and layer count per value of ``column`` (precision, layer_type, runtime)."""
    df = tidy_layers(layers)
    g = df.groupby(column, as_index=False).agg(total_ms=("avg_ms", "sum"), layers=("avg_ms", "size"))
    total = g["total_ms"].sum()
    g["share"] = g["total_ms"] / total if total > 0 else 0.0
    return g.sort_values("total_ms", ascending=False).reset_index(drop=True)


def timeline_rows(layers: pd.DataFrame, max_bars: int = 150) -> pd.DataFrame:
    """Layers in execution order with start/end times; above ``max_bars`` consecutive layers are
    merged into groups ("#a-#b (k layers)") so the waterfall keeps a readable number of bars."""
    df = tidy_layers(layers).sort_values("order", kind="stable").reset_index(drop=True)
    df["start_ms"] = df["avg_ms"].cumsum() - df["avg_ms"]
    df["label"] = _labels(df, 40)
    if len(df) <= max_bars:
        return df
    size = math.ceil(len(df) / max_bars)
    rows = []
    for start in range(0, len(df), size):
        chunk = df.iloc[start : start + size]
        by_type = chunk.groupby("layer_type")["avg_ms"].sum().sort_values(ascending=False)
        runtimes = chunk["runtime"].unique()
        first, last = int(chunk["order"].iloc[0]), int(chunk["order"].iloc[-1])
        rows.append(
            {
                **{c: "" for c in HOVER_COLUMNS},
                "order": first,
                "name": f"layers {first}-{last} ({len(chunk)} layers)",
                "label": f"{first}-{last} ({len(chunk)})",
                "layer_type": by_type.index[0],
                "runtime": runtimes[0] if len(runtimes) == 1 else "mixed",
                "segment": ", ".join(chunk["segment"].astype(str).unique()[:3]),
                "precision": ", ".join(chunk["precision"].unique()[:3]),
                "avg_ms": float(chunk["avg_ms"].sum()),
                "start_ms": float(chunk["start_ms"].iloc[0]),
            }
        )
    return pd.DataFrame(rows)


def module_rollup(layers: pd.DataFrame) -> pd.DataFrame:
    """Layer time summed up the nn.Module tree: one row per module path prefix.

    Columns ``id`` (dotted path), ``parent``, ``label``, ``total_ms``, ``layers``. Fused TensorRT
    layers hang under ``<fused>`` and layers without attribution under ``(no module)``, both
    directly below the model root ``""``. Empty when no layer has a module path.
    """
    df = tidy_layers(layers)
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
    rows = [
        {"id": n, "parent": parents[n], "label": _module_label(n), "total_ms": totals[n], "layers": counts[n]}
        for n in totals
    ]
    return pd.DataFrame(rows, columns=cols)


def _module_label(node: str) -> str:
    """``model/layer3.1`` -> ``layer3.1`` (an index alone says nothing), ``model/layer3.1.conv1`` -> ``conv1``."""
    if node == "model":
        return "model"
    parts = node.split("/", 1)[1].split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1]


def search_layers(layers: pd.DataFrame, query: str = "") -> pd.DataFrame:
    """Rows whose name, type, module path, precision or tactic contains ``query`` (case-insensitive)."""
    df = normalise_layers(layers) if layers is not None and "avg_ms" in layers else tidy_layers(None)
    q = query.strip().lower()
    if not q:
        return df
    text = df[["name", "layer_type", "module_path", "precision", "tactic", "segment"]].fillna("").astype(str)
    hit = text.apply(lambda col: col.str.lower().str.contains(q, regex=False)).any(axis=1)
    return df[hit].reset_index(drop=True)
