"""Where one eager decode step's time goes: attention vs MLP vs norms vs the rest (embedding, logits, the cache's
stacking), from forward hooks on the decoder's modules.

On CPU each module call is timed with ``perf_counter``; on the GPU with a pair of CUDA events per call (no sync in
between), so a part's figure is the GPU timeline it spans, waits for the host included. "rest" is the step's
total less the parts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from engine.generative.models.decoder import CachedAttention
from engine.generative.models.layers import RMSNorm

PARTS = ("attention", "mlp", "norms", "rest")


def part_of(name: str, module: nn.Module) -> str | None:
    if isinstance(module, CachedAttention):
        return "attention"
    if isinstance(module, (nn.LayerNorm, RMSNorm)):
        return "norms"
    if name.rsplit(".", 1)[-1] == "mlp":
        return "mlp"
    return None


def split_ms(decoder: nn.Module, step: Callable[[], Any], iters: int, cuda: bool) -> dict[str, float]:
    """Mean milliseconds per step of each part (``PARTS``), over ``iters`` calls of ``step`` (eager)."""
    marks: list[tuple[str, Any, Any]] = []
    open_calls: dict[int, Any] = {}
    handles = []

    def now() -> Any:
        if cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    for name, module in decoder.named_modules():
        part = part_of(name, module)
        if part is None:
            continue

        def pre(mod: nn.Module, args: Any, _part: str = part) -> None:
            open_calls[id(mod)] = now()

        def post(mod: nn.Module, args: Any, out: Any, _part: str = part) -> None:
            marks.append((_part, open_calls.pop(id(mod)), now()))

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        with torch.inference_mode():
            step()  # warm-up, its marks dropped
            marks.clear()
            start = now()
            for _ in range(iters):
                step()
            end = now()
            if cuda:
                torch.cuda.synchronize()
    finally:
        for h in handles:
            h.remove()

    def elapsed(a: Any, b: Any) -> float:
        return float(a.elapsed_time(b)) if cuda else (b - a) * 1000.0

    out = dict.fromkeys(PARTS, 0.0)
    for part, a, b in marks:
        out[part] += elapsed(a, b) / iters
    total = elapsed(start, end) / iters
    out["rest"] = max(total - sum(out[p] for p in PARTS if p != "rest"), 0.0)
    return out
