"""Measure one backend: build its programs (cached by shape), time the prefill by prompt length, the decode step by
context and by batch (plain and, with the knob, replayed as a CUDA graph), the host overhead of a step, the
per-layer split (eager), and generate greedy tokens for the correctness check.

Timing goes through the harness every run uses (engine/profiling/latency.py: CUDA events on the GPU,
``perf_counter`` on CPU); on the GPU each figure also gets the GPU figure of engine/profiling/gpu_time.py, which
holds still between processes where end-to-end latency does not.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from engine.generative import layer_split
from engine.generative.figures import BackendFigures, DecodePoint, HostOverhead, PrefillPoint, Spread
from engine.generative.models import CausalDecoder
from engine.generative.programs import DecodeLoop, DecodeProgram, PrefillProgram, Step, compile_program
from engine.generative.request import GenerateRequest
from engine.generative.static_cache import CacheShape
from engine.profiling import gpu_time
from engine.profiling.latency import time_inference

log = logging.getLogger(__name__)

SETTLE_S = 0.3  # back-to-back calls before each timed figure: the GPU raises its clocks
SPLIT_ITERS = 10
ENQUEUE_ITERS = 20
GPU_WINDOWS = 3  # profiler sessions per GPU figure (min/max of their per-call figures give its spread)


def prefill_cache_len(request: GenerateRequest, prompt_len: int) -> int:
    """The cache a prefill of ``prompt_len`` fills: the first context, or longer when the prompt and the new
    tokens need it. The generation's decode program is built for the first prompt's."""
    return max(request.contexts[0], prompt_len + request.new_tokens)


@dataclass
class Programs:
    """One backend's compiled programs, made on first use and kept by shape."""

    decoder: CausalDecoder
    backend: str
    device: str
    seed: int
    made: dict[str, Step] = field(default_factory=dict)
    build_s: dict[str, float] = field(default_factory=dict)

    def _get(self, key: str, make: Callable[[], tuple[torch.nn.Module, tuple[torch.Tensor, ...]]]) -> Step:
        if key not in self.made:
            # inputs, programs and calls all in inference mode: a compiled program guards on it
            with torch.inference_mode():
                program, example = make()
                t0 = time.perf_counter()
                if self.backend == "tensorrt":  # Torch-TensorRT lowers outside inference mode, on plain tensors
                    with torch.inference_mode(False), torch.no_grad():
                        plain = tuple(t.clone() for t in example)
                        call = compile_program(program, plain, self.backend)
                else:
                    call = compile_program(program, example, self.backend)
                if self.backend != "eager":  # inductor compiles on its first call; TensorRT's first call allocates
                    call(*example)
                sync(self.device)
            self.build_s[key] = time.perf_counter() - t0
            self.made[key] = call
        return self.made[key]

    def prompt(self, batch: int, length: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed + length)
        with torch.inference_mode():
            ids = torch.randint(0, self.decoder.config.vocab_size, (batch, length), generator=g)
            return ids.to(self.device)

    def prefill(self, batch: int, prompt_len: int, cache_len: int) -> Step:
        return self._get(
            f"prefill/{batch}x{prompt_len}/cache{cache_len}",
            lambda: (PrefillProgram(self.decoder, cache_len), (self.prompt(batch, prompt_len),)),
        )

    def decode_inputs(
        self, batch: int, cache_len: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        dtype = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.dtype]
        with torch.inference_mode():
            keys, values = CacheShape.of(self.decoder.config, batch, cache_len, dtype).allocate(self.device)
            token = self.prompt(batch, 1)
            position = torch.tensor([cache_len - 1], dtype=torch.int64, device=self.device)
        return token, position, keys, values

    def decode(self, batch: int, cache_len: int) -> Step:
        return self._get(
            f"decode/{batch}x{cache_len}",
            lambda: (DecodeProgram(self.decoder), self.decode_inputs(batch, cache_len)),
        )

    @property
    def dtype(self) -> torch.dtype:
        return next(self.decoder.parameters()).dtype


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:200]}" if text else type(e).__name__


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], request: GenerateRequest, batch: int) -> Spread:
    """End-to-end spread of ``fn`` (on the GPU after ``SETTLE_S`` of back-to-back calls)."""
    if request.device.startswith("cuda"):
        with torch.inference_mode():
            end = time.perf_counter() + SETTLE_S
            while time.perf_counter() < end:
                fn()
            torch.cuda.synchronize()
    stats, _ = time_inference(
        fn,
        device=request.device,
        warmup_iters=request.warmup_iters,
        timed_iters=request.timed_iters,
        batch_size=batch,
    )
    return Spread.of(stats)


def traced(fn: Callable[[], Any], spread: Spread, warnings: list[str]) -> Spread:
    """``spread`` with the GPU figure of ``fn`` (a failed trace is a warning and leaves it without)."""
    try:
        per_window = gpu_time.inferences_per_window(spread.median_ms)
        gpu = gpu_time.measure(fn, per_window=per_window, windows=GPU_WINDOWS).gpu_time
    except Exception as e:
        log.warning("GPU-time pass failed", exc_info=True)
        warnings.append(f"GPU time not measured: {first_line(e)}")
        return spread
    return dataclasses.replace(spread, gpu_ms=gpu.median_ms, gpu_min_ms=gpu.min_ms, gpu_max_ms=gpu.max_ms)


def decode_point(
    programs: Programs, request: GenerateRequest, batch: int, context: int
) -> tuple[DecodePoint, DecodeLoop]:
    """The step timed plain and, with the knob, replayed as a CUDA graph; the plain loop, for a later trace."""
    call = programs.decode(batch, context)
    loop = DecodeLoop(call, *programs.decode_inputs(batch, context))
    spread = timed(loop.step, request, batch)
    graph, graph_error = None, ""
    if request.cuda_graphs:
        try:
            replay = DecodeLoop(call, *programs.decode_inputs(batch, context), cuda_graph=True)
            graph = timed(replay.step, request, batch)
            del replay
        except Exception as e:
            log.info("CUDA graph capture failed", exc_info=True)
            graph_error = f"capture failed: {first_line(e)}"
            sync(request.device)
    return DecodePoint(context, batch, spread, graph, graph_error), loop


def enqueue_ms(step: Callable[[], Any], device: str) -> float:
    """Median host time to issue one step, the GPU idle before each (no waiting on the GPU inside)."""
    samples = []
    with torch.inference_mode():
        for _ in range(ENQUEUE_ITERS):
            sync(device)
            t0 = time.perf_counter()
            step()
            samples.append((time.perf_counter() - t0) * 1000.0)
        sync(device)
    return statistics.median(samples)


@dataclass
class Generation:
    tokens: torch.Tensor  # [B, new_tokens] on CPU
    logits: list[torch.Tensor]  # per token, [B, V] float32 on CPU


def generate(programs: Programs, request: GenerateRequest, cuda_graph: bool = False) -> Generation:
    """Greedy tokens from the first prompt (batch 1): the prefill's token, then one per decode step."""
    prompt_len = request.prompt_lengths[0]
    cache_len = prefill_cache_len(request, prompt_len)
    prefill = programs.prefill(1, prompt_len, cache_len)
    decode = programs.decode(1, cache_len)
    with torch.inference_mode():
        logits, keys, values = prefill(programs.prompt(1, prompt_len))
        token = logits.argmax(-1, keepdim=True)
        position = torch.tensor([prompt_len], dtype=torch.int64, device=request.device)
        loop = DecodeLoop(decode, token.clone(), position, keys, values, cuda_graph=cuda_graph)
        tokens, kept = [token], [logits.float().cpu()]
        for i in range(request.new_tokens - 1):
            loop.token.copy_(token)
            loop.set_position(prompt_len + i)
            loop.step()
            assert loop.logits is not None
            token = loop.logits.argmax(-1, keepdim=True)
            tokens.append(token)
            kept.append(loop.logits.float().cpu())
    return Generation(torch.cat(tokens, 1).cpu(), kept)


@dataclass
class Measured:
    """One backend's figures before the GPU traces: what to trace, kept alive until then (its programs with it)."""

    figures: BackendFigures
    generation: Generation
    graph_generation: Generation | None  # the same tokens with the decode step replayed as a CUDA graph
    programs: Programs
    prefill_calls: list[Callable[[], Any]]
    decode_loops: list[DecodeLoop]
    enqueue_ms: float | None


def measure_backend(
    decoder: CausalDecoder,
    request: GenerateRequest,
    backend: str,
    progress: Callable[[str], None] = lambda _: None,
) -> Measured:
    """Every host-sensitive figure of one backend: generation, end-to-end timings, CUDA-graph replays, the enqueue
    time and the per-layer split. No GPU trace yet: a torch.profiler trace slows the timings that follow it in the
    same process (engine/profiling/gpu_time.py), so ``add_gpu_figures`` runs after every backend's timings."""
    programs = Programs(decoder, backend, request.device, request.seed)
    progress(f"{backend}: generating {request.new_tokens} greedy tokens")
    generation = generate(programs, request)
    graph_generation = None
    if request.cuda_graphs:
        progress(f"{backend}: the same tokens with the decode step replayed as a CUDA graph")
        try:
            graph_generation = generate(programs, request, cuda_graph=True)
        except Exception:  # the capture failed: the decode points say why
            log.info("CUDA graph generation failed", exc_info=True)
    prefill: list[PrefillPoint] = []
    prefill_calls: list[Callable[[], Any]] = []
    for p in request.prompt_lengths:
        progress(f"{backend}: prefill of {p} tokens")
        cache_len = prefill_cache_len(request, p)
        call, ids = programs.prefill(1, p, cache_len), programs.prompt(1, p)
        prefill_calls.append(functools.partial(call, ids))
        prefill.append(PrefillPoint(p, cache_len, timed(prefill_calls[-1], request, 1)))
    decode, loops = [], []
    for c in request.contexts:
        progress(f"{backend}: decode step at context {c}")
        point, loop = decode_point(programs, request, 1, c)
        decode.append(point)
        loops.append(loop)
    batches = [decode[0]] if 1 in request.batch_sizes else []
    for b in sorted(set(request.batch_sizes) - {1}):
        progress(f"{backend}: decode step at batch {b}")
        batches.append(decode_point(programs, request, b, request.contexts[0])[0])
    cuda = request.device.startswith("cuda")
    enqueue = enqueue_ms(loops[0].step, request.device) if cuda else None
    split: dict[str, float] = {}
    if backend == "eager":
        progress("eager: per-layer split of one decode step")
        split = layer_split.split_ms(decoder, loops[0].step, SPLIT_ITERS, cuda)
    figures = BackendFigures(backend, dict(programs.build_s), prefill, decode, batches, None, split,
                             generation.tokens.tolist())  # fmt: skip
    return Measured(figures, generation, graph_generation, programs, prefill_calls, loops, enqueue)


def add_gpu_figures(
    m: Measured, warnings: list[str], progress: Callable[[str], None] = lambda _: None
) -> BackendFigures:
    """The figures with the GPU figure of the prefill and of the decode step by context (the verdicts read these; a
    graph replay launches everything at once, so its end-to-end figure is already the GPU's), and the host
    overhead that needs it."""
    f = m.figures
    progress(f"{f.backend}: GPU time of the prefill and the decode step")
    prefill = [
        dataclasses.replace(p, spread=traced(fn, p.spread, warnings))
        for p, fn in zip(f.prefill, m.prefill_calls, strict=True)
    ]
    decode = [
        dataclasses.replace(p, spread=traced(loop.step, p.spread, warnings))
        for p, loop in zip(f.decode, m.decode_loops, strict=True)
    ]
    batches = [decode[0] if p is f.decode[0] else p for p in f.batches]
    first = decode[0]
    host = None
    if m.enqueue_ms is not None and first.spread.gpu_ms is not None:
        host = HostOverhead(first.spread.median_ms, first.spread.gpu_ms, m.enqueue_ms,
                            None if first.graph is None else first.graph.median_ms)  # fmt: skip
    return dataclasses.replace(f, prefill=prefill, decode=decode, batches=batches, host=host)
