"""Models by name through the CLI on a real GPU: a timm model and a torchvision model the old fixed picker lacked,
compiled by Torch-TensorRT from ``python -m engine profile --json`` in a fresh process, as a user would type it.
The JSON must carry what the dashboard shows: the per-layer table, the graph segmentation, GPU time and the plan
fingerprint (issue 16: every timm/torchvision model by name, ``--json`` with layers and segmentation).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model", ["timm/resnet10t", "regnet_y_800mf"])
def test_profile_json_by_name_carries_layers_segmentation_and_gpu_time(model, tmp_path):
    if model.startswith("timm/"):
        pytest.importorskip("timm", reason="timm is not installed here (requirements.txt has it; the GPU kit may not)")
    cmd = [
        sys.executable,
        "-m",
        "engine",
        "profile",
        "--model",
        model,
        "--backend",
        "tensorrt",
        "--device",
        "cuda",
        "--precision",
        "fp16",
        "--warmup-iters",
        "20",
        "--timed-iters",
        "50",
        "--json",
    ]
    env = {**os.environ, "TRTDASH_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads(done.stdout)
    print(
        f"\n[{model}] e2e {r['latency']['median_ms']:.4f} ms | gpu {r['gpu_time']['median_ms']:.4f} ms "
        f"{r['gpu_time']['kernels_per_inference']} kernels | engines {r['engine_count']} | "
        f"layers {len(r['layers'])} | ops {r['segmentation']['supported_ops']}/{r['segmentation']['total_ops']}"
    )
    assert r["request"]["model"]["source"] == model
    assert r["env"]["device"] == "cuda" and r["engine_count"] >= 1
    seg = r["segmentation"]
    assert seg["total_ops"] > 0 and seg["supported_ops"] > 0 and seg["segments"]
    assert sum(s["kind"] == "tensorrt" for s in seg["segments"]) == r["engine_count"]
    layers = r["layers"]
    assert layers and any(row["runtime"] == "tensorrt" for row in layers)
    assert all(row["avg_ms"] >= 0 and row["name"] for row in layers)
    g = r["gpu_time"]
    assert 0 < g["median_ms"] <= r["latency"]["median_ms"] * 1.5 and g["kernels_per_inference"] > 0
    assert r["plan_fingerprint"]
