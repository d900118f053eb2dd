"""Memory, before it is allocated: the inputs' and the weights' size at submit (``check_input_memory``, no model code
runs), and the activations after the batch-1 check run (``check_activation_memory``)."""

from __future__ import annotations

import torch

from engine.errors import ConfigError, ModelError
from engine.models import catalogue
from engine.models.entry import BuiltModel
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


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def check_input_memory(request: RunRequest, *, ram_bytes: int | None, gpu_memory_bytes: int | None) -> None:
    """Refuse, with the figures, a request whose model weights (fp32, as built) or inputs alone exceed the machine's
    RAM (both are made on the CPU) or the GPU's memory (a CUDA run holds them there). Raises ``ConfigError`` on
    model.source (the weights) or model.batch_size (the inputs)."""
    limits = ((ram_bytes, "RAM"), (gpu_memory_bytes if request.device != "cpu" else None, "GPU memory"))
    parameters = parameter_count(request.model)
    if parameters:
        weights = 4 * parameters
        for limit, what in limits:
            if limit and weights > limit:
                raise ConfigError(
                    "model.source",
                    f"{request.model.source} has {parameters / 1e6:,.0f} M parameters: "
                    f"its fp32 weights alone take {_gib(weights)}, more than this "
                    f"machine's {_gib(limit)} of {what}; choose a smaller model",
                )
    size = input_bytes(request.model)
    if size is None:
        return
    total, described = size
    for limit, what in limits:
        if limit and total > limit:
            raise ConfigError(
                "model.batch_size",
                f"the inputs alone take {_gib(total)} ({described}), more than "
                f"this machine's {_gib(limit)} of {what}; use a smaller batch or "
                "input shape",
            )


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
            f"Batch {spec.batch_size} needs at least {_gib(need)} of {what}: its largest activation "
            f"is {_gib(per_sample)} per sample (measured at batch 1), held with the next layer's "
            f"output, plus {_gib(inputs)} of inputs; this machine has {_gib(limit_bytes)}.",
            f"Use a batch of at most {fits}." if fits else "Use a smaller input shape.",
        )
