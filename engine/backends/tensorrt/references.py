"""The run's first step, before anything is compiled: what the engine is compared with.

- eager fp32 outputs for accuracy (TF32 off), read from the reference cache when an earlier run of the same
  model on this device computed them (``engine.profiling.reference_cache``);
- the eager baseline at the run's precision;
- optionally torch.compile inductor (mode default or max-autotune), its compile time recorded.

Baselines are timed by the same harness as the engine (``engine.profiling.latency.time_settled``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import torch

from engine.backends.base import ProgressFn
from engine.backends.eager import prepare
from engine.latency_stats import LatencyStats
from engine.models.entry import BuiltModel
from engine.models.registry import identity
from engine.profiling import latency
from engine.profiling.accuracy import _first_tensor, detached_cpu
from engine.profiling.reference_cache import cached_latency, cached_outputs, reference_key
from engine.result import DEGENERATE_REFERENCE
from engine.settings.request import RunRequest


@contextlib.contextmanager
def no_tf32() -> Iterator[None]:
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def eager_fp32_outputs(model: BuiltModel, request: RunRequest | None = None) -> Any:
    """Eager fp32 outputs on the GPU (TF32 off), as CPU float32 copies; cached per model, inputs and device
    when ``request`` is given and a data directory is set."""

    def compute() -> Any:
        module, inputs = prepare(model, "fp32", "cuda")
        with no_tf32(), torch.inference_mode():
            out = module(*inputs)
        return detached_cpu(out)

    if request is None:
        return compute()
    from engine.store import data_dir  # noqa: PLC0415 - the data directory's location lives with the store

    key = reference_key(
        identity(request.model, request.measure.seed), request.to_dict()["model"], torch.cuda.get_device_name()
    )
    out, _ = cached_outputs(data_dir(), key, compute)
    return out


def degenerate_reference(reference: Any) -> list[str]:
    """Random weights can make a model's output vanish (mobilenet_v3_small: |y| ~ 1e-9, below fp16's
    smallest subnormal; vit_b_16: a zero-initialised head); accuracy against it says nothing."""
    try:
        ref = _first_tensor(reference)
    except TypeError:
        return []
    peak = float(ref.abs().max()) if ref.numel() else 0.0
    if peak < 1e-4:
        return [
            f"{DEGENERATE_REFERENCE} (max |y| = {peak:.1e}, typical of random weights): "
            "the accuracy figures say little about this model; use pretrained weights to judge accuracy."
        ]
    return []


def eager_baseline(model: BuiltModel, request: RunRequest) -> tuple[LatencyStats, str | None]:
    """The eager model at the run's precision, timed by the engine's harness; reused from the reference
    cache when an earlier run measured the same model, inputs, precision and iterations on this device.
    Returns (stats, when it was measured if reused)."""

    def measure() -> LatencyStats:
        module, inputs = prepare(model, request.compile.precision, "cuda")
        stats, _ = latency.time_settled(lambda: module(*inputs), request)
        return stats

    from engine.store import data_dir  # noqa: PLC0415

    m = request.measure
    key = reference_key(
        identity(request.model, m.seed),
        request.to_dict()["model"],
        torch.cuda.get_device_name(),
        baseline=f"eager_{request.compile.precision}",
        warmup=m.warmup_iters,
        timed=m.timed_iters,
    )
    return cached_latency(data_dir(), key, measure)


def reused_note(name: str, measured_at: str) -> str:
    return (
        f"The {name} baseline was measured at {measured_at} in an earlier run of the same model, inputs and "
        "batch on this GPU and reused (data directory's reference_cache; delete it to measure again)."
    )


def inductor_baseline(model: BuiltModel, request: RunRequest, progress: ProgressFn) -> tuple[LatencyStats, float]:
    """torch.compile (inductor) at ``measure.compare_inductor``'s mode and the run's precision, timed by the
    same harness as the engine; returns its latency and its compile time (the first call, where torch.compile
    traces, autotunes and builds)."""
    mode = request.measure.compare_inductor
    precision = request.compile.precision
    module, inputs = prepare(model, precision, "cuda")
    try:
        compiled = torch.compile(module, mode=mode)
        slow = " (searches kernels: can take many minutes)" if mode == "max-autotune" else ""
        progress("baseline", None, f"torch.compile inductor {mode} {precision}: compiling{slow}")
        t0 = time.perf_counter()
        with torch.inference_mode():
            compiled(*inputs)
        torch.cuda.synchronize()
        compile_s = time.perf_counter() - t0
        progress("baseline", None, f"torch.compile inductor {mode} {precision}: timing (compiled in {compile_s:.1f} s)")
        stats, _ = latency.time_settled(lambda: compiled(*inputs), request)
        return stats, compile_s
    finally:
        torch._dynamo.reset()
