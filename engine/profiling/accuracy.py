"""Output agreement between a run and its reference on the same inputs."""

from __future__ import annotations

from typing import Any

import torch

from engine.result import Accuracy


def detached_cpu(out: Any) -> Any:
    """Model outputs (tensors, or lists/tuples/dicts of them) as float32 CPU copies, kept for comparing later."""
    if isinstance(out, torch.Tensor):
        return out.detach().float().cpu()
    if isinstance(out, (list, tuple)):
        return type(out)(detached_cpu(o) for o in out)
    if isinstance(out, dict):
        return {k: detached_cpu(v) for k, v in out.items()}
    return out


def _first_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)) and out:
        return _first_tensor(out[0])
    if hasattr(out, "last_hidden_state"):
        return out.last_hidden_state
    raise TypeError(f"cannot compare outputs of type {type(out).__name__}")


def compare_outputs(out: Any, ref: Any, reference: str) -> Accuracy:
    """Relative L2 error, max absolute error and, for (N, classes) logits, top-1 agreement."""
    a = _first_tensor(out).detach().float().cpu()
    b = _first_tensor(ref).detach().float().cpu()
    if a.shape != b.shape:
        raise ValueError(f"output shape {tuple(a.shape)} differs from the reference's {tuple(b.shape)}")
    diff = a - b
    denom = torch.linalg.vector_norm(b).item()
    rel = torch.linalg.vector_norm(diff).item() / denom if denom > 0 else float(torch.linalg.vector_norm(diff))
    top1 = None
    if a.dim() == 2 and a.shape[1] > 1:
        top1 = (a.argmax(dim=1) == b.argmax(dim=1)).float().mean().item()
    return Accuracy(reference=reference, rel_l2=rel, max_abs=diff.abs().max().item(), top1_agreement=top1)
