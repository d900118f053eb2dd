"""Graph segmentation: which ops TensorRT takes, which stay in PyTorch, and in how many pieces.

Two sources, cross-checked:

- Torch-TensorRT's own data: the ``DryRunTracker`` that ``compile_module`` fills on every compile
  (dry run or not) and the partitioned ``GraphModule`` it returns (the only place that also lists the
  PyTorch subgraphs between engines). The backend captures both while compiling.
- The dryrun text ``dryrun_stats_display`` renders from that tracker (``dryrun=<path>``), parsed back.

``recommend`` derives the ``min_block_size`` recommendations exactly as
``torch_tensorrt/dynamo/_DryRunTracker.py`` does: minimal = the largest engine's op count, moderate =
ceil of the mean op count (rounded to 2 decimals first; only when it differs from minimal), current =
the smallest engine's op count, each with the number of engines holding at least that many ops.
"""

from __future__ import annotations

import math
import re
from typing import Any

from engine.result import Recommendation, Segment, Segmentation

_TOTAL = re.compile(r"The graph consists of (\d+) Total Operators, of which (\d+) operators are supported")
_UNSUPPORTED_HEADER = "The following ops are currently unsupported or excluded from conversion"
_NODE = re.compile(r"^Node: (.+?), with layer location: (.*)$")
_ENGINE = re.compile(r"TRT Engine #(\d+) - Submodule name: (\S+)")
_TENSOR = re.compile(r"Tensor: (\((?:[^()]|\([^()]*\))*\)@[A-Za-z0-9_]+)")
_RECOMMEND = re.compile(
    r"- For (minimal|moderate) graph segmentation, select min_block_size=(\d+) "
    r"which would generate (\d+) TRT engine"
)
_CURRENT = re.compile(
    r"- The current level of graph segmentation is equivalent to selecting "
    r"min_block_size=(\d+) which generates (\d+) TRT engine"
)


def recommend(op_counts: list[int]) -> list[Recommendation]:
    """min_block_size recommendations from the TRT engines' op counts, as Torch-TensorRT's dryrun makes them."""
    if not op_counts:
        return []
    most, least = max(op_counts), min(op_counts)
    avg = round(sum(op_counts) / len(op_counts), 2)

    def engines(mbs: int) -> int:
        return sum(1 for c in op_counts if c >= mbs)

    out = [Recommendation("minimal", most, engines(most))]
    if math.ceil(avg) != most:
        out.append(Recommendation("moderate", math.ceil(avg), engines(math.ceil(avg))))
    out.append(Recommendation("current", least, engines(least)))
    return out


def tensor_label(shape: Any, dtype: Any) -> str:
    """``(1, 3, 224, 224)@float16``, as the dryrun prints one tensor."""
    dims = ", ".join(str(d) for d in shape)
    return f"({dims})@{str(dtype).replace('torch.', '')}"


def _labels(shapes: Any, dtypes: Any) -> list[str]:
    # one tensor: one dtype; a dynamic dimension is a (min, max) pair, e.g. ((1, 8), 3, 224, 224)
    if isinstance(shapes, tuple) and (
        all(isinstance(d, int) for d in shapes) or not isinstance(dtypes, (list, tuple, dict))
    ):
        return [tensor_label(shapes, dtypes)]
    if isinstance(shapes, (list, tuple)):
        return [lbl for s, d in zip(shapes, dtypes, strict=False) for lbl in _labels(s, d)]
    if isinstance(shapes, dict):
        return [lbl for k, s in shapes.items() for lbl in _labels(s, dtypes[k])]
    return [str(shapes)]


def parse_node_line(line: str) -> dict[str, str] | None:
    m = _NODE.match(line.strip())
    return {"op": m.group(1), "location": m.group(2)} if m else None


def from_tracker(tracker: Any, partitioned: Any = None) -> Segmentation:
    """Segmentation from a ``DryRunTracker`` and, when given, the partitioned ``GraphModule``.

    The tracker knows the TRT engines; the partitioned module's call order adds the PyTorch
    subgraphs between them (fast partitioner: ``_run_on_gpu_<n>`` children).
    """
    engines = [
        Segment(
            "tensorrt",
            i + 1,
            d.subgraph_name,
            int(d.subgraph_op_count),
            _labels(d.input_shapes, d.input_dtypes),
            _labels(d.output_shapes, d.output_dtypes),
        )
        for i, d in enumerate(tracker.per_subgraph_data)
    ]
    segments = engines
    if partitioned is not None:
        segments = _ordered_segments(partitioned, {s.name: s for s in engines})
    nodes = [n for n in (parse_node_line(line) for line in tracker.to_run_in_torch) if n]
    return Segmentation(
        total_ops=int(tracker.total_ops_in_graph),
        supported_ops=int(tracker.supported_ops_in_graph),
        unsupported_ops={str(k): int(v) for k, v in dict(tracker.unsupported_ops).items()},
        pytorch_nodes=nodes,
        segments=segments,
        recommendations=recommend([s.op_count for s in engines]),
        source="tracker",
    )


def _ordered_segments(partitioned: Any, engines: dict[str, Segment]) -> list[Segment]:
    """Every submodule call of the partitioned graph in execution order, engines from the tracker."""
    out: list[Segment] = []
    torch_index = 0
    for node in partitioned.graph.nodes:
        if node.op != "call_module":
            continue
        if node.target in engines:
            out.append(engines[node.target])
            continue
        sub = getattr(partitioned, node.target, None)
        graph = getattr(sub, "graph", None)
        if graph is None:
            continue
        torch_index += 1
        op_count = sum(1 for n in graph.nodes if n.op in ("call_function", "call_method", "call_module"))
        inputs = [lbl for a in node.args for lbl in _meta_labels(a)]
        out.append(Segment("pytorch", torch_index, str(node.target), op_count, inputs, _meta_labels(node)))
    # an engine the graph does not call (should not happen) is still reported, at the end
    seen = {s.name for s in out}
    out.extend(s for name, s in engines.items() if name not in seen)
    return out


def _meta_labels(node: Any) -> list[str]:
    val = getattr(node, "meta", {}).get("val") if hasattr(node, "meta") else None
    if val is None:
        return []
    vals = val if isinstance(val, (list, tuple)) else [val]
    return [tensor_label(tuple(v.shape), v.dtype) for v in vals if hasattr(v, "shape") and hasattr(v, "dtype")]


def parse_dryrun_text(text: str) -> Segmentation:
    """Segmentation parsed from the text ``dryrun_stats_display`` writes.

    The text lists TRT engines only (PyTorch pieces are the ``...`` between them), so segments here are
    engines; their recommendations are the ones printed, not recomputed.
    """
    if "Dry-Run Results for Graph" not in text:
        raise ValueError("not Torch-TensorRT dryrun output (no 'Dry-Run Results for Graph' header)")
    # a log may hold several reports (one per compiled graph); the last is the complete one
    text = text[text.rindex("Dry-Run Results for Graph") :]
    m = _TOTAL.search(text)
    if not m:
        raise ValueError("dryrun text without the 'The graph consists of N Total Operators' line")
    total, supported = int(m.group(1)), int(m.group(2))
    lines = text.splitlines()
    unsupported: dict[str, int] = {}
    nodes: list[dict[str, str]] = []
    segments: list[Segment] = []
    in_unsupported = False
    current: Segment | None = None
    for raw in lines:
        line = raw.strip()
        if line.startswith(_UNSUPPORTED_HEADER):
            in_unsupported = True
            continue
        if in_unsupported:
            if not line:
                in_unsupported = False
                continue
            op, _, count = line.rpartition(": ")
            if op and count.isdigit():
                unsupported[op] = int(count)
            continue
        node = parse_node_line(line)
        if node:
            nodes.append(node)
            continue
        em = _ENGINE.search(line)
        if em:
            current = Segment("tensorrt", int(em.group(1)), em.group(2), 0)
            segments.append(current)
            continue
        if current is not None:
            if line.startswith("Engine Inputs:"):
                current.inputs = _TENSOR.findall(line)
            elif line.startswith("Number of Operators in Engine:"):
                current.op_count = int(line.rsplit(":", 1)[1])
            elif line.startswith("Engine Outputs:"):
                current.outputs = _TENSOR.findall(line)
                current = None
    recs = [Recommendation(k, int(mbs), int(n)) for k, mbs, n in _RECOMMEND.findall(text)]
    cur = _CURRENT.search(text)
    if cur:
        recs.append(Recommendation("current", int(cur.group(1)), int(cur.group(2))))
    return Segmentation(
        total_ops=total,
        supported_ops=supported,
        unsupported_ops=unsupported,
        pytorch_nodes=nodes,
        segments=segments,
        recommendations=recs,
        source="dryrun_text",
    )


_DYNAMIC_DIM = re.compile(r"\(min=(\d+), max=(\d+)\)")


def _dims(labels: list[str]) -> list[str]:
    """Tensor labels with a dynamic dimension written one way: the dryrun text says ``(min=1, max=32)`` where the
    tracker's shapes say ``(1, 32)``."""
    return [_DYNAMIC_DIM.sub(r"(\1, \2)", label) for label in labels]


def cross_check(ours: Segmentation, text: Segmentation) -> list[str]:
    """Differences between the tracker-derived segmentation and the parsed dryrun text ([] when they agree)."""
    problems = []
    for attr in ("total_ops", "supported_ops", "unsupported_ops", "engine_count"):
        a, b = getattr(ours, attr), getattr(text, attr)
        if a != b:
            problems.append(f"{attr}: tracker {a} vs dryrun text {b}")
    if [n["location"] for n in ours.pytorch_nodes] != [n["location"] for n in text.pytorch_nodes]:
        problems.append(
            f"nodes set to run in Torch: tracker {len(ours.pytorch_nodes)} vs dryrun text {len(text.pytorch_nodes)}"
        )
    eng_a = [(s.name, s.op_count, _dims(s.inputs), _dims(s.outputs)) for s in ours.segments if s.kind == "tensorrt"]
    eng_b = [(s.name, s.op_count, _dims(s.inputs), _dims(s.outputs)) for s in text.segments]
    if eng_a != eng_b:
        problems.append("TRT engines (name, op count, inputs, outputs) differ between tracker and dryrun text")
    rec_a = [(r.kind, r.min_block_size, r.engines) for r in ours.recommendations]
    rec_b = [(r.kind, r.min_block_size, r.engines) for r in text.recommendations]
    if rec_a != rec_b:
        problems.append(f"recommendations: tracker {rec_a} vs dryrun text {rec_b}")
    return problems


def merge(parts: list[Segmentation]) -> Segmentation:
    """One segmentation of several compiled graphs (torch.compile graph breaks), segments renumbered in order."""
    if len(parts) == 1:
        return parts[0]
    unsupported: dict[str, int] = {}
    for p in parts:
        for op, n in p.unsupported_ops.items():
            unsupported[op] = unsupported.get(op, 0) + n
    segments = []
    counters = {"tensorrt": 0, "pytorch": 0}
    for p in parts:
        for s in p.segments:
            counters[s.kind] += 1
            segments.append(Segment(s.kind, counters[s.kind], s.name, s.op_count, s.inputs, s.outputs))
    return Segmentation(
        total_ops=sum(p.total_ops for p in parts),
        supported_ops=sum(p.supported_ops for p in parts),
        unsupported_ops=unsupported,
        pytorch_nodes=[n for p in parts for n in p.pytorch_nodes],
        segments=segments,
        recommendations=recommend([s.op_count for s in segments if s.kind == "tensorrt"]),
        source="tracker",
    )
