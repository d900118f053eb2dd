import json
import subprocess
import sys

import pytest
import torch

from engine import capabilities, runner
from engine.errors import ConfigError
from engine.result import LAYER_COLUMNS
from engine.runner import execute
from engine.settings.request import RunRequest

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_capabilities_without_gpu_never_import_torch_tensorrt():
    code = (
        "import sys; sys.path.insert(0, '.'); from engine import capabilities as c; caps = c.detect(); "
        "print(caps.cuda_available, caps.flavour, caps.can_compile, 'torch_tensorrt' in sys.modules); "
        "print(caps.banner()[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    first, banner = out.splitlines()[:2]
    assert first == "False none False False"
    assert "No NVIDIA GPU" in banner and "TensorRT compilation" in banner and "sample runs" in banner
    caps = capabilities.detect()
    assert caps.disabled_reason("backend", "tensorrt") == "needs an NVIDIA GPU with Torch-TensorRT installed"
    with pytest.raises(ConfigError) as err:
        runner.check_request(RunRequest(backend="tensorrt"), caps)
    assert err.value.field == "backend"
    with pytest.raises(ConfigError) as err:
        runner.check_request(RunRequest(device="cuda"), caps)
    assert err.value.field == "device"


def test_rtx_flavour_refuses_bf16_and_hardware_compatible():
    caps = capabilities.Capabilities(
        torch_version="2.11",
        cuda_available=True,
        gpus=(capabilities.Gpu(0, "NVIDIA H200", 140 * 2**30, "9.0"),),
        torch_tensorrt_version="2.11.0",
        flavour="tensorrt_rtx",
    )
    bf16 = RunRequest.from_dict({"backend": "tensorrt", "compile": {"precision": "bf16"}})
    with pytest.raises(ConfigError, match="TensorRT-RTX has no bf16") as err:
        runner.check_request(bf16, caps)
    assert err.value.field == "compile.precision"
    runner.check_request(RunRequest.from_dict({"backend": "tensorrt", "compile": {"precision": "fp16"}}), caps)
    full = capabilities.Capabilities(**{**capabilities.as_dict(caps), "gpus": caps.gpus, "flavour": "tensorrt"})
    runner.check_request(bf16, full)
    assert "H200" in caps.banner()[1] and "TensorRT-RTX" in caps.banner()[1]


def test_eager_backend_fills_the_schema_with_real_timings(store):
    req = RunRequest.from_dict(
        {
            "model": {"source": "resnet18", "input_shape": [3, 64, 64], "batch_size": 2},
            "measure": {"warmup_iters": 2, "timed_iters": 12, "profile_iters": 2},
        }
    )
    out = execute(req, store)
    r = out.result
    assert not out.cached
    lat = r.latency
    assert lat.iters == 12 and len(r.latency_samples_ms) == 12 and lat.timer == "perf_counter"
    assert 0 < lat.min_ms <= lat.p10_ms <= lat.median_ms <= lat.p90_ms <= lat.p99_ms <= lat.max_ms
    assert lat.throughput_per_s == pytest.approx(2 * 1000 / lat.median_ms)
    layers = r.layers
    assert list(layers.columns) == LAYER_COLUMNS
    # every leaf module of resnet18 that runs appears, in execution order
    leaf_names = [
        n for n, m in __import__("torchvision").models.resnet18().named_modules() if n and not any(m.children())
    ]
    assert set(layers["module_path"]) == set(leaf_names)
    assert layers["name"].iloc[0] == "conv1" and layers["name"].iloc[-1] == "fc"
    assert layers.loc[layers.name == "fc", "output_shapes"].item() == "2x1000"
    assert layers["share"].sum() == pytest.approx(1.0)
    assert (layers["avg_ms"] > 0).all()
    assert r.profiled_sum_ms == pytest.approx(layers["avg_ms"].sum())
    assert r.segmentation is None and r.engine_count == 0
    assert r.env["device"] == "cpu" and r.env["device_name"].startswith("CPU")
    again = execute(req, store)
    assert again.cached and again.result.run_id == r.run_id


def test_eager_fp16_reports_accuracy(store):
    req = RunRequest.from_dict(
        {
            "model": {"source": "mobilenet_v3_small", "input_shape": [3, 64, 64]},
            "compile": {"precision": "bf16"},
            "measure": {"warmup_iters": 1, "timed_iters": 5, "layer_profile": False},
        }
    )
    r = execute(req, store).result
    assert r.accuracy is not None and r.accuracy.reference.startswith("eager fp32")
    assert 0 < r.accuracy.rel_l2 < 0.2 and r.accuracy.top1_agreement is not None
    assert any("bf16 on CPU" in w for w in r.warnings)
    assert len(r.layers) == 0


def _cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600
    )


def test_cli_profile_json_cache_and_errors(tmp_path):
    env = {**__import__("os").environ, "TRTDASH_DATA_DIR": str(tmp_path)}
    args = [
        "profile",
        "--model",
        "resnet18",
        "--input-shape",
        "3,32,32",
        "--warmup-iters",
        "1",
        "--timed-iters",
        "5",
        "--profile-iters",
        "1",
    ]
    first = _cli(*args, "--json", env=env)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["cached"] is False and doc["latency"]["iters"] == 5
    # a CPU run: GPU time, its replay and the host overhead say why they are missing, in JSON and in the summary
    assert doc["gpu_time"] is None and doc["timing"]["gpu_time_ms"] is None
    assert doc["timing"]["e2e_median_ms"] == doc["latency"]["median_ms"]
    assert doc["timing"]["shown"]["GPU time"] == "needs an NVIDIA GPU"
    assert doc["timing"]["shown"]["Host overhead"] == "needs an NVIDIA GPU"
    # the per-layer table the eager run measured, one object per layer; an eager run has no partition
    assert len(doc["layers"]) > 10 and {row["segment"] for row in doc["layers"]} == {"eager"}
    assert sum(row["share"] for row in doc["layers"]) == pytest.approx(1.0)
    assert doc["segmentation"] is None
    second = _cli(*args, env=env)
    assert second.returncode == 0 and "cached: answered from the store" in second.stdout
    assert "GPU time: needs an NVIDIA GPU" in second.stdout
    assert "CUDA-graph replay: needs an NVIDIA GPU" in second.stdout
    assert doc["run_id"] in second.stdout and "slowest:" in second.stdout
    bad = _cli("profile", "--model", "resnet18", "--optimization-level", "9", env=env)
    assert bad.returncode == 2 and "compile.optimization_level: 9 is above the maximum 5" in bad.stderr
    assert "Traceback" not in bad.stderr
    runs = _cli("runs", env=env)
    assert doc["run_id"] in runs.stdout
    assert "20261124-043616-868ec574" in runs.stdout  # a bundled sample, as the dashboard lists it


def test_the_nvidia_driver_version_is_read_from_the_drivers_proc_file(tmp_path):
    """Real /proc/driver/nvidia/version texts (open and proprietary kernel modules); none without a driver."""
    proprietary = tmp_path / "version"
    proprietary.write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Thu Oct 30 12:00:00 UTC 2025\n"
        "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
    )
    assert capabilities.nvidia_driver_version(proprietary) == "580.159.04"
    open_module = tmp_path / "open"
    open_module.write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build\n")
    assert capabilities.nvidia_driver_version(open_module) == "550.54.15"
    assert capabilities.nvidia_driver_version(tmp_path / "missing") is None
    garbled = tmp_path / "garbled"
    garbled.write_text("no version here\n")
    assert capabilities.nvidia_driver_version(garbled) is None
