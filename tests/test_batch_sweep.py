import dataclasses
import gzip
import math
from pathlib import Path

import pandas as pd
import pytest

from engine import runner
from engine.charts import batch as batch_charts
from engine.errors import ConfigError
from engine.models import files, registry
from engine.settings.request import MeasureSettings, ModelSpec, RunRequest, validate
from engine.store import RunNotFound
from engine.studies import batch_sweep as bs
from engine.studies.sweeps import JobView, SweepExecution, sweep_tags

QUICK = MeasureSettings(warmup_iters=2, timed_iters=7, layer_profile=False, accuracy=False, compare_eager=False)


def test_static_plan_has_one_valid_run_per_batch():
    base = RunRequest(model=ModelSpec(source="resnet18", input_shape=(3, 32, 32)), device="cpu", measure=QUICK)
    plan = bs.plan_batch_sweep(base, [8, 1, 2, 2, 4])
    assert plan.batch_sizes == (1, 2, 4, 8)
    assert [(p.batch_size, p.strategy, p.request.model.batch_size) for p in plan.points] == [
        (1, "static", 1),
        (2, "static", 2),
        (4, "static", 4),
        (8, "static", 8),
    ]
    assert all(validate(p.request) for p in plan.points)
    assert plan.tags == [f"sweep:{plan.sweep_id}", "knob:model.batch_size"]
    assert any("GPU memory" in n for n in plan.notes)


def test_dynamic_plan_shares_one_engine_range():
    base = RunRequest(model=ModelSpec(source="resnet50"), backend="tensorrt")
    specs = registry.input_specs(registry.REGISTRY["resnet50"], base.model)
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
    raw = [
        dict(name="input_ids", shape=[1, 64], dtype="int64", value_range=[0, 30522], dim_names=names),
        dict(name="attention_mask", shape=[1, 64], dtype="int64", value_range=[1, 2], dim_names=names),
    ]
    base = RunRequest.from_dict({"model": {"source": "hf/bert-base", "inputs": raw}, "backend": "tensorrt"})
    plan = bs.plan_batch_sweep(base, [1, 4], ["static"])
    assert [p.request.model.inputs[0].shape for p in plan.points] == [(1, 64), (4, 64)]
    assert not any(s.is_dynamic for p in plan.points for s in p.request.model.inputs)


@pytest.mark.parametrize(
    "kwargs, field, words",
    [
        ({"batch_sizes": []}, "batch_sweep.batch_sizes", "no batch sizes"),
        ({"batch_sizes": [0, 4]}, "batch_sweep.batch_sizes", "[0] outside 1..4096"),
        ({"strategies": ["elastic"]}, "batch_sweep.strategies", "pick from static, dynamic"),
        ({"strategies": ["dynamic"]}, "batch_sweep.strategies", "needs the tensorrt backend"),
        ({"batch_sizes": list(range(1, 40))}, "batch_sweep.batch_sizes", "more than the 32"),
    ],
)
def test_plan_errors_name_the_setting(kwargs, field, words):
    base = RunRequest(model=ModelSpec(source="resnet18"))
    with pytest.raises(ConfigError) as e:
        bs.plan_batch_sweep(base, **kwargs)
    assert e.value.field == field and words in e.value.message
    trt = RunRequest(model=ModelSpec(source="resnet18"), backend="tensorrt")
    with pytest.raises(ConfigError, match="batch_sweep.opt_batch: 64 is outside the swept range 1..8"):
        bs.plan_batch_sweep(
            trt,
            [1, 8],
            ["dynamic"],
            opt_batch=64,
            model_inputs=registry.input_specs(registry.REGISTRY["resnet18"], trt.model),
        )
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
    monkeypatch.setenv(files.MODELS_DIR_ENV, str(tmp_path))
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
    execution.wait(poll_s=0.0, timeout_s=600)
    results = [store.get(run_id) for run_id in done.values()]
    assert all(f"sweep:{plan.sweep_id}" in r.tags for r in results)

    table = bs.batch_table(results)
    assert table["batch_size"].tolist() == [1, 2, 4, 8, 16, 32, 64] and set(table["strategy"]) == {"static"}
    assert (table["throughput_per_s"] - table["batch_size"] * 1000 / table["median_ms"]).abs().max() < 1e-6
    assert (table["throughput_low_per_s"] <= table["throughput_per_s"] + 1e-9).all()
    assert (table["throughput_per_s"] <= table["throughput_high_per_s"] + 1e-9).all()
    assert table["peak_memory_bytes"].isna().all()  # CPU: no GPU memory
    t = dict(zip(table["batch_size"], table["throughput_per_s"], strict=True))
    assert max(t.values()) > 1.5 * t[1]  # at batch 1 a small model on CPU is overhead-bound

    knee = bs.find_knee(table)
    sizes = sorted(t)
    i = sizes.index(knee.batch_size)
    later = [bs.gain_per_doubling(knee.batch_size, t[knee.batch_size], b, t[b]) for b in sizes[i + 1 :]]
    if knee.reached:  # the definition, checked against the measured points
        assert max(later) < bs.KNEE_GAIN_PER_DOUBLING
        for b0 in sizes[:i]:
            assert max(bs.gain_per_doubling(b0, t[b0], b, t[b]) for b in sizes if b > b0) >= 0.10
        assert f"levels off at batch {knee.batch_size}" in knee.message
    else:
        assert knee.batch_size == 64 and "Try larger batches" in knee.message
    assert knee.best_throughput_per_s == max(t.values())


def test_knee_on_the_h200_figures_quoted_in_issue_9():
    # resnet50 fp16, one dynamic engine min 1 / opt 8 / max 32, and a static batch-1 engine (about 0.7 ms)
    table = pd.DataFrame(
        {"strategy": ["dynamic"] * 3 + ["static"], "batch_size": [1, 8, 32, 1], "median_ms": [1.14, 1.36, 2.49, 0.7]}
    )
    table["throughput_per_s"] = table["batch_size"] * 1000 / table["median_ms"]
    knee = bs.find_knee(table, "dynamic")
    assert not knee.reached and knee.batch_size == 32 and round(knee.throughput_per_s) == 12851
    assert "+48% per doubling between batch 8 and 32" in knee.message
    cost = bs.dynamic_cost(table)
    assert cost["batch_size"].tolist() == [1]
    assert cost["overhead_ms"].iloc[0] == pytest.approx(0.44) and cost["overhead_pct"].iloc[0] == pytest.approx(
        62.857, abs=1e-3
    )
    assert bs.find_knee(table, "static") is None  # one point is not a curve


def test_knee_is_not_fooled_by_one_noisy_dip():
    table = pd.DataFrame(
        {
            "strategy": "static",
            "batch_size": [1, 2, 4, 8, 16],
            "throughput_per_s": [100.0, 104.0, 200.0, 390.0, 400.0],
            "median_ms": 1.0,
        }
    )
    knee = bs.find_knee(table)
    assert knee.reached and knee.batch_size == 8  # 1 -> 2 gains only 4 %, but 4 and 8 double it again


def test_memory_line_and_largest_batch_that_fits():
    fit = bs.fit_memory([1, 2, 4, 8], [1000 + 50 * b for b in (1, 2, 4, 8)])
    assert fit.per_sample_bytes == pytest.approx(50) and fit.fixed_bytes == pytest.approx(1000)
    assert fit.max_batch_for(6000) == 100
    assert bs.fit_memory([1, 1], [10, 12]) is None and bs.fit_memory([1, 2], [None, 5]) is None


# -- batch sizes as typed ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, bad",
    [
        ("1,a,8", "'a' is not a whole number"),
        ("1, -2, 2.5", "'-2', '2.5' are not whole numbers"),
        (" , ", "no batch sizes"),
    ],
)
def test_batch_size_text_errors_name_the_bad_values(text, bad):
    with pytest.raises(ConfigError) as e:
        bs.parse_batch_sizes(text)
    assert e.value.field == "batch_sweep.batch_sizes" and bad in e.value.message


def test_batch_size_text_accepts_commas_and_spaces():
    assert bs.parse_batch_sizes("1, 8 32,+64") == [1, 8, 32, 64]


# -- stored batch sweeps: two real H200 runs of resnet50 fp16 (samples/) -------------------------
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
H200_BATCH_1 = "resnet50_fp16.json.gz"  # static engine, batch 1
H200_BATCH_8 = "resnet50_b8_ladder_fp16.json.gz"  # static engine, batch 8 (recorded for the precision ladder)
H200_GIB = 140


@pytest.fixture
def h200_pair(store):
    """The two bundled H200 recordings of resnet50 fp16 static engines at batch 1 and 8, tagged as one
    batch sweep, plus an optimization_level sweep run that must stay out of the batch sweeps."""
    ids = [
        store.import_run(gzip.decompress((SAMPLES / name).read_bytes()))
        for name in (H200_BATCH_1, H200_BATCH_8, "resnet50_fp16_opt3.json.gz")
    ]
    for run_id in ids[:2]:
        store.set_tags(run_id, sweep_tags("h200_pair", [bs.BATCH_KNOB]))
    return [store.get(i) for i in ids]


def test_no_batch_sweep_in_an_empty_store(store):
    listed = bs.list_batch_sweeps(store)
    assert listed.empty and "sweep_id" in listed.columns


def test_stored_batch_sweeps_are_listed_and_loaded(store, h200_pair):
    b1, b8, opt3 = h200_pair
    listed = bs.list_batch_sweeps(store)
    assert list(listed["sweep_id"]) == ["h200_pair"] and list(listed["runs"]) == [2]
    assert listed["device_name"].iloc[0] == "NVIDIA H200"
    sweep = bs.load_batch_sweep(store, "h200_pair")
    assert sweep.table["batch_size"].tolist() == [1, 8] and set(sweep.table["strategy"]) == {"static"}
    assert sweep.table["median_ms"].tolist() == [b1.latency.median_ms, b8.latency.median_ms]
    assert sweep.table["peak_memory_bytes"].tolist() == [b1.peak_memory_bytes, b8.peak_memory_bytes]
    assert sweep.dynamic_range is None and (sweep.model, sweep.precision) == ("resnet50", "fp16")

    knob_sweep = next(t for t in opt3.tags if t.startswith("sweep:"))[len("sweep:") :]
    with pytest.raises(RunNotFound) as e:
        bs.load_batch_sweep(store, knob_sweep)
    assert "varies compile knobs, not the batch size" in e.value.message
    with pytest.raises(RunNotFound, match="No stored run belongs to batch sweep 'gone'"):
        bs.load_batch_sweep(store, "gone")


def test_verdict_of_the_h200_pair_reads_its_recorded_numbers(store, h200_pair):
    b1, b8, _ = h200_pair
    sweep = bs.load_batch_sweep(store, "h200_pair")
    capacity = H200_GIB * 2**30
    v = bs.verdict(sweep, capacity_bytes=capacity)
    text = v.markdown()
    # batch 8 gives the most samples per second of CUDA-graph replay (the batch changes the kernels, and both static
    # engines were replayed: judged on the replay), and two points cannot show a knee
    assert bs.judged(sweep.table).metric == "graph_replay"
    assert v.headline.startswith(
        f"Best graph-replay throughput {8 * 1000 / b8.graph_replay.median_ms:,.0f} samples/s at batch 8"
    )
    assert "still rising at batch 8" in v.headline
    assert v.knees["static"].reached is False and "No knee up to batch 8" in text
    # the memory line goes through both recorded peaks
    fit = v.memory["static"]
    per_sample = (b8.peak_memory_bytes - b1.peak_memory_bytes) / 7
    assert fit.per_sample_bytes == pytest.approx(per_sample) and fit.points == 2
    assert fit.fixed_bytes == pytest.approx(b1.peak_memory_bytes - per_sample)
    ceiling = math.floor((capacity - fit.fixed_bytes) / per_sample)
    assert f"batch {ceiling:,} would fill the GPU's {H200_GIB} GiB" in text
    mib = per_sample / 2**20
    assert (f"{mib:,.0f} MiB per sample" if mib >= 10 else f"{mib:,.2f} MiB per sample") in text
    assert "dynamic" not in v.knees and v.cost.empty and "dynamic range costs" not in text
    # without a capacity the line is given, not a ceiling
    assert "would fill" not in bs.verdict(sweep).markdown()


def test_memory_flat_within_a_mib_gives_no_ceiling(store, h200_pair):
    """On the H200 a dynamic engine's peak grew 0.00 MiB per sample, and the line extrapolated to a batch of 2e19
    filling the GPU: growth under 1 MiB across the measured batches reads as flat, with no ceiling."""
    sweep = bs.load_batch_sweep(store, "h200_pair")
    table = sweep.table.copy()
    base = float(table["peak_memory_bytes"].iloc[0])
    table["peak_memory_bytes"] = [base, base + 7 * 4096]  # 4 KiB per sample over batch 1..8: 28 KiB in all
    flat = bs.verdict(dataclasses.replace(sweep, table=table), capacity_bytes=H200_GIB * 2**30).markdown()
    assert "Peak GPU memory (static engines) did not grow measurably with the batch" in flat
    assert "+0.03 MiB across the measured batches" in flat and "would fill" not in flat


def _issue_9_table() -> pd.DataFrame:
    """Issue 9's H200 figures for resnet50 fp16: a dynamic engine (1/8/32) and a static batch-1 engine.
    The issue quotes medians only, so the p10-p90 band is the median itself."""
    table = pd.DataFrame(
        {"strategy": ["dynamic"] * 3 + ["static"], "batch_size": [1, 8, 32, 1], "median_ms": [1.14, 1.36, 2.49, 0.7]}
    )
    table["p10_ms"] = table["p90_ms"] = table["median_ms"]
    table["throughput_per_s"] = table["batch_size"] * 1000 / table["median_ms"]
    table["throughput_low_per_s"] = table["throughput_high_per_s"] = table["throughput_per_s"]
    table["peak_memory_bytes"] = None
    table["run_id"] = ["d1", "d8", "d32", "s1"]
    return table


def test_verdict_says_what_the_dynamic_range_costs():
    sweep = bs.BatchSweep("issue9", [], _issue_9_table(), dynamic_range=(1, 8, 32))
    v = bs.verdict(sweep)
    text = v.markdown()
    assert "One dynamic engine (batch 1..32, tuned for 8): No knee up to batch 32" in text
    assert "Static engines (one per batch size): only batch 1 measured (0.700 ms, 1,429 samples/s)" in text
    assert "batch 1: 1.140 ms against 0.700 ms static, +0.440 ms (+63%)" in text
    assert "no clear cost" not in text  # the issue's bands are the medians: they do not overlap
    assert "No GPU memory recorded" in text
    assert v.headline.startswith("Best throughput 12,851 samples/s at batch 32 (dynamic engine, 2.490 ms)")


def test_overlapping_bands_are_not_called_a_cost():
    table = _issue_9_table()
    table.loc[table["run_id"] == "s1", "p90_ms"] = 1.2  # a static batch-1 band reaching the dynamic median
    text = bs.verdict(bs.BatchSweep("x", [], table)).markdown()
    assert "+0.440 ms (+63%), within the p10-p90 spread of both: no clear cost" in text


# -- charts --------------------------------------------------------------------------------------
def _traces(fig, name):
    return [t for t in fig.data if t.name == name]


def test_latency_chart_has_a_band_and_a_median_per_strategy():
    table = _issue_9_table()
    fig = batch_charts.latency_vs_batch(table)
    for strategy, label in batch_charts.STRATEGY_LABELS.items():
        rows = table[table["strategy"] == strategy].sort_values("batch_size")
        (median,) = _traces(fig, label)
        (band,) = _traces(fig, f"{label} p10-p90")
        assert list(median.x) == rows["batch_size"].tolist() and list(median.y) == rows["median_ms"].tolist()
        assert band.fill == "tonexty" and list(band.y) == rows["p10_ms"].tolist()
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [1, 8, 32]
    assert "No timed runs" in batch_charts.latency_vs_batch(table.iloc[0:0]).layout.annotations[0].text


def test_throughput_chart_marks_the_knee_where_the_table_has_one():
    table = pd.DataFrame(
        {"strategy": "static", "batch_size": [1, 2, 4, 8, 16], "throughput_per_s": [100.0, 104.0, 200.0, 390.0, 400.0]}
    )
    table["median_ms"] = table["batch_size"] * 1000 / table["throughput_per_s"]
    table["throughput_low_per_s"] = table["throughput_per_s"] * 0.9
    table["throughput_high_per_s"] = table["throughput_per_s"] * 1.1
    knee = bs.find_knee(table)
    fig = batch_charts.throughput_vs_batch(table, {"static": knee})
    (note,) = [a for a in fig.layout.annotations if a.name == "knee:static"]
    # on the log batch axis an annotation's x is log10 of the batch (plotly's rule), the marker's x the batch
    assert (note.x, note.y) == (pytest.approx(math.log10(knee.batch_size)), knee.throughput_per_s)
    assert (knee.batch_size, knee.throughput_per_s) == (8, 390.0) and fig.layout.xaxis.type == "log"
    assert note.text.startswith("knee: batch 8")
    (marker,) = _traces(fig, "knee (static engine per batch)")
    assert list(marker.x) == [8]
    # issue 9's dynamic engine: still rising at 32, said as such; the one static point has no knee
    issue = _issue_9_table()
    knees = {s: k for s in bs.STRATEGIES if (k := bs.find_knee(issue, s))}
    fig = batch_charts.throughput_vs_batch(issue, knees)
    assert [a.text for a in fig.layout.annotations] == ["no knee up to batch 32"]
    assert not [t for t in fig.data if (t.name or "").startswith("knee")]


def test_memory_chart_draws_the_recorded_peaks_and_the_ceiling(store, h200_pair):
    b1, b8, _ = h200_pair
    sweep = bs.load_batch_sweep(store, "h200_pair")
    v = bs.verdict(sweep, capacity_bytes=H200_GIB * 2**30)
    fig = batch_charts.memory_vs_batch(sweep.table, v.memory, H200_GIB * 2**30)
    (peaks,) = _traces(fig, "static engine per batch peak")
    assert list(peaks.y) == pytest.approx([b1.peak_memory_bytes / 2**20, b8.peak_memory_bytes / 2**20])
    (line,) = [t for t in fig.data if t.name.startswith("static engine per batch: ")]
    assert list(line.y) == pytest.approx(list(peaks.y))  # two points: the line goes through both
    (ceiling,) = [a for a in fig.layout.annotations if a.name == "ceiling"]
    assert f"batch {v.memory['static'].max_batch_for(H200_GIB * 2**30):,} fills {H200_GIB} GiB" in ceiling.text
    assert "No GPU memory recorded" in batch_charts.memory_vs_batch(_issue_9_table()).layout.annotations[0].text


def test_dynamic_cost_chart_puts_both_engines_side_by_side():
    cost = bs.dynamic_cost(_issue_9_table())
    static, dynamic = batch_charts.dynamic_cost(cost).data
    assert list(static.x) == list(dynamic.x) == ["batch 1"]
    assert list(static.y) == [0.7] and list(dynamic.y) == [1.14] and list(dynamic.text) == ["+63%"]
    assert "No batch size was measured" in batch_charts.dynamic_cost(cost.iloc[0:0]).layout.annotations[0].text


def test_the_bundled_h200_batch_sweep_static_against_dynamic(store):
    """samples/resnet50_fp16_batch*_{static,dynamic}: recorded through the job queue on the H200."""
    store.import_samples(SAMPLES)
    listed = bs.list_batch_sweeps(store)
    sweep_id = "resnet50_fp16_batch_h200"
    assert sweep_id in set(listed["sweep_id"])
    sweep = bs.load_batch_sweep(store, sweep_id)
    assert sweep.dynamic_range == (1, 8, 32)
    table = sweep.table
    assert sorted(zip(table["strategy"], table["batch_size"], strict=True)) == [
        (s, b) for s in ("dynamic", "static") for b in (1, 8, 32)
    ]
    v = bs.verdict(sweep, capacity_bytes=H200_GIB * 2**30)
    # the dynamic engine has no replay, and the stored GPU times are kernel sums (above end-to-end at batch 1,
    # windows 6-60% apart): judged end to end, saying why
    assert bs.judged(table).metric == "e2e"
    best = table.loc[table["throughput_per_s"].idxmax()]
    assert v.headline.startswith(f"Best throughput {best.throughput_per_s:,.0f} samples/s at batch {best.batch_size}")
    # what the dynamic range costs, batch by batch, from the recorded end-to-end medians
    static = table[table.strategy == "static"].set_index("batch_size")["median_ms"]
    dynamic = table[table.strategy == "dynamic"].set_index("batch_size")["median_ms"]
    assert list(v.cost["batch_size"]) == [1, 8, 32]
    assert v.cost["overhead_ms"].tolist() == pytest.approx((dynamic - static).tolist())
    text = v.markdown()
    assert "What the dynamic range costs" in text
    # the dynamic engine holds its memory for the whole range up front (recorded: flat), else the range's top is named
    if "dynamic" not in v.memory:  # no line drawn for memory that does not grow with the batch
        assert "Peak GPU memory (dynamic engine) did not grow measurably with the batch" in text
    else:
        assert "the engine itself accepts batch 32 at most" in text


# -- GPU time: the batch changes the kernels, so the knee and the dynamic cost are judged on it ---------------
GPU_MS = {
    ("static", 1): 0.387,
    ("static", 8): 1.60,
    ("static", 32): 5.90,
    ("dynamic", 1): 0.450,
    ("dynamic", 8): 1.70,
    ("dynamic", 32): 5.905,
}


def test_a_batch_sweep_is_judged_on_gpu_time_when_its_runs_have_it(store):
    """The bundled H200 batch sweep's runs with their GPU time replaced (figures made up for the logic: a knee at
    batch 8 in GPU-time throughput, where end-to-end throughput still climbs)."""
    import dataclasses

    from engine.latency_stats import LatencyStats
    from engine.result import BUSY, GpuTime, GraphReplay

    store.import_samples(SAMPLES)
    sweep = bs.load_batch_sweep(store, "resnet50_fp16_batch_h200")
    runs = []
    for r in sweep.results:
        ms = GPU_MS[(bs.strategy_of(r.request), r.latency.batch_size)]
        plan = "same-at-32" if r.latency.batch_size == 32 else f"{bs.strategy_of(r.request)}-{r.latency.batch_size}"
        busy = GpuTime(ms, ms * 0.999, ms * 1.001, 73, 200, 5, figure=BUSY, settled=True)  # settled busy time
        e2e = [ms + 0.3 + 0.001 * (i % 3) for i in range(30)]  # 0.3 ms of host work per call above it
        runs.append(
            dataclasses.replace(
                r,
                gpu_time=busy,
                plan_fingerprint=plan,
                latency=LatencyStats.from_samples(e2e, r.latency.batch_size, "cuda_events"),
                latency_samples_ms=e2e,
                graph_replay=GraphReplay(False, "not attempted: the engine takes dynamic shapes"),
            )
        )
    gpu = bs.batch_sweep_from_results("gpu", runs)
    table = gpu.table
    assert bs.judged(table).metric == "gpu_time"
    assert table["gpu_throughput_per_s"].tolist() == pytest.approx(
        [b * 1000 / GPU_MS[(s, b)] for s, b in zip(table["strategy"], table["batch_size"], strict=True)]
    )
    knee = bs.find_knee(table, "static")
    assert knee.reached and knee.batch_size == 8
    assert knee.message.startswith("GPU-time throughput levels off at batch 8: 5,000 samples/s at 1.6 ms of GPU time")
    v = bs.verdict(gpu)
    text = v.markdown()
    assert v.headline.startswith(
        "Best GPU-time throughput 5,424 samples/s at batch 32 (static engine, 5.900 ms of GPU time)"
    )
    # the dynamic range's cost on GPU time; at batch 32 both engines ran one plan: no cost
    assert v.cost["overhead_ms"].tolist() == pytest.approx([0.063, 0.10, 0.005])
    assert "batch 1: 0.4500 ms against 0.3870 ms static of GPU time, +0.0630 ms (+16%)" in text
    assert (
        "batch 32: 5.905 ms against 5.900 ms static of GPU time, +0.0050 ms (+0%), the same engine plan at "
        "this batch: no cost" in text
    )
    assert "End-to-end, host overhead included: batch 1 " in text
    # the same runs as recorded before the GPU-time pass existed (no GPU time, graph replay or plan): end-to-end,
    # saying why
    before = [dataclasses.replace(r, gpu_time=None, graph_replay=None, plan_fingerprint=None) for r in sweep.results]
    old = bs.verdict(bs.batch_sweep_from_results("old", before))
    assert old.lines[0].startswith(
        "Judged on end-to-end latency: no CUDA-graph replay (not measured (recorded before GPU time existed))"
    )
