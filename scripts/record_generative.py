"""Record the bundled generative samples on a real GPU: GPT-2 (124M) and the Llama-style 1B configuration, fp16,
Torch-TensorRT against eager and inductor measured in the same call, with and without CUDA graphs; one fresh
process per model (``python -m engine profile --task generate``), the stored run copied gzipped to
``<out>/generative_<model>_fp16.json.gz`` (the lead copies them into ``samples/generative/``, where the store lists
them beside the recorded runs so a CPU user sees the charts and verdicts).

    python scripts/record_generative.py --out /tmp/samples [--models hf/gpt2,hf/llama-1b]

About 3 minutes a model on an H200 (5 programs per compiled backend, the GPU figure on prefill and decode).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARGS = [
    "--backend", "tensorrt", "--compare", "eager,inductor", "--precision", "fp16", "--device", "cuda",
    "--prompt-lengths", "128,512", "--new-tokens", "32", "--contexts", "256,1024", "--batch-sizes", "1,8,32",
    "--cuda-graphs", "--iters", "30", "--warmup", "5",
]  # fmt: skip


def record(model: str, out: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="trtdash-generative-") as tmp:
        env = os.environ | {"TRTDASH_DATA_DIR": tmp, "PYTHONUNBUFFERED": "1"}
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "engine", "profile", "--task", "generate", "--model", model, *ARGS],
            cwd=ROOT, env=env, text=True, capture_output=True, timeout=900,
        )  # fmt: skip
        print(done.stdout)
        if done.returncode != 0:
            print(done.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"{model}: exit code {done.returncode}")
        stored = list((Path(tmp) / "generative").glob("*.json.gz"))
        if len(stored) != 1:
            raise SystemExit(f"{model}: expected one stored run, found {stored}")
        target = out / f"generative_{model.split('/')[-1]}_fp16.json.gz"
        shutil.copyfile(stored[0], target)
        print(f"{model}: {time.perf_counter() - t0:.0f} s -> {target} ({target.stat().st_size} bytes)", flush=True)
        return target


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--models", default="hf/gpt2,hf/llama-1b")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for model in args.models.split(","):
        record(model.strip(), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
