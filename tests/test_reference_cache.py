"""The reference cache: eager fp32 outputs and eager baselines computed once per model and device."""

import json

import torch

from engine.backends.tensorrt.measure import not_capturable
from engine.latency_stats import LatencyStats
from engine.profiling import graph_replay
from engine.profiling.reference_cache import CACHE_DIR, cached_latency, cached_outputs, reference_key
from engine.settings.request import RunRequest


def test_outputs_are_computed_once_and_read_back(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"logits": torch.arange(6.0).reshape(2, 3), "extra": [torch.ones(2)]}

    key = reference_key("registry:resnet18:seed0", {"batch_size": 2}, "NVIDIA H200")
    first, hit = cached_outputs(tmp_path, key, compute)
    again, hit_again = cached_outputs(tmp_path, key, compute)
    assert (hit, hit_again) == (False, True) and len(calls) == 1
    assert torch.equal(again["logits"], first["logits"]) and torch.equal(again["extra"][0], torch.ones(2))
    # a damaged file is recomputed, not an error
    (tmp_path / CACHE_DIR / f"{key}.pt").write_bytes(b"not a tensor file")
    _, hit = cached_outputs(tmp_path, key, compute)
    assert not hit and len(calls) == 2
    # no data directory: nothing cached
    assert cached_outputs(None, key, compute)[1] is False and len(calls) == 3


def test_keys_separate_models_settings_devices_and_what_else_is_given():
    base = reference_key("registry:resnet18:seed0", {"batch_size": 1}, "NVIDIA H200")
    assert base == reference_key("registry:resnet18:seed0", {"batch_size": 1}, "NVIDIA H200")
    others = {
        reference_key("registry:resnet18:seed1", {"batch_size": 1}, "NVIDIA H200"),
        reference_key("registry:resnet18:seed0", {"batch_size": 8}, "NVIDIA H200"),
        reference_key("registry:resnet18:seed0", {"batch_size": 1}, "NVIDIA H100 80GB HBM3"),
        reference_key("registry:resnet18:seed0", {"batch_size": 1}, "NVIDIA H200", baseline="eager_fp16"),
    }
    assert base not in others and len(others) == 4


def test_a_reused_baseline_says_when_it_was_measured(tmp_path):
    stats = LatencyStats.from_samples([2.0, 2.1, 2.2], batch_size=1, timer="cuda_events")
    measured, when = cached_latency(tmp_path, "k", lambda: stats)
    assert measured == stats and when is None
    reused, when = cached_latency(tmp_path, "k", lambda: (_ for _ in ()).throw(AssertionError("measured again")))
    assert reused == stats and when is not None and when.startswith("20")
    doc = json.loads((tmp_path / CACHE_DIR / "k.json").read_text())
    assert doc["measured_at"] == when


def test_graph_replay_is_not_attempted_where_it_cannot_mean_anything():
    def req(**knobs):
        return RunRequest.from_dict(
            {
                "model": {"source": "resnet18"},
                "backend": "tensorrt",
                "device": "cuda",
                "compile": {"precision": "fp16", **knobs},
            }
        )

    assert not_capturable(req(), dynamic=False) == ""
    assert "enable_cudagraphs" in not_capturable(req(enable_cudagraphs=True), dynamic=False)
    assert "torch.compile" in not_capturable(req(frontend="torch_compile"), dynamic=False)
    assert "dynamic shapes" in not_capturable(req(), dynamic=True)
    refused = graph_replay.replay(lambda: None, iters=5, warmup_iters=1, batch_size=1, not_attempted="why")
    assert not refused.captured and refused.reason == "why" and refused.median_ms is None
