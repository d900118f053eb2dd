"""What a generative run is asked to do: one frozen ``GenerateRequest``, and ``check``, which refuses bad input
before anything is built (a prompt or cache longer than the model's positions, a batch x cache that cannot fit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError
from engine.generative.configs import DecoderConfig
from engine.generative.static_cache import DTYPE_BYTES, estimate

BACKENDS = ("eager", "tensorrt", "inductor")
PRECISIONS = tuple(DTYPE_BYTES)
DEFAULT_LATENCY_BUDGET_MS = 20.0
GIB = 2**30


@dataclass(frozen=True)
class GenerateRequest:
    """One generative run: the model, where and how it runs, and the sizes each figure sweeps."""

    model: str  # a registry decoder ("hf/gpt2", "hf/llama-1b", "hf/tiny-llama") or "file:<name>.py"
    backend: str = "eager"  # the backend of the run; ``compare_with`` are measured in the same call
    compare_with: tuple[str, ...] = ()
    precision: str = "fp16"
    device: str = "cuda"
    prompt_lengths: tuple[int, ...] = (128,)  # prefill figure; the first is the TTFT's and the generation's prompt
    new_tokens: int = 32  # greedy tokens generated (and checked against eager)
    contexts: tuple[int, ...] = (256, 1024)  # cache lengths of the decode-step figure
    batch_sizes: tuple[int, ...] = (1, 4, 16)  # tokens/s figure, at the first context
    cuda_graphs: bool = False  # the decode step replayed as a CUDA graph (measured both ways when True)
    latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS  # the per-token budget of the tokens/s verdict
    warmup_iters: int = 5
    timed_iters: int = 30
    seed: int = 0

    @property
    def backends(self) -> tuple[str, ...]:
        return (self.backend, *(b for b in self.compare_with if b != self.backend))

    @property
    def generation_cache_len(self) -> int:
        """The cache the TTFT and the greedy generation use: the first prompt plus the new tokens."""
        return self.prompt_lengths[0] + self.new_tokens

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GenerateRequest:
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names}
        return cls(**values)


def program_count(request: GenerateRequest) -> int:
    """Programs one backend builds: a prefill per prompt length, a decode step per context and per other batch
    (the generation's decode step is the first context's when the prompt and new tokens fit it)."""
    first = request.prompt_lengths[0] + request.new_tokens
    extra = 1 if first > request.contexts[0] and first not in request.contexts else 0
    return len(set(request.prompt_lengths)) + len(set(request.contexts)) + len(set(request.batch_sizes) - {1}) + extra


def _positive_ints(field: str, values: tuple[int, ...]) -> None:
    if not values:
        raise ConfigError(field, "give at least one value")
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(field, f"{v!r} is not a whole number of 1 or more")


def check(request: GenerateRequest, config: DecoderConfig, free_bytes: int | None) -> None:
    """Refuse a request the model or the device cannot serve, naming the field, before any build.
    ``free_bytes``: the device's free memory (None on CPU: not checked)."""
    for name in request.backends:
        if name not in BACKENDS:
            raise ConfigError("backend", f"{name!r} is not a backend here; use one of {', '.join(BACKENDS)}")
    if request.precision not in PRECISIONS:
        raise ConfigError("precision", f"{request.precision!r}: use one of {', '.join(PRECISIONS)}")
    _positive_ints("prompt_lengths", request.prompt_lengths)
    _positive_ints("contexts", request.contexts)
    _positive_ints("batch_sizes", request.batch_sizes)
    _positive_ints("new_tokens", (request.new_tokens,))
    _positive_ints("timed_iters", (request.timed_iters,))
    limit = config.max_positions
    longest_prompt = max(request.prompt_lengths)
    if longest_prompt + request.new_tokens > limit:
        raise ConfigError(
            "prompt_lengths",
            f"a prompt of {longest_prompt} tokens plus {request.new_tokens} new tokens is "
            f"{longest_prompt + request.new_tokens} positions; {request.model} holds {limit}",
            f"Keep prompt + new tokens at or under {limit}.",
        )
    if max(request.contexts) > limit:
        raise ConfigError(
            "contexts",
            f"a cache of {max(request.contexts)} tokens is longer than the {limit} positions {request.model} holds",
            f"Keep every context at or under {limit}.",
        )
    if not request.device.startswith("cuda"):
        if request.cuda_graphs or any(b == "tensorrt" for b in request.backends):
            raise ConfigError(
                "backend", "Torch-TensorRT and CUDA graphs need a GPU; on CPU use the eager or inductor backend"
            )
        return
    if free_bytes is None:
        return
    largest = max(
        ((max(request.batch_sizes), request.contexts[0]), (1, max(request.contexts))),
        key=lambda bc: bc[0] * bc[1],
    )
    engines = program_count(request) if "tensorrt" in request.backends else 0
    need = estimate(config, largest[0], largest[1], request.precision, engines)
    if need.total_bytes > free_bytes:
        in_engines = (
            f", {engines} TensorRT engines' weights {need.engine_weights_bytes / GIB:.1f} GiB" if engines else ""
        )
        raise ConfigError(
            "batch_sizes",
            f"batch {largest[0]} x cache {largest[1]} needs about {need.total_bytes / GIB:.1f} GiB "
            f"(weights {need.weights_bytes / GIB:.2f} GiB{in_engines}, caches 2 x {need.cache_bytes / GIB:.2f} GiB, "
            f"logits and reserve {(need.logits_bytes + need.reserve_bytes) / GIB:.1f} GiB); "
            f"the GPU has {free_bytes / GIB:.1f} GiB free",
            "Lower the largest batch size or context.",
        )
