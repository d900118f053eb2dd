"""Large engines made readable: an ``EngineGraph`` collapsed by module (consecutive layers of one module prefix
become one node, their times summed) and searched (which nodes a query names)."""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd

from engine.profiling.engine_graph import EDGE_COLUMNS, NODE_COLUMNS, EngineGraph

NO_MODULE = "(no module named)"
SEARCHED = ("name", "module", "layer_type", "aten_ops", "tactic", "precision", "engine")


def module_key(module: str, depth: int) -> str:
    """The first ``depth`` parts of a module path (the first path where a fused layer names several)."""
    first = module.split(" + ", 1)[0]
    return ".".join(first.split(".")[:depth]) if first else ""


def default_depth(graph: EngineGraph, groups: int = 8, deepest: int = 4) -> int:
    """The shallowest module depth that tells at least ``groups`` modules apart (resnet: ``layer1.0``; a
    torchvision ViT: ``encoder.layers.encoder_layer_0``), at most ``deepest``."""
    modules = [m for m in graph.nodes["module"] if m]
    for depth in range(1, deepest + 1):
        if len({module_key(m, depth) for m in modules}) >= groups:
            return depth
    return deepest


def collapse(graph: EngineGraph, depth: int) -> EngineGraph:
    """Consecutive layers of one segment whose modules share the first ``depth`` path parts → one node (layers
    with no module name between two layers of one group join it; elsewhere they group among themselves). PyTorch
    subgraphs stay as they are. Edges are mapped onto the groups (edges inside a group dropped, duplicates merged)."""
    if depth < 1:
        raise ValueError("depth must be at least 1")
    nodes = graph.nodes
    if nodes.empty:
        return graph
    keys = [
        (seg, module_key(mod, depth) or NO_MODULE) if runtime == "tensorrt" else (seg, f"#{i}")
        for i, (seg, mod, runtime) in enumerate(nodes[["segment", "module", "runtime"]].itertuples(index=False))
    ]
    _fill_gaps(keys)
    group_of: dict[str, int] = {}
    groups: list[list[int]] = []
    for i, key in enumerate(keys):
        if i == 0 or key != keys[i - 1]:
            groups.append([])
        groups[-1].append(i)
        group_of[nodes["node_id"].iat[i]] = len(groups) - 1
    rows = []
    for members in groups:
        part = nodes.iloc[members]
        first = part.iloc[0]
        if len(members) == 1:
            rows.append(first.to_dict())
            continue
        module = keys[members[0]][1]
        times = part["avg_ms"].astype(float)
        types = Counter(part["layer_type"])
        rows.append(
            {
                **dict.fromkeys(NODE_COLUMNS, ""),
                "node_id": f"{first['segment']}:{module}@{first['node_id'].rsplit(':', 1)[1]}",
                "segment": first["segment"],
                "engine": first["engine"],
                "runtime": first["runtime"],
                "name": module,
                "layer_type": ", ".join(f"{t or '?'} ×{n}" for t, n in types.most_common(4)),
                "module": module if module != NO_MODULE else "",
                "module_source": "group",
                "aten_ops": ", ".join(dict.fromkeys(o for ops in part["aten_ops"] for o in ops.split(", ") if o)),
                "precision": ", ".join(dict.fromkeys(p for p in part["precision"] if p)),
                "input_shapes": first["input_shapes"],
                "output_shapes": part.iloc[-1]["output_shapes"],
                "avg_ms": times.sum() if times.notna().any() else math.nan,
                "layers": int(part["layers"].sum()),
            }
        )
    out = pd.DataFrame(rows, columns=NODE_COLUMNS)
    out["order"] = range(len(out))
    total = out["avg_ms"].sum(skipna=True)
    out["share"] = out["avg_ms"] / total if total > 0 else math.nan
    ids = list(out["node_id"])
    e = graph.edges
    mapped = pd.DataFrame(
        {
            "source": [ids[group_of[s]] for s in e["source"]],
            "target": [ids[group_of[t]] for t in e["target"]],
            "tensor": e["tensor"],
            "kind": e["kind"],
        },
        columns=EDGE_COLUMNS,
    )
    mapped = mapped[mapped["source"] != mapped["target"]].drop_duplicates(["source", "target"], ignore_index=True)
    return EngineGraph(out, mapped, graph.notes, graph.engines_from_layer_info)


def _fill_gaps(keys: list[tuple[str, str]]) -> None:
    """Unnamed layers that run between two layers of the same module group (Myelin's reshapes, signals and waits
    inside a block) join that group: a group is a stretch of execution, and it stays one stretch."""
    last_named: int | None = None
    for i, key in enumerate(keys):
        if key[1] == NO_MODULE:
            continue
        if last_named is not None and i - last_named > 1 and keys[last_named] == key:
            for j in range(last_named + 1, i):
                keys[j] = key
        last_named = i


def matching(nodes: pd.DataFrame, query: str) -> pd.Series:
    """Which nodes a query names: every whitespace-separated term in one of ``SEARCHED`` (case-insensitive)."""
    terms = query.lower().split()
    if not terms or nodes.empty:
        return pd.Series(True, index=nodes.index)
    text = nodes[list(SEARCHED)].astype(str).agg(" ".join, axis=1).str.lower()
    hit = pd.Series(True, index=nodes.index)
    for term in terms:
        hit &= text.str.contains(term, regex=False)
    return hit


def engine_summary(graph: EngineGraph) -> pd.DataFrame:
    """One row per engine / PyTorch subgraph: layers, time, share, the slowest layer."""
    cols = ["engine", "runtime", "layers", "avg_ms", "share", "slowest"]
    if graph.nodes.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for engine, part in graph.nodes.groupby("engine", sort=False):
        times = part["avg_ms"].astype(float)
        slowest = part.loc[times.idxmax(), "name"] if times.notna().any() else ""
        rows.append(
            {
                "engine": engine,
                "runtime": part["runtime"].iloc[0],
                "layers": int(part["layers"].sum()),
                "avg_ms": times.sum() if times.notna().any() else math.nan,
                "share": part["share"].astype(float).sum() if part["share"].notna().any() else math.nan,
                "slowest": slowest,
            }
        )
    return pd.DataFrame(rows, columns=cols)


DETAIL_FIELDS = (
    ("name", "layer"),
    ("engine", "engine / subgraph"),
    ("layer_type", "layer type"),
    ("avg_ms", "time per inference (ms, profiling on)"),
    ("share", "share of profiled time"),
    ("layers", "layers"),
    ("module", "PyTorch module"),
    ("module_source", "module read from"),
    ("aten_ops", "converted ops"),
    ("precision", "precision"),
    ("formats", "output format / datatype"),
    ("tactic", "tactic / kernel"),
    ("stream", "CUDA stream"),
    ("input_shapes", "input shapes"),
    ("output_shapes", "output shapes"),
    ("inputs", "input tensors"),
    ("outputs", "output tensors"),
)


def node_details(graph: EngineGraph, node_id: str) -> pd.DataFrame:
    """One node's fields that hold something, as (field, value) rows, plus the nodes it reads from and feeds."""
    hit = graph.nodes[graph.nodes["node_id"] == node_id]
    if hit.empty:
        return pd.DataFrame(columns=["field", "value"])
    node = hit.iloc[0]
    rows = []
    for col, label in DETAIL_FIELDS:
        value = node[col]
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            continue
        if col == "avg_ms":
            value = f"{value:.4f}"
        elif col == "share":
            value = f"{value:.2%}"
        rows.append({"field": label, "value": str(value)})
    names = dict(zip(graph.nodes["node_id"], graph.nodes["name"], strict=True))
    e = graph.edges
    for label, mine, other in (("reads from", "target", "source"), ("feeds", "source", "target")):
        linked = list(dict.fromkeys(e.loc[e[mine] == node_id, other]))
        if linked:
            rows.append({"field": label, "value": "; ".join(str(names.get(n, n)) for n in linked)})
    return pd.DataFrame(rows, columns=["field", "value"])
