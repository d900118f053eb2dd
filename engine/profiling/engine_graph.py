"""TensorRT engines as graphs: the engine inspector's layer information (``get_layer_info()``, the
``<engine>_layer_information.json`` files ``Debugger(profile_format="trex")`` writes) → a DataFrame of nodes (layers
in execution order) and one of edges (the tensors between them), with each layer's time where a profile has it.

A run's graph strings its engines and the PyTorch-fallback subgraphs between them together in execution order: an
engine whose layer information was kept is drawn from it (edges = the tensors its layers pass on); one whose
information was not kept (a run stored with only its layer table) is drawn from the layer table, its layers linked
in execution order only, and ``EngineGraph.notes`` says so. Each PyTorch subgraph is one node.

Fused layers are mapped back to the modules they came from by what Torch-TensorRT's converters wrote into names:
the layer's own name first, then the tensors it writes (a Myelin layer ``__myl_TranConc…`` writing
``[NORMALIZATION]-[aten_ops.native_layer_norm.default]-[encoder.layers.encoder_layer_0.ln_1/…]`` came from that
layer norm); ``module_source`` says which one answered. Nothing is guessed from the tensors a layer reads or from
its neighbours. Reading a file never executes anything: it is JSON, parsed as data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from engine.errors import UserError
from engine.profiling.trt_profile import (
    _CONVERTER_NAME,
    EXECUTION_PROFILE_SUFFIX,
    LAYER_INFO_SUFFIX,
    ProfileFormatError,
    module_path,
    parse_trex_profile,
    precision_of,
    segment_id,
    submodule_number,
)
from engine.result import FUSED, RunResult

NODE_COLUMNS = [
    "node_id",  # "<segment>:<index in segment>", or "<segment>:<module>@<first index>" for a collapsed group
    "order",  # position in the run's execution order (0-based)
    "segment",  # "trt_engine_0" / "pytorch_1" (the partitioner's numbering, as in the layer table)
    "engine",  # "TensorRT engine 1" / "PyTorch fallback 1": what a reader calls it, numbered in execution order
    "runtime",  # "tensorrt" | "pytorch"
    "name",  # layer name (or the PyTorch submodule name)
    "layer_type",
    "module",  # nn.Module path the layer came from ("" when no name says)
    "module_source",  # "layer name" | "output tensor" | "" (which name gave ``module``)
    "aten_ops",  # converter targets named in the layer's name or its tensors: "aten_ops.convolution.default"
    "precision",
    "tactic",
    "formats",  # the outputs' Format/Datatype strings
    "input_shapes",
    "output_shapes",
    "inputs",  # tensor names read, "; "-joined
    "outputs",  # tensor names written
    "stream",  # the CUDA stream the layer runs on ("" when not recorded)
    "avg_ms",  # mean time per inference from the profile; NaN when no profile times this layer
    "share",  # of the graph's timed total (0..1); NaN without a time
    "layers",  # layers this node stands for (1, or more for a collapsed group)
]
EDGE_COLUMNS = ["source", "target", "tensor", "kind"]  # kind: "tensor" | "order" | "handover"


class EngineFileError(UserError, ValueError):
    """A file given as layer information or profile is not what Torch-TensorRT writes."""


@dataclass(frozen=True)
class EngineGraph:
    nodes: pd.DataFrame  # NODE_COLUMNS, in execution order
    edges: pd.DataFrame  # EDGE_COLUMNS
    notes: tuple[str, ...] = ()  # what the graph could not show, and why
    engines_from_layer_info: tuple[str, ...] = field(default=())  # segments drawn from layer information

    @property
    def segments(self) -> list[str]:
        return list(dict.fromkeys(self.nodes["segment"]))


def _tensor_module(name: str) -> str:
    path = module_path(name)
    return "" if path == FUSED else path


def _aten_ops(names: list[str]) -> str:
    ops = [target for n in names for _t, target, _loc in _CONVERTER_NAME.findall(n)]
    return ", ".join(dict.fromkeys(ops))


def _attribution(name: str, outputs: list[str]) -> tuple[str, str]:
    own = module_path(name)
    if own and own != FUSED:
        return own, "layer name"
    # not from the tensors it reads: the layer after a layer norm reads the norm's output but is another module
    # (vit's __myl_FcAdd reads ln_1's output and is the attention's input projection)
    paths = list(dict.fromkeys(p for p in map(_tensor_module, outputs) if p))
    return (" + ".join(paths), "output tensor") if paths else ("", "")


def _parse_layers(text: str, what: str) -> list[dict | str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise EngineFileError(
            f"{what} is not JSON ({e.msg} at line {e.lineno}).",
            "Give the <engine>_layer_information.json file the Debugger wrote, or the text of get_layer_info().",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("Layers"), list):
        raise EngineFileError(
            f"{what} has no Layers list: it is not TensorRT layer information.",
            "Give the <engine>_layer_information.json file the Debugger wrote, or the text of get_layer_info().",
        )
    return data["Layers"]


def engine_nodes(
    layer_info_text: str, segment: str, times_ms: Mapping[str, float] | None = None, *, what: str = "layer information"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One engine's layer information → its nodes and the tensor edges between them (order within the engine;
    ``order`` and ``share`` are set by the caller for the whole graph). ``times_ms``: layer name → ms."""
    times_ms = times_ms or {}
    rows: list[dict[str, object]] = []
    edges: list[dict[str, str]] = []
    producer: dict[str, str] = {}  # tensor name -> the node that writes it
    for i, layer in enumerate(_parse_layers(layer_info_text, what)):
        if isinstance(layer, str):  # LAYER_NAMES_ONLY verbosity: a bare name
            layer = {"Name": layer}
        if not isinstance(layer, dict) or "Name" not in layer:
            raise EngineFileError(f"{what}: layer {i} has no Name.", "The file is not TensorRT layer information.")
        name = str(layer["Name"])
        ins = [t for t in layer.get("Inputs") or [] if isinstance(t, dict)]
        outs = [t for t in layer.get("Outputs") or [] if isinstance(t, dict)]
        in_names, out_names = [str(t.get("Name", "")) for t in ins], [str(t.get("Name", "")) for t in outs]
        node_id = f"{segment}:{i}"
        module, source = _attribution(name, out_names)
        formats = list(dict.fromkeys(str(t.get("Format/Datatype", "")) for t in outs if t.get("Format/Datatype")))
        rows.append(
            {
                "node_id": node_id,
                "segment": segment,
                "runtime": "tensorrt",
                "name": name,
                "layer_type": str(layer.get("LayerType", "")),
                "module": module,
                "module_source": source,
                "aten_ops": _aten_ops([name, *out_names]),
                "precision": precision_of(formats[0]) if formats else "",
                "tactic": str(layer.get("TacticName", "")),
                "formats": "; ".join(formats),
                "input_shapes": _shapes(ins),
                "output_shapes": _shapes(outs),
                "inputs": "; ".join(in_names),
                "outputs": "; ".join(out_names),
                "stream": str(layer.get("StreamId", "")),
                "avg_ms": times_ms.get(name, math.nan),
                "layers": 1,
            }
        )
        for tensor in in_names:
            if tensor in producer:
                edges.append({"source": producer[tensor], "target": node_id, "tensor": tensor, "kind": "tensor"})
        for tensor in out_names:
            producer[tensor] = node_id
    _drop_consumer_names(rows, edges)
    return pd.DataFrame(rows, columns=[c for c in NODE_COLUMNS if c not in ("order", "engine", "share")]), (
        pd.DataFrame(edges, columns=EDGE_COLUMNS)
    )


def _drop_consumer_names(rows: list[dict[str, object]], edges: list[dict[str, str]]) -> None:
    """A tensor Myelin names after a converter layer may be that layer's input: resnet50's fused stem
    (``__myl_CorrMulAddRelu``) writes ``[MAX]-[aten_ops.max_pool2d.default]-[maxpool/…]_output.1_3``, which the
    layer named ``[MAX]-…-[maxpool/…]`` reads. Such a name tells the reader, not the writer: neither the writer's
    module nor its converted ops are read from it."""
    index = {str(r["node_id"]): r for r in rows}
    for row in rows:
        own: list[str] = []
        for tensor in str(row["outputs"]).split("; "):
            path = _tensor_module(tensor)
            readers = [index[e["target"]] for e in edges if e["source"] == row["node_id"] and e["tensor"] == tensor]
            if path and not any(r["module_source"] == "layer name" and path in str(r["module"]) for r in readers):
                own.append(tensor)
        row["aten_ops"] = _aten_ops([str(row["name"]), *own])
        if row["module_source"] == "output tensor":
            paths = list(dict.fromkeys(_tensor_module(t) for t in own))
            row["module"], row["module_source"] = (" + ".join(paths), "output tensor") if paths else ("", "")


def _table_nodes(rows: pd.DataFrame, segment: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A segment drawn from the run's layer table: its rows, linked in execution order."""
    nodes = pd.DataFrame(
        {
            "node_id": [f"{segment}:{i}" for i in range(len(rows))],
            "segment": segment,
            "runtime": rows["runtime"].to_numpy(),
            "name": rows["name"].to_numpy(),
            "layer_type": rows["layer_type"].to_numpy(),
            "module": [m if m != FUSED else "" for m in rows["module_path"]],
            "module_source": ["layer name" if m and m != FUSED else "" for m in rows["module_path"]],
            "aten_ops": [_aten_ops([n]) for n in rows["name"]],
            "precision": rows["precision"].to_numpy(),
            "tactic": rows["tactic"].to_numpy(),
            "formats": "",
            "input_shapes": rows["input_shapes"].to_numpy(),
            "output_shapes": rows["output_shapes"].to_numpy(),
            "inputs": "",
            "outputs": "",
            "stream": "",
            "avg_ms": rows["avg_ms"].astype(float).to_numpy(),
            "layers": 1,
        }
    )
    ids = list(nodes["node_id"])
    edges = pd.DataFrame(
        [{"source": a, "target": b, "tensor": "", "kind": "order"} for a, b in zip(ids, ids[1:], strict=False)],
        columns=EDGE_COLUMNS,
    )
    return nodes, edges


def assemble(parts: list[tuple[pd.DataFrame, pd.DataFrame]], notes: list[str], from_info: list[str]) -> EngineGraph:
    """Segments' nodes and edges in execution order → one graph: global order, engine names, shares, and a
    hand-over edge from each segment's last node to the next segment's first."""
    nodes = pd.concat([n for n, _ in parts], ignore_index=True) if parts else pd.DataFrame(columns=NODE_COLUMNS)
    edges = [e for _, e in parts if not e.empty]
    handovers = []
    for (a, _), (b, _) in zip(parts, parts[1:], strict=False):
        if not a.empty and not b.empty:
            handovers.append(
                {"source": a["node_id"].iloc[-1], "target": b["node_id"].iloc[0], "tensor": "", "kind": "handover"}
            )
    edges.append(pd.DataFrame(handovers, columns=EDGE_COLUMNS))
    nodes["order"] = range(len(nodes))
    counters = {"tensorrt": 0, "pytorch": 0}
    names = {}
    for seg, runtime in nodes[["segment", "runtime"]].drop_duplicates("segment").itertuples(index=False):
        counters[runtime] = counters.get(runtime, 0) + 1
        names[seg] = f"{'TensorRT engine' if runtime == 'tensorrt' else 'PyTorch fallback'} {counters[runtime]}"
    nodes["engine"] = nodes["segment"].map(names)
    total = nodes["avg_ms"].sum(skipna=True) if len(nodes) else 0.0
    nodes["share"] = nodes["avg_ms"] / total if total > 0 else math.nan
    return EngineGraph(
        nodes[NODE_COLUMNS].reset_index(drop=True),
        pd.concat(edges, ignore_index=True)[EDGE_COLUMNS],
        tuple(notes),
        tuple(from_info),
    )


def _pytorch_node(segment: str, name: str, avg_ms: float, op_count: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    row: dict[str, object] = dict.fromkeys(NODE_COLUMNS, "")
    row.update(
        node_id=f"{segment}:0",
        segment=segment,
        runtime="pytorch",
        name=name,
        layer_type="PyTorch subgraph" + (f" ({op_count} ops)" if op_count else ""),
        avg_ms=avg_ms,
        layers=1,
    )
    columns = [c for c in NODE_COLUMNS if c not in ("order", "engine", "share")]
    return pd.DataFrame([row], columns=columns), pd.DataFrame(columns=EDGE_COLUMNS)


def for_run(run: RunResult, raw_text: Callable[[str], str | None]) -> EngineGraph:
    """A stored run's engines and PyTorch subgraphs in execution order. ``raw_text(file name)`` reads one of the
    run's raw files (None when it has none of that name)."""
    info_files = {segment_id(a[: -len(LAYER_INFO_SUFFIX)]): a for a in run.artifacts if a.endswith(LAYER_INFO_SUFFIX)}
    op_counts = {segment_id(s.name): s.op_count for s in (run.segmentation.segments if run.segmentation else [])}
    parts, notes, from_info = [], [], []
    layers = run.layers.sort_values("order", kind="stable")
    segments = list(dict.fromkeys(layers["segment"])) if not layers.empty else []
    if not segments and run.segmentation:  # no layer table: the segmentation's pieces, untimed
        segments = [segment_id(s.name) for s in run.segmentation.segments]
    untimed_from_table = []
    for seg in segments:
        rows = layers[layers["segment"] == seg]
        if seg.startswith("pytorch"):
            ms = float(rows["avg_ms"].sum()) if not rows.empty else math.nan
            parts.append(_pytorch_node(seg, rows["name"].iloc[0] if not rows.empty else seg, ms, op_counts.get(seg)))
            continue
        text = raw_text(info_files[seg]) if seg in info_files else None
        if text is not None:
            times = dict(zip(rows["name"], rows["avg_ms"].astype(float), strict=True))
            parts.append(engine_nodes(text, seg, times, what=info_files[seg]))
            from_info.append(seg)
        elif not rows.empty:
            parts.append(_table_nodes(rows, seg))
            untimed_from_table.append(seg)
        else:
            notes.append(f"{seg}: no layer information and no profiled layers were stored.")
    if untimed_from_table:
        notes.append(
            "The layer information of "
            + ", ".join(untimed_from_table)
            + " was not kept with this run: its layers come from the profiled layer table and are linked in "
            "execution order only (the tensors between them are not known)."
        )
    if layers.empty and segments:
        notes.append("This run has no per-layer profile: the engines and PyTorch subgraphs are shown without times.")
    return assemble(parts, notes, from_info)


def from_files(files: Mapping[str, str]) -> EngineGraph:
    """Files a user gives (their own ``Debugger(profile_format="trex")`` output, or saved ``get_layer_info()``
    text): each ``<engine>_layer_information.json`` with the ``<engine>_engine_execution_profile.trace`` of the
    same engine when given; a file of another name is taken as one engine's layer information. Engines are
    ordered by the partitioner's numbering."""
    infos: dict[str, tuple[str, str]] = {}  # key -> (file name, text)
    profiles: dict[str, str] = {}
    for name, text in files.items():
        if name.endswith(EXECUTION_PROFILE_SUFFIX):
            profiles[name[: -len(EXECUTION_PROFILE_SUFFIX)]] = text
        elif name.endswith(LAYER_INFO_SUFFIX):
            infos[name[: -len(LAYER_INFO_SUFFIX)]] = (name, text)
        elif name.endswith((".trace", ".csv", ".txt")) and not name.endswith(".json"):
            continue  # input/output profiles and other files the Debugger writes beside them
        else:
            infos[name.rsplit(".", 1)[0]] = (name, text)
    if not infos:
        raise EngineFileError(
            "None of the files is layer information.",
            f"Give a *{LAYER_INFO_SUFFIX} file (Debugger(save_layer_info=True)) or get_layer_info() saved as JSON.",
        )
    parts, notes = [], []
    for key in sorted(infos, key=lambda k: (submodule_number(k), k)):
        file_name, text = infos[key]
        times: dict[str, float] = {}
        if key in profiles:
            try:
                times = {t.name: t.avg_ms for t in parse_trex_profile(profiles[key])}
            except ProfileFormatError as e:
                notes.append(f"{key}{EXECUTION_PROFILE_SUFFIX} was not used: {e}")
        else:
            notes.append(f"{file_name}: no execution profile given beside it, so its layers have no times.")
        seg = segment_id(key) if key.startswith("_run_on_") else key
        parts.append(engine_nodes(text, seg, times, what=file_name))
    return assemble(parts, notes, [p[0]["segment"].iloc[0] for p in parts if not p[0].empty])


def _shapes(tensors: list[dict]) -> str:
    return "; ".join("x".join(str(d) for d in t.get("Dimensions", [])) for t in tensors if "Dimensions" in t)
