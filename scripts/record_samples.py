"""Record the dashboard's bundled sample runs on a real GPU, with the product's own code path.

Every run goes through ``engine.runner.execute`` into a fresh ``RunStore``, is exported with
``RunStore.export_run`` and gzipped as ``<out>/<model>_<desc>.json.gz``. Sweep runs carry the tags
``sweep:<id>`` and ``knob:<dotted knob>`` (the convention ``engine.sweeps`` reads back).
Bulky raw files are dropped from sweep runs (and any raw file above ``--max-raw-kib``) so the
bundle stays small.

Ladder runs carry ``ladder:<id>`` (``engine.ladder``); schemes the capability matrix refuses are
printed as refused and not run. ``models`` records BERT-base (sequence 128, integer inputs) and timm
models; ``batch`` records static engines per batch size against one dynamic engine (``engine.batch_sweep``);
``cudagraphs`` the same build with CUDA graphs off and on, then times
the off build's engine again in the same process (is a slow run the engine or the moment?).

``--via-queue`` runs every request as the dashboard does, through the job system: each run in a fresh
job process on the GPU worker. Timings taken one after another in one long-lived process drift (a
previous run's profiler left the host side up to 2x slower); fresh processes do not carry that over.
``--repeats N`` records each sweep point N times, in shuffled order, so the sweep verdict sees the
run-to-run noise of identical builds.

    python scripts/record_samples.py --out /tmp/samples [--only core,sweeps,ladder,cudagraphs,batch,models] [--quick]
                                     [--via-queue] [--repeats 2] [--sweep-models resnet50,vit_b_16]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import runner  # noqa: E402
from engine.config import QUANT_SCHEMES, RunRequest  # noqa: E402
from engine.store import DATA_DIR_ENV, RunStore  # noqa: E402
from engine.sweeps import sweep_tags  # noqa: E402

RELU = "torch.ops.aten.relu.default"


def request(model: str, precision: str, mode: str = "measure", measure: dict | None = None, batch: int = 1,
            **compile_knobs) -> RunRequest:
    m = {"warmup_iters": 50, "timed_iters": 200, "profile_iters": 50}
    m.update(measure or {})
    return RunRequest.from_dict({"model": {"source": model, "batch_size": batch}, "backend": "tensorrt",
                                 "mode": mode, "compile": {"precision": precision, **compile_knobs},
                                 "measure": m})


def retime(fn, repeats: int = 3, iters: int = 200) -> list[str]:
    """The same compiled engine timed again with the product's harness: medians and the share of slow samples."""
    import torch

    from engine.profiling.latency import time_inference

    lines = []
    for i in range(repeats):
        stats, samples = time_inference(fn, device="cuda", warmup_iters=50, timed_iters=iters, batch_size=1)
        fast = min(samples)
        slow = sum(1 for x in samples if x > 1.5 * fast) / len(samples)
        lines.append(f"retime {i + 1}: median {stats.median_ms:.3f} ms p10 {stats.p10_ms:.3f} p90 {stats.p90_ms:.3f}"
                     f" min {fast:.3f}, {slow:.0%} of samples > 1.5x min")
    with torch.inference_mode():
        time.sleep(2.0)   # idle: do the clocks drop and the first samples slow down?
        stats, samples = time_inference(fn, device="cuda", warmup_iters=0, timed_iters=iters, batch_size=1)
    lines.append(f"after 2 s idle, no warm-up: median {stats.median_ms:.3f} ms, first 10 samples "
                 f"{[round(x, 3) for x in samples[:10]]}")
    return lines


def overhead_probe(store: RunStore) -> None:
    """Where does per-call host overhead come from? One plain Torch-TensorRT engine (resnet18 fp16, batch 1,
    built without the product's code) is timed fresh, then again after each thing the backend does."""
    import logging

    import torch
    import torch_tensorrt
    import torchvision

    from engine.profiling.latency import time_inference

    def median(fn) -> float:
        t_end = time.perf_counter() + 1.0
        with torch.inference_mode():
            while time.perf_counter() < t_end:
                fn()
            torch.cuda.synchronize()
        return time_inference(fn, device="cuda", warmup_iters=50, timed_iters=300, batch_size=1)[0].median_ms

    def levels() -> str:
        return (f"python log level torch_tensorrt={logging.getLogger('torch_tensorrt').getEffectiveLevel()}, "
                f"root={logging.getLogger().getEffectiveLevel()}")

    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval().cuda().half()
    x = torch.randn(1, 3, 224, 224, device="cuda", dtype=torch.half)
    with torch.no_grad():
        plain = torch_tensorrt.dynamo.compile(torch.export.export(model, (x,)), arg_inputs=[x], min_block_size=5)
    fn = lambda: plain(x)  # noqa: E731
    print(f"probe: plain engine, fresh: {median(fn):.3f} ms | {levels()}", flush=True)
    quiet = {"layer_profile": False, "accuracy": False, "compare_eager": False}
    r = runner.execute(request("resnet18", "fp16", measure=quiet), store, use_cache=False).result
    print(f"probe: runner, no Debugger: {r.latency.median_ms:.3f} ms; plain after it: {median(fn):.3f} ms", flush=True)
    with torch.inference_mode(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]):
        for _ in range(20):
            fn()
        torch.cuda.synchronize()
    print(f"probe: plain after a torch.profiler kernel trace: {median(fn):.3f} ms", flush=True)
    r = runner.execute(request("resnet18", "fp16", measure={**quiet, "layer_profile": True}), store,
                       use_cache=False).result
    print(f"probe: runner with Debugger + layer profile: {r.latency.median_ms:.3f} ms; plain after it: "
          f"{median(fn):.3f} ms | {levels()}", flush=True)
    r = runner.execute(request("resnet18", "fp16", measure=quiet), store, use_cache=False).result
    print(f"probe: runner, no Debugger, again: {r.latency.median_ms:.3f} ms", flush=True)


def gpu_clocks() -> str:
    import subprocess

    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm,clocks.max.sm,clocks.mem,pstate,power.draw,"
                               "temperature.gpu", "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"nvidia-smi: {e}"


def gpu_slug_of(caps) -> str:
    from engine import capabilities

    caps = caps or capabilities.detect()
    name = caps.gpus[0].name if caps.gpus else "gpu"
    m = re.search(r"([A-Z]\d{2,4})", name)
    return (m.group(1) if m else "gpu").lower()


def gpu_slug(store: RunStore, run_id: str) -> str:
    name = store.get(run_id).env.get("device_name", "gpu")
    m = re.search(r"([A-Z]\d{2,4})", name)
    return (m.group(1) if m else "gpu").lower()


def export(store: RunStore, run_id: str, out: Path, filename: str, *, keep_raw: bool, max_raw_kib: int) -> int:
    doc = json.loads(store.export_run(run_id))
    raw = doc.get("raw_files", {})
    kept = {n: t for n, t in raw.items()
            if (keep_raw or n.startswith("dryrun")) and len(t.encode()) <= max_raw_kib * 1024}
    doc["raw_files"] = kept
    doc["result"]["artifacts"] = sorted(kept)
    blob = gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=9)
    (out / filename).write_bytes(blob)
    return len(blob)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", default="core,sweeps")
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    ap.add_argument("--max-raw-kib", type=int, default=96)
    ap.add_argument("--ladder-models", default="resnet50,vit_b_16")
    ap.add_argument("--sweep-models", default="resnet50,vit_b_16")
    ap.add_argument("--timm-models", default="convnext_tiny")
    ap.add_argument("--via-queue", action="store_true", help="each run in a fresh job process, as the dashboard")
    ap.add_argument("--repeats", type=int, default=1, help="times each sweep point is recorded (shuffled order)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    parts = set(args.only.split(","))
    quick = {"warmup_iters": 5, "timed_iters": 10, "profile_iters": 5} if args.quick else {}
    failures = 0

    with tempfile.TemporaryDirectory() as tmp:
        os.environ[DATA_DIR_ENV] = str(Path(tmp) / "data")   # engine cache of the dynamic batch engine
        store = RunStore(Path(tmp) / "data")
        queue = None
        if args.via_queue:
            from engine.jobs import JobSystem

            queue = JobSystem(Path(tmp) / "data")
            print(f"job system: workers {queue.ensure_workers()}", flush=True)

        def run(req: RunRequest):
            if queue is None:
                return runner.execute(req, store, use_cache=False).result
            job = queue.submit(req, gpu=0 if req.device != "cpu" else None)
            while (job := queue.get(job.job_id)).state not in ("done", "failed", "cancelled"):
                time.sleep(0.2)
            if job.state != "done":
                raise RuntimeError(f"job {job.state}: {job.error} {job.hint}\n{job.traceback[-3000:]}")
            return store.get(job.run_id)

        def record(filename: str, req: RunRequest, *, tags: list[str] | None = None,
                   keep_raw: bool = True) -> str | None:
            nonlocal failures
            t0 = time.perf_counter()
            try:
                r = run(req)
            except Exception:
                failures += 1
                print(f"FAILED {filename}:\n{traceback.format_exc()}", flush=True)
                return None
            if tags:
                store.set_tags(r.run_id, tags)
            size = export(store, r.run_id, args.out, filename, keep_raw=keep_raw, max_raw_kib=args.max_raw_kib)
            lat = (f"{r.latency.median_ms:.3f} ms (p10 {r.latency.p10_ms:.3f}, p90 {r.latency.p90_ms:.3f}), "
                   f"{r.latency.throughput_per_s:.0f}/s" if r.latency.timed else "not timed")
            print(f"{filename}: {lat}, engines {r.engine_count} {r.engine_bytes / 2**20:.1f} MiB, peak "
                  f"{(r.peak_memory_bytes or 0) / 2**20:.0f} MiB, stages "
                  f"{ {k: round(v, 2) for k, v in r.stages_s.items()} }, {size / 1024:.0f} KiB, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
            if r.accuracy:
                print(f"  accuracy vs eager fp32: rel_l2 {r.accuracy.rel_l2} top1 {r.accuracy.top1_agreement}")
            q = r.quantization
            if q:
                pairs = {"fake-quant vs eager": q.fake_quant_vs_eager, "engine vs fake-quant": q.engine_vs_fake_quant,
                         "engine vs eager": q.engine_vs_eager}
                print(f"  {q.scheme}/{q.base_precision}: {q.quantizers} quantizers, conversion_problem "
                      f"{q.conversion_problem}; " + "; ".join(
                          f"{k} rel_l2 {a.rel_l2} top1 {a.top1_agreement}" for k, a in pairs.items() if a))
            if len(r.layers):
                print(f"  layer precisions: {r.layers['precision'].value_counts().to_dict()}")
            for w in r.warnings:
                print(f"  warning: {w[:300]}")
            return r.run_id

        if "core" in parts:
            for model in ("resnet18", "resnet50", "mobilenet_v3_small", "vit_b_16"):
                for precision in ("fp16", "fp32"):
                    record(f"{model}_{precision}.json.gz",
                           request(model, precision, measure={"compare_eager": True, **quick}))
            record("resnet18_fp16_relu_forced_mbs1.json.gz",
                   request("resnet18", "fp16", min_block_size=1, torch_executed_ops=[RELU], measure=quick))
            record("resnet50_fp16_relu_forced_mbs5.json.gz",
                   request("resnet50", "fp16", min_block_size=5, torch_executed_ops=[RELU], measure=quick))
            record("resnet18_fp16_analyze_relu_forced.json.gz",
                   request("resnet18", "fp16", mode="analyze", min_block_size=1, torch_executed_ops=[RELU]))

        if "sweeps" in parts:
            import random

            points = []   # (filename, request, tags) of every sweep point, recorded in shuffled order
            for model in args.sweep_models.split(","):
                sweep_measure = {"compare_eager": False, "layer_profile": False, "accuracy": False, **quick}
                analyze_id = record(f"{model}_fp16_analyze.json.gz",
                                    request(model, "fp16", mode="analyze", min_block_size=1))
                recommended: list[int] = []
                if analyze_id:
                    s = store.get(analyze_id).segmentation
                    recommended = sorted({r.min_block_size for r in s.recommendations} if s else set())
                slug = gpu_slug(store, analyze_id) if analyze_id else "gpu"
                for rep in range(args.repeats):
                    m = {**sweep_measure, "seed": rep}    # another seed: another cache key, same build
                    tag = f"_r{rep}" if args.repeats > 1 else ""
                    sid = f"{model}_fp16_optimization_level_{slug}"
                    points += [(f"{model}_fp16_opt{level}{tag}.json.gz",
                                request(model, "fp16", optimization_level=level, measure=m),
                                sweep_tags(sid, ["compile.optimization_level"])) for level in range(6)]
                    sid = f"{model}_fp16_min_block_size_{slug}"
                    points += [(f"{model}_fp16_mbs{mbs}{tag}.json.gz",
                                request(model, "fp16", min_block_size=mbs, measure=m),
                                sweep_tags(sid, ["compile.min_block_size"])) for mbs in sorted({1, 5, *recommended})]
            random.Random(0).shuffle(points)
            for filename, req, tags in points:
                record(filename, req, tags=tags, keep_raw=False)

        if "overhead" in parts:
            overhead_probe(store)

        if "cudagraphs" in parts:
            from engine.backends import tensorrt as trt_backend

            timed_fns = []
            harness = trt_backend.time_inference

            def keep_callable(fn, **kw):
                timed_fns.append(fn)
                return harness(fn, **kw)

            cg_measure = {"compare_eager": False, "layer_profile": False, **quick}
            trt_backend.time_inference = keep_callable   # pass-through: keeps the callable the backend timed
            try:
                for on in (False, True):
                    # untagged: engine.sweeps takes runs of one build for drift, and CUDA graphs do not
                    # change the build (its verdict called 1.42 -> 0.63 ms "not measurable")
                    record(f"resnet50_fp16_cudagraphs_{'on' if on else 'off'}.json.gz",
                           request("resnet50", "fp16", measure=cg_measure, enable_cudagraphs=on), keep_raw=False)
                    if not on and timed_fns:
                        print(f"  clocks before retime: {gpu_clocks()}", flush=True)
                        for line in retime(timed_fns[-1]):
                            print(f"  {line}", flush=True)
                        print(f"  clocks after retime: {gpu_clocks()}", flush=True)
            finally:
                trt_backend.time_inference = harness
                timed_fns.clear()

        if "batch" in parts:
            from engine import batch_sweep, models

            base = request("resnet50", "fp16", measure={"compare_eager": False, "layer_profile": False, **quick})
            plan = batch_sweep.plan_batch_sweep(
                base, (1, 8, 32), ("static", "dynamic"), opt_batch=8,
                model_inputs=models.input_specs(models.REGISTRY["resnet50"], base.model),
                sweep_id=f"resnet50_fp16_batch_{gpu_slug_of(None)}")
            for note in plan.notes:
                print(f"batch sweep: {note}", flush=True)
            for point in plan.points:
                record(f"resnet50_fp16_batch{point.batch_size}_{point.strategy}.json.gz", point.request,
                       tags=plan.tags, keep_raw=False)

        if "models" in parts:
            # beyond torchvision: a transformer with integer inputs and a timm model, fp16 batch 1
            m = {"compare_eager": True, **quick}
            record("hf_bert-base_seq128_fp16.json.gz", RunRequest.from_dict({
                "model": {"source": "hf/bert-base", "sequence_length": 128}, "backend": "tensorrt",
                "compile": {"precision": "fp16"}, "measure": {"warmup_iters": 50, "timed_iters": 200,
                                                              "profile_iters": 50, **m}}))
            for name in args.timm_models.split(","):
                record(f"timm_{name}_fp16.json.gz", request(f"timm/{name}", "fp16", measure=m))

        if "ladder" in parts:
            from engine import capabilities, ladder

            caps = capabilities.detect()
            ladder_measure = {"compare_eager": False, "profile_iters": 20, **quick}
            schemes = [s for s in QUANT_SCHEMES if s not in ("none", "int4_awq")]
            for model in args.ladder_models.split(","):
                base = request(model, "fp16", measure=ladder_measure, batch=8)
                plan = ladder.plan_ladder(base, caps, schemes=schemes, ladder_id=f"{model}_b8_{gpu_slug_of(caps)}")
                for scheme, why in plan.skipped:
                    print(f"ladder {plan.ladder_id}: {scheme} refused, not run: {why}", flush=True)
                for step in plan.steps:
                    record(f"{model}_b8_ladder_{step.label.replace('/', '_')}.json.gz", step.request,
                           tags=plan.tags, keep_raw=False)

    total = sum(p.stat().st_size for p in args.out.glob("*.json.gz"))
    print(f"RESULT samples {len(list(args.out.glob('*.json.gz')))} files, {total / 1024:.0f} KiB, "
          f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
