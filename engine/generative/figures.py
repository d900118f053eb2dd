"""What a generative run measured, as data: every figure with its spread. Nothing here measures or draws.

``Spread`` is one timed figure (median, p10, p90 of the end-to-end samples, and the GPU figure of
engine/profiling/gpu_time.py where it was measured). ``BackendFigures`` holds one backend's figures; a
``GenerativeRun`` holds the request, the decoder's shapes, every backend's figures, the greedy-token check and the
memory figures, and is the JSON the store keeps and the samples bundle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from engine.generative.configs import DecoderConfig
from engine.generative.request import GenerateRequest
from engine.latency_stats import LatencyStats

GRAPH_SUFFIX = " + CUDA graph"  # names a series or a token check of a decode step replayed as a CUDA graph


@dataclass(frozen=True)
class Spread:
    median_ms: float
    p10_ms: float
    p90_ms: float
    iters: int
    gpu_ms: float | None = None  # GPU time per call (engine/profiling/gpu_time.py), median of its windows
    gpu_min_ms: float | None = None
    gpu_max_ms: float | None = None

    @classmethod
    def of(cls, stats: LatencyStats, gpu: Any = None) -> Spread:
        """From the harness's ``LatencyStats`` and, when measured, a ``GpuTime``."""
        return cls(
            stats.median_ms,
            stats.p10_ms,
            stats.p90_ms,
            stats.iters,
            None if gpu is None else gpu.median_ms,
            None if gpu is None else gpu.min_ms,
            None if gpu is None else gpu.max_ms,
        )


@dataclass(frozen=True)
class PrefillPoint:
    prompt_len: int
    cache_len: int
    spread: Spread


@dataclass(frozen=True)
class DecodePoint:
    """One decode step at ``batch`` x ``context`` (the cache length its program was built for); ``graph``: the same
    step replayed as a CUDA graph, when asked and captured."""

    context: int
    batch: int
    spread: Spread
    graph: Spread | None = None
    graph_error: str = ""  # why no graph figure when one was asked for

    @property
    def tokens_per_s(self) -> float:
        return self.batch * 1000.0 / self.spread.median_ms if self.spread.median_ms > 0 else 0.0

    @property
    def graph_tokens_per_s(self) -> float | None:
        if self.graph is None or self.graph.median_ms <= 0:
            return None
        return self.batch * 1000.0 / self.graph.median_ms


@dataclass(frozen=True)
class HostOverhead:
    """One decode step (batch 1, first context): end to end, the GPU's own time, the host's enqueue time."""

    e2e_ms: float
    gpu_ms: float  # the GPU figure of the step
    enqueue_ms: float  # host time to issue the step (no sync)
    graph_ms: float | None  # the step replayed as a CUDA graph

    @property
    def host_ms(self) -> float:
        """What the GPU waited for the host: end to end less the GPU's own time."""
        return max(self.e2e_ms - self.gpu_ms, 0.0)

    @property
    def host_share(self) -> float:
        return self.host_ms / self.e2e_ms if self.e2e_ms > 0 else 0.0


@dataclass(frozen=True)
class BackendFigures:
    backend: str
    build_s: dict[str, float]  # program key ("prefill/1x128", "decode/1x256") -> seconds to make it
    prefill: list[PrefillPoint]
    decode: list[DecodePoint]  # batch 1, by context
    batches: list[DecodePoint]  # first context, by batch
    host: HostOverhead | None = None
    layer_split_ms: dict[str, float] = field(default_factory=dict)  # attention / mlp / norms / rest of one step
    tokens: list[list[int]] = field(default_factory=list)  # greedy tokens generated, per sequence

    @property
    def ttft(self) -> Spread:
        """Time to first token: the prefill of the first prompt (its logits give the first token)."""
        return self.prefill[0].spread


@dataclass(frozen=True)
class TokenCheck:
    """Greedy tokens of ``backend`` against ``reference`` over ``steps`` tokens from the same prompt."""

    backend: str
    reference: str  # "eager" (or "transformers" in the CPU tests)
    steps: int
    first_difference: int | None  # token index of the first difference, None: all equal
    logits_rel_error: float | None  # relative L2 error of the logits at that index (at the last one when equal)

    @property
    def equal(self) -> bool:
        return self.first_difference is None


@dataclass(frozen=True)
class MemoryFigures:
    weights_bytes: int
    kv_bytes_per_token: int
    free_bytes: int | None  # the device's free memory before the run (None on CPU)
    largest_batch: dict[int, int]  # context -> the largest batch whose cache fits (empty on CPU)


@dataclass(frozen=True)
class GenerativeRun:
    run_id: str
    created_utc: str
    request: GenerateRequest
    config: DecoderConfig
    env: dict[str, Any]  # device_name, torch, torch_tensorrt, ...
    backends: dict[str, BackendFigures]
    checks: list[TokenCheck]
    memory: MemoryFigures
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        r = self.request
        return f"{r.model} generate {r.precision} {'+'.join(r.backends)}{' cudagraphs' if r.cuda_graphs else ''}"

    def comparable_key(self) -> tuple[Any, ...]:
        """What must be equal for two runs to be compared: model shape, precision, device and sizes."""
        r = self.request
        return (
            r.model,
            tuple(sorted(self.config.to_dict().items())),
            r.precision,
            self.env.get("device_name"),
            r.prompt_lengths,
            r.contexts,
            r.batch_sizes,
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["kind"] = "generative"
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerativeRun:
        def spread(x: dict[str, Any] | None) -> Spread | None:
            return None if x is None else Spread(**x)

        def point(x: dict[str, Any]) -> DecodePoint:
            return DecodePoint(
                x["context"], x["batch"], Spread(**x["spread"]), spread(x.get("graph")), x.get("graph_error", "")
            )

        backends = {
            name: BackendFigures(
                backend=b["backend"],
                build_s=dict(b["build_s"]),
                prefill=[PrefillPoint(p["prompt_len"], p["cache_len"], Spread(**p["spread"])) for p in b["prefill"]],
                decode=[point(p) for p in b["decode"]],
                batches=[point(p) for p in b["batches"]],
                host=None if b.get("host") is None else HostOverhead(**b["host"]),
                layer_split_ms=dict(b.get("layer_split_ms") or {}),
                tokens=[list(t) for t in b.get("tokens") or []],
            )
            for name, b in d["backends"].items()
        }
        mem = d["memory"]
        return cls(
            run_id=d["run_id"],
            created_utc=d["created_utc"],
            request=GenerateRequest.from_dict(d["request"]),
            config=DecoderConfig.from_dict(d["config"]),
            env=dict(d.get("env") or {}),
            backends=backends,
            checks=[TokenCheck(**c) for c in d.get("checks") or []],
            memory=MemoryFigures(
                mem["weights_bytes"],
                mem["kv_bytes_per_token"],
                mem.get("free_bytes"),
                {int(k): int(v) for k, v in (mem.get("largest_batch") or {}).items()},
            ),
            warnings=list(d.get("warnings") or []),
        )
