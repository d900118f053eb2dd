"""What a run needs in memory, per device, before anything is allocated: weights + inputs + activations (+ the
TensorRT builder's workspace on the GPU), the activations measured by running the model on the meta device
(shapes only: no memory, no arithmetic, a few milliseconds for a ResNet).

A model is built and checked on the CPU (a batch of one), then measured on its device at the full batch; so a
CPU run needs the full footprint in RAM, a CUDA run a batch-one footprint in RAM and the full one on the GPU.
Activations count the largest tensor a module produces, held twice (a layer's input and output live together):
a lower bound of the peak, so a refusal is certain to be right.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryLimits:
    """What a run may use: the machine's RAM and, for a CUDA run, the GPU's memory and the builder's workspace."""

    ram_bytes: int | None
    gpu_memory_bytes: int | None = None  # None: a CPU run
    workspace_bytes: int = 0  # compile.workspace_size of a tensorrt run (0: TensorRT takes what it needs)
    gpu_activation_scale: float = 1.0  # 0.5 for fp16/bf16 and quantized builds: half-size activations


@dataclass(frozen=True)
class MemoryNeed:
    """One device's estimate against its limit."""

    device: str  # "RAM" or "GPU memory"
    weights_bytes: int
    inputs_bytes: int
    activations_bytes: int
    workspace_bytes: int
    limit_bytes: int
    batch_size: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.inputs_bytes + self.activations_bytes + self.workspace_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.limit_bytes

    def message(self) -> str:
        parts = [
            f"weights {gib(self.weights_bytes)}",
            f"inputs {gib(self.inputs_bytes)}",
            f"activations {gib(self.activations_bytes)}",
        ]
        if self.workspace_bytes:
            parts.append(f"builder workspace {gib(self.workspace_bytes)}")
        return (
            f"this run needs at least {gib(self.total_bytes)} of {self.device} ({', '.join(parts)}; batch "
            f"{self.batch_size}), more than this machine's {gib(self.limit_bytes)}"
        )

    def largest_batch(self) -> int:
        """The largest batch that fits, the inputs and activations taken as proportional to the batch (0: none)."""
        per_sample = (self.inputs_bytes + self.activations_bytes) / max(1, self.batch_size)
        room = self.limit_bytes - self.weights_bytes - self.workspace_bytes
        return max(0, int(room // per_sample)) if per_sample else 0

    def hint(self) -> str:
        fits = min(self.largest_batch(), self.batch_size - 1)
        batch = f"Use a batch of at most {fits}" if fits >= 1 else "Use a smaller input shape"
        return batch + (", or a smaller compile.workspace_size" if self.workspace_bytes else "")


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def largest_tensor_bytes(output: Any) -> int:
    """The largest tensor in a module's output (tensors nested in tuples, lists and dicts), in bytes."""
    largest, stack = 0, [output]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            largest = max(largest, item.numel() * item.element_size())
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return largest


def largest_activation_bytes(module: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> int | None:
    """The largest tensor any module produces on ``inputs`` (any device; run on the meta device), or None when
    the model does not run there (data-dependent code): then no estimate is made."""
    from torch.func import functional_call  # noqa: PLC0415

    largest = 0

    def measure(mod: torch.nn.Module, args: Any, output: Any) -> None:
        nonlocal largest
        largest = max(largest, largest_tensor_bytes(output))

    state = {n: torch.empty_like(t, device="meta") for n, t in (*module.named_parameters(), *module.named_buffers())}
    meta_inputs = tuple(torch.empty(t.shape, dtype=t.dtype, device="meta") for t in inputs)
    hook = torch.nn.modules.module.register_module_forward_hook(measure)
    try:
        with torch.inference_mode():
            functional_call(module, state, meta_inputs)
    except Exception as e:  # a model that needs real values (nonzero, .item()) has no estimate
        log.debug("no memory estimate: the model does not run on the meta device (%s)", e)
        return None
    finally:
        hook.remove()
    return largest


def memory_needs(
    module: torch.nn.Module, inputs: Sequence[torch.Tensor], batch_size: int, limits: MemoryLimits
) -> list[MemoryNeed]:
    """Each device's need at the full batch (``inputs`` are the full-batch inputs, on any device), [] when the
    model does not run on the meta device or the machine says nothing of its memory."""
    largest = largest_activation_bytes(module, inputs)
    if largest is None:
        return []
    weights = sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))
    given = sum(t.numel() * t.element_size() for t in inputs)
    needs = []
    if limits.ram_bytes:
        on_cpu = largest if limits.gpu_memory_bytes is None else largest // max(1, batch_size)
        needs.append(MemoryNeed("RAM", weights, given, 2 * on_cpu, 0, limits.ram_bytes, batch_size))
    if limits.gpu_memory_bytes:
        activations = int(2 * largest * limits.gpu_activation_scale)
        needs.append(
            MemoryNeed(
                "GPU memory",
                weights,
                given,
                activations,
                limits.workspace_bytes,
                limits.gpu_memory_bytes,
                batch_size,
            )
        )
    return needs


def first_overrun(
    module: torch.nn.Module, inputs: Sequence[torch.Tensor], batch_size: int, limits: MemoryLimits | None
) -> MemoryNeed | None:
    """The first device whose estimate is over its limit, or None."""
    if limits is None:
        return None
    return next((n for n in memory_needs(module, inputs, batch_size, limits) if not n.fits), None)
