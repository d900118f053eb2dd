"""Checks a built model passes before it is measured: one run on a batch of one (shape errors named, the largest
activation measured for the memory check), the dynamic ranges it accepts, and what it is (``model_info``)."""

from __future__ import annotations

from typing import Any

import torch

from engine.errors import ConfigError, ModelError
from engine.models import footprint
from engine.models.input_tensors import check_model_accepts
from engine.settings.inputs import InputSpec
from engine.settings.request import ModelSpec

# (model identity, specs) pairs whose dynamic ranges the model was seen to accept in this process
_ACCEPTED_RANGES: set[tuple[str, tuple[InputSpec, ...]]] = set()


def check_dynamic_ranges(module: torch.nn.Module, specs: tuple[InputSpec, ...], identity: str) -> None:
    if (identity, specs) in _ACCEPTED_RANGES:
        return
    try:
        check_model_accepts(module, specs)
    except ConfigError as e:
        raise ModelError(f"{e.field}: {e.message}.") from None
    _ACCEPTED_RANGES.add((identity, specs))


def check_memory(
    module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], spec: ModelSpec, limits: footprint.MemoryLimits | None
) -> None:
    """Refuse, before the batch-1 check run allocates anything, a run whose estimate (weights, inputs,
    activations from a meta-device run, workspace) is over a device's memory."""
    need = footprint.first_overrun(module, inputs, spec.batch_size, limits)
    if need is not None:
        raise ModelError(f"{spec.source}: {need.message()}.", need.hint() + ".")


def check_runs(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], spec: ModelSpec) -> int:
    """Fail early, with the shape in the message, when the model rejects the inputs. Returns the largest
    tensor a module produced on that batch-1 run, in bytes (the activation estimate's per-sample figure)."""
    largest = 0

    def measure(module: torch.nn.Module, args: Any, output: Any) -> None:
        nonlocal largest
        largest = max(largest, footprint.largest_tensor_bytes(output))

    hook = torch.nn.modules.module.register_module_forward_hook(measure)
    try:
        with torch.inference_mode():
            # a batch of one is enough to find shape errors cheaply
            module(*(t[:1] for t in inputs))
    except Exception as e:
        shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
        raise ModelError(
            f"{spec.source} cannot run on input of shape {shapes}: {type(e).__name__}: {str(e).splitlines()[0][:300]}",
            "Check 'Input shape (without batch)'; leave it empty for the model's default.",
        ) from e
    finally:
        hook.remove()
    return largest


def model_info(
    module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], family: str, task: str, specs: tuple[InputSpec, ...] = ()
) -> dict[str, Any]:
    described = [{"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")} for t in inputs]
    for d, s in zip(described, specs, strict=False):
        d["name"] = s.name
        if s.is_dynamic:
            d |= {"min_shape": list(s.lower), "opt_shape": list(s.shape), "max_shape": list(s.upper)}
    return {
        "family": family,
        "task": task,
        "parameters": sum(p.numel() for p in module.parameters()),
        "inputs": described,
    }
