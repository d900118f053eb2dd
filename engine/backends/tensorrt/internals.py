"""Every private Torch-TensorRT symbol the backend touches, behind one door, with feature detection.

The backend reads Torch-TensorRT's own bookkeeping while it compiles (``compile_module`` fills a
``DryRunTracker``, ``convert_module`` builds one engine, the partitioners split the graph) and, on
Torch-TensorRT 2.11, profiles the Python runtime's engines through its ``tensorrt`` module. None of that
is public API, so each symbol is declared here once (``SYMBOLS``: module, attribute, what it is used for,
and what happens when it is missing) and looked up only through ``resolve`` / ``require``.

Versions this is checked against (tests/test_internals.py reads each wheel's source without installing it):

- torch-tensorrt(-rtx) 2.11: separate Python and C++ runtimes (``_PythonTorchTensorRTModule``).
- torch-tensorrt 2.14: the Python runtime is merged into the C++ one: ``_PythonTorchTensorRTModule`` is gone
  and ``use_python_runtime`` is a deprecated no-op (``dynamo.compile`` warns; ``torch.compile`` drops the
  option). ``Features.python_runtime`` is False there, the runtime knob is refused with
  ``PYTHON_RUNTIME_MERGED``, and per-layer profiling goes through the C++ runtime's trex files. Since 2.13
  ``dynamo.compile`` has no ``enabled_precisions`` / ``use_explicit_typing`` (full TensorRT 11 is strongly typed):
  ``Features.strongly_typed`` is True and the model's dtypes carry the precision, as on TensorRT-RTX.

What the installed frontends read is taken from ``dynamo.compile``'s signature and ``CompilationSettings``'
fields (``compile_keywords``); engine/backends/tensorrt/keywords.py checks every keyword the backend passes
against it, since Torch-TensorRT ignores an unknown one without a word.

A symbol with a ``fallback`` may be missing: feature detection says so and the backend takes the fallback.
A symbol without one is required: ``require`` raises ``TorchTensorRTMismatch`` naming it and the version.

``torch_tensorrt`` itself raises on import without a driver, so nothing here imports it at module level.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.backends.tensorrt.keywords import TORCH_COMPILE_OPTIONS_READ, CompileKeywords
from engine.errors import RunError


@dataclass(frozen=True)
class PrivateSymbol:
    """One attribute of a Torch-TensorRT module the backend uses (``name`` may be ``Class.method``)."""

    module: str
    name: str
    used_for: str
    fallback: str = ""  # "" = required; else what the backend does without it
    params: tuple[str, ...] = ()  # parameters of a function/method the backend relies on, by name
    fields: tuple[str, ...] = ()  # attributes of a (data)class the backend reads

    @property
    def required(self) -> bool:
        return not self.fallback

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


_C = "torch_tensorrt.dynamo._compiler"
SYMBOLS: dict[str, PrivateSymbol] = {}  # keyed by a short name, filled below


def _add(key: str, symbol: PrivateSymbol) -> None:
    SYMBOLS[key] = symbol


_add(
    "features",
    PrivateSymbol(
        "torch_tensorrt._features",
        "ENABLED_FEATURES",
        "flavour detection (TensorRT-RTX or full TensorRT)",
        fields=("tensorrt_rtx",),
    ),
)
_add(
    "compile_module",
    PrivateSymbol(
        _C,
        "compile_module",
        "wrapped while compiling: partitioned graphs, early returns, require_full_compilation",
        params=("gm", "sample_arg_inputs", "sample_kwarg_inputs", "settings"),
    ),
)
_add(
    "convert_module",
    PrivateSymbol(
        _C,
        "convert_module",
        "wrapped: one call per engine (build time, progress)",
        params=("module", "inputs", "settings", "name"),
    ),
)
_add(
    "compiler_dryrun_display",
    PrivateSymbol(_C, "dryrun_stats_display", "wrapped: receives the DryRunTracker of every compile_module call"),
)
_add(
    "backend_compile_module",
    PrivateSymbol(
        "torch_tensorrt.dynamo.backend.backends",
        "compile_module",
        "the torch_compile frontend's own reference to compile_module, wrapped the same way",
    ),
)
_add(
    "fast_partition",
    PrivateSymbol(
        "torch_tensorrt.dynamo.partitioning", "fast_partition", "wrapped: partition time and the engine submodule names"
    ),
)
_add(
    "global_partition",
    PrivateSymbol(
        "torch_tensorrt.dynamo.partitioning",
        "global_partition",
        "wrapped: partition time and the engine submodule names",
    ),
)
_add(
    "graph_converter_support",
    PrivateSymbol(
        "torch_tensorrt.dynamo.partitioning",
        "get_graph_converter_support",
        "op counts of a graph compile_module skipped (too few supported ops)",
        params=("graph_module", "torch_executed_ops"),
    ),
)
_add(
    "op_support_tester",
    PrivateSymbol(
        "torch_tensorrt.dynamo.partitioning._adjacency_partitioner",
        "OpSupportTester",
        "naming the unsupported ops when require_full_compilation fails",
        fallback="the error says 'see the log' instead of listing the ops",
        fields=("unsupported_operators",),
    ),
)
_add(
    "dryrun_tracker",
    PrivateSymbol(
        "torch_tensorrt.dynamo._DryRunTracker",
        "DryRunTracker",
        "segmentation (engine.profiling.segmentation)",
        fields=(
            "total_ops_in_graph",
            "supported_ops_in_graph",
            "per_subgraph_data",
            "unsupported_ops",
            "to_run_in_torch",
        ),
    ),
)
_add(
    "per_subgraph_data",
    PrivateSymbol(
        "torch_tensorrt.dynamo._DryRunTracker",
        "PerSubgraphData",
        "per-engine op counts and I/O",
        fields=("subgraph_name", "subgraph_op_count", "input_shapes", "input_dtypes", "output_shapes", "output_dtypes"),
    ),
)
_add(
    "dryrun_display",
    PrivateSymbol(
        "torch_tensorrt.dynamo._DryRunTracker",
        "dryrun_stats_display",
        "renders the dryrun text the segmentation is cross-checked against",
        fallback="no dryrun text: the segmentation is not cross-checked",
        params=("dryrun_tracker", "dryrun_enabled"),
    ),
)
_add(
    "trt_module",
    PrivateSymbol(
        "torch_tensorrt.dynamo.runtime._TorchTensorRTModule",
        "TorchTensorRTModule",
        "the C++ runtime's engine module: engine count, engine bytes, layer info",
        fields=("serialized_engine",),
    ),
)
_add(
    "trt_module_enable_profiling",
    PrivateSymbol(
        "torch_tensorrt.dynamo.runtime._TorchTensorRTModule",
        "TorchTensorRTModule.enable_profiling",
        "per-layer pass on the C++ runtime (trex files)",
        params=("profiling_results_dir", "profile_format"),
    ),
)
_add(
    "trt_module_layer_info",
    PrivateSymbol(
        "torch_tensorrt.dynamo.runtime._TorchTensorRTModule",
        "TorchTensorRTModule.get_layer_info",
        "engine layer information (plan fingerprint)",
    ),
)
_add(
    "python_trt_module",
    PrivateSymbol(
        "torch_tensorrt.dynamo.runtime._PythonTorchTensorRTModule",
        "PythonTorchTensorRTModule",
        "the Python runtime (compile.use_python_runtime) and its IProfiler-based per-layer pass",
        fallback="Python runtime merged into the C++ one (2.12+): the runtime knob is refused as not applicable",
    ),
)
_add(
    "python_runtime_trt",
    PrivateSymbol(
        "torch_tensorrt.dynamo.runtime._PythonTorchTensorRTModule",
        "trt",
        "the tensorrt module the Python runtime uses (its IProfiler class)",
        fallback="no Python runtime: its per-layer profiler is not needed",
    ),
)

_add(
    "dynamo_compile",
    PrivateSymbol(
        _C,
        "compile",
        "the dynamo frontend's entry: its named parameters are the keywords it reads (CompileKeywords)",
    ),
)
_add(
    "compilation_settings",
    PrivateSymbol(
        "torch_tensorrt.dynamo._settings",
        "CompilationSettings",
        "the torch_compile frontend's options: a name that is not one of its fields is dropped (CompileKeywords)",
    ),
)

PYTHON_RUNTIME_MERGED = (
    "not applicable with this Torch-TensorRT: its Python runtime is merged into the C++ one "
    "(use_python_runtime is a deprecated no-op since 2.12); engines run on the C++ runtime"
)


class TorchTensorRTMismatch(RunError):
    """The installed Torch-TensorRT lacks an internal the dashboard needs."""


def _resolve_in(module: Any, name: str) -> Any:
    obj = module
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def resolve(key: str) -> Any | None:
    """The symbol's object, or None where this Torch-TensorRT lacks it (the fallback applies)."""
    return _resolve_symbol(SYMBOLS[key])


def _resolve_symbol(s: PrivateSymbol) -> Any | None:
    try:
        return _resolve_in(importlib.import_module(s.module), s.name)
    except (ImportError, AttributeError):
        return None


def require(key: str) -> Any:
    """The symbol's object; raises ``TorchTensorRTMismatch`` naming it when missing."""
    obj = resolve(key)
    if obj is None:
        s = SYMBOLS[key]
        raise TorchTensorRTMismatch(
            f"This Torch-TensorRT ({version() or 'unknown version'}) has no {s.dotted}, which the dashboard uses "
            f"for {s.used_for}.",
            "Install the Torch-TensorRT that requirements-gpu.txt pins, or a version tests/test_internals.py "
            "checks (2.11, 2.14).",
        )
    return obj


def version() -> str | None:
    with contextlib.suppress(Exception):
        return str(importlib.import_module("torch_tensorrt").__version__)
    return None


def runtime_present(symbol: PrivateSymbol) -> bool:
    """Whether the imported Torch-TensorRT has ``symbol`` (only on a machine where it imports)."""
    return _resolve_symbol(symbol) is not None


@dataclass(frozen=True)
class Features:
    """What the installed Torch-TensorRT offers, as the backend and the capability matrix need it."""

    rtx: bool
    strongly_typed: bool  # the model's and inputs' dtypes decide the precision (TensorRT-RTX; full TensorRT
    # from Torch-TensorRT 2.13, whose dynamo.compile has no enabled_precisions): fp16 casts the model
    keywords: CompileKeywords
    python_runtime: bool  # a separate Python runtime exists (compile.use_python_runtime applies)
    python_runtime_reason: str  # why not, "" when it exists
    op_names_on_failure: bool  # OpSupportTester can list unsupported ops
    dryrun_text: bool  # dryrun_stats_display can render the text to cross-check

    @classmethod
    def detect(cls, present: Callable[[PrivateSymbol], bool], rtx: bool, keywords: CompileKeywords) -> Features:
        """Feature flags from ``present`` (a symbol → exists check) and ``keywords``: the imported package at run
        time, or a wheel's source in tests (the same decisions, taken without installing it)."""
        python_runtime = present(SYMBOLS["python_trt_module"])
        return cls(
            rtx=rtx,
            strongly_typed=rtx or not keywords.weak_typing,
            keywords=keywords,
            python_runtime=python_runtime,
            python_runtime_reason="" if python_runtime else PYTHON_RUNTIME_MERGED,
            op_names_on_failure=present(SYMBOLS["op_support_tester"]),
            dryrun_text=present(SYMBOLS["dryrun_display"]),
        )


def features() -> Features:
    """The installed Torch-TensorRT's features (imports it: GPU code path only)."""
    enabled = require("features")
    rtx = bool(getattr(enabled, "tensorrt_rtx", False))
    return Features.detect(runtime_present, rtx=rtx, keywords=compile_keywords())


def compile_keywords() -> CompileKeywords:
    """What the installed frontends read (imports torch_tensorrt: GPU code path only)."""
    params = inspect.signature(require("dynamo_compile")).parameters.values()
    named = {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    fields = {f.name for f in dataclasses.fields(require("compilation_settings"))}
    return CompileKeywords(frozenset(named), frozenset(fields | set(TORCH_COMPILE_OPTIONS_READ)))


def is_rtx() -> bool:
    return features().rtx


def trt_module_class_names() -> tuple[str, ...]:
    """Class names of the engine modules the partitioner puts into a compiled graph."""
    names = ["TorchTensorRTModule"]
    if resolve("python_trt_module") is not None:
        names.append("PythonTorchTensorRTModule")
    return tuple(names)


def is_python_runtime_module(module: Any) -> bool:
    cls = resolve("python_trt_module")
    return cls is not None and isinstance(module, cls)


def make_layer_profiler() -> Any:
    """A ``tensorrt.IProfiler`` that keeps every reported layer time, built on the Python runtime's own
    ``tensorrt`` module (TensorRT-RTX or full TensorRT, whichever that runtime loaded)."""
    trt = require("python_runtime_trt")

    class _Recorder(trt.IProfiler):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.records: list[tuple[str, float]] = []

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.records.append((layer_name, ms))

    return _Recorder()


@contextlib.contextmanager
def patched(targets: dict[str, Callable[[Callable], Callable]]) -> Any:
    """Replace symbols (by key) with ``wrap(original)`` for the duration of the block, then restore them.

    A symbol imported under several names (``compile_module`` in ``_compiler`` and in the torch_compile
    backend) is wrapped at each name it is called through.
    """
    done: list[tuple[Any, str, Any]] = []
    try:
        for key, wrap in targets.items():
            s = SYMBOLS[key]
            module = importlib.import_module(s.module)
            original = require(key)
            setattr(module, s.name, wrap(original))
            done.append((module, s.name, original))
        yield
    finally:
        for module, name, original in reversed(done):
            setattr(module, name, original)


def module_available() -> bool:
    """Whether torch_tensorrt is installed at all (does not import it)."""
    return importlib.util.find_spec("torch_tensorrt") is not None
