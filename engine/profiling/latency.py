"""The end-to-end latency harness every backend uses: warm up (``time_settled``: for a settle time first), then
time N calls.

On CUDA each call is timed with a pair of CUDA events (GPU time between enqueue points,
synchronised once per call); on CPU with ``time.perf_counter``. Profiling must be off
while this runs: a profiled engine is many times slower.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from engine.backends.base import ProgressFn, no_progress
from engine.latency_stats import LatencyStats

if TYPE_CHECKING:
    from engine.settings.request import RunRequest

PROGRESS_EVERY = 10


def time_inference(
    fn: Callable[[], Any],
    *,
    device: str,
    warmup_iters: int,
    timed_iters: int,
    batch_size: int,
    progress: ProgressFn = no_progress,
) -> tuple[LatencyStats, list[float]]:
    """Run ``fn`` ``warmup_iters`` times untimed, then ``timed_iters`` times timed."""
    cuda = device.startswith("cuda")
    with torch.inference_mode():
        for i in range(warmup_iters):
            fn()
            if i % PROGRESS_EVERY == 0:
                progress("warmup", i / warmup_iters, f"iteration {i}/{warmup_iters}")
        if cuda:
            torch.cuda.synchronize()
        samples: list[float] = []
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            for i in range(timed_iters):
                start.record()
                fn()
                end.record()
                end.synchronize()
                samples.append(start.elapsed_time(end))
                if i % PROGRESS_EVERY == 0:
                    progress("timing", i / timed_iters, f"iteration {i}/{timed_iters}")
        else:
            for i in range(timed_iters):
                t0 = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - t0) * 1000.0)
                if i % PROGRESS_EVERY == 0:
                    progress("timing", i / timed_iters, f"iteration {i}/{timed_iters}")
    progress("timing", 1.0, f"iteration {timed_iters}/{timed_iters}")
    timer = "cuda_events" if cuda else "perf_counter"
    return LatencyStats.from_samples(samples, batch_size, timer), samples


SETTLE_S = 1.0


def time_settled(
    fn: Callable[[], Any], request: RunRequest, progress: ProgressFn | None = None
) -> tuple[LatencyStats, list[float]]:
    """``time_inference`` on the GPU after at least ``SETTLE_S`` of back-to-back calls.

    A fixed number of warm-up iterations is a few milliseconds for a small engine: the GPU is still
    raising its clocks and the timed samples come out bimodal (seen on the H200: median 0.52 ms with
    p10 0.32 ms for resnet18 fp16). Running for a fixed time first settles them.
    """
    m = request.measure
    with torch.inference_mode():
        t_end = time.perf_counter() + SETTLE_S
        while time.perf_counter() < t_end:
            for _ in range(10):
                fn()
            torch.cuda.synchronize()
    return time_inference(
        fn,
        device="cuda",
        warmup_iters=m.warmup_iters,
        timed_iters=m.timed_iters,
        batch_size=request.model.batch_size,
        **({"progress": progress} if progress else {}),
    )
