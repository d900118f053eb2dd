"""What Torch-TensorRT tells us while it compiles, read from its own bookkeeping (no log parsing).

``compile_module`` fills a ``DryRunTracker`` on every compile and hands it to ``dryrun_stats_display``;
wrapping that function, ``convert_module`` (one call per engine) and the partitioners gives the
segmentation, the engine count and the stage times. The wrapped symbols come from ``internals``.
Also here: the errors a failing compile is turned into, and the engine / PyTorch submodules of the
partitioned graphs in execution order.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.backends.base import ProgressFn
from engine.backends.tensorrt import internals
from engine.errors import EngineBuildError, UnsupportedOpError
from engine.profiling import segmentation as seg
from engine.result import Segmentation

log = logging.getLogger(__name__)

_LAYER_NAME = re.compile(r"\[[A-Za-z0-9_]+\]-\[[^\]]*\]-\[[^\]]*\]")
_CONVERTER_MISSING = re.compile(r"(?:Conversion of function|No conversion rule found for)\s+(\S+)")
_OOM_TEXT = (
    "out of memory",
    "outofmemory",
    "cudaerrormemoryallocation",
    "could not be allocated",
    "failed to allocate",
)


@dataclass
class CompileCapture:
    """Torch-TensorRT's bookkeeping of every ``compile_module`` call during one compile."""

    trackers: list[Any] = field(default_factory=list)
    partitioned: list[Any] = field(default_factory=list)  # compile_module's return values
    uncompiled: list[tuple[int, int]] = field(default_factory=list)  # (supported, total) of skipped graphs
    engine_names: list[str] = field(default_factory=list)  # TRT submodules the partitioner made
    build_s: list[tuple[str, float]] = field(default_factory=list)
    partition_s: float = 0.0
    first_compile_module_t: float | None = None


def is_oom(e: BaseException) -> bool:
    text = str(e).lower()
    return isinstance(e, torch.OutOfMemoryError) or any(t in text for t in _OOM_TEXT)


@contextlib.contextmanager
def capture_compile(progress: ProgressFn) -> Iterator[CompileCapture]:
    """Wrap Torch-TensorRT's compile internals for the duration of one compile (both frontends)."""
    cap = CompileCapture()
    count_support = internals.require("graph_converter_support")

    def display(orig: Callable) -> Callable:
        def wrapped(tracker: Any, dryrun_enabled: Any) -> Any:
            cap.trackers.append(tracker)
            return orig(tracker, dryrun_enabled)

        return wrapped

    def partition(orig: Callable) -> Callable:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            progress("partition", None, "partitioning the graph")
            t0 = time.perf_counter()
            out = orig(*args, **kwargs)
            cap.partition_s += time.perf_counter() - t0
            gm = out[0] if isinstance(out, tuple) else out
            cap.engine_names.extend(n for n, _ in gm.named_children() if "_run_on_acc" in n)
            return out

        return wrapped

    def convert(orig: Callable) -> Callable:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            name = kwargs.get("name", "")
            k = len(cap.build_s) + 1
            n = max(len(cap.engine_names), k)
            progress("build", (k - 1) / n, f"engine {k}/{n}")
            t0 = time.perf_counter()
            try:
                out = orig(*args, **kwargs)
            except Exception as e:
                if is_oom(e):
                    raise
                raise build_error(e, name, k, n, args[0] if args else kwargs.get("module")) from e
            cap.build_s.append((name, time.perf_counter() - t0))
            progress("build", k / n, f"engine {k}/{n}")
            return out

        return wrapped

    def compile_module(orig: Callable) -> Callable:
        def wrapped(gm: Any, *args: Any, **kwargs: Any) -> Any:
            if cap.first_compile_module_t is None:
                cap.first_compile_module_t = time.perf_counter()
            settings = kwargs.get("settings", args[2] if len(args) > 2 else None)
            n_trackers = len(cap.trackers)
            try:
                out = orig(gm, *args, **kwargs)
            except Exception as e:
                if settings is not None and settings.require_full_compilation and "not fully supported" in str(e):
                    raise unsupported_error(gm, settings) from e
                raise
            if len(cap.trackers) == n_trackers and settings is not None:
                # compile_module returned early (too few supported ops): no tracker, no engine
                cap.uncompiled.append(count_support(gm, settings.torch_executed_ops))
            cap.partitioned.append(out)
            return out

        return wrapped

    # one wrapper object for both names compile_module is called through
    shared: dict[str, Callable] = {}

    def compile_module_once(orig: Callable) -> Callable:
        if "fn" not in shared:
            shared["fn"] = compile_module(orig)
        return shared["fn"]

    with internals.patched(
        {
            "compiler_dryrun_display": display,
            "convert_module": convert,
            "compile_module": compile_module_once,
            "backend_compile_module": compile_module_once,
            "fast_partition": partition,
            "global_partition": partition,
        }
    ):
        yield cap


def unsupported_error(gm: Any, settings: Any) -> UnsupportedOpError:
    ops: dict[str, int] = {}
    tester_cls = internals.resolve("op_support_tester")
    if tester_cls is not None:
        try:
            support = tester_cls(torch_executed_ops=settings.torch_executed_ops)
            modules = dict(gm.named_modules())
            for node in gm.graph.nodes:
                if node.op in ("call_function", "call_method", "call_module"):
                    support.is_node_supported(modules, node)
            ops = dict(support.unsupported_operators)
        except Exception:  # naming the ops is best effort; the error itself is certain
            log.exception("could not list unsupported ops")
    listed = ", ".join(f"{op} (×{n})" for op, n in ops.items()) or "see the log"
    return UnsupportedOpError(
        f"require_full_compilation is on but TensorRT cannot run every op: {listed}.",
        "Turn require_full_compilation off to let these ops run in PyTorch, or remove them from "
        "torch_executed_ops if you forced them there.",
        ops,
    )


def build_error(e: Exception, name: str, k: int, n: int, submodule: Any) -> EngineBuildError:
    text = f"{e}"
    layer = _LAYER_NAME.search(text)
    missing = _CONVERTER_MISSING.search(text)
    what = f"at layer {layer.group(0)}" if layer else f"in the converter for {missing.group(1)}" if missing else ""
    ops = ""
    graph = getattr(submodule, "graph", None)
    if graph is not None and not what:
        targets = sorted({str(nd.target) for nd in graph.nodes if nd.op == "call_function"})
        ops = f" The engine holds: {', '.join(targets[:12])}{' ...' if len(targets) > 12 else ''}."
    first = text.strip().splitlines()[0][:400] if text.strip() else type(e).__name__
    return EngineBuildError(
        f"TensorRT could not build engine {k}/{n} ({name}) {what}: {first}.{ops}",
        "Force the failing op to PyTorch with torch_executed_ops, or raise min_block_size.",
    )


def segmentation_of(cap: CompileCapture, workdir: Path) -> tuple[Segmentation | None, list[str], list[str]]:
    """Tracker-based segmentation, cross-checked against the dryrun text Torch-TensorRT renders from it.
    Returns the segmentation, warnings and the dryrun texts."""
    render = internals.resolve("dryrun_display")
    warnings: list[str] = []
    parts: list[Segmentation] = []
    texts: list[str] = []
    for i, tracker in enumerate(cap.trackers):
        partitioned = cap.partitioned[i] if i < len(cap.partitioned) else None
        ours = seg.from_tracker(tracker, partitioned)
        path = workdir / f"dryrun_{i + 1}.txt"
        if render is not None:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    render(tracker, str(path))
            except Exception as e:  # e.g. an empty graph (division by zero ops)
                warnings.append(f"dryrun text not rendered: {type(e).__name__}: {e}")
        if path.exists():
            text = path.read_text()
            texts.append(text)
            problems = seg.cross_check(ours, seg.parse_dryrun_text(text))
            warnings += [f"segmentation cross-check: {p}" for p in problems]
        parts.append(ours)
    for supported, total in cap.uncompiled:
        parts.append(Segmentation(total_ops=total, supported_ops=supported, source="tracker"))
    if not parts:
        return None, warnings, texts
    if len(parts) > 1:
        warnings.append(f"torch.compile produced {len(parts)} graphs (graph breaks); segmentation sums them.")
    return seg.merge(parts), warnings, texts


def trt_modules(cap: CompileCapture) -> list[tuple[str, Any]]:
    """TensorRT submodules of every partitioned graph, in execution order."""
    classes = internals.trt_module_class_names()
    out = []
    for gm in cap.partitioned:
        children = dict(gm.named_children())
        for node in gm.graph.nodes:
            if node.op == "call_module" and type(children.get(node.target)).__name__ in classes:
                out.append((str(node.target), children[node.target]))
    return out


def torch_submodules(cap: CompileCapture) -> list[tuple[str, Any]]:
    """PyTorch subgraphs between engines (``_run_on_gpu_<n>``), in execution order."""
    out = []
    for gm in cap.partitioned:
        children = dict(gm.named_children())
        for node in gm.graph.nodes:
            if node.op == "call_module" and "_run_on_gpu" in str(node.target):
                out.append((str(node.target), children[node.target]))
    return out
