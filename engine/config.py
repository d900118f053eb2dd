"""Run requests: what model to build, how to compile it and how to measure it.

Every knob is declared once here, as a dataclass field whose metadata carries the
label, the allowed values and the help text. Validation and the dashboard's widgets
are both generated from that one definition, so a new knob is one edit.

Defaults mirror Torch-TensorRT's own ``torch_tensorrt/dynamo/_defaults.py`` so that
"the default" in a comparison means what the library means by it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError, shown

if TYPE_CHECKING:
    from engine.inputs import InputSpec

# Torch-TensorRT defaults (torch_tensorrt/dynamo/_defaults.py), repeated as named
# constants because torch_tensorrt cannot be imported on a machine without a GPU.
MIN_BLOCK_SIZE = 5
OPTIMIZATION_LEVEL = None  # TensorRT's own builder default, which is level 3
TRT_DEFAULT_OPTIMIZATION_LEVEL = 3
USE_PYTHON_RUNTIME = False
WORKSPACE_SIZE = 0
TRUNCATE_DOUBLE = False
USE_FAST_PARTITIONER = True
HARDWARE_COMPATIBLE = False
SPARSE_WEIGHTS = False
REQUIRE_FULL_COMPILATION = False
CACHE_BUILT_ENGINES = False
REUSE_CACHED_ENGINES = False

BACKENDS = ("eager", "tensorrt")
MODES = ("measure", "analyze")
FRONTENDS = ("dynamo", "torch_compile")
PRECISIONS = ("fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda")
# Post-training quantization schemes (NVIDIA ModelOpt); what each means and where it runs is in
# engine/quantization.py, which checks them against the machine.
QUANT_SCHEMES = ("none", "int8", "int8_smoothquant", "int8_weight_only", "fp8", "int4_awq", "nvfp4")
QUANT_BASE_PRECISIONS = ("fp16", "fp32")
CALIBRATION_BATCHES = 8
# torch.compile (inductor) baseline of a tensorrt run: off, mode="default" (quick) or "max-autotune" (minutes)
INDUCTOR_MODES = ("off", "default", "max-autotune")
# requests stored before the modes existed hold a bool, and True timed max-autotune
INDUCTOR_MODE_FROM_BOOL = {False: "off", True: "max-autotune"}

MAX_BATCH_SIZE = 4096
MAX_DIM = 16384

# Fields added after runs were first stored: left out of the cache key while at their default,
# so requests made before they existed keep their keys.
ADDED_FIELDS = {"model": ("sequence_length", "inputs"), "compile": ("enable_cudagraphs", "keep_high_precision"),
                "measure": ("repeat",)}
_NULLABLE_INTS = ("optimization_level", "sequence_length")


def knob(default: Any, label: str, help: str, *, choices: tuple | None = None,
         min: int | None = None, max: int | None = None, advanced: bool = False) -> Any:
    """A dataclass field that also describes its widget and its allowed values."""
    meta = {"label": label, "help": help, "choices": choices, "min": min, "max": max,
            "advanced": advanced}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults")
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ModelSpec:
    """Which model, fed with which inputs.

    ``source`` is a registry name (``resnet18``), ``file:<name>.py`` or ``file:<name>.pt2``
    for a file in the admin-configured models directory.
    ``input_shape`` excludes the batch dimension; ``None`` takes the model's default.
    """

    source: str = knob("resnet18", "Model", "A built-in model or a file from the models directory.")
    batch_size: int = knob(1, "Batch size", "Leading dimension of every input.", min=1, max=MAX_BATCH_SIZE)
    input_shape: tuple[int, ...] | None = knob(
        None, "Input shape (without batch)", "e.g. 3,224,224. Empty takes the model's default.")
    pretrained: bool = knob(
        False, "Pretrained weights", "Only if already in the local torch hub cache; nothing is downloaded.",
        advanced=True)
    sequence_length: int | None = knob(
        None, "Sequence length", "Tokens per input of a text model. Empty takes the model's default (128).",
        min=1, max=MAX_DIM)
    inputs: tuple[InputSpec, ...] | None = knob(
        None, "Inputs", "Per input: name, shape (batch included), dtype, integer value range and, for a dynamic "
        "engine, min/max shapes. Empty takes the model's own inputs.", advanced=True)


@dataclass(frozen=True)
class CompileSettings:
    """Torch-TensorRT knobs. Ignored (and not part of the cache key) for the eager backend."""

    frontend: str = knob("dynamo", "Frontend",
                         "dynamo: torch.export + torch_tensorrt.dynamo.compile (ahead of time). "
                         "torch_compile: torch.compile(backend='tensorrt') (just in time).",
                         choices=FRONTENDS)
    precision: str = knob("fp32", "Precision",
                          "fp16/bf16 cast the model and inputs on TensorRT-RTX (strongly typed); "
                          "on full TensorRT they set enabled_precisions.", choices=PRECISIONS)
    min_block_size: int = knob(MIN_BLOCK_SIZE, "min_block_size",
                               "Fewest operators a TensorRT engine may hold; smaller blocks stay in PyTorch.",
                               min=1, max=100_000)
    optimization_level: int | None = knob(
        OPTIMIZATION_LEVEL, "optimization_level",
        "Builder effort 0-5: higher searches longer for faster kernels. Empty = TensorRT's default (3).",
        min=0, max=5)
    use_python_runtime: bool = knob(USE_PYTHON_RUNTIME, "Python runtime",
                                    "Run engines through the Python runtime instead of the C++ one.")
    torch_executed_ops: tuple[str, ...] = knob(
        (), "torch_executed_ops", "Ops forced to run in PyTorch, e.g. torch.ops.aten.relu.default.")
    require_full_compilation: bool = knob(REQUIRE_FULL_COMPILATION, "require_full_compilation",
                                          "Fail instead of falling back to PyTorch for unsupported ops.",
                                          advanced=True)
    workspace_size: int = knob(WORKSPACE_SIZE, "workspace_size (bytes)",
                               "Builder scratch memory limit; 0 lets TensorRT decide.",
                               min=0, max=2**40, advanced=True)
    truncate_double: bool = knob(TRUNCATE_DOUBLE, "truncate_double", "Truncate float64 to float32.",
                                 advanced=True)
    use_fast_partitioner: bool = knob(USE_FAST_PARTITIONER, "use_fast_partitioner",
                                      "Fast (adjacency) partitioner instead of the global one.", advanced=True)
    hardware_compatible: bool = knob(HARDWARE_COMPATIBLE, "hardware_compatible",
                                     "Build engines that run on Ampere and newer GPUs (full TensorRT only).",
                                     advanced=True)
    sparse_weights: bool = knob(SPARSE_WEIGHTS, "sparse_weights",
                                "Allow the builder to use structured-sparsity kernels.", advanced=True)
    cache_built_engines: bool = knob(CACHE_BUILT_ENGINES, "cache_built_engines",
                                     "Save built engines in the data directory's engine cache.", advanced=True)
    reuse_cached_engines: bool = knob(REUSE_CACHED_ENGINES, "reuse_cached_engines",
                                      "Load engines from the engine cache instead of rebuilding.", advanced=True)
    enable_cudagraphs: bool = knob(False, "CUDA graphs",
                                   "Replay the compiled module as a CUDA graph "
                                   "(torch_tensorrt.runtime.enable_cudagraphs): removes per-launch CPU "
                                   "overhead at small batch. A runtime setting; applies to both the C++ and "
                                   "the Python runtime.")
    quantization: str = knob("none", "Quantization",
                             "Post-training quantization with NVIDIA ModelOpt before compiling: int8 (W8A8), "
                             "int8_smoothquant, int8_weight_only, fp8, int4_awq, nvfp4. Which ones this GPU and "
                             "flavour accept is checked before anything runs.", choices=QUANT_SCHEMES)
    quant_base_precision: str = knob("fp16", "Unquantized layers run in",
                                     "Precision of the layers and activations a scheme leaves unquantized "
                                     "(weight-only schemes: all activations). Replaces Precision when quantizing.",
                                     choices=QUANT_BASE_PRECISIONS)
    calibration_data: str = knob("random", "Calibration data",
                                 "random (accuracy not meaningful for real data), file:<name>.pt (a tensor file) "
                                 "or dir:<folder> (images) in the calibration data directory.")
    calibration_batches: int = knob(CALIBRATION_BATCHES, "Calibration batches",
                                    "Batches fed through the model to calibrate the quantization ranges.",
                                    min=1, max=1024, advanced=True)
    keep_high_precision: tuple[str, ...] = knob(
        (), "Keep in higher precision",
        "Module paths (e.g. layer3.4.conv2) left out of the low precision. Quantized runs: their ModelOpt "
        "quantizers are disabled, so they run in quant_base_precision. fp16/bf16 on TensorRT-RTX (strongly "
        "typed): they stay fp32, cast at their boundary. Found for you by 'Find where it breaks'.",
        advanced=True)


@dataclass(frozen=True)
class MeasureSettings:
    """How a run is timed. Per-layer profiling is a separate pass: it slows the engine down."""

    warmup_iters: int = knob(20, "Warm-up iterations",
                             "Untimed runs first: absorb JIT kernel compilation, caches and clocks.",
                             min=1, max=10_000)
    timed_iters: int = knob(100, "Timed iterations", "Runs whose latency is recorded.", min=5, max=100_000)
    layer_profile: bool = knob(True, "Per-layer profile", "A separate profiling pass after timing.")
    profile_iters: int = knob(20, "Profiling iterations", "Runs averaged in the per-layer pass.",
                              min=1, max=10_000)
    accuracy: bool = knob(True, "Accuracy vs eager fp32", "Compare outputs with the fp32 eager model.")
    compare_eager: bool = knob(True, "Eager baseline",
                               "Also time the eager PyTorch model at the same precision (tensorrt backend).")
    compare_inductor: str = knob("off", "Inductor baseline",
                                 "Also time torch.compile (inductor) through the same harness, its compile time "
                                 "recorded (tensorrt backend): default compiles in seconds to a minute; "
                                 "max-autotune searches kernels and can take many minutes.",
                                 choices=INDUCTOR_MODES, advanced=True)
    seed: int = knob(0, "Random seed", "Seeds weights and inputs, so runs are comparable.",
                     min=0, max=2**31 - 1, advanced=True)
    # a distinct identity for measuring the same settings again (a sweep's repeated default point): the cache
    # and the queue tell repeats apart by it, nothing measured depends on it
    repeat: int = knob(0, "Repeat", "Measure these settings again as a run of its own (1, 2, ...): a fresh process, "
                                    "never answered by an earlier run of the same settings. 0 = the first run.",
                       min=0, max=1000, advanced=True)


@dataclass(frozen=True)
class RunRequest:
    model: ModelSpec = field(default_factory=ModelSpec)
    backend: str = knob("eager", "Backend", "eager: PyTorch as is. tensorrt: compiled by Torch-TensorRT.",
                        choices=BACKENDS)
    device: str = knob("auto", "Device", "auto picks the GPU when there is one.", choices=DEVICES)
    mode: str = knob("measure", "Mode",
                     "measure: compile, time and profile. analyze: dry run only, graph segmentation "
                     "without building engines (tensorrt backend).", choices=MODES)
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
        for name, part_cls in (("model", ModelSpec), ("compile", CompileSettings), ("measure", MeasureSettings)):
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


def _build(cls: type, raw: dict[str, Any], prefix: str, skip: tuple[str, ...] = ()) -> Any:
    known = {f.name: f for f in fields(cls) if f.name not in skip}
    kwargs = {}
    for key, value in raw.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if not isinstance(key, str) or key not in known:
            raise ConfigError(dotted, f"unknown setting; known: {', '.join(sorted(known))}")
        kwargs[key] = _coerce(known[key], value, dotted)
    return cls(**kwargs)


def _coerce(f: dataclasses.Field, value: Any, dotted: str) -> Any:
    """Turn JSON-ish values into the field's type, naming the field when that is impossible."""
    default = f.default
    if f.name == "input_shape":
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
    if f.name == "inputs":
        if value is None or value == "" or value == []:
            return None
        from engine.inputs import parse_inputs  # engine.inputs imports this module

        return parse_inputs(value, dotted)
    if f.name == "torch_executed_ops":
        if isinstance(value, str):
            value = [v.strip() for v in value.replace("\n", ",").split(",") if v.strip()]
        if not isinstance(value, (list, tuple, set)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(dotted, f"{shown(value)} is not a list of op names")
        return tuple(sorted(set(value)))
    if f.name == "keep_high_precision":
        if isinstance(value, str):
            value = [v.strip() for v in value.replace("\n", ",").split(",") if v.strip()]
        if not isinstance(value, (list, tuple, set)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(dotted, f"{value!r} is not a list of module paths")
        return tuple(sorted({v.strip() for v in value}))   # a set: the same modules give the same cache key
    if f.name == "compare_inductor" and isinstance(value, bool):
        return INDUCTOR_MODE_FROM_BOOL[value]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(dotted, f"{shown(value)} is not true or false")
        return value
    if isinstance(default, int) or f.name in _NULLABLE_INTS:
        if f.name in _NULLABLE_INTS and (value is None or value == ""):
            return None
        if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,30}\s*", value):
            value = int(value)
        if not _is_int(value):
            raise ConfigError(dotted, f"{shown(value)} is not an integer")
        return int(value)
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(dotted, f"{shown(value)} is not text")
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(request: RunRequest) -> RunRequest:
    """Check every field against its declared range or choices. Returns the request unchanged.

    Raises ``ConfigError`` naming the first bad field, its value and what is allowed.
    Machine-dependent checks (is there a GPU, which Torch-TensorRT flavour) live in
    ``engine.capabilities.check_request``.
    """
    for prefix, part in (("", request), ("model", request.model), ("compile", request.compile),
                         ("measure", request.measure)):
        for f in fields(part):
            if not f.metadata:
                continue
            value = getattr(part, f.name)
            dotted = f"{prefix}.{f.name}" if prefix else f.name
            choices, lo, hi = f.metadata["choices"], f.metadata["min"], f.metadata["max"]
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
                raise ConfigError("model.input_shape", f"dimension {shown(d)} in {shown(shape)} is outside "
                                                       f"1..{MAX_DIM}")
    if request.model.inputs is not None:
        from engine.inputs import check_specs, measured_shapes

        check_specs(request.model.inputs, "model.inputs")
        measured_shapes(request.model.inputs, request.model.batch_size, request.model.sequence_length)
    if not request.model.source.strip():
        raise ConfigError("model.source", "empty; pick a model")
    for op in request.compile.torch_executed_ops:
        if not re.fullmatch(r"torch\.ops(\.\w+){2,3}", op):
            raise ConfigError("compile.torch_executed_ops",
                              f"{shown(op)} is not an op name like torch.ops.aten.relu.default")
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
    the model has them is checked against the model (``engine.localisation.keep.check_request``)."""
    c = request.compile
    for path in c.keep_high_precision:
        if not _MODULE_PATH.fullmatch(path):
            raise ConfigError("compile.keep_high_precision",
                              f"{path!r} is not a module path like layer3.4.conv2 (names joined by dots)")
    if c.keep_high_precision and request.backend == "tensorrt" and c.quantization == "none" and c.precision == "fp32":
        raise ConfigError("compile.keep_high_precision",
                          "an fp32 build has no lower precision to keep modules out of; set precision to fp16 "
                          "or a quantization scheme, or leave keep_high_precision empty")


def _check_combinations(request: RunRequest) -> None:
    """Settings that cannot go together on any machine: refused at submit, not after the job has started."""
    c = request.compile
    if request.mode == "analyze" and request.backend != "tensorrt":
        raise ConfigError("mode", "analyze is a dry run of Torch-TensorRT's graph partitioning: it needs the "
                                  "tensorrt backend; choose tensorrt, or mode measure for the eager backend")
    dynamic = request.model.inputs is not None and any(s.is_dynamic for s in request.model.inputs)
    if request.backend == "tensorrt" and dynamic and c.frontend != "dynamo":
        raise ConfigError("compile.frontend", "dynamic shapes (min/opt/max in model.inputs) are compiled with "
                                              "torch.export: choose the dynamo frontend, or make the inputs static")
    if c.quantization != "none" and request.backend != "tensorrt":
        raise ConfigError("compile.quantization",
                          f"{c.quantization!r} needs the tensorrt backend: the quantized model is compiled into "
                          "TensorRT engines. Choose the tensorrt backend, or set quantization to none")
    if c.quantization != "none" and dynamic:
        raise ConfigError("compile.quantization", "quantized builds take static shapes: set min = opt = max in "
                                                  "model.inputs, or quantization to none")


def settings_that_matter(request: RunRequest) -> dict[str, Any]:
    """The part of a request that changes the measurement (compile knobs don't for eager)."""
    d = request.to_dict()
    for part, names in ADDED_FIELDS.items():
        for name in names:
            if d[part].get(name) == getattr(type(getattr(request, part))(), name):
                d[part].pop(name)
    # the inductor knob was a bool; its old values keep their keys
    inductor = {mode: flag for flag, mode in INDUCTOR_MODE_FROM_BOOL.items()}
    d["measure"]["compare_inductor"] = inductor.get(request.measure.compare_inductor, request.measure.compare_inductor)
    if request.backend == "eager":
        d["compile"] = {"precision": request.compile.precision}
    elif request.compile.quantization == "none":
        # calibration knobs change nothing without a scheme (and keys from before they existed stay valid)
        for name in ("quantization", "quant_base_precision", "calibration_data", "calibration_batches"):
            d["compile"].pop(name)
    # per-layer profiling is a separate pass; it does not change e2e numbers but does change what
    # the result holds, so it stays in the key
    return d


def cache_key(request: RunRequest, environment: dict[str, Any], model_identity: str) -> str:
    """Stable content hash of what determines a result.

    ``environment`` holds versions, flavour and device name (``capabilities.fingerprint``),
    ``model_identity`` names the weights (registry name + seed, or a file's content hash).
    """
    payload = {"request": settings_that_matter(request), "env": environment, "model": model_identity}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def knob_fields(part: type) -> list[dataclasses.Field]:
    """The fields of a settings class, with their widget metadata, for building a form."""
    return [f for f in fields(part) if f.metadata]
