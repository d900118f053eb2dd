"""Where a job's wall time goes, against a plain compile + measure script (resnet50 fp16 batch 1 by default).

Side by side in one run, on the GPU:

1. the plain script, cold: a fresh ``python`` that imports torch, torchvision and torch_tensorrt, builds the
   model, exports, compiles, settles and times 200 calls with CUDA events (what a user writes by hand);
   its phases and its whole wall time (process start to exit) are printed;
2. the same model as a dashboard job through the queue with a warm worker: the job system is started, the
   bench waits until the GPU worker's standby job process is ready (it has imported torch and torch_tensorrt
   and initialised CUDA: ``engine.backends.prewarm``), then submits the request with the Profile page's
   defaults (eager baseline, accuracy, per-layer pass, GPU time, graph replay) and times submit → result
   stored; the result's ``stages_s`` say where that time went (the rest is model build, queue and store);
3. a second job of the same model with another knob value (optimization_level 3, as the next point of a
   sweep would be): its eager fp32 reference and eager baseline come from the reference cache the first
   job filled (``engine.profiling.reference_cache``).

Goal (issue 14): a job through the queue with a warm worker delivers its full result in at most 0.6x the
cold plain script's wall time, imports and the eager reference paid once, not per job: judged on job 2;
job 1 (which pays the eager reference and baseline) is printed beside it.

    python bench/walltime.py [--model resnet50] [--precision fp16]

Ends with ``RESULT walltime ratio=<job 2/plain> goal=<=0.6 PASS|FAIL`` after a ``RESULT walltime_first_job``
line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL = 0.6

PLAIN = textwrap.dedent("""
    import json, sys, time
    t = {"start": time.perf_counter()}
    import torch, torchvision, torch_tensorrt
    t["imports"] = time.perf_counter()
    torch.manual_seed(0)
    model = getattr(torchvision.models, sys.argv[1])().eval().cuda()
    dtype = {"fp16": torch.float16, "fp32": torch.float32}[sys.argv[2]]
    model = model.to(dtype)
    x = torch.randn(1, 3, 224, 224, device="cuda", dtype=dtype)
    t["model"] = time.perf_counter()
    exported = torch.export.export(model, (x,))
    t["export"] = time.perf_counter()
    trt = torch_tensorrt.dynamo.compile(exported, arg_inputs=[x], min_block_size=5)
    t["compile"] = time.perf_counter()
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
    t["measure"] = time.perf_counter()
    times.sort()
    print("PLAIN_JSON " + json.dumps({"phases": {k: t[k] - t["start"] for k in t}, "median_ms": times[100]}))
""")


def plain_cold(model: str, precision: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PLAIN, model, precision], capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    line = next((x for x in done.stdout.splitlines() if x.startswith("PLAIN_JSON ")), None)
    if line is None:
        raise SystemExit(f"plain script failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return wall, json.loads(line.removeprefix("PLAIN_JSON "))


def wait(predicate, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--precision", default="fp16")
    args = ap.parse_args()

    wall_plain, plain = plain_cold(args.model, args.precision)
    phases = plain["phases"]
    steps = ["imports", "model", "export", "compile", "measure"]
    prev = 0.0
    print(f"plain script, cold: {wall_plain:.1f} s wall (e2e median {plain['median_ms']:.3f} ms)")
    for k in steps:
        print(f"  {k:<10} {phases[k] - prev:6.1f} s")
        prev = phases[k]
    print(f"  {'exit':<10} {wall_plain - prev:6.1f} s   (interpreter start + teardown)")

    from engine.jobs import JobSystem
    from engine.settings.request import RunRequest

    with tempfile.TemporaryDirectory(prefix="trtdash-walltime-") as tmp:
        os.environ["TRTDASH_DATA_DIR"] = str(Path(tmp) / "data")
        system = JobSystem(Path(tmp) / "data")
        t0 = time.perf_counter()
        system.ensure_workers()

        def gpu_standby_ready() -> bool:
            return any(w.get("standby_ready") and w.get("gpu_index") is not None for w in system.workers())

        wait(gpu_standby_ready, 300, "the GPU worker's standby job process")
        print(
            f"\njob system started, GPU worker warm after {time.perf_counter() - t0:.1f} s (paid once, before any job)"
        )
        try:
            walls = []
            for n in range(2):
                compile_knobs = {"precision": args.precision, **({"optimization_level": 3} if n else {})}
                request = RunRequest.from_dict(
                    {
                        "model": {"source": args.model},
                        "backend": "tensorrt",
                        "compile": compile_knobs,
                        "measure": {"seed": 0, "compare_eager": True},
                    }
                )
                if n:
                    wait(gpu_standby_ready, 300, "the next standby job process")
                t0 = time.perf_counter()
                job = system.submit(request, gpu=0)
                while (job := system.get(job.job_id)).state not in ("done", "failed", "cancelled"):
                    time.sleep(0.05)
                wall = time.perf_counter() - t0
                if job.state != "done":
                    raise SystemExit(f"job {job.state}: {job.error} {job.hint}")
                result = system.store.get(job.run_id)
                walls.append(wall)
                stages = {k: v for k, v in result.stages_s.items() if v is not None}
                # partition_s and build_s happen inside compile_s: not counted twice
                accounted = sum(v for k, v in stages.items() if k not in ("partition_s", "build_s"))
                print(
                    f"job {n + 1} through the queue, warm worker: {wall:.1f} s wall, submit -> result stored "
                    f"(e2e median {result.latency.median_ms:.3f} ms, GPU time "
                    f"{result.gpu_time.median_ms if result.gpu_time else float('nan'):.4f} ms)"
                )
                for k, v in sorted(stages.items(), key=lambda kv: -kv[1]):
                    print(f"  {k:<20} {v:6.2f} s{'  (inside compile_s)' if k in ('partition_s', 'build_s') else ''}")
                for w in result.warnings:
                    if "baseline was measured at" in w:
                        print(f"  note: {w}")
                print(f"  {'(rest: queue, model build, prepare, store)':<20} {wall - accounted:6.2f} s")
        finally:
            system.stop_workers(timeout_s=10)
    first = walls[0] / wall_plain
    print(
        f"RESULT walltime_first_job ratio={first:.3f} job_s={walls[0]:.1f} plain_s={wall_plain:.1f} goal=info "
        f"{'PASS' if first <= GOAL else 'FAIL'}"
    )
    ratio = walls[1] / wall_plain
    ok = ratio <= GOAL
    print(
        f"RESULT walltime ratio={ratio:.3f} job_s={walls[1]:.1f} plain_s={wall_plain:.1f} goal=<={GOAL} "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
