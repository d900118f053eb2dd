"""Correctness: greedy tokens of a backend against a reference's from the same prompt — equal for every step, or
the first token where they differ and the relative error of the logits there (the prefixes before it are equal, so
the two logits answer the same question)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from engine.generative.figures import TokenCheck


def first_difference(tokens: torch.Tensor, reference: torch.Tensor) -> int | None:
    """Index of the first token (over the sequence axis, any row) where ``tokens [B, N]`` differ, None if equal."""
    n = min(tokens.shape[1], reference.shape[1])
    differs = (tokens[:, :n] != reference[:, :n]).any(dim=0).nonzero()
    return int(differs[0]) if len(differs) else None


def rel_error(logits: torch.Tensor, reference: torch.Tensor) -> float:
    ref = reference.float()
    return float(torch.linalg.vector_norm(logits.float() - ref) / torch.linalg.vector_norm(ref).clamp_min(1e-30))


def compare(
    backend: str,
    tokens: torch.Tensor,
    logits: Sequence[torch.Tensor],
    reference_name: str,
    reference_tokens: torch.Tensor,
    reference_logits: Sequence[torch.Tensor],
) -> TokenCheck:
    diff = first_difference(tokens, reference_tokens)
    at = diff if diff is not None else min(len(logits), len(reference_logits)) - 1
    return TokenCheck(backend, reference_name, int(tokens.shape[1]), diff, rel_error(logits[at], reference_logits[at]))
