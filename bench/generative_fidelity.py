"""Does the generative decode step's GPU figure match what a plain script measures on the same engine?

On the GPU, in one process: the decode step of GPT-2 (batch 1, context 256, fp16) built with Torch-TensorRT by
engine/generative, its GPU figure taken as a run takes it (``engine.generative.measure.traced``); then the same
compiled step traced with torch.profiler by plain code that shares nothing with the product's parser: the kernels
of ``prof.events()``, their busy time (the union of their intervals: the GPU figure's definition) and their sum
(equal on one stream; TensorRT may run branches on auxiliary streams). Goal: the product within ±2% of the plain
busy time.

    python bench/generative_fidelity.py [--model hf/gpt2] [--context 256] [--iters 200]

Ends with ``RESULT generative_fidelity_decode_gpu_ms ratio=... goal=1+-0.02 PASS|FAIL``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL = 0.02


def plain_busy_ms(fn, iters: int) -> tuple[float, float, float]:
    """(busy ms, summed ms, kernels) per call of ``fn``, from torch.profiler's own event list."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        for _ in range(20):
            fn()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(iters):
                fn()
            torch.cuda.synchronize()
    spans = sorted(
        (e.time_range.start, e.time_range.end)
        for e in prof.events()
        if e.device_type == DeviceType.CUDA and not e.name.startswith(("Memcpy", "Memset"))
    )
    busy, cur_start, cur_end = 0.0, None, None
    for start, end in spans:
        if cur_end is None or start > cur_end:
            busy += 0.0 if cur_end is None else cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        busy += cur_end - cur_start
    summed = sum(end - start for start, end in spans)
    return busy / 1000.0 / iters, summed / 1000.0 / iters, len(spans) / iters


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="hf/gpt2")
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--iters", type=int, default=200)
    args = ap.parse_args()

    import torch

    from engine.generative.measure import Programs, timed, traced
    from engine.generative.programs import DecodeLoop
    from engine.generative.request import GenerateRequest
    from engine.generative.run import prepare

    request = GenerateRequest(
        args.model,
        backend="tensorrt",
        precision="fp16",
        device="cuda",
        prompt_lengths=(16,),
        new_tokens=16,
        contexts=(args.context,),
        batch_sizes=(1,),
        warmup_iters=20,
        timed_iters=args.iters,
    )
    decoder, _ = prepare(request)
    programs = Programs(decoder, "tensorrt", "cuda", request.seed)
    loop = DecodeLoop(programs.decode(1, args.context), *programs.decode_inputs(1, args.context))
    warnings: list[str] = []
    spread = traced(loop.step, timed(loop.step, request, 1), warnings)
    if spread.gpu_ms is None:
        print(f"RESULT generative_fidelity_decode_gpu_ms ratio=nan goal=1+-{GOAL} FAIL ({warnings})")
        return 1
    plain_ms, plain_sum_ms, plain_kernels = plain_busy_ms(loop.step, args.iters)
    ratio = spread.gpu_ms / plain_ms
    ok = abs(ratio - 1.0) <= GOAL
    print(f"device: {torch.cuda.get_device_name()} | {args.model} decode step batch 1 context {args.context}")
    print(
        f"product: e2e median {spread.median_ms:.4f} ms (p10 {spread.p10_ms:.4f}, p90 {spread.p90_ms:.4f}), GPU "
        f"{spread.gpu_ms:.4f} ms (windows {spread.gpu_min_ms:.4f}..{spread.gpu_max_ms:.4f})"
    )
    print(
        f"plain torch.profiler on the same engine: busy {plain_ms:.4f} ms, kernel sum {plain_sum_ms:.4f} ms, "
        f"{plain_kernels:g} kernels per step"
    )
    print(f"RESULT generative_fidelity_decode_gpu_ms ratio={ratio:.4f} goal=1+-{GOAL} {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
