"""Issue 15, defect 8: what can be known before a job starts is refused at submit, with the reason and the figures;
model code cannot end a run as if it succeeded; the CLI takes a time limit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import capabilities, runner
from engine.errors import ConfigError, ModelError
from engine.models import footprint, memory
from engine.runner import execute
from engine.settings.request import RunRequest, validate

ROOT = Path(__file__).resolve().parent.parent
DYNAMIC = [{"name": "x", "shape": [4, 3, 32, 32], "min_shape": [1, 3, 32, 32], "max_shape": [8, 3, 32, 32]}]


def test_analyze_with_the_eager_backend_is_refused_at_submit(system):
    """It used to be queued and then measured as an ordinary run: a result that answered another question."""
    with pytest.raises(ConfigError) as e:
        system.submit(RunRequest.from_dict({"device": "cpu", "mode": "analyze"}), start_workers=False)
    assert e.value.field == "mode" and "tensorrt" in e.value.message
    assert system.list_jobs() == []


def test_gpu_combinations_that_no_machine_runs_are_refused_without_a_gpu():
    with pytest.raises(ConfigError) as e:
        validate(
            RunRequest.from_dict(
                {"backend": "tensorrt", "compile": {"frontend": "torch_compile"}, "model": {"inputs": DYNAMIC}}
            )
        )
    assert e.value.field == "compile.frontend" and "dynamo" in e.value.message
    with pytest.raises(ConfigError) as e:
        validate(
            RunRequest.from_dict(
                {"backend": "tensorrt", "compile": {"quantization": "int8_weight_only"}, "model": {"inputs": DYNAMIC}}
            )
        )
    assert e.value.field == "compile.quantization" and "static shapes" in e.value.message
    with pytest.raises(ConfigError) as e:
        validate(RunRequest.from_dict({"backend": "eager", "compile": {"quantization": "int8"}}))
    assert e.value.field == "compile.quantization"
    validate(RunRequest.from_dict({"backend": "tensorrt", "model": {"inputs": DYNAMIC}}))  # dynamo: fine


def test_inputs_larger_than_the_machine_are_refused_at_submit_with_the_figure(system):
    huge = RunRequest.from_dict({"device": "cpu", "model": {"batch_size": 4096, "input_shape": [3, 4096, 4096]}})
    with pytest.raises(ConfigError) as e:
        system.submit(huge, start_workers=False)
    assert e.value.field == "model.batch_size"
    assert "x 4096x3x4096x4096 float32" in e.value.message and "768.0 GiB" in e.value.message
    assert "of RAM" in e.value.message
    assert system.list_jobs() == []
    h200 = capabilities.Capabilities(
        torch_version="2.11",
        cuda_available=True,
        torch_tensorrt_version="2.11",
        flavour="tensorrt",
        gpus=(capabilities.Gpu(0, "NVIDIA H200", 140 * 2**30, "9.0"),),
    )
    on_gpu = RunRequest.from_dict(
        {"device": "cuda", "backend": "tensorrt", "model": {"batch_size": 4096, "input_shape": [3, 2048, 2048]}}
    )
    with pytest.raises(ConfigError, match="GPU memory|RAM"):
        runner.check_request(on_gpu, h200)


def test_a_batch_whose_activations_cannot_fit_is_refused_before_it_is_allocated(store, monkeypatch):
    """batch 4096 at 3x224x224 tried a 13 GB allocation (resnet18's first activation); the footprint is now
    estimated on the meta device before anything is built, and the run is refused at its check (here against a
    machine of 4 GiB, batch 1024), with the figures and the batch that fits."""
    monkeypatch.setattr(capabilities, "ram_bytes", lambda: 4 * 2**30)
    request = RunRequest.from_dict(
        {
            "device": "cpu",
            "model": {"batch_size": 1024},
            "measure": {"warmup_iters": 1, "timed_iters": 5, "layer_profile": False, "accuracy": False},
        }
    )
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as e:
        execute(request, store)
    assert e.value.field == "model.batch_size"
    message = e.value.message
    assert "needs at least 6.7 GiB of RAM" in message and "activations 6.1 GiB" in message, message
    assert "this machine's 4.0 GiB" in message and "at most 6" in message
    assert len(store.list_runs()) == 0
    print(f"\n{message} ({time.monotonic() - t0:.1f} s)")


def test_a_model_the_estimate_cannot_run_is_still_refused_after_its_batch_one_check(store, monkeypatch):
    """A model that does not run on the meta device has no estimate: the activations measured by the batch-1
    check run refuse it before the full batch is allocated."""
    monkeypatch.setattr(capabilities, "ram_bytes", lambda: 4 * 2**30)
    monkeypatch.setattr(footprint, "largest_activation_bytes", lambda module, inputs: None)
    monkeypatch.setattr(memory, "_needs", lambda *a: ())
    request = RunRequest.from_dict(
        {
            "device": "cpu",
            "model": {"batch_size": 1024},
            "measure": {"warmup_iters": 1, "timed_iters": 5, "layer_profile": False, "accuracy": False},
        }
    )
    with pytest.raises(ModelError) as e:
        execute(request, store)
    message = e.value.message
    assert "Batch 1024 needs at least" in message and "of RAM" in message and "3.1 MiB per sample" in message
    assert "this machine has 4.0 GiB" in message and "at most" in e.value.hint
    assert len(store.list_runs()) == 0


def _cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def test_model_code_that_calls_sys_exit_makes_the_cli_fail(tmp_path):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "exits0.py").write_text(
        "import sys\n\ndef build_model():\n    sys.exit(0)\n\ndef example_inputs(batch_size):\n    return ()\n"
    )
    out = _cli(
        "profile",
        "--model",
        "file:exits0.py",
        "--device",
        "cpu",
        env={"TRTDASH_MODELS_DIR": str(models_dir), "TRTDASH_DATA_DIR": str(tmp_path / "data")},
    )
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "sys.exit(0)" in out.stderr and "nothing was stored" in out.stderr


def test_the_cli_stops_a_run_at_its_timeout(tmp_path):
    data = tmp_path / "data"
    t0 = time.monotonic()
    out = _cli(
        "profile",
        "--model",
        "resnet18",
        "--input-shape",
        "3,32,32",
        "--device",
        "cpu",
        "--warmup-iters",
        "1",
        "--timed-iters",
        "100000",
        "--layer-profile",
        "false",
        "--accuracy",
        "false",
        "--timeout",
        "15",
        env={"TRTDASH_DATA_DIR": str(data)},
    )
    elapsed = time.monotonic() - t0
    assert out.returncode == 124, (out.returncode, out.stderr[-2000:])
    assert "timed out after 15 s" in out.stderr and "nothing was stored" in out.stderr
    assert elapsed < 15 + 60, elapsed  # killed, not left to finish
    from engine.store import RunStore

    assert len(RunStore(data).list_runs()) == 0
    quick = _cli(
        "profile",
        "--model",
        "resnet18",
        "--input-shape",
        "3,32,32",
        "--device",
        "cpu",
        "--warmup-iters",
        "1",
        "--timed-iters",
        "5",
        "--layer-profile",
        "false",
        "--accuracy",
        "false",
        "--timeout",
        "300",
        env={"TRTDASH_DATA_DIR": str(data)},
    )
    assert quick.returncode == 0 and "e2e median" in quick.stdout, quick.stderr[-2000:]
