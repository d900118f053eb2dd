"""Record the dashboard's bundled sample runs on a real GPU, through the job queue, one fresh process per run.

Every run is a dashboard job (``engine.jobs.JobSystem``: a warm worker hands it to a fresh job process), is
exported with ``RunStore.export_run`` and gzipped as ``<out>/<name>.json.gz``; then it is deleted from the
recording store, so a repeated request is measured again instead of answered from the cache.

Parts (``--only``, comma-separated; ``--estimate`` prints the plan and its device time and runs nothing):

- ``sweeps``: per ``--sweep-models`` model (resnet50, vit_b_16) and ``--sweep-knobs`` (opt, mbs), fp16 batch 1: an
  analyze run (dryrun at min_block_size 1: the recommended values), the optimization_level sweep (unset, 0-5: unset
  and 3 are two builds of the default plan) and the min_block_size sweep (1, the default 5, the recommended values)
  with the default point recorded ``--default-repeats`` times in all, in the order
  ``engine.studies.sweeps.plan_sweep`` gives (its repeats spread among the other points, so drift shows up as a
  difference between repeats); the default point is one request in both sweeps, recorded once and tagged with both.
  Tags ``sweep:<id>`` / ``knob:<knob>`` (``engine.studies.sweeps``). Per-layer pass off: pages show these as sweep
  tables and charts, not layer tables;
- ``fragmentation``: resnet50 fp16 as built by default and with relu forced to PyTorch (min_block_size 5),
  both with the per-layer pass (the Layers and Segmentation pages show them);
- ``ladder``: batch-8 precision ladders of resnet50 and vit_b_16 (fp32, fp16, int8_weight_only, fp8 where
  the capability matrix allows: quantized rungs need ModelOpt; refused rungs are printed, not run);
- ``batch``: resnet50 fp16 static engines at batch 1/8/32 against one dynamic 1..32 engine;
- ``models``: BERT-base (sequence 128) and timm convnext_tiny, fp16, with the per-layer pass;
- ``core``: resnet18 / resnet50 / mobilenet_v3_small / vit_b_16 at fp16 and fp32 with the eager baseline,
  and the resnet18 relu-forced build and its analyze run (not needed for issue 14's re-recording).

Sizes: raw files are dropped except the dryrun text (and the GPU kernel table where the per-layer pass ran);
each sweep point is ~5 KiB gzipped.

    python scripts/record_samples.py --out /tmp/samples [--only sweeps,fragmentation,ladder,batch,models]
        [--sweep-models resnet50,vit_b_16] [--ladder-schemes int8_weight_only,fp8] [--default-repeats 2]
        [--quick] [--estimate]
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
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.settings.request import RunRequest  # noqa: E402
from engine.store import DATA_DIR_ENV, RunStore  # noqa: E402

RELU = "torch.ops.aten.relu.default"
DEFAULT_PARTS = "sweeps,fragmentation,ladder,batch,models"
# Device seconds per run through the queue, back to back. Measured on the H200 on 2026-11-30 (a GPU worker's next
# job process imports while a job runs and warms up the GPU after it): sweep points (no per-layer pass, no eager
# baseline) took 19-29 s a run for resnet50 (median ~22 s: build ~6 s, timing, GPU-time pass, graph replay,
# the store) and 26-30 s for vit_b_16 (build ~11 s); analyze runs ~30 s. Other models scaled by build time;
# a per-layer pass adds ~2 s, a quantized rung ~20 s, and ModelOpt's CUDA extensions are built once per
# machine (61 s for the FP8 one).
WARMUP_S = 5
JOB_S = {
    "resnet18": 12,
    "resnet50": 17,
    "mobilenet_v3_small": 12,
    "vit_b_16": 23,
    "hf/bert-base": 18,
    "timm/convnext_tiny": 18,
}
ANALYZE_S, LAYER_PASS_S, QUANT_EXTRA_S, QUANT_FIRST_S, START_S = 25, 2, 20, 90, 30


@dataclass
class Planned:
    name: str
    request: RunRequest
    tags: list[str] = field(default_factory=list)
    keep_raw: bool = False

    def seconds(self) -> float:
        r = self.request
        if r.mode == "analyze":
            return WARMUP_S + ANALYZE_S
        return (
            WARMUP_S
            + JOB_S.get(r.model.source, 15)
            + (LAYER_PASS_S if r.measure.layer_profile else 0)
            + (QUANT_EXTRA_S if r.compile.quantization != "none" else 0)
        )


def request(
    model: str,
    precision: str = "fp16",
    mode: str = "measure",
    measure: dict | None = None,
    batch: int = 1,
    **compile_knobs,
) -> RunRequest:
    m = {"warmup_iters": 50, "timed_iters": 200, "profile_iters": 50}
    m.update(measure or {})
    return RunRequest.from_dict(
        {
            "model": {"source": model, "batch_size": batch},
            "backend": "tensorrt",
            "mode": mode,
            "compile": {"precision": precision, **compile_knobs},
            "measure": m,
        }
    )


def sweep_points(
    model: str, recommended: list[int], repeats: int, quick: dict, slug: str, knobs: tuple[str, ...] = ("opt", "mbs")
) -> list[Planned]:
    """The optimization_level sweep then the min_block_size sweep of ``model``, each planned by
    ``engine.studies.sweeps.plan_sweep`` (its default point run ``repeats`` times in all, interleaved with the other
    points). Both sweeps' default point is the same request (level unset, min_block_size 5), so it is recorded
    once, with its repeats, and tagged with both sweeps."""
    from engine.studies import sweeps

    m = {"compare_eager": False, "layer_profile": False, "accuracy": False, **quick}
    base = request(model, measure=m)
    by_request: dict[str, Planned] = {}
    out: list[Planned] = []
    for knob, short in ((sweeps.OPTIMIZATION_LEVEL_KNOB, "opt"), (sweeps.MIN_BLOCK_SIZE_KNOB, "mbs")):
        if short not in knobs:
            continue
        values = sweeps.default_values(knob, recommendations=recommended)
        plan = sweeps.plan_sweep(
            base, {knob: values}, sweep_id=f"{model}_fp16_{knob.split('.')[1]}_{slug}", repeats=max(0, repeats - 1)
        )
        for point in plan.points:
            key = json.dumps(point.request.to_dict(), sort_keys=True)
            if key in by_request:  # the other sweep's default point (or one of its repeats): tag it, run it once
                by_request[key].tags += [t for t in plan.tags if t not in by_request[key].tags]
                continue
            value = point.values[0][1]
            label = "unset" if value is None else value
            name = f"{model}_fp16_{short}{label}" + (f"_r{point.repeat + 1}" if point.repeat else "")
            by_request[key] = planned = Planned(name, point.request, list(plan.tags))
            out.append(planned)
    return out


def plan_parts(
    parts: set[str], args: argparse.Namespace, quick: dict, recommended: dict[str, list[int]], slug: str
) -> list[Planned]:
    """Everything except the analyze runs (recorded first: the sweeps need their recommendations)."""
    planned: list[Planned] = []
    if "sweeps" in parts:
        for model in args.sweep_models.split(","):
            planned += sweep_points(
                model, recommended.get(model, []), args.default_repeats, quick, slug, tuple(args.sweep_knobs.split(","))
            )
    if "fragmentation" in parts:
        m = {"compare_eager": False, **quick}
        planned += [
            Planned("resnet50_fp16", request("resnet50", measure=m), keep_raw=True),
            Planned(
                "resnet50_fp16_relu_forced_mbs5",
                request("resnet50", measure=m, torch_executed_ops=[RELU]),
                keep_raw=True,
            ),
        ]
    if "ladder" in parts:
        from engine import capabilities
        from engine.studies import ladder

        caps = capabilities.detect()
        for model in args.ladder_models.split(","):
            base = request(model, measure={"compare_eager": False, "layer_profile": False, **quick}, batch=8)
            schemes = [x for x in args.ladder_schemes.split(",") if x]
            plan = ladder.plan_ladder(base, caps, schemes=schemes, ladder_id=f"{model}_b8_{slug}")
            for scheme, why in plan.skipped:
                print(f"ladder {plan.ladder_id}: {scheme} refused here, not recorded: {why}", flush=True)
            planned += [
                Planned(f"{model}_b8_ladder_{s.label.replace('/', '_')}", s.request, plan.tags) for s in plan.steps
            ]
    if "batch" in parts:
        from engine.models import registry
        from engine.studies import batch_sweep

        base = request("resnet50", measure={"compare_eager": False, "layer_profile": False, **quick})
        plan = batch_sweep.plan_batch_sweep(
            base,
            (1, 8, 32),
            ("static", "dynamic"),
            opt_batch=8,
            model_inputs=registry.input_specs(registry.REGISTRY["resnet50"], base.model),
            sweep_id=f"resnet50_fp16_batch_{slug}",
        )
        planned += [
            Planned(f"resnet50_fp16_batch{p.batch_size}_{p.strategy}", p.request, plan.tags) for p in plan.points
        ]
    if "models" in parts:
        m = {"compare_eager": True, "warmup_iters": 50, "timed_iters": 200, "profile_iters": 50, **quick}
        planned.append(
            Planned(
                "hf_bert-base_seq128_fp16",
                RunRequest.from_dict(
                    {
                        "model": {"source": "hf/bert-base", "sequence_length": 128},
                        "backend": "tensorrt",
                        "compile": {"precision": "fp16"},
                        "measure": m,
                    }
                ),
                keep_raw=True,
            )
        )
        planned += [
            Planned(f"timm_{name}_fp16", request(f"timm/{name}", measure=m), keep_raw=True)
            for name in args.timm_models.split(",")
        ]
    if "core" in parts:
        for model in ("resnet18", "resnet50", "mobilenet_v3_small", "vit_b_16"):
            for precision in ("fp16", "fp32"):
                planned.append(
                    Planned(
                        f"{model}_{precision}",
                        request(model, precision, measure={"compare_eager": True, **quick}),
                        keep_raw=True,
                    )
                )
        planned += [
            Planned(
                "resnet18_fp16_relu_forced_mbs1",
                request("resnet18", min_block_size=1, torch_executed_ops=[RELU], measure=quick),
                keep_raw=True,
            ),
            Planned(
                "resnet18_fp16_analyze_relu_forced",
                request("resnet18", mode="analyze", min_block_size=1, torch_executed_ops=[RELU]),
            ),
        ]
    return planned


def export(store: RunStore, run_id: str, out: Path, name: str, *, keep_raw: bool) -> int:
    doc = json.loads(store.export_run(run_id))
    raw = doc.get("raw_files", {})
    wanted = ("dryrun", "gpu_kernels") if keep_raw else ("dryrun",)
    doc["raw_files"] = kept = {n: t for n, t in raw.items() if n.startswith(wanted)}
    doc["result"]["artifacts"] = sorted(kept)
    blob = gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=9)
    (out / f"{name}.json.gz").write_bytes(blob)
    return len(blob)


def describe(r) -> str:
    g, replay = r.gpu_time, r.graph_replay
    lat = (
        f"e2e {r.latency.median_ms:.4f} ms (p10 {r.latency.p10_ms:.4f}, p90 {r.latency.p90_ms:.4f})"
        if r.latency.timed
        else "not timed"
    )
    gpu = f"GPU {g.median_ms:.4f} ms ±{g.spread_pct:.2f}% {g.kernels_per_inference:g} kernels" if g else "GPU -"
    graph = (
        f"graph {replay.median_ms:.4f} ms"
        if replay and replay.captured
        else f"graph - ({replay.reason[:60]})"
        if replay
        else "graph -"
    )
    build = sum(r.stages_s.get(k, 0.0) for k in ("export_s", "partition_s", "build_s"))
    return f"{lat} | {gpu} | {graph} | build {build:.1f} s | engines {r.engine_count} | {r.plan_fingerprint}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", default=DEFAULT_PARTS)
    ap.add_argument("--sweep-models", default="resnet50,vit_b_16")
    ap.add_argument("--sweep-knobs", default="opt,mbs", help="which sweeps: opt (optimization_level), mbs")
    ap.add_argument("--ladder-models", default="resnet50,vit_b_16")
    ap.add_argument("--timm-models", default="convnext_tiny")
    ap.add_argument(
        "--ladder-schemes",
        default="int8_weight_only,fp8",
        help="quantized rungs beside fp32/fp16 (need ModelOpt on the GPU box; '' for none)",
    )
    ap.add_argument("--default-repeats", type=int, default=2, help="runs of each sweep's default point (>= 2)")
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    ap.add_argument("--estimate", action="store_true", help="print the plan and its device time; run nothing")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    quick = {"warmup_iters": 5, "timed_iters": 10, "profile_iters": 5} if args.quick else {}
    models = args.sweep_models.split(",") if "sweeps" in parts else []
    analyze = {m: request(m, mode="analyze", min_block_size=1) for m in models}
    if args.estimate:
        planned = plan_parts(parts, args, quick, {m: [1, 3] for m in models}, "gpu")  # two recommendations
        total = START_S + (WARMUP_S + ANALYZE_S) * len(analyze) + sum(p.seconds() for p in planned)
        total += QUANT_FIRST_S if any(p.request.compile.quantization != "none" for p in planned) else 0
        for p in planned:
            print(f"  {p.name:<48} ~{p.seconds():.0f} s")
        print(f"RESULT estimate runs={len(planned) + len(analyze)} device_s={total:.0f}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[DATA_DIR_ENV] = str(Path(tmp) / "data")  # engine cache of the dynamic batch engine
        from engine.jobs import JobSystem

        queue = JobSystem(Path(tmp) / "data")
        store = queue.store
        print(f"job system: workers {queue.ensure_workers()}", flush=True)

        def record(p: Planned) -> object | None:
            nonlocal failures
            t0 = time.perf_counter()
            try:
                job = queue.submit(p.request, gpu=0)
                while (job := queue.get(job.job_id)).state not in ("done", "failed", "cancelled"):
                    time.sleep(0.1)
                if job.state != "done":
                    raise RuntimeError(f"job {job.state}: {job.error} {job.hint}\n{(job.traceback or '')[-3000:]}")
                r = store.get(job.run_id)
            except Exception:
                failures += 1
                print(f"FAILED {p.name}:\n{traceback.format_exc()}", flush=True)
                return None
            if p.tags:
                store.set_tags(r.run_id, p.tags)
            size = export(store, r.run_id, args.out, p.name, keep_raw=p.keep_raw)
            print(f"{p.name}: {describe(r)} | {size / 1024:.0f} KiB, {time.perf_counter() - t0:.0f} s", flush=True)
            for w in r.warnings:
                print(f"  warning: {w[:240]}", flush=True)
            store.delete(r.run_id)  # a repeat of the same request is measured again, not read from the cache
            return r

        from engine import capabilities
        from engine.studies import sweeps

        caps = capabilities.detect()
        found = re.search(r"([A-Z]\d{2,4})", caps.gpus[0].name) if caps.gpus else None
        slug = found.group(1).lower() if found else "gpu"
        recommended = {}
        for model, req in analyze.items():
            r = record(Planned(f"{model}_fp16_analyze", req))
            recommended[model] = sweeps.recommended_min_block_sizes(r.segmentation) if r is not None else []
        try:
            for p in plan_parts(parts, args, quick, recommended, slug):
                record(p)
        finally:
            queue.stop_workers(timeout_s=10)
    total = sum(p.stat().st_size for p in args.out.glob("*.json.gz"))
    print(
        f"RESULT samples {len(list(args.out.glob('*.json.gz')))} files, {total / 1024:.0f} KiB, {failures} failed, "
        f"{time.perf_counter() - t_start:.0f} s"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
