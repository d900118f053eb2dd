"""Record localisations on a real GPU and bundle them as samples (``samples/localisations/<id>.json.gz``).

Each localisation runs as the dashboard runs it: planned in this process (the candidate modules and the PyTorch-side
error growth, on ``--analysis-device``), then every step an engine build through the job system, each in a fresh job
process on the GPU worker. A bundle holds the study (steps, figures, error growth) and three runs without raw files:
the unfixed build, the reference and the fix. INT8 weight-only is bundled only when something in it exceeds the
tolerance (the engine, or a unit on the PyTorch side).

    python scripts/record_localisations.py --out samples [--only resnet50_fp8,vit_b_16_fp8,resnet50_int8_weight_only]
                                           [--tolerance 0.1] [--quick]
    python scripts/record_localisations.py --out samples --resume samples/localisations/<id>.json.gz [--max-builds N]

``--resume`` goes on with a bundled localisation that a deadline cancelled (or whose search used its budget, given
a larger ``--max-builds``): its finished steps and runs are kept, the search goes on from its state, and the
bundle is written again.

Device time on an H200 (TensorRT-RTX 1.4): ModelOpt's CUDA extensions on first use (~45 s each, kept in the data
directory), then per localisation the PyTorch side (~30 s), the unfixed build and the reference (~30 s each) and
about log2(candidates) + 1 search builds (~20-40 s each: calibration, export, a ~10 s build, timing): resnet50 FP8
~7.5 min (446 s on 2026-11-30: every module tried alone breaks its engine, so the search uses its whole budget of
14 builds), vit_b_16 FP8 ~15 min (21 builds of ~31 s, two of them crashing TensorRT-RTX: recorded in three calls
with ``--resume``), an INT8 weight-only check ~2 min when it is within tolerance. ``--only`` one at a time, and
``--timeout-s`` with ``--resume`` for longer ones, keep each call under 10 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.settings.request import RunRequest  # noqa: E402
from engine.store import DATA_DIR_ENV  # noqa: E402

# model_scheme -> (model, scheme)
CHOICES = {f"{m}_{s}": (m, s) for m in ("resnet50", "vit_b_16") for s in ("fp8", "int8_weight_only")}
# above FP8's own quantization error (fake-quant rel. L2 0.074 for resnet50 on the H200), so that the search looks
# for what breaks the engine (NaN), not for quantization error spread over every layer
DEFAULT_TOLERANCE = 0.1


def request(model: str, scheme: str, quick: bool) -> RunRequest:
    measure = (
        {"warmup_iters": 5, "timed_iters": 20, "profile_iters": 5}
        if quick
        else {"warmup_iters": 50, "timed_iters": 200, "profile_iters": 20}
    )
    return RunRequest.from_dict(
        {
            "model": {"source": model, "batch_size": 8},
            "backend": "tensorrt",
            "device": "cuda",
            "compile": {
                "quantization": scheme,
                "quant_base_precision": "fp16",
                "precision": "fp16",
                "calibration_batches": 2 if quick else 8,
            },
            "measure": {**measure, "compare_eager": False, "layer_profile": True},
        }
    )


def gpu_slug() -> str:
    from engine import capabilities

    caps = capabilities.detect()
    m = re.search(r"([A-Z]\d{2,4})", caps.gpus[0].name if caps.gpus else "")
    return (m.group(1) if m else "gpu").lower()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="samples directory (bundles go to <out>/localisations)")
    ap.add_argument("--only", default="resnet50_fp8,vit_b_16_fp8,resnet50_int8_weight_only,vit_b_16_int8_weight_only")
    ap.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    ap.add_argument("--analysis-device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="fewer iterations and calibration batches (smoke test)")
    ap.add_argument("--timeout-s", type=float, default=1800.0, help="per localisation; cancelled past it")
    ap.add_argument("--resume", type=Path, default=None, help="a bundle to go on with (--only is ignored)")
    ap.add_argument("--max-builds", type=int, default=None, help="with --resume: the new budget of search builds")
    args = ap.parse_args()
    wanted = [] if args.resume else [w for w in args.only.split(",") if w]
    unknown = [w for w in wanted if w not in CHOICES]
    if unknown:
        ap.error(f"unknown {unknown}; choose from {', '.join(CHOICES)}")
    out = args.out / "localisations"
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[DATA_DIR_ENV] = str(Path(tmp) / "data")
        import torch

        from engine.jobs import JobSystem
        from engine.studies.localisation import driver, reading
        from engine.studies.localisation.figures import Criterion
        from engine.studies.localisation.records import LocalisationRecords, bundle, read_bundle
        from engine.studies.localisation.resume import resume
        from engine.studies.localisation.study import Localisation

        system = JobSystem(Path(tmp) / "data")
        records = LocalisationRecords(system.root)
        slug = gpu_slug()
        started = False

        def record(study: Localisation, scheme: str, t0: float) -> int:
            """Run a planned or resumed localisation through the queue and bundle it; 1 when it did not finish."""
            nonlocal started
            if not started:  # after the first planning: ModelOpt's CUDA extensions are built, the workers reuse them
                print(f"job system: workers {system.ensure_workers()}", flush=True)
                started = True
            runner = driver.QueueRunner(system.store, lambda r: system.submit(r, gpu=0), system.get, system.cancel)
            seen = {(s.index, s.state) for s in study.steps}  # a resumed study's steps were printed before

            def on_change(s: Localisation) -> None:
                records.save(s)
                for step in s.steps:
                    if step.state in ("done", "failed", "cancelled") and (step.index, step.state) not in seen:
                        seen.add((step.index, step.state))
                        f = step.figures
                        if step.crashed:
                            print(f"  {reading.crash_text(step)} | {time.perf_counter() - t0:.0f} s", flush=True)
                            continue
                        print(
                            f"  step {step.index + 1} {step.role} {len(step.kept)} kept: {step.state} "
                            f"pass={step.passed} {step.why} | {f.accuracy_text() if f else ''} | e2e "
                            f"{f.e2e_ms if f else None} gpu {f.gpu_ms if f else None} | run {step.run_id} | "
                            f"{time.perf_counter() - t0:.0f} s",
                            flush=True,
                        )

            try:
                driver.run(study, runner, poll_s=0.5, timeout_s=args.timeout_s, on_change=on_change)
            except TimeoutError as e:
                print(f"  TIMEOUT: {e}", flush=True)
            records.save(study)
            print(
                f"  {study.status} ({study.outcome}) in {time.perf_counter() - t0:.0f} s, {study.builds} search "
                f"builds of at most {study.budget}: {study.summary()}",
                flush=True,
            )
            for note in study.notes:
                print(f"  note: {note}", flush=True)
            growth = study.error_growth
            crossing = growth is not None and any(growth.first_crossing(v) is not None for v in growth.variants)
            if scheme == "int8_weight_only" and study.outcome == "nothing_to_fix" and not crossing:
                print(f"  {study.localisation_id}: within tolerance everywhere, not bundled", flush=True)
            else:
                blob = bundle(study, system.store)
                path = out / f"{study.localisation_id}.json.gz"
                path.write_bytes(blob)
                print(f"  bundled {path}: {len(blob) / 1024:.0f} KiB", flush=True)
            return int(study.status != "done")

        if args.resume:
            study, runs = read_bundle(args.resume.read_bytes())
            for run in runs:  # the unfixed build, the reference and the fix so far: bundled again
                system.store.import_run(json.dumps(run).encode())
            study.is_sample = False
            resume(study, args.max_builds)
            print(f"== {study.localisation_id}: going on after {study.builds} search builds, at most {study.budget}")
            failures += record(study, study.base["compile"]["quantization"], time.perf_counter())
        for name in wanted:
            model, scheme = CHOICES[name]
            t0 = time.perf_counter()
            base = request(model, scheme, args.quick)
            lid = f"{model}_b8_{scheme}_fp16_{slug}"
            print(f"== {lid}: planning on {args.analysis_device}", flush=True)
            study = driver.plan(
                base,
                criterion=Criterion(args.tolerance),
                max_builds=args.max_builds,
                source="scripts/record_localisations.py",
                device=args.analysis_device,
                max_samples=8,
                localisation_id=lid,
            )
            if args.analysis_device.startswith("cuda"):
                torch.cuda.empty_cache()
            if study.error_growth is not None:
                for v in study.error_growth.variants:
                    print(f"  PyTorch side: {study.error_growth.crossing_text(v)}", flush=True)
            failures += record(study, scheme, t0)
        system.stop_workers()
    total = sum(p.stat().st_size for p in out.glob("*.json.gz"))
    print(f"RESULT localisations {len(list(out.glob('*.json.gz')))} bundles, {total / 1024:.0f} KiB, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
