import pandas as pd
import pytest

from engine import batch_sweep as bs
from engine import models, runner
from engine.config import ConfigError, MeasureSettings, ModelSpec, RunRequest, validate
from engine.sweeps import JobView, SweepExecution

QUICK = MeasureSettings(warmup_iters=2, timed_iters=7, layer_profile=False, accuracy=False, compare_eager=False)


def test_static_plan_has_one_valid_run_per_batch():
    base = RunRequest(model=ModelSpec(source="resnet18", input_shape=(3, 32, 32)), device="cpu", measure=QUICK)
    plan = bs.plan_batch_sweep(base, [8, 1, 2, 2, 4])
    assert plan.batch_sizes == (1, 2, 4, 8)
    assert [(p.batch_size, p.strategy, p.request.model.batch_size) for p in plan.points] == [
        (1, "static", 1), (2, "static", 2), (4, "static", 4), (8, "static", 8)]
    assert all(validate(p.request) for p in plan.points)
    assert plan.tags == [f"sweep:{plan.sweep_id}", "knob:model.batch_size"]
    assert any("GPU memory" in n for n in plan.notes)


def test_dynamic_plan_shares_one_engine_range():
    base = RunRequest(model=ModelSpec(source="resnet50"), backend="tensorrt")
    specs = models.input_specs(models.REGISTRY["resnet50"], base.model)
    plan = bs.plan_batch_sweep(base, [1, 8, 32], ["static", "dynamic"], model_inputs=specs)
    static = [p for p in plan.points if p.strategy == "static"]
    dynamic = [p for p in plan.points if p.strategy == "dynamic"]
    assert [p.request.model.inputs for p in static] == [None, None, None]
    (x,) = plan.dynamic_inputs
    assert (x.lower, x.shape, x.upper) == ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))
    assert {p.request.model.inputs for p in dynamic} == {plan.dynamic_inputs}
    assert [p.request.model.batch_size for p in dynamic] == [1, 8, 32]
    assert all(p.request.compile.cache_built_engines and p.request.compile.reuse_cached_engines for p in dynamic)
    assert [bs.strategy_of(p.request.to_dict()) for p in plan.points] == ["static"] * 3 + ["dynamic"] * 3


def test_static_plan_rewrites_explicit_inputs_per_batch():
    names = ["batch", "sequence"]
    raw = [dict(name="input_ids", shape=[1, 64], dtype="int64", value_range=[0, 30522], dim_names=names),
           dict(name="attention_mask", shape=[1, 64], dtype="int64", value_range=[1, 2], dim_names=names)]
    base = RunRequest.from_dict({"model": {"source": "hf/bert-base", "inputs": raw}, "backend": "tensorrt"})
    plan = bs.plan_batch_sweep(base, [1, 4], ["static"])
    assert [p.request.model.inputs[0].shape for p in plan.points] == [(1, 64), (4, 64)]
    assert not any(s.is_dynamic for p in plan.points for s in p.request.model.inputs)


@pytest.mark.parametrize("kwargs, field, words", [
    ({"batch_sizes": []}, "batch_sweep.batch_sizes", "no batch sizes"),
    ({"batch_sizes": [0, 4]}, "batch_sweep.batch_sizes", "[0] outside 1..4096"),
    ({"strategies": ["elastic"]}, "batch_sweep.strategies", "pick from static, dynamic"),
    ({"strategies": ["dynamic"]}, "batch_sweep.strategies", "needs the tensorrt backend"),
    ({"batch_sizes": list(range(1, 40))}, "batch_sweep.batch_sizes", "more than the 32"),
])
def test_plan_errors_name_the_setting(kwargs, field, words):
    base = RunRequest(model=ModelSpec(source="resnet18"))
    with pytest.raises(ConfigError) as e:
        bs.plan_batch_sweep(base, **kwargs)
    assert e.value.field == field and words in e.value.message
    trt = RunRequest(model=ModelSpec(source="resnet18"), backend="tensorrt")
    with pytest.raises(ConfigError, match="batch_sweep.opt_batch: 64 is outside the swept range 1..8"):
        bs.plan_batch_sweep(trt, [1, 8], ["dynamic"], opt_batch=64,
                            model_inputs=models.input_specs(models.REGISTRY["resnet18"], trt.model))
    with pytest.raises(ConfigError, match="needs the model's inputs"):
        bs.plan_batch_sweep(trt, [1, 8], ["dynamic"])


SMALL_CNN = """import torch
def build_model():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10))
def example_inputs(batch_size):
    return (torch.randn(batch_size, 3, 16, 16),)
"""


def test_measured_eager_cpu_sweep_finds_where_throughput_levels_off(store, tmp_path, monkeypatch):
    """Run a real sweep through SweepExecution (a synchronous queue) and read it back from the store."""
    monkeypatch.setenv(models.MODELS_DIR_ENV, str(tmp_path))
    (tmp_path / "small_cnn.py").write_text(SMALL_CNN)
    base = RunRequest(model=ModelSpec(source="file:small_cnn.py"), device="cpu", measure=QUICK)
    plan = bs.plan_batch_sweep(base, [1, 2, 4, 8, 16, 32, 64])
    done: dict[str, str] = {}

    def submit(request):
        job_id = f"job{len(done)}"
        done[job_id] = runner.execute(request, store).result.run_id
        return job_id

    execution = SweepExecution(plan, store, submit, lambda j: JobView("done", done[j]), lambda j: None)
    execution.start()
    execution.wait(poll_s=0.0, timeout_s=60)
    results = [store.get(run_id) for run_id in done.values()]
    assert all(f"sweep:{plan.sweep_id}" in r.tags for r in results)

    table = bs.batch_table(results)
    assert table["batch_size"].tolist() == [1, 2, 4, 8, 16, 32, 64] and set(table["strategy"]) == {"static"}
    assert (table["throughput_per_s"] - table["batch_size"] * 1000 / table["median_ms"]).abs().max() < 1e-6
    assert (table["throughput_low_per_s"] <= table["throughput_per_s"] + 1e-9).all()
    assert (table["throughput_per_s"] <= table["throughput_high_per_s"] + 1e-9).all()
    assert table["peak_memory_bytes"].isna().all()   # CPU: no GPU memory
    t = dict(zip(table["batch_size"], table["throughput_per_s"], strict=True))
    assert max(t.values()) > 1.5 * t[1]   # at batch 1 a small model on CPU is overhead-bound

    knee = bs.find_knee(table)
    sizes = sorted(t)
    i = sizes.index(knee.batch_size)
    later = [bs.gain_per_doubling(knee.batch_size, t[knee.batch_size], b, t[b]) for b in sizes[i + 1:]]
    if knee.reached:   # the definition, checked against the measured points
        assert max(later) < bs.KNEE_GAIN_PER_DOUBLING
        for b0 in sizes[:i]:
            assert max(bs.gain_per_doubling(b0, t[b0], b, t[b]) for b in sizes if b > b0) >= 0.10
        assert f"levels off at batch {knee.batch_size}" in knee.message
    else:
        assert knee.batch_size == 64 and "Try larger batches" in knee.message
    assert knee.best_throughput_per_s == max(t.values())


def test_knee_on_the_h200_figures_quoted_in_issue_9():
    # resnet50 fp16, one dynamic engine min 1 / opt 8 / max 32, and a static batch-1 engine (about 0.7 ms)
    table = pd.DataFrame({"strategy": ["dynamic"] * 3 + ["static"], "batch_size": [1, 8, 32, 1],
                          "median_ms": [1.14, 1.36, 2.49, 0.7]})
    table["throughput_per_s"] = table["batch_size"] * 1000 / table["median_ms"]
    knee = bs.find_knee(table, "dynamic")
    assert not knee.reached and knee.batch_size == 32 and round(knee.throughput_per_s) == 12851
    assert "+48% per doubling between batch 8 and 32" in knee.message
    cost = bs.dynamic_cost(table)
    assert cost["batch_size"].tolist() == [1]
    assert cost["overhead_ms"].iloc[0] == pytest.approx(0.44) and cost["overhead_pct"].iloc[0] == pytest.approx(62.857,
                                                                                                           abs=1e-3)
    assert bs.find_knee(table, "static") is None   # one point is not a curve


def test_knee_is_not_fooled_by_one_noisy_dip():
    table = pd.DataFrame({"strategy": "static", "batch_size": [1, 2, 4, 8, 16],
                          "throughput_per_s": [100.0, 104.0, 200.0, 390.0, 400.0], "median_ms": 1.0})
    knee = bs.find_knee(table)
    assert knee.reached and knee.batch_size == 8   # 1 -> 2 gains only 4 %, but 4 and 8 double it again


def test_memory_line_and_largest_batch_that_fits():
    fit = bs.fit_memory([1, 2, 4, 8], [1000 + 50 * b for b in (1, 2, 4, 8)])
    assert fit.per_sample_bytes == pytest.approx(50) and fit.fixed_bytes == pytest.approx(1000)
    assert fit.max_batch_for(6000) == 100
    assert bs.fit_memory([1, 1], [10, 12]) is None and bs.fit_memory([1, 2], [None, 5]) is None
