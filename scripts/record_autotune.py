"""Record an auto-tune search on a real GPU and bundle it as a sample (``<out>/autotune/<id>.json.gz``), so the
Auto-tune tab of Sweeps shows a search on machines without a GPU (engine/studies/autotune/bundle.py installs it).

The search is ``python -m engine autotune`` (the dashboard's search, in its own process) in a fresh data directory with
samples off, so every trial is measured, not answered from a bundled run; then the stored plan, its Optuna study and
the runs it measured (raw profiler files dropped) are bundled.

    python scripts/record_autotune.py --out samples [--model resnet50] [--trials 12]
        [--knobs compile.precision,compile.optimization_level,compile.min_block_size] [--precisions fp32,fp16]
        [--timed-iters 200] [--keep-data DIR]

Prints one line per trial (the CLI's), then ``RESULT autotune <id> <trials> trials, <KiB> KiB``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.store import DATA_DIR_ENV, RunStore  # noqa: E402

DEFAULT_KNOBS = "compile.precision,compile.optimization_level,compile.min_block_size"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="samples directory (bundles go to <out>/autotune)")
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--backend", default="tensorrt", help="eager: a quick check of this script on a CPU")
    ap.add_argument("--precision", default="fp16", help="the base request's precision")
    ap.add_argument("--input-shape", default=None, help="without the batch, e.g. 3,32,32 (default: the model's)")
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--knobs", default=DEFAULT_KNOBS)
    ap.add_argument("--precisions", default="fp32,fp16")
    ap.add_argument("--timed-iters", type=int, default=200)
    ap.add_argument("--keep-data", type=Path, default=None, help="record into this data directory and keep it")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="record-autotune-") as tmp:
        data = args.keep_data or Path(tmp) / "data"
        env = {**os.environ, DATA_DIR_ENV: str(data), "TRTDASH_SAMPLES_DIR": str(Path(tmp) / "no-samples")}
        cmd = [
            sys.executable,
            "-m",
            "engine",
            "autotune",
            "--model",
            args.model,
            "--backend",
            args.backend,
            "--precision",
            args.precision,
            "--knobs",
            args.knobs,
            "--precisions",
            args.precisions,
            "--trials",
            str(args.trials),
            "--timed-iters",
            str(args.timed_iters),
            "--json",
            *(["--input-shape", args.input_shape] if args.input_shape else []),
        ]
        print("$ " + " ".join(cmd), flush=True)
        done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)  # trial lines: stderr
        if done.returncode != 0:
            print(f"RESULT autotune failed: exit code {done.returncode}", flush=True)
            return done.returncode
        report = json.loads(done.stdout)
        autotune_id = report["autotune_id"]
        os.environ[DATA_DIR_ENV] = str(data)
        from engine.studies.autotune.bundle import write_bundle  # noqa: PLC0415 - after the data directory is set

        path = write_bundle(data, autotune_id, RunStore(data), args.out)
        trials = len(report.get("trials", []))
        print(f"RESULT autotune {autotune_id} {trials} trials, {path.stat().st_size / 1024:.0f} KiB -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
