"""The pieces both decoders share: attention over a static key/value cache (grouped-query aware), RMSNorm,
rotary position embedding and GPT-2's transposed linear layer.

The static cache of one layer is a pair of tensors ``[batch, kv_heads, cache_len, head_dim]`` whose size never
changes. The decode step writes the new token's key/value at ``position`` with a ``where`` over a one-hot slot
(no scatter, no data-dependent shape: one exported program, one engine, serves every step) and attends over the
whole cache with the slots after ``position`` masked out. So the step's cost depends on the cache length, not on
how far generation has got: "context" in the figures is the cache length the program was built for.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Softmax attention of ``q [B, H, T, D]`` over ``k, v [B, Hkv, S, D]`` where ``allowed [T, S]`` (bool) says
    which key each query position may see. Grouped-query attention without repeating the keys: the ``H / Hkv``
    query heads of one key/value head are one group of a 5-d matmul (head ``h`` uses key/value head ``h // G``, as
    Hugging Face's ``repeat_kv`` does). The softmax runs in float32, as Hugging Face's eager attention does."""
    b, h, t, d = q.shape
    hkv = k.shape[1]
    q5 = q.reshape(b, hkv, h // hkv, t, d)
    scores = torch.matmul(q5, k.unsqueeze(2).transpose(-1, -2)) * (1.0 / math.sqrt(d))
    scores = scores.float().masked_fill(~allowed, torch.finfo(torch.float32).min)
    probs = scores.softmax(dim=-1).to(v.dtype)
    return torch.matmul(probs, v.unsqueeze(2)).reshape(b, h, t, d)


def causal_allowed(length: int, device: torch.device) -> torch.Tensor:
    """``[T, T]``: position ``t`` sees positions ``<= t`` (the prefill's mask)."""
    idx = torch.arange(length, device=device)
    return idx[None, :] <= idx[:, None]


def write_slot(cache: torch.Tensor, new: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """``cache [B, Hkv, S, D]`` with slot ``position`` (a 1-element int64 tensor) replaced by ``new [B, Hkv, 1, D]``:
    a new tensor of the same shape."""
    slots = torch.arange(cache.shape[2], device=cache.device)
    return torch.where((slots == position).view(1, 1, -1, 1), new, cache)


def decode_allowed(cache_len: int, position: torch.Tensor) -> torch.Tensor:
    """``[1, S]``: the token at ``position`` sees cache slots ``<= position``."""
    slots = torch.arange(cache_len, device=position.device)
    return (slots <= position).view(1, -1)


def pad_to_cache(kv: torch.Tensor, cache_len: int) -> torch.Tensor:
    """A prompt's ``[B, Hkv, T, D]`` keys or values as a ``cache_len``-slot cache (zeros after the prompt)."""
    return torch.nn.functional.pad(kv, (0, 0, 0, cache_len - kv.shape[2]))


class RMSNorm(nn.Module):
    """Root-mean-square normalisation (Llama): computed in float32, scaled by ``weight`` in the input's dtype."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


class Conv1D(nn.Module):
    """GPT-2's linear layer: ``weight [in, out]`` (the transpose of ``nn.Linear``'s), so Hugging Face GPT-2
    state dicts load as they are."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.weight) + self.bias


class Rotary(nn.Module):
    """Rotary position embedding (Llama, the "rotate half" layout of Hugging Face): cos/sin for positions."""

    inv_freq: torch.Tensor

    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``positions [T]`` -> (cos, sin) ``[T, head_dim]`` in ``dtype``."""
        freqs = positions.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x [B, H, T, D]`` rotated by position (cos/sin ``[T, D]``)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin
