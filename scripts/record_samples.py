"""Record the dashboard's bundled sample runs on a real GPU, with the product's own code path.

Every run goes through ``engine.runner.execute`` into a fresh ``RunStore``, is exported with
``RunStore.export_run`` and gzipped as ``<out>/<model>_<desc>.json.gz``. Sweep runs carry the tags
``sweep:<id>`` and ``knob:<dotted knob>`` (the convention ``engine.sweeps`` reads back).
Bulky raw files are dropped from sweep runs (and any raw file above ``--max-raw-kib``) so the
bundle stays small.

    python scripts/record_samples.py --out /tmp/samples [--only core,sweeps] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import runner  # noqa: E402
from engine.config import RunRequest  # noqa: E402
from engine.store import RunStore  # noqa: E402
from engine.sweeps import sweep_tags  # noqa: E402

RELU = "torch.ops.aten.relu.default"


def request(model: str, precision: str, mode: str = "measure", measure: dict | None = None,
            **compile_knobs) -> RunRequest:
    m = {"warmup_iters": 50, "timed_iters": 200, "profile_iters": 50}
    m.update(measure or {})
    return RunRequest.from_dict({"model": {"source": model, "batch_size": 1}, "backend": "tensorrt",
                                 "mode": mode, "compile": {"precision": precision, **compile_knobs},
                                 "measure": m})


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
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    parts = set(args.only.split(","))
    quick = {"warmup_iters": 5, "timed_iters": 10, "profile_iters": 5} if args.quick else {}
    failures = 0

    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "data")

        def record(filename: str, req: RunRequest, *, tags: list[str] | None = None,
                   keep_raw: bool = True) -> str | None:
            nonlocal failures
            t0 = time.perf_counter()
            try:
                r = runner.execute(req, store, use_cache=False).result
            except Exception:
                failures += 1
                print(f"FAILED {filename}:\n{traceback.format_exc()}", flush=True)
                return None
            if tags:
                store.set_tags(r.run_id, tags)
            size = export(store, r.run_id, args.out, filename, keep_raw=keep_raw, max_raw_kib=args.max_raw_kib)
            lat = f"{r.latency.median_ms:.3f} ms" if r.latency.timed else "not timed"
            print(f"{filename}: {lat}, engines {r.engine_count}, stages "
                  f"{ {k: round(v, 2) for k, v in r.stages_s.items()} }, {size / 1024:.0f} KiB, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
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
            for model in ("resnet50", "vit_b_16"):
                sweep_measure = {"compare_eager": False, "layer_profile": False, **quick}
                analyze_id = record(f"{model}_fp16_analyze.json.gz",
                                    request(model, "fp16", mode="analyze", min_block_size=1))
                recommended: list[int] = []
                if analyze_id:
                    s = store.get(analyze_id).segmentation
                    recommended = sorted({r.min_block_size for r in s.recommendations} if s else set())
                slug = gpu_slug(store, analyze_id) if analyze_id else "gpu"
                sid = f"{model}_fp16_optimization_level_{slug}"
                for level in range(6):
                    record(f"{model}_fp16_opt{level}.json.gz",
                           request(model, "fp16", optimization_level=level, measure=sweep_measure),
                           tags=sweep_tags(sid, ["compile.optimization_level"]), keep_raw=False)
                sid = f"{model}_fp16_min_block_size_{slug}"
                for mbs in sorted({1, 5, *recommended}):
                    record(f"{model}_fp16_mbs{mbs}.json.gz",
                           request(model, "fp16", min_block_size=mbs, measure=sweep_measure),
                           tags=sweep_tags(sid, ["compile.min_block_size"]), keep_raw=False)

    total = sum(p.stat().st_size for p in args.out.glob("*.json.gz"))
    print(f"RESULT samples {len(list(args.out.glob('*.json.gz')))} files, {total / 1024:.0f} KiB, "
          f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
