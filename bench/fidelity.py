"""Do the product's figures match what a plain script measures on the same engine?

On the GPU, side by side in one run:

1. the product: one request through ``engine.runner.execute`` in this (fresh) process, as a job process
   runs it; the compiled module's call the backend timed is kept (``engine.profiling.latency.time_settled``
   is wrapped, pass-through);
2. GPU time, plain: right after, the same engine traced with torch.profiler (CUDA activity) by code that
   shares nothing with the product's parser: kernel durations summed from ``prof.events()`` over N calls.
   Goal: the product's ``gpu_ms`` within ±2% of it;
3. end-to-end, plain: ``--fresh`` (5) fresh processes, each a plain script (build, export, compile with
   Torch-TensorRT's defaults, settle 1 s, time 200 calls with CUDA events); goal: the product's e2e median
   inside the range of their medians (the run-to-run spread of a plain loop is the yardstick).

    python bench/fidelity.py [--model resnet50] [--precision fp16] [--fresh 5]

Ends with ``RESULT fidelity_gpu_ms ...`` and ``RESULT fidelity_e2e ...`` lines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GPU_GOAL = 0.02

PLAIN_LOOP = textwrap.dedent("""
    import json, sys, time
    import torch, torchvision, torch_tensorrt
    torch.manual_seed(0)
    dtype = {"fp16": torch.float16, "fp32": torch.float32}[sys.argv[2]]
    model = getattr(torchvision.models, sys.argv[1])().eval().cuda().to(dtype)
    x = torch.randn(1, 3, 224, 224, device="cuda", dtype=dtype)
    trt = torch_tensorrt.dynamo.compile(torch.export.export(model, (x,)), arg_inputs=[x], min_block_size=5)
    with torch.inference_mode():
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:
            trt(x)
        torch.cuda.synchronize()
        times = []
        for _ in range(200):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record(); trt(x); e.record(); e.synchronize()
            times.append(s.elapsed_time(e))
    print("PLAIN_MEDIAN_MS", sorted(times)[100])
""")


def plain_gpu_ms(fn, iters: int) -> tuple[float, float]:
    """Kernel time and kernels per call of ``fn`` from torch.profiler's own event list (not a Chrome trace)."""
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
    kernels = [
        e for e in prof.events() if e.device_type == DeviceType.CUDA and not e.name.startswith(("Memcpy", "Memset"))
    ]
    total_us = sum(e.time_range.elapsed_us() for e in kernels)
    return total_us / 1000.0 / iters, len(kernels) / iters


def fresh_plain_median(model: str, precision: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_LOOP, model, precision], capture_output=True, text=True, timeout=600
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("PLAIN_MEDIAN_MS")), None)
    if line is None:
        raise SystemExit(f"plain loop failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return float(line.split()[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--precision", default="fp16")
    ap.add_argument("--fresh", type=int, default=5)
    ap.add_argument("--iters", type=int, default=200)
    args = ap.parse_args()

    from engine import runner
    from engine.profiling import latency
    from engine.settings.request import RunRequest
    from engine.store import RunStore

    timed = []
    harness = latency.time_settled

    def keep_callable(fn, *a, **kw):
        timed.append(fn)
        return harness(fn, *a, **kw)

    latency.time_settled = keep_callable  # pass-through: the backend still runs the real harness
    request = RunRequest.from_dict(
        {
            "model": {"source": args.model},
            "backend": "tensorrt",
            "compile": {"precision": args.precision},
            "measure": {
                "warmup_iters": 50,
                "timed_iters": args.iters,
                "accuracy": False,
                "compare_eager": False,
                "layer_profile": False,
            },
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = runner.execute(request, RunStore(Path(tmp)), use_cache=False).result
    latency.time_settled = harness
    g = result.gpu_time
    print(
        f"device: {result.env['device_name']} | {result.env['flavour']} {result.env['tensorrt']} | "
        f"torch_tensorrt {result.env['torch_tensorrt']}"
    )
    print(
        f"product: {result.label}: e2e median {result.latency.median_ms:.4f} ms, GPU {g.median_ms:.4f} ms "
        f"(windows {g.min_ms:.4f}..{g.max_ms:.4f}, {g.kernels_per_inference:g} kernels/inference), graph "
        f"{result.graph_replay.median_ms if result.graph_replay.captured else result.graph_replay.reason}"
    )

    plain_ms, plain_kernels = plain_gpu_ms(timed[-1], args.iters)
    gpu_ratio = g.median_ms / plain_ms
    gpu_ok = abs(gpu_ratio - 1.0) <= GPU_GOAL and plain_kernels == g.kernels_per_inference
    print(f"plain torch.profiler on the same engine: {plain_ms:.4f} ms, {plain_kernels:g} kernels per call")

    medians = [fresh_plain_median(args.model, args.precision) for _ in range(args.fresh)]
    lo, hi = min(medians), max(medians)
    e2e = result.latency.median_ms
    e2e_ok = lo <= e2e <= hi
    print(
        f"plain loop in {args.fresh} fresh processes, e2e medians: {', '.join(f'{m:.4f}' for m in medians)} ms "
        f"(spread {100 * (hi - lo) / statistics.median(medians):.0f}%)"
    )
    print(
        json.dumps(
            {
                "product_e2e_ms": e2e,
                "product_gpu_ms": g.median_ms,
                "plain_gpu_ms": plain_ms,
                "plain_e2e_ms": medians,
                "graph_ms": result.graph_replay.median_ms,
            }
        )
    )
    print(
        f"RESULT fidelity_gpu_ms ratio={gpu_ratio:.4f} kernels={g.kernels_per_inference:g}/{plain_kernels:g} "
        f"goal=1+-{GPU_GOAL} {'PASS' if gpu_ok else 'FAIL'}"
    )
    print(f"RESULT fidelity_e2e median={e2e:.4f} range={lo:.4f}..{hi:.4f} goal=inside {'PASS' if e2e_ok else 'FAIL'}")
    return 0 if gpu_ok and e2e_ok else 1


if __name__ == "__main__":
    sys.exit(main())
