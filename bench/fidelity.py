"""Does the product's GPU figure match what a plain script measures on the same engine?

For each engine, in this one process: the product runs a request through ``engine.runner.execute`` (as a job
process does) and keeps the compiled module's call it timed (``engine.profiling.latency.time_settled`` is
wrapped, pass-through); right after, code that shares nothing with the product's parser measures that same call:

- plain busy time: 1 s of calls, then ``WINDOWS`` torch.profiler sessions read through ``prof.events()`` (not a
  Chrome trace): the union of every CUDA kernel's interval on every stream, per call, median of the sessions;
- plain CUDA-graph replay (static engines): PyTorch's documented capture recipe, replays timed with CUDA events.

Goal: the product's GPU time (busy) within ±2% of the plain busy time, and its graph replay within ±2% of the
plain replay, with none of the product's own checks failing (``engine.profiling.invariants``: busy <= e2e,
replay >= busy, windows agree, warm-up settled). Engines:

- ``single``: resnet50 fp16, batch 1 (one stream);
- ``multi``: googlenet fp16, batch 1 (parallel branches on several streams; needs nothing extra), or with
  ``--multi vit_int8_weight_only`` vit_b_16 INT8 weight-only, batch 8 (needs ModelOpt);
- ``dynamic``: resnet50 fp16 built for batch 1..32, measured at batch 8 (no graph replay: dynamic shapes).

    python bench/fidelity.py [--quick] [--engines single,multi,dynamic] [--multi googlenet] [--fresh 0]

Needs only torch, torchvision, numpy, pandas, torch_tensorrt and this repository (no plotly or streamlit). One
``RESULT fidelity_<engine> ...`` line per engine; ``--fresh N`` adds the old end-to-end check (the product's e2e
median inside the range of N fresh plain processes, resnet50 fp16 batch 1: ``RESULT fidelity_e2e``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL = 0.02
WINDOWS = 5
IMAGE = [3, 224, 224]

ENGINES = {
    "single": {"model": {"source": "resnet50", "batch_size": 1}, "compile": {"precision": "fp16"}},
    "googlenet": {"model": {"source": "googlenet", "batch_size": 1}, "compile": {"precision": "fp16"}},
    "vit_int8_weight_only": {
        "model": {"source": "vit_b_16", "batch_size": 8},
        "compile": {"precision": "fp16", "quantization": "int8_weight_only", "quant_base_precision": "fp16"},
    },
    "dynamic": {
        "model": {
            "source": "resnet50",
            "batch_size": 8,
            "inputs": [
                {
                    "name": "x",
                    "dtype": "float32",
                    "shape": [8, *IMAGE],
                    "min_shape": [1, *IMAGE],
                    "max_shape": [32, *IMAGE],
                }
            ],
        },
        "compile": {"precision": "fp16"},
    },
}


# -- the plain script: nothing from engine/ ---------------------------------------------------------------
def union_us(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for s, e in sorted(intervals):
        if s >= end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


def plain_busy(fn, calls: int, windows: int = WINDOWS) -> tuple[float, float, float]:
    """Median busy ms per call over ``windows`` profiler sessions, their spread (%), kernels per call."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    per_window, kernels = [], []
    with torch.inference_mode():
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:
            fn()
        torch.cuda.synchronize()
        for w in range(windows + 1):
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(calls):
                    fn()
                torch.cuda.synchronize()
            if w == 0:  # CUPTI sets up in the first session
                continue
            ks = [
                e
                for e in prof.events()
                if e.device_type == DeviceType.CUDA and not e.name.startswith(("Memcpy", "Memset"))
            ]
            per_window.append(union_us([(e.time_range.start, e.time_range.end) for e in ks]) / 1000.0 / calls)
            kernels.append(len(ks) / calls)
    med = statistics.median(per_window)
    return med, 100.0 * (max(per_window) - min(per_window)) / med, statistics.median(kernels)


def plain_replay(fn, iters: int) -> float | None:
    """Median ms of a CUDA-graph replay of ``fn`` (None when it cannot be captured)."""
    import torch

    graph = torch.cuda.CUDAGraph()
    try:
        with torch.inference_mode():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    fn()
            torch.cuda.current_stream().wait_stream(side)
            torch.cuda.synchronize()
            with torch.cuda.graph(graph):
                fn()
            torch.cuda.synchronize()
    except Exception as e:  # noqa: BLE001 - say why and go on without a replay
        print(f"  plain capture failed: {type(e).__name__}: {str(e)[:200]}")
        return None
    times = []
    for _ in range(50):
        graph.replay()
    torch.cuda.synchronize()
    for _ in range(iters):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        graph.replay()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    del graph
    torch.cuda.empty_cache()
    return statistics.median(times)


# -- the product ---------------------------------------------------------------------------------------------
def product_run(name: str, iters: int):
    """The product's result for engine ``name`` and the call it timed."""
    from engine import runner
    from engine.profiling import latency
    from engine.settings.request import RunRequest
    from engine.store import RunStore

    timed = []
    harness = latency.time_settled

    def keep_callable(fn, *a, **kw):
        timed.append(fn)
        return harness(fn, *a, **kw)

    spec = ENGINES[name]
    request = RunRequest.from_dict(
        {
            **spec,
            "backend": "tensorrt",
            "measure": {
                "warmup_iters": 50,
                "timed_iters": iters,
                "accuracy": False,
                "compare_eager": False,
                "layer_profile": False,
            },
        }
    )
    latency.time_settled = keep_callable  # pass-through: the backend still runs the real harness
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = runner.execute(request, RunStore(Path(tmp)), use_cache=False).result
    finally:
        latency.time_settled = harness
    if not timed:
        raise SystemExit(f"{name}: the product timed nothing (warnings: {result.warnings})")
    return result, timed[-1]


def check_engine(label: str, name: str, iters: int, calls: int) -> bool:
    from engine.profiling import invariants

    t0 = time.perf_counter()
    result, fn = product_run(name, iters)
    g, gr = result.gpu_time, result.graph_replay
    if g is None:
        print(f"RESULT fidelity_{label} engine={name} gpu=missing goal=1+-{GOAL} FAIL ({result.warnings})")
        return False
    replay = f"{gr.median_ms:.4f} ms" if gr is not None and gr.captured else f"none ({gr.reason if gr else '-'})"
    print(
        f"[{label}] product {result.label}: e2e {result.latency.median_ms:.4f} ms | GPU busy {g.median_ms:.4f} ms "
        f"(windows {g.min_ms:.4f}..{g.max_ms:.4f}, settled {g.settled} after {g.warmup_calls} calls, gap "
        f"{g.settle_gap_pct}) | kernel work {g.kernel_sum_ms:.4f} ms | {g.kernels_per_inference:g} kernels/call | "
        f"graph replay {replay}"
    )
    findings = invariants.check(result)
    for f in findings:
        print(f"  product check failed: {f.check}: {f.text}")

    busy_ms, spread, kernels = plain_busy(fn, calls)
    busy_ratio = g.median_ms / busy_ms
    ok = abs(busy_ratio - 1) <= GOAL and not findings
    line = f"busy_ratio={busy_ratio:.4f} product={g.median_ms:.4f} plain={busy_ms:.4f}"
    print(f"  plain busy {busy_ms:.4f} ms per call (windows {spread:.1f}% apart), {kernels:g} kernels/call")
    if gr is not None and gr.captured and gr.median_ms:
        plain_gr = plain_replay(fn, iters)
        if plain_gr is None:
            ok = False
            line += " replay_ratio=plain-not-captured"
        else:
            replay_ratio = gr.median_ms / plain_gr
            ok = ok and abs(replay_ratio - 1) <= GOAL
            line += f" replay_ratio={replay_ratio:.4f} plain_replay={plain_gr:.4f}"
            print(f"  plain graph replay {plain_gr:.4f} ms")
    checks = ",".join(f.check for f in findings) or "ok"
    print(
        f"  {time.perf_counter() - t0:.0f} s | "
        + json.dumps({"engine": name, "e2e_ms": result.latency.median_ms, "busy_ms": g.median_ms, "plain_ms": busy_ms})
    )
    print(f"RESULT fidelity_{label} engine={name} {line} checks={checks} goal=1+-{GOAL} {'PASS' if ok else 'FAIL'}")
    return ok


PLAIN_LOOP = textwrap.dedent("""
    import sys, time
    import torch, torchvision, torch_tensorrt
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval().cuda().half()
    x = torch.randn(1, 3, 224, 224, device="cuda", dtype=torch.half)
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


def fresh_e2e(runs: int, iters: int) -> bool:
    """The product's e2e median (resnet50 fp16 b1) inside the range of ``runs`` fresh plain processes."""
    medians = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", PLAIN_LOOP], capture_output=True, text=True, timeout=600)
        line = next((x for x in done.stdout.splitlines() if x.startswith("PLAIN_MEDIAN_MS")), None)
        if line is None:
            raise SystemExit(f"plain loop failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        medians.append(float(line.split()[1]))
    e2e = product_run("single", iters)[0].latency.median_ms
    lo, hi = min(medians), max(medians)
    ok = lo <= e2e <= hi
    print(f"RESULT fidelity_e2e median={e2e:.4f} range={lo:.4f}..{hi:.4f} goal=inside {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", default="single,multi,dynamic", help="comma-separated: single, multi, dynamic")
    ap.add_argument("--multi", default="googlenet", choices=["googlenet", "vit_int8_weight_only"])
    ap.add_argument("--quick", action="store_true", help="fewer timed calls (100) and shorter profiler sessions")
    ap.add_argument("--fresh", type=int, default=0, help="fresh plain processes for the end-to-end check (0: skip)")
    args = ap.parse_args()
    unknown = set(args.engines.split(",")) - {"single", "multi", "dynamic"}
    if unknown:
        ap.error(f"unknown engine(s) {sorted(unknown)}: choose from single, multi, dynamic")

    import torch
    import torch_tensorrt

    iters, calls = (100, 10) if args.quick else (200, 20)
    features = getattr(getattr(torch_tensorrt, "_features", None), "ENABLED_FEATURES", None)
    print(
        f"device: {torch.cuda.get_device_name()} | torch {torch.__version__} | torch_tensorrt "
        f"{torch_tensorrt.__version__} | rtx {getattr(features, 'tensorrt_rtx', '?')}"
    )
    names = {"single": "single", "multi": args.multi, "dynamic": "dynamic"}
    ok = True
    for label in args.engines.split(","):
        try:
            ok = check_engine(label, names[label], iters, calls) and ok
        except Exception as e:  # noqa: BLE001 - one engine failing must not hide the others
            print(f"RESULT fidelity_{label} engine={names[label]} error={type(e).__name__}: {str(e)[:300]} FAIL")
            ok = False
    if args.fresh:
        ok = fresh_e2e(args.fresh, iters) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
