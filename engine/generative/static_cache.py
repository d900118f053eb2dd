"""The static key/value cache: its shape, its bytes, and what fits on a device (the estimate that refuses a run
before anything is built).

Keys and values are two tensors ``[layers, batch, kv_heads, cache_len, head_dim]`` allocated once at their full
length. The decode program takes them and returns their successors of the same shape (engine/generative/models),
so during a step both the old and the new cache are alive: a run needs twice the cache's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.generative.configs import DecoderConfig

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# what a device keeps for itself beyond weights, caches and logits: the CUDA context, the builders' workspace,
# the activations of one step (measured slack, not a bound)
RESERVE_BYTES = 2 * 2**30
CACHE_COPIES = 2  # a step's input and output caches are both alive


@dataclass(frozen=True)
class CacheShape:
    layers: int
    batch: int
    kv_heads: int
    cache_len: int
    head_dim: int
    dtype: str  # "fp32" | "fp16" | "bf16"

    @classmethod
    def of(cls, config: DecoderConfig, batch: int, cache_len: int, dtype: str) -> CacheShape:
        return cls(config.num_layers, batch, config.num_kv_heads, cache_len, config.head_dim, dtype)

    @property
    def dims(self) -> tuple[int, int, int, int, int]:
        return (self.layers, self.batch, self.kv_heads, self.cache_len, self.head_dim)

    @property
    def bytes(self) -> int:
        """Keys and values together."""
        return 2 * self.layers * self.batch * self.kv_heads * self.cache_len * self.head_dim * DTYPE_BYTES[self.dtype]

    def allocate(self, device: str | torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        dt = TORCH_DTYPES[self.dtype]
        return torch.zeros(self.dims, dtype=dt, device=device), torch.zeros(self.dims, dtype=dt, device=device)


def bytes_per_token(config: DecoderConfig, dtype: str) -> int:
    """Cache bytes one token of one sequence holds (keys and values of every layer)."""
    return CacheShape.of(config, 1, 1, dtype).bytes


def weight_bytes(config: DecoderConfig, dtype: str) -> int:
    """Parameter bytes of the decoder (tied embeddings counted once), from its shapes alone."""
    h, i, v, layers = config.hidden_size, config.intermediate_size, config.vocab_size, config.num_layers
    kv = config.num_kv_heads * config.head_dim
    if config.arch == "gpt2":
        per_layer = (h * 3 * h + 3 * h) + (h * h + h) + (h * i + i) + (i * h + h) + 4 * h
        params = v * h + config.max_positions * h + layers * per_layer + 2 * h
    else:
        per_layer = h * h + 2 * h * kv + h * h + 3 * h * i + 2 * h
        params = v * h + layers * per_layer + h
    if not config.tie_embeddings:
        params += v * h
    return params * DTYPE_BYTES[dtype]


@dataclass(frozen=True)
class MemoryEstimate:
    """The bytes a run needs at its largest batch x cache length."""

    weights_bytes: int
    cache_bytes: int  # one cache (keys + values) at the largest batch x cache length
    logits_bytes: int
    reserve_bytes: int
    engine_weights_bytes: int = 0  # TensorRT engines hold their own copy of the weights, one per program

    @property
    def total_bytes(self) -> int:
        return (
            self.weights_bytes
            + self.engine_weights_bytes
            + CACHE_COPIES * self.cache_bytes
            + self.logits_bytes
            + self.reserve_bytes
        )


def estimate(config: DecoderConfig, batch: int, cache_len: int, dtype: str, engines: int = 0) -> MemoryEstimate:
    """What a run needs at ``batch`` x ``cache_len``; ``engines``: TensorRT programs alive at once."""
    logits = batch * config.vocab_size * 4 * 2  # float32 logits of a step, and the softmax's copy
    weights = weight_bytes(config, dtype)
    cache = CacheShape.of(config, batch, cache_len, dtype).bytes
    return MemoryEstimate(weights, cache, logits, RESERVE_BYTES, engines * weights)


def largest_batch(config: DecoderConfig, cache_len: int, dtype: str, free_bytes: int) -> int:
    """The largest batch whose cache of ``cache_len`` fits ``free_bytes`` beside the weights (0: none fits)."""
    lo, hi = 0, 1
    while estimate(config, hi, cache_len, dtype).total_bytes <= free_bytes:
        lo, hi = hi, hi * 2
        if hi > 1 << 20:
            return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if estimate(config, mid, cache_len, dtype).total_bytes <= free_bytes:
            lo = mid
        else:
            hi = mid
    return lo
