"""Does the generative decode step's GPU figure match what a plain script measures on the same engine?

On the GPU, in one process: the decode step of GPT-2 (batch 1, context 256, fp16) built with Torch-TensorRT by
engine/generative, its GPU figure taken as a run takes it (``engine.generative.measure.timed``); then the same
compiled step traced with torch.profiler by bench/fidelity.py's plain code (kernel durations summed from
``prof.events()``, nothing shared with the product's parser). Goal: within ±2%.

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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="hf/gpt2")
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--iters", type=int, default=200)
    args = ap.parse_args()

    import torch

    from bench.fidelity import plain_gpu_ms
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
    plain_ms, plain_kernels = plain_gpu_ms(loop.step, args.iters)
    ratio = spread.gpu_ms / plain_ms
    ok = abs(ratio - 1.0) <= GOAL
    print(f"device: {torch.cuda.get_device_name()} | {args.model} decode step batch 1 context {args.context}")
    print(
        f"product: e2e median {spread.median_ms:.4f} ms (p10 {spread.p10_ms:.4f}, p90 {spread.p90_ms:.4f}), GPU "
        f"{spread.gpu_ms:.4f} ms (windows {spread.gpu_min_ms:.4f}..{spread.gpu_max_ms:.4f})"
    )
    print(f"plain torch.profiler on the same engine: {plain_ms:.4f} ms, {plain_kernels:g} kernels per step")
    print(f"RESULT generative_fidelity_decode_gpu_ms ratio={ratio:.4f} goal=1+-{GOAL} {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
