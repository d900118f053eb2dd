"""The two programs measured apart, and the backends that run them.

- ``PrefillProgram(input_ids [B, T]) -> (logits [B, V], keys, values)`` for one prompt length and cache length;
- ``DecodeProgram(token [B, 1], position [1], keys, values) -> (logits, keys, values)`` for one batch and cache
  length: the outputs are the next step's inputs, so one program (one engine) serves every step.

``compile_program`` turns either into a callable for a backend: ``eager`` (the module itself), ``inductor``
(``torch.compile``, whole graph, static shapes) or ``tensorrt`` (``torch.export`` then
``torch_tensorrt.dynamo.compile``; imported here only, on the GPU path). ``DecodeLoop`` runs the step again and
again on its own outputs, as a plain call or replayed as a CUDA graph (the knob).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.errors import EngineBuildError, ExportError
from engine.generative.models import CausalDecoder

log = logging.getLogger(__name__)

Step = Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class PrefillProgram(nn.Module):
    def __init__(self, decoder: CausalDecoder, cache_len: int):
        super().__init__()
        self.decoder = decoder
        self.cache_len = cache_len

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.decoder.prefill(input_ids, self.cache_len)


class DecodeProgram(nn.Module):
    def __init__(self, decoder: CausalDecoder):
        super().__init__()
        self.decoder = decoder

    def forward(
        self, token: torch.Tensor, position: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.decoder.decode(token, position, keys, values)


@dataclass
class Compiled:
    """A program ready to call, and how long making it took."""

    call: Step
    backend: str
    build_s: float


def export_program(program: nn.Module, example: tuple[torch.Tensor, ...]) -> torch.export.ExportedProgram:
    try:
        return torch.export.export(program, example, strict=False)
    except Exception as e:
        raise ExportError(
            f"torch.export could not capture the {type(program).__name__}: {type(e).__name__}: {str(e)[:300]}",
            "The decoder must be traceable with static shapes (no data-dependent Python control flow).",
        ) from e


def compile_program(program: nn.Module, example: tuple[torch.Tensor, ...], backend: str) -> Step:
    """``program`` (on its device, in its dtype) as a callable of ``backend`` on inputs shaped like ``example``.
    Inductor compiles the exported graph too: each program is then a code object of its own, compiled once for its
    shapes (``torch.compile`` of the module would recompile one ``forward`` for every shape, up to its limit)."""
    if backend == "eager":
        return program
    exported = export_program(program, example)
    if backend == "inductor":
        return torch.compile(exported.module(), backend="inductor", fullgraph=True, dynamic=False)
    if backend == "tensorrt":
        return _tensorrt(exported, example)
    raise ValueError(f"unknown backend {backend!r}")


def _tensorrt(exported: torch.export.ExportedProgram, example: tuple[torch.Tensor, ...]) -> Step:
    import torch_tensorrt  # noqa: PLC0415 - the GPU path only

    from engine.backends.tensorrt import internals  # noqa: PLC0415
    from engine.backends.tensorrt.keywords import check_keywords  # noqa: PLC0415

    features = internals.features()
    kw: dict[str, Any] = {"min_block_size": 1}
    dtype = next(iter(exported.state_dict.values())).dtype
    if not features.strongly_typed and dtype != torch.float32:
        # weakly typed full TensorRT (Torch-TensorRT before 2.13) picks kernels from enabled_precisions; strongly
        # typed builds (TensorRT-RTX, full TensorRT from 2.13) take the precision from the program's dtypes
        kw["enabled_precisions"] = {torch.float32, dtype}
        kw["use_explicit_typing"] = False
    check_keywords(kw, "dynamo", internals.compile_keywords(), getattr(torch_tensorrt, "__version__", None))
    try:
        return torch_tensorrt.dynamo.compile(exported, arg_inputs=list(example), **kw)
    except Exception as e:
        raise EngineBuildError(
            f"Torch-TensorRT could not build the program: {type(e).__name__}: {str(e)[:300]}",
            "Try the eager or inductor backend, or a smaller configuration; the log has the traceback.",
        ) from e


class DecodeLoop:
    """The decode step called on its own outputs: ``step()`` advances one token. With ``cuda_graph`` the step is
    captured once with static inputs, the new cache copied back into them inside the graph, and replayed."""

    def __init__(
        self,
        call: Step,
        token: torch.Tensor,
        position: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        cuda_graph: bool = False,
    ):
        self.call = call
        self.token, self.position, self.keys, self.values = token, position, keys, values
        self.logits: torch.Tensor | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        if cuda_graph:
            self._capture()

    def _run(self) -> None:
        logits, keys, values = self.call(self.token, self.position, self.keys, self.values)
        self.logits, self.keys, self.values = logits, keys, values

    def _run_in_place(self) -> torch.Tensor:
        logits, keys, values = self.call(self.token, self.position, self.keys, self.values)
        self.keys.copy_(keys)
        self.values.copy_(values)
        return logits

    def _capture(self) -> None:
        with torch.inference_mode():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):  # warm-up off the capture (inductor's and TensorRT's first calls allocate)
                    self._run_in_place()
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.logits = self._run_in_place()

    def step(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:
            self._run()

    def set_position(self, position: int) -> None:
        self.position.fill_(position)
