"""Run requests: what model to build, how to compile it and how to measure it, parsed and validated.

Every knob is declared once here, as a dataclass field made by ``knob()`` whose metadata (``KnobInfo``,
engine/settings/knobs.py) carries the label, the allowed values, the help text and how each part of the
dashboard handles it. Parsing, validation, the cache key, the Torch-TensorRT arguments, the command line and the
dashboard's widgets are all generated from that one definition, so a new knob is one edit.

Defaults come from engine/settings/defaults.py, which mirrors Torch-TensorRT's own ``_defaults.py``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from engine.errors import ConfigError, shown
from engine.settings.defaults import (
    BACKENDS,
    CACHE_BUILT_ENGINES,
    CALIBRATION_BATCHES,
    DEVICES,
    FRONTENDS,
    HARDWARE_COMPATIBLE,
    INDUCTOR_MODE_FROM_BOOL,
    INDUCTOR_MODES,
    MAX_BATCH_SIZE,
    MAX_DIM,
    MIN_BLOCK_SIZE,
    MODES,
    OPTIMIZATION_LEVEL,
    OPTIMIZATION_LEVELS,
    PRECISIONS,
    QUANT_BASE_PRECISIONS,
    QUANT_SCHEMES,
    REQUIRE_FULL_COMPILATION,
    REUSE_CACHED_ENGINES,
    SPARSE_WEIGHTS,
    TRUNCATE_DOUBLE,
    USE_FAST_PARTITIONER,
    USE_PYTHON_RUNTIME,
    WORKSPACE_SIZE,
)
from engine.settings.inputs import InputSpec, check_specs, measured_shapes, parse_inputs
from engine.settings.knobs import KnobInfo, knob, knob_fields, knob_info


@dataclass(frozen=True)
class ModelSpec:
    """Which model, fed with which inputs.

    ``source`` is a registry name (``resnet18``), ``file:<name>.py`` or ``file:<name>.pt2``
    for a file in the admin-configured models directory.
    ``input_shape`` excludes the batch dimension; ``None`` takes the model's default.
    """

    source: str = knob(
        "resnet18",
        "Model",
        "A built-in model: any torchvision classification model by name "
        "(resnet50), any timm model as timm/<name>, a Hugging Face configuration as hf/<name>; or "
        "file:<name> from the models directory.",
        cli_flag="--model",
    )
    batch_size: int = knob(
        1, "Batch size", "Leading dimension of every input.", min=1, max=MAX_BATCH_SIZE, cli_flag="--batch"
    )
    input_shape: tuple[int, ...] | None = knob(
        None, "Input shape (without batch)", "e.g. 3,224,224. Empty takes the model's default.", kind="shape"
    )
    pretrained: bool = knob(
        False,
        "Pretrained weights",
        "Only if already in the local torch hub cache; nothing is downloaded.",
        advanced=True,
    )
    sequence_length: int | None = knob(
        None,
        "Sequence length",
        "Tokens per input of a text model. Empty takes the model's default (128).",
        min=1,
        max=MAX_DIM,
        nullable=True,
        added=True,
    )
    inputs: tuple[InputSpec, ...] | None = knob(
        None,
        "Inputs",
        "Per input: name, shape (batch included), dtype, integer value range and, for a dynamic "
        "engine, min/max shapes. Empty takes the model's own inputs.",
        kind="inputs",
        advanced=True,
        added=True,
    )


@dataclass(frozen=True)
class CompileSettings:
    """Torch-TensorRT knobs. Ignored (and not part of the cache key) for the eager backend."""

    frontend: str = knob(
        "dynamo",
        "Frontend",
        "dynamo: torch.export + torch_tensorrt.dynamo.compile (ahead of time). "
        "torch_compile: torch.compile(backend='tensorrt') (just in time).",
        choices=FRONTENDS,
    )
    precision: str = knob(
        "fp32",
        "Precision",
        "fp16/bf16 cast the model and inputs on TensorRT-RTX (strongly typed); "
        "on full TensorRT they set enabled_precisions.",
        choices=PRECISIONS,
        eager=True,
    )
    min_block_size: int = knob(
        MIN_BLOCK_SIZE,
        "min_block_size",
        "Fewest operators a TensorRT engine may hold; smaller blocks stay in PyTorch.",
        min=1,
        max=100_000,
        trt_kwarg="min_block_size",
    )
    optimization_level: int | None = knob(
        OPTIMIZATION_LEVEL,
        "optimization_level",
        "Builder effort 0-5: higher searches longer for faster kernels. Empty = TensorRT's default (3).",
        min=0,
        max=5,
        nullable=True,
        trt_kwarg="optimization_level",
        options=OPTIMIZATION_LEVELS,
        unset_label="default (TensorRT: 3)",
    )
    use_python_runtime: bool = knob(
        USE_PYTHON_RUNTIME,
        "Python runtime",
        "Run engines through the Python runtime instead of the C++ one.",
        trt_kwarg="use_python_runtime",
    )
    torch_executed_ops: tuple[str, ...] = knob(
        (),
        "torch_executed_ops",
        "Ops forced to run in PyTorch, e.g. torch.ops.aten.relu.default.",
        item="op names",
        trt_kwarg="torch_executed_ops",
    )
    require_full_compilation: bool = knob(
        REQUIRE_FULL_COMPILATION,
        "require_full_compilation",
        "Fail instead of falling back to PyTorch for unsupported ops.",
        advanced=True,
        trt_kwarg="require_full_compilation",
    )
    workspace_size: int = knob(
        WORKSPACE_SIZE,
        "workspace_size (bytes)",
        "Builder scratch memory limit; 0 lets TensorRT decide.",
        min=0,
        max=2**40,
        advanced=True,
        trt_kwarg="workspace_size",
    )
    truncate_double: bool = knob(
        TRUNCATE_DOUBLE, "truncate_double", "Truncate float64 to float32.", advanced=True, trt_kwarg="truncate_double"
    )
    use_fast_partitioner: bool = knob(
        USE_FAST_PARTITIONER,
        "use_fast_partitioner",
        "Fast (adjacency) partitioner instead of the global one.",
        advanced=True,
        trt_kwarg="use_fast_partitioner",
    )
    hardware_compatible: bool = knob(
        HARDWARE_COMPATIBLE,
        "hardware_compatible",
        "Build engines that run on Ampere and newer GPUs (full TensorRT only).",
        advanced=True,
        trt_kwarg="hardware_compatible",
    )
    sparse_weights: bool = knob(
        SPARSE_WEIGHTS,
        "sparse_weights",
        "Allow the builder to use structured-sparsity kernels.",
        advanced=True,
        trt_kwarg="sparse_weights",
    )
    cache_built_engines: bool = knob(
        CACHE_BUILT_ENGINES,
        "cache_built_engines",
        "Save built engines in the data directory's engine cache.",
        advanced=True,
        trt_kwarg="cache_built_engines",
    )
    reuse_cached_engines: bool = knob(
        REUSE_CACHED_ENGINES,
        "reuse_cached_engines",
        "Load engines from the engine cache instead of rebuilding.",
        advanced=True,
        trt_kwarg="reuse_cached_engines",
    )
    enable_cudagraphs: bool = knob(
        False,
        "CUDA graphs",
        "Replay the compiled module as a CUDA graph "
        "(torch_tensorrt.runtime.enable_cudagraphs): removes per-launch CPU "
        "overhead at small batch. A runtime setting; applies to both the C++ and "
        "the Python runtime.",
        added=True,
    )
    quantization: str = knob(
        "none",
        "Quantization",
        "Post-training quantization with NVIDIA ModelOpt before compiling: int8 (W8A8), "
        "int8_smoothquant, int8_weight_only, fp8, int4_awq, nvfp4. Which ones this GPU and "
        "flavour accept is checked before anything runs.",
        choices=QUANT_SCHEMES,
        with_quantization=True,
    )
    quant_base_precision: str = knob(
        "fp16",
        "Unquantized layers run in",
        "Precision of the layers and activations a scheme leaves unquantized "
        "(weight-only schemes: all activations). Replaces Precision when quantizing.",
        choices=QUANT_BASE_PRECISIONS,
        with_quantization=True,
    )
    calibration_data: str = knob(
        "random",
        "Calibration data",
        "random (accuracy not meaningful for real data), file:<name>.pt (a tensor file) "
        "or dir:<folder> (images) in the calibration data directory.",
        with_quantization=True,
    )
    calibration_batches: int = knob(
        CALIBRATION_BATCHES,
        "Calibration batches",
        "Batches fed through the model to calibrate the quantization ranges.",
        min=1,
        max=1024,
        advanced=True,
        with_quantization=True,
    )
    keep_high_precision: tuple[str, ...] = knob(
        (),
        "Keep in higher precision",
        "Module paths (e.g. layer3.4.conv2) left out of the low precision. Quantized runs: their ModelOpt "
        "quantizers are disabled, so they run in quant_base_precision. fp16/bf16 on TensorRT-RTX (strongly "
        "typed): they stay fp32, cast at their boundary. Found for you by 'Find where it breaks'.",
        item="module paths",
        advanced=True,
        added=True,
    )


@dataclass(frozen=True)
class MeasureSettings:
    """How a run is timed. Per-layer profiling is a separate pass: it slows the engine down."""

    warmup_iters: int = knob(
        20,
        "Warm-up iterations",
        "Untimed runs first: absorb JIT kernel compilation, caches and clocks.",
        min=1,
        max=10_000,
    )
    timed_iters: int = knob(100, "Timed iterations", "Runs whose latency is recorded.", min=5, max=100_000)
    layer_profile: bool = knob(True, "Per-layer profile", "A separate profiling pass after timing.")
    profile_iters: int = knob(20, "Profiling iterations", "Runs averaged in the per-layer pass.", min=1, max=10_000)
    accuracy: bool = knob(True, "Accuracy vs eager fp32", "Compare outputs with the fp32 eager model.")
    compare_eager: bool = knob(
        True, "Eager baseline", "Also time the eager PyTorch model at the same precision (tensorrt backend)."
    )
    compare_inductor: str = knob(
        "off",
        "Inductor baseline",
        "Also time torch.compile (inductor) through the same harness, its compile time "
        "recorded (tensorrt backend): default compiles in seconds to a minute; "
        "max-autotune searches kernels and can take many minutes.",
        choices=INDUCTOR_MODES,
        advanced=True,
        renamed=tuple(INDUCTOR_MODE_FROM_BOOL.items()),
    )
    seed: int = knob(
        0, "Random seed", "Seeds weights and inputs, so runs are comparable.", min=0, max=2**31 - 1, advanced=True
    )
    # a distinct identity for measuring the same settings again (a sweep's repeated default point): the cache
    # and the queue tell repeats apart by it, nothing measured depends on it
    repeat: int = knob(
        0,
        "Repeat",
        "Measure these settings again as a run of its own (1, 2, ...): a fresh process, "
        "never answered by an earlier run of the same settings. 0 = the first run.",
        min=0,
        max=1000,
        advanced=True,
        added=True,
    )


@dataclass(frozen=True)
class RunRequest:
    model: ModelSpec = field(default_factory=ModelSpec)
    backend: str = knob(
        "eager", "Backend", "eager: PyTorch as is. tensorrt: compiled by Torch-TensorRT.", choices=BACKENDS
    )
    device: str = knob("auto", "Device", "auto picks the GPU when there is one.", choices=DEVICES)
    mode: str = knob(
        "measure",
        "Mode",
        "measure: compile, time and profile. analyze: dry run only, graph segmentation "
        "without building engines (tensorrt backend).",
        choices=MODES,
    )
    compile: CompileSettings = field(default_factory=CompileSettings)
    measure: MeasureSettings = field(default_factory=MeasureSettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRequest:
        """Build and validate a request from plain data (JSON, CLI, URL). Unknown keys are errors; anything
        that is not a request raises ``ConfigError`` naming the field, never another exception."""
        if not isinstance(data, Mapping):
            raise ConfigError("request", f"expected a mapping of settings, got {type(data).__name__}")
        data = dict(data)
        parts: dict[str, Any] = {}
        for name, part_cls in PARTS:
            raw = data.pop(name, {}) or {}
            if not isinstance(raw, dict):
                raise ConfigError(name, f"expected a mapping, got {type(raw).__name__}")
            parts[name] = _build(part_cls, raw, name)
        top = _build(cls, {k: v for k, v in data.items()}, "", skip=("model", "compile", "measure"))
        return dataclasses.replace(top, **parts)

    def with_changes(self, **changes: Any) -> RunRequest:
        """Copy with dotted-name changes, e.g. ``{"compile.min_block_size": 3}``; validated."""
        d = self.to_dict()
        for dotted, value in changes.items():
            target = d
            *parents, leaf = dotted.replace("__", ".").split(".")
            for p in parents:
                if not isinstance(target.get(p), dict):
                    raise ConfigError(dotted, "no such setting")
                target = target[p]
            if leaf not in target:
                raise ConfigError(dotted, "no such setting")
            target[leaf] = value
        return validate(RunRequest.from_dict(d))


# the request's parts, in the order forms and the CLI list them
PARTS: tuple[tuple[str, type], ...] = (("model", ModelSpec), ("compile", CompileSettings), ("measure", MeasureSettings))


def all_knobs() -> Iterator[tuple[str, dataclasses.Field]]:
    """Every knob of a request with its dotted name: ``backend``, ``device``, ``mode``, then each part's."""
    for f in knob_fields(RunRequest):
        yield f.name, f
    for prefix, part in PARTS:
        for f in knob_fields(part):
            yield f"{prefix}.{f.name}", f


def _build(cls: type, raw: dict[str, Any], prefix: str, skip: tuple[str, ...] = ()) -> Any:
    known = {f.name: f for f in fields(cls) if f.name not in skip}
    kwargs = {}
    for key, value in raw.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if not isinstance(key, str) or key not in known:
            raise ConfigError(dotted, f"unknown setting; known: {', '.join(sorted(known))}")
        kwargs[key] = _coerce(knob_info(known[key]), value, dotted)
    return cls(**kwargs)


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.replace("\n", ",").split(",") if v.strip()]


def _coerce(info: KnobInfo, value: Any, dotted: str) -> Any:
    """Turn JSON-ish values into the knob's type (``info.kind``), naming the field when that is impossible."""
    for stored, today in info.renamed:  # a value stored before the knob changed shape (a bool that became a mode)
        if type(value) is type(stored) and value == stored:
            return today
    if info.kind == "shape":
        if value is None or value == "" or value == []:
            return None
        if isinstance(value, str):
            parts = [v.strip() for v in value.replace("x", ",").split(",") if v.strip()]
            if not all(re.fullmatch(r"-?[0-9]{1,30}", v) for v in parts):
                raise ConfigError(dotted, f"{shown(value)} is not a list of integers, e.g. 3,224,224")
            value = [int(v) for v in parts]
        if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
            raise ConfigError(dotted, f"{shown(value)} is not a list of integers, e.g. 3,224,224")
        return tuple(int(v) for v in value)
    if info.kind == "inputs":
        if value is None or value == "" or value == []:
            return None
        return parse_inputs(value, dotted)
    if info.kind == "names":
        if isinstance(value, str):
            value = _names(value)
        if not isinstance(value, (list, tuple, set)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(dotted, f"{shown(value)} is not a list of {info.item or 'names'}")
        return tuple(sorted({v.strip() for v in value}))  # a set: the same names give the same cache key
    if info.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(dotted, f"{shown(value)} is not true or false")
        return value
    if info.kind == "int":
        if info.nullable and (value is None or value == ""):
            return None
        if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,30}\s*", value):
            value = int(value)
        if not _is_int(value):
            raise ConfigError(dotted, f"{shown(value)} is not an integer")
        return int(value)
    if not isinstance(value, str):  # text and choices
        raise ConfigError(dotted, f"{shown(value)} is not text")
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# -- validation ---------------------------------------------------------------------------------------------
def validate(request: RunRequest) -> RunRequest:
    """Check every field against its declared range or choices. Returns the request unchanged.

    Raises ``ConfigError`` naming the first bad field, its value and what is allowed.
    Machine-dependent checks (is there a GPU, which Torch-TensorRT flavour) live in
    ``engine.runner.check_request``.
    """
    parts = {"": request, **{prefix: getattr(request, prefix) for prefix, _ in PARTS}}
    for dotted, f in all_knobs():
        prefix, _, name = dotted.rpartition(".")
        value = getattr(parts[prefix], name)
        info = knob_info(f)
        choices, lo, hi = info.choices, info.min, info.max
        if choices and value not in choices:
            raise ConfigError(dotted, f"{shown(value)} is not one of {', '.join(choices)}")
        if value is None:
            continue
        if (lo is not None or hi is not None) and not _is_int(value):
            raise ConfigError(dotted, f"{shown(value)} is not an integer")
        if lo is not None and value < lo:
            raise ConfigError(dotted, f"{shown(value)} is below the minimum {lo} (allowed {lo}..{hi})")
        if hi is not None and value > hi:
            raise ConfigError(dotted, f"{shown(value)} is above the maximum {hi} (allowed {lo}..{hi})")
    shape = request.model.input_shape
    if shape is not None:
        if not 1 <= len(shape) <= 6:
            raise ConfigError("model.input_shape", f"{shown(shape)} has {len(shape)} dimensions; allowed 1 to 6")
        for d in shape:
            if not 1 <= d <= MAX_DIM:
                raise ConfigError(
                    "model.input_shape", f"dimension {shown(d)} in {shown(shape)} is outside 1..{MAX_DIM}"
                )
    if request.model.inputs is not None:
        check_specs(request.model.inputs, "model.inputs")
        measured_shapes(request.model.inputs, request.model.batch_size, request.model.sequence_length)
    if not request.model.source.strip():
        raise ConfigError("model.source", "empty; pick a model")
    for op in request.compile.torch_executed_ops:
        if not re.fullmatch(r"torch\.ops(\.\w+){2,3}", op):
            raise ConfigError(
                "compile.torch_executed_ops", f"{shown(op)} is not an op name like torch.ops.aten.relu.default"
            )
    _check_keep_high_precision(request)
    if request.compile.reuse_cached_engines and not request.compile.cache_built_engines:
        raise ConfigError("compile.reuse_cached_engines", "needs cache_built_engines on as well")
    if request.measure.timed_iters * request.model.batch_size > 10_000_000:
        raise ConfigError("measure.timed_iters", "timed_iters × batch_size is above 10,000,000 samples")
    _check_combinations(request)
    return request


_MODULE_PATH = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")


def _check_keep_high_precision(request: RunRequest) -> None:
    """Module paths that look like paths, on a build that has a lower precision to keep them out of. Whether
    the model has them is checked against the model (``engine.backends.keep_high_precision.check_request``)."""
    c = request.compile
    for path in c.keep_high_precision:
        if not _MODULE_PATH.fullmatch(path):
            raise ConfigError(
                "compile.keep_high_precision",
                f"{path!r} is not a module path like layer3.4.conv2 (names joined by dots)",
            )
    if c.keep_high_precision and request.backend == "tensorrt" and c.quantization == "none" and c.precision == "fp32":
        raise ConfigError(
            "compile.keep_high_precision",
            "an fp32 build has no lower precision to keep modules out of; set precision to fp16 "
            "or a quantization scheme, or leave keep_high_precision empty",
        )


def _check_combinations(request: RunRequest) -> None:
    """Settings that cannot go together on any machine: refused at submit, not after the job has started."""
    c = request.compile
    if request.mode == "analyze" and request.backend != "tensorrt":
        raise ConfigError(
            "mode",
            "analyze is a dry run of Torch-TensorRT's graph partitioning: it needs the "
            "tensorrt backend; choose tensorrt, or mode measure for the eager backend",
        )
    dynamic = request.model.inputs is not None and any(s.is_dynamic for s in request.model.inputs)
    if request.backend == "tensorrt" and dynamic and c.frontend != "dynamo":
        raise ConfigError(
            "compile.frontend",
            "dynamic shapes (min/opt/max in model.inputs) are compiled with "
            "torch.export: choose the dynamo frontend, or make the inputs static",
        )
    if c.quantization != "none" and request.backend != "tensorrt":
        raise ConfigError(
            "compile.quantization",
            f"{c.quantization!r} needs the tensorrt backend: the quantized model is compiled into "
            "TensorRT engines. Choose the tensorrt backend, or set quantization to none",
        )
    if c.quantization != "none" and dynamic:
        raise ConfigError(
            "compile.quantization",
            "quantized builds take static shapes: set min = opt = max in model.inputs, or quantization to none",
        )
