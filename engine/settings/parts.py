"""The three parts of a run request, every knob declared once: the model and its inputs (``ModelSpec``), the
Torch-TensorRT build (``CompileSettings``) and the timing (``MeasureSettings``).

Each knob is a dataclass field made by ``knob()`` whose metadata (``KnobInfo``, engine/settings/knobs.py) carries
the label, the allowed values, the help text and how each part of the dashboard handles it; engine/settings/request.py
puts the parts together into a ``RunRequest`` and parses and validates it from that metadata. Defaults come from
engine/settings/defaults.py, which mirrors Torch-TensorRT's own ``_defaults.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.settings.defaults import (
    CACHE_BUILT_ENGINES,
    CALIBRATION_BATCHES,
    FRONTENDS,
    HARDWARE_COMPATIBLE,
    INDUCTOR_MODE_FROM_BOOL,
    INDUCTOR_MODES,
    MAX_BATCH_SIZE,
    MAX_DIM,
    MIN_BLOCK_SIZE,
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
from engine.settings.inputs import InputSpec
from engine.settings.knobs import knob


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
        "fp16/bf16 cast the model and inputs (strongly typed: TensorRT-RTX, and full TensorRT with "
        "Torch-TensorRT 2.13+); on older full TensorRT they set enabled_precisions.",
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
        "quantizers are disabled, so they run in quant_base_precision. fp16/bf16 on a strongly typed build "
        "(TensorRT-RTX, full TensorRT 2.13+): they stay fp32, cast at their boundary. Found for you by "
        "'Find where it breaks'.",
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
