"""The static-cache decoder every architecture shares: ``prefill`` and ``decode`` over stacked cache tensors.

A ``CausalDecoder`` holds ``blocks`` (one per layer, each ``block(h, rot, cache, position, cache_len) -> (h, k, v)``)
and says how tokens are embedded (``embed``), normalised at the end (``final_norm``) and turned into logits
(``lm_head``). The two programs the tool measures apart are its two methods:

- ``prefill(input_ids [B, T], cache_len)`` -> (logits of the last position ``[B, V]``, keys, values), the cache
  tensors ``[layers, B, kv_heads, cache_len, head_dim]`` holding the prompt in slots ``0..T-1``;
- ``decode(token [B, 1], position [1], keys, values)`` -> (logits ``[B, V]``, keys, values) with the token's
  key/value written at ``position``: the same shapes in and out, so the outputs feed the next step.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.generative.configs import DecoderConfig
from engine.generative.models.layers import (
    apply_rotary,
    attend,
    causal_allowed,
    decode_allowed,
    pad_to_cache,
    write_slot,
)

Rot = tuple[torch.Tensor, torch.Tensor] | None
Cache = tuple[torch.Tensor, torch.Tensor] | None


class CachedAttention(nn.Module):
    """Attention of one layer over its static cache. Subclasses project (``project``) and output (``output``)."""

    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.num_kv_heads = config.num_kv_heads
        self.head_dim = config.head_dim

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def output(self, o: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, rot: Rot, cache: Cache, position: torch.Tensor, cache_len: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        q, k, v = self.project(x)
        q = q.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k = k.view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if rot is not None:
            q, k = apply_rotary(q, *rot), apply_rotary(k, *rot)
        if cache is None:  # prefill: the prompt attends to itself, the cache is the prompt padded
            o = attend(q, k, v, causal_allowed(t, x.device))
            k_out, v_out = pad_to_cache(k, cache_len), pad_to_cache(v, cache_len)
        else:
            k_out, v_out = write_slot(cache[0], k, position), write_slot(cache[1], v, position)
            o = attend(q, k_out, v_out, decode_allowed(cache_len, position))
        return self.output(o.transpose(1, 2).reshape(b, t, self.num_heads * self.head_dim)), k_out, v_out


class CausalDecoder(nn.Module):
    """Base of the built-in decoders (engine/generative/models/gpt2.py, llama.py)."""

    config: DecoderConfig

    def blocks(self) -> nn.ModuleList:
        raise NotImplementedError

    def embed(self, ids: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, Rot]:
        """(hidden states ``[B, T, hidden]``, rotary cos/sin or None) of token ids at ``positions [T]``."""
        raise NotImplementedError

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def prefill(self, input_ids: torch.Tensor, cache_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        h, rot = self.embed(input_ids, positions)
        keys, values = [], []
        for block in self.blocks():
            h, k, v = block(h, rot, None, positions[:1], cache_len)
            keys.append(k)
            values.append(v)
        return self.logits(self.final_norm(h[:, -1])), torch.stack(keys), torch.stack(values)

    def decode(
        self, token: torch.Tensor, position: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, rot = self.embed(token, position)
        cache_len = keys.shape[3]
        new_keys, new_values = [], []
        for i, block in enumerate(self.blocks()):
            h, k, v = block(h, rot, (keys[i], values[i]), position, cache_len)
            new_keys.append(k)
            new_values.append(v)
        return self.logits(self.final_norm(h[:, -1])), torch.stack(new_keys), torch.stack(new_values)
