"""What a dynamic-shape engine costs at the measured shape: the static counterpart of a run, found in the
store, and the Profile page offering to measure it (eager runs on CPU stand in for engines)."""

import time

import pytest
from streamlit.testing.v1 import AppTest

from engine import jobs, runner
from engine.models import files
from engine.settings.inputs import parse_inputs
from engine.settings.request import RunRequest
from engine.store import RunStore
from engine.studies import dynamic_cost

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
MODEL = (
    "import torch\n"
    "def build_model():\n    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))\n"
    "def example_inputs(batch_size):\n    return (torch.randn(batch_size, 3, 4),)\n"
)
DYNAMIC = [{"name": "x0", "shape": [2, 3, 4], "min_shape": [1, 3, 4], "max_shape": [8, 3, 4]}]


def request(inputs, batch: int, seed: int = 0) -> RunRequest:
    return RunRequest.from_dict(
        {
            "model": {"source": "file:fixed.py", "batch_size": batch, "inputs": inputs},
            "backend": "eager",
            "device": "cpu",
            "measure": {"warmup_iters": 2, "timed_iters": 5, "layer_profile": False, "seed": seed},
        }
    )


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv(files.MODELS_DIR_ENV, str(tmp_path / "models"))
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(tmp_path / "no-samples"))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "fixed.py").write_text(MODEL)
    return RunStore(tmp_path / "data")


def test_static_counterpart_is_found_whatever_its_seed_and_priced(env):
    store = env
    dynamic = runner.execute(request(DYNAMIC, batch=4), store).result
    counterpart = dynamic_cost.static_counterpart(dynamic)
    (spec,) = parse_inputs(counterpart.model.inputs)
    assert spec.shape == (4, 3, 4) and not spec.is_dynamic and counterpart.model.batch_size == 4
    assert counterpart.backend == "eager" and counterpart.measure.timed_iters == 5
    assert dynamic_cost.find_static_counterpart(store, dynamic) is None

    other_shape = runner.execute(request([{"name": "x0", "shape": [2, 3, 4]}], batch=2), store).result
    assert dynamic_cost.find_static_counterpart(store, dynamic) is None  # a static run, another shape
    static = runner.execute(counterpart.with_changes(**{"measure.seed": 7}), store).result
    assert dynamic_cost.find_static_counterpart(store, dynamic).run_id == static.run_id
    assert dynamic_cost.static_counterpart(static) is None and dynamic_cost.static_counterpart(other_shape) is None

    cost = dynamic_cost.DynamicCost(dynamic, static)
    assert cost.overhead_ms == pytest.approx(dynamic.latency.median_ms - static.latency.median_ms)
    text = cost.text()
    assert f"{dynamic.latency.median_ms:.3f} ms against {static.latency.median_ms:.3f} ms" in text
    assert ("no clear cost" in text) == cost.within_noise


def test_profile_page_offers_the_static_engine_and_then_prices_the_range(env):
    store = env
    dynamic = runner.execute(request(DYNAMIC, batch=4), store).result
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=600)
    at.query_params["run"] = dynamic.run_id
    try:
        at.run()
        assert not at.exception, at.exception
        assert any("A dynamic-shape engine" in c.value for c in at.caption)
        button = next(b for b in at.button if b.label == "Measure a static engine at this shape")
        button.click().run()
        assert not at.error, [e.value for e in at.error]
        deadline = time.time() + 600
        while dynamic_cost.find_static_counterpart(store, dynamic) is None and time.time() < deadline:
            time.sleep(0.5)
        static = dynamic_cost.find_static_counterpart(store, dynamic)
        assert static is not None, "the static counterpart was not measured through the queue"
        again = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=600)  # a fresh visit of the link
        again.query_params["run"] = dynamic.run_id
        again.run()
        infos = [i.value for i in again.info]
        assert dynamic_cost.DynamicCost(dynamic, static).text() in infos, infos
    finally:
        jobs.stop_workers()


def test_the_cost_is_judged_on_gpu_time_when_both_runs_have_it(env):
    """Real runs with GPU time set as the backend fills it on a GPU (the figures are the logic's inputs)."""
    import dataclasses

    from engine.latency_stats import LatencyStats
    from engine.result import BUSY, GpuTime

    store = env
    dynamic = runner.execute(request(DYNAMIC, batch=4), store).result
    static = runner.execute(dynamic_cost.static_counterpart(dynamic), store).result
    cpu = dynamic_cost.DynamicCost(dynamic, static)
    assert cpu.judging.metric == "e2e" and "GPU time not fit to judge (needs an NVIDIA GPU)" in cpu.text()

    def gpu(run, ms, plan):
        """Settled busy time ``ms``, end to end 0.3 ms above it, no replay (a dynamic engine is never replayed)."""
        e2e = [ms + 0.3] * 20
        return dataclasses.replace(
            run,
            gpu_time=GpuTime(ms, ms * 0.999, ms * 1.001, 12, 200, 5, figure=BUSY, settled=True),
            plan_fingerprint=plan,
            latency=LatencyStats.from_samples(e2e, run.latency.batch_size, "cuda_events"),
            latency_samples_ms=e2e,
        )

    cost = dynamic_cost.DynamicCost(gpu(dynamic, 0.4500, "dyn"), gpu(static, 0.3870, "st"))
    assert cost.judging.metric == "gpu_time"
    assert cost.overhead_ms == pytest.approx(0.063) and not cost.within_noise
    assert cost.text().startswith(
        "At the measured shape the dynamic engine takes GPU time: 0.4500 ms against "
        "0.3870 ms for a static engine built for that shape alone: +0.0630 ms (+16%)"
    )
    assert cost.text().endswith(": what accepting the whole range costs here.")
    close = dynamic_cost.DynamicCost(gpu(dynamic, 0.3872, "dyn"), gpu(static, 0.3870, "st"))
    assert close.within_noise and "within the GPU-time windows of both: no clear cost" in close.text()
    same = dynamic_cost.DynamicCost(gpu(dynamic, 0.3900, "one"), gpu(static, 0.3870, "one"))
    assert same.same_plan and "both ran the same engine plan: no cost" in same.text()
