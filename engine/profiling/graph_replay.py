"""CUDA-graph replay latency: the compiled module captured once with ``torch.cuda.CUDAGraph`` and replayed.

A replay launches the whole inference at once, so its latency is what is left without host launch overhead
(on the H200, resnet50 fp16 batch 1: 0.394-0.399 ms replayed against 0.60-1.13 ms end to end). Recipe
(PyTorch's documented one): warm-up calls on a side stream, capture one call, check that a replay gives the
same outputs as a normal call, then time replays with the end-to-end harness (CUDA events, one sync each).

Some modules cannot be captured; the result then says why instead of giving a number:

- ``not_attempted`` reasons the caller knows beforehand (the run already replays a graph, dynamic shapes,
  the torch_compile frontend);
- the capture raised (a host sync in a PyTorch segment, an op CUDA graphs do not allow): the error's text;
- the replay's outputs differ from a normal call's: the module does host-side work a graph does not record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from engine.profiling.latency import time_inference
from engine.result import GraphReplay

log = logging.getLogger(__name__)

WARMUP_CALLS = 3
RTOL, ATOL = 1e-2, 1e-3  # a replay runs the very same kernels: any real difference is far larger


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    if hasattr(out, "to_tuple"):
        return _tensors(out.to_tuple())
    return []


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300]}" if text else type(e).__name__


def replay(
    fn: Callable[[], Any], *, iters: int, warmup_iters: int, batch_size: int, not_attempted: str = ""
) -> GraphReplay:
    """Capture ``fn`` (a call of the compiled module on fixed inputs) and time its replay."""
    if not_attempted:
        return GraphReplay(captured=False, reason=not_attempted)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.inference_mode():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP_CALLS):
                    fn()
            torch.cuda.current_stream().wait_stream(side)
            torch.cuda.synchronize()
            with torch.cuda.graph(graph):
                captured_out = fn()
            graph.replay()
            torch.cuda.synchronize()
            replayed = [t.detach().float().clone() for t in _tensors(captured_out)]
            expected = [t.detach().float() for t in _tensors(fn())]
            torch.cuda.synchronize()
    except Exception as e:  # capture refused: report why, leave the module usable
        log.info("CUDA graph capture failed", exc_info=True)
        _recover()
        return GraphReplay(captured=False, reason=f"capture failed: {_first_line(e)}")
    if (
        not replayed
        or len(replayed) != len(expected)
        or any(
            a.shape != b.shape or not torch.allclose(a, b, rtol=RTOL, atol=ATOL)
            for a, b in zip(replayed, expected, strict=True)
        )
    ):
        del graph
        _recover()
        return GraphReplay(
            captured=False,
            reason="a replay's outputs differ from a normal call's: the module does "
            "host-side work (a sync, a shape check) that a graph does not record",
        )
    stats, _ = time_inference(
        graph.replay, device="cuda", warmup_iters=warmup_iters, timed_iters=iters, batch_size=batch_size
    )
    del graph, captured_out
    _recover()
    return GraphReplay(
        captured=True, median_ms=stats.median_ms, p10_ms=stats.p10_ms, p90_ms=stats.p90_ms, iters=stats.iters
    )


def _recover() -> None:
    try:
        torch.cuda.synchronize()
    except Exception:  # a failed capture can leave an error to collect once
        log.info("error collected after a CUDA graph capture", exc_info=True)
    torch.cuda.empty_cache()
