"""Issue 25 on a real GPU: the memory estimate refuses a tensorrt run that cannot fit the GPU before anything is
built (the figures and the limit in the message), and lets an ordinary large batch through; an op that does not
exist is refused on the tensorrt backend. Each through ``python -m engine profile``, as a user types it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--warmup-iters", "5", "--timed-iters", "10", "--layer-profile", "false", "--accuracy", "false"]


def _profile(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [sys.executable, "-m", "engine", "profile", "--backend", "tensorrt", "--device", "cuda", *QUICK, *args]
    env = {**os.environ, "TRTDASH_DATA_DIR": str(tmp_path / "data")}
    t0 = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    return done, time.monotonic() - t0


def test_a_run_that_cannot_fit_the_gpu_is_refused_with_the_estimate(tmp_path):
    """resnet18 at 3x16384x16384, batch 4: its first activation alone is 64 GiB (fp32), held with the next."""
    done, seconds = _profile(tmp_path, "--model", "resnet18", "--input-shape", "3,16384,16384", "--batch", "4")
    print(f"\n{done.stderr.strip()[-600:]} ({seconds:.1f} s)")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "of GPU memory" in done.stderr and "activations" in done.stderr and "more than this machine's" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_ordinary_large_batch_is_not_refused(tmp_path):
    done, _ = _profile(tmp_path, "--model", "resnet18", "--batch", "256", "--precision", "fp16")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "e2e median" in done.stdout


def test_an_op_that_does_not_exist_is_refused_on_tensorrt(tmp_path):
    done, _ = _profile(tmp_path, "--model", "resnet18", "--torch-executed-ops", "torch.ops.aten.nonexistent.default")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "compile.torch_executed_ops" in done.stderr and "not an operator" in done.stderr
