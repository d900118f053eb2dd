"""Memory, before it is allocated: the inputs' and the weights' size and, for a registry model, the whole footprint
(weights + inputs + activations + workspace, per device, engine/models/footprint.py) at submit
(``check_input_memory``, no model code runs: the registry model is built on the meta device); the same footprint
in the job before the batch-1 check run (``limits_for``, engine/models/checks.py); and the activations measured by
that run (``check_activation_memory``)."""

from __future__ import annotations

import functools

import torch

from engine.errors import ConfigError, ModelError
from engine.models import catalogue
from engine.models.entry import BuiltModel
from engine.models.footprint import MemoryLimits, MemoryNeed, gib, memory_needs
from engine.models.registry import REGISTRY, input_specs
from engine.settings.inputs import measured_shapes
from engine.settings.request import ModelSpec, RunRequest


def input_bytes(spec: ModelSpec) -> tuple[int, str] | None:
    """The inputs' size at the measured shapes, in bytes, and a description ("x 4096x3x224x224 float32"),
    without building the model; None when only the model file knows its inputs."""
    if spec.inputs is not None:
        specs = spec.inputs
    else:
        entry = REGISTRY.get(spec.source)
        if entry is None:
            return None
        try:
            specs = input_specs(entry, spec)
        except ModelError:
            return None  # the build reports this with its hint
    try:
        shapes = measured_shapes(specs, spec.batch_size, spec.sequence_length)
    except ConfigError:
        return None  # validate() reports this
    total, parts = 0, []
    for s in specs:
        shape = shapes[s.name]
        numel = 1
        for d in shape:
            numel *= d
        total += numel * torch.empty((), dtype=s.torch_dtype).element_size()
        parts.append(f"{s.name} {'x'.join(map(str, shape))} {s.dtype}")
    return total, ", ".join(parts)


def parameter_count(spec: ModelSpec) -> int | None:
    """A registry model's parameter count without building it: what torchvision documents for its weights, a meta-
    device build for timm; None for other families and model files."""
    entry = REGISTRY.get(spec.source)
    if entry is None:
        return None
    if entry.family == "torchvision":
        return catalogue.torchvision_parameters(entry.name)
    if entry.family == "timm":
        return catalogue.timm_parameters(entry.name[len(catalogue.TIMM_PREFIX) :])
    return None


def limits_for(request: RunRequest, *, ram_bytes: int | None, gpu_memory_bytes: int | None) -> MemoryLimits:
    """What the request's run may use on this machine (or a worker's): RAM, and on the GPU its memory and the
    builder's workspace; low-precision builds hold half-size activations there."""
    on_gpu = request.device != "cpu" and gpu_memory_bytes
    trt = request.backend == "tensorrt"
    low = request.compile.precision in ("fp16", "bf16") or (trt and request.compile.quantization != "none")
    return MemoryLimits(
        ram_bytes,
        gpu_memory_bytes if on_gpu else None,
        request.compile.workspace_size if trt and on_gpu else 0,
        0.5 if low else 1.0,
    )


@functools.lru_cache(maxsize=64)
def _meta_model(source: str) -> torch.nn.Module | None:
    """A registry model built on the meta device (its shapes only, nothing allocated), or None where it cannot be."""
    entry = REGISTRY.get(source)
    if entry is None:
        return None
    try:
        with torch.device("meta"):
            return entry.build().eval()
    except Exception:  # a family that allocates real tensors while it builds: the job checks it instead
        return None


@functools.lru_cache(maxsize=256)
def _needs(
    source: str, inputs: tuple[tuple[tuple[int, ...], str], ...], batch_size: int, limits: MemoryLimits
) -> tuple[MemoryNeed, ...]:
    module = _meta_model(source)
    if module is None:
        return ()
    tensors = [torch.empty(shape, dtype=getattr(torch, dtype), device="meta") for shape, dtype in inputs]
    return tuple(memory_needs(module, tensors, batch_size, limits))


def check_footprint(request: RunRequest, limits: MemoryLimits) -> None:
    """Refuse a registry model whose estimate (weights + inputs + activations + workspace) is over a device's
    memory: ConfigError on model.input_shape (or model.batch_size) with the figures. Model files are checked in
    the job, where their code may run."""
    spec = request.model
    entry = REGISTRY.get(spec.source)
    if entry is None:
        return
    try:
        specs = input_specs(entry, spec)
        shapes = measured_shapes(specs, spec.batch_size, spec.sequence_length)
    except (ConfigError, ModelError):
        return  # validate() and the build report these
    inputs = tuple((shapes[s.name], s.dtype) for s in specs)
    for need in _needs(spec.source, inputs, spec.batch_size, limits):
        if not need.fits:
            field = "model.input_shape" if spec.input_shape or spec.inputs else "model.batch_size"
            raise ConfigError(field, f"{need.message()}; {need.hint()[0].lower()}{need.hint()[1:]}")


def check_input_memory(request: RunRequest, *, ram_bytes: int | None, gpu_memory_bytes: int | None) -> None:
    """Refuse, with the figures, a request whose model weights (fp32, as built) or inputs alone exceed the machine's
    RAM (both are made on the CPU) or the GPU's memory (a CUDA run holds them there), or whose whole footprint
    does not fit (``check_footprint``). Raises ``ConfigError`` on model.source (the weights), model.batch_size
    or model.input_shape."""
    limits = ((ram_bytes, "RAM"), (gpu_memory_bytes if request.device != "cpu" else None, "GPU memory"))
    parameters = parameter_count(request.model)
    if parameters:
        weights = 4 * parameters
        for limit, what in limits:
            if limit and weights > limit:
                raise ConfigError(
                    "model.source",
                    f"{request.model.source} has {parameters / 1e6:,.0f} M parameters: "
                    f"its fp32 weights alone take {gib(weights)}, more than this "
                    f"machine's {gib(limit)} of {what}; choose a smaller model",
                )
    size = input_bytes(request.model)
    if size is None:
        return
    total, described = size
    for limit, what in limits:
        if limit and total > limit:
            raise ConfigError(
                "model.batch_size",
                f"the inputs alone take {gib(total)} ({described}), more than "
                f"this machine's {gib(limit)} of {what}; use a smaller batch or "
                "input shape",
            )
    check_footprint(request, limits_for(request, ram_bytes=ram_bytes, gpu_memory_bytes=gpu_memory_bytes))


def check_activation_memory(built: BuiltModel, spec: ModelSpec, limit_bytes: int, what: str) -> None:
    """Refuse a run whose activations would not fit, before the full batch runs: the largest tensor the batch-1
    check run produced, times the batch, held twice (a layer's input and output live together), plus the
    inputs. A lower bound of the peak, so a refusal is certain to be right."""
    per_sample = int(built.info.get("largest_activation_bytes", 0))
    inputs = sum(t.numel() * t.element_size() for t in built.example_inputs)
    need = 2 * per_sample * spec.batch_size + inputs
    if per_sample and need > limit_bytes:
        fits = max(1, int((limit_bytes - inputs) // (2 * per_sample))) if limit_bytes > inputs else 0
        raise ModelError(
            f"Batch {spec.batch_size} needs at least {gib(need)} of {what}: its largest activation "
            f"is {gib(per_sample)} per sample (measured at batch 1), held with the next layer's "
            f"output, plus {gib(inputs)} of inputs; this machine has {gib(limit_bytes)}.",
            f"Use a batch of at most {fits}." if fits else "Use a smaller input shape.",
        )
