"""Comparison and history tables on real runs: eager CPU runs measured here, TensorRT runs recorded on an H100."""

import dataclasses
from datetime import date

import pandas as pd
import pytest

from engine.charts import compare as compare_charts
from engine.charts import layers as layer_charts
from engine.compare import differences, history, metrics, settings_table
from engine.latency_stats import LatencyStats
from engine.store import RunStore
from tests.fixture_runs import RESNET18_FP16_MBS5_MEDIAN_MS, eager_run, trt_profiled_run, trt_relu_forced_run


@pytest.fixture(scope="module")
def eager_pair(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("compare"))
    return eager_run(store, batch_size=1), eager_run(store, batch_size=2), store


def test_metric_table_deltas_and_speedups_against_the_chosen_baseline(eager_pair):
    b1, b2, _ = eager_pair
    table = metrics.metric_table([b1, b2], baseline_id=b2.run_id).set_index("run_id")
    assert table.loc[b2.run_id, "baseline"] and not table.loc[b1.run_id, "baseline"]
    assert table.loc[b2.run_id, "speedup"] == pytest.approx(1.0)
    # batch 1 against batch 2: per sample (the throughput ratio), never per call, and on e2e (CPU: no GPU time)
    assert (table["judged_on"] == "end-to-end latency per sample").all()
    assert table.loc[b1.run_id, "speedup"] == pytest.approx(b1.latency.throughput_per_s / b2.latency.throughput_per_s)
    assert table.loc[b1.run_id, "delta_ms"] == pytest.approx(b1.latency.median_ms - b2.latency.median_ms / 2)
    assert table.loc[b1.run_id, "e2e_median_ms"] == b1.latency.median_ms
    assert table.loc[b1.run_id, "batch_size"] == 1 and pd.isna(table.loc[b1.run_id, "gpu_time_ms"])
    assert table.loc[b2.run_id, "throughput_per_s"] == pytest.approx(2000.0 / b2.latency.median_ms)
    # an unknown baseline id falls back to the first run
    assert metrics.metric_table([b1, b2], "gone").set_index("run_id").loc[b1.run_id, "baseline"]


def test_only_the_knob_that_changed_is_reported(eager_pair):
    b1, b2, _ = eager_pair
    differ = settings_table.differing_settings([b1, b2])
    assert list(differ.index) == ["model.batch_size"]
    assert list(differ.loc["model.batch_size"]) == ["1", "2"]
    full = settings_table.settings_table([b1, b2])
    assert not full.loc["compile.min_block_size", "differs"]
    assert settings_table.highlight_differences(full.loc["model.batch_size"])[0] == settings_table.DIFF_STYLE
    assert settings_table.highlight_differences(full.loc["compile.precision"]) == [""] * len(full.columns)


def test_short_labels_name_what_differs(eager_pair):
    b1, b2, _ = eager_pair
    assert settings_table.short_labels([b1, b2]) == {
        b1.run_id: f"batch=1 {b1.run_id[-8:]}",
        b2.run_id: f"batch=2 {b2.run_id[-8:]}",
    }
    assert settings_table.short_labels([b1]) == {b1.run_id: b1.run_id[-8:]}


def test_cross_gpu_comparison_names_the_devices_and_backends(eager_pair, fixtures_dir):
    b1, _, _ = eager_pair
    trt = trt_profiled_run(fixtures_dir)
    differ = settings_table.differing_settings([b1, trt])
    assert differ.loc["env.device_name"].tolist() == [b1.env["device_name"], "NVIDIA H100 80GB HBM3"]
    assert differ.loc["backend"].tolist() == ["eager", "tensorrt"]
    table = metrics.metric_table([b1, trt]).set_index("run_id")
    assert table.loc[trt.run_id, "speedup"] == pytest.approx(b1.latency.median_ms / RESNET18_FP16_MBS5_MEDIAN_MS)
    assert table.loc[trt.run_id, "device"] == "NVIDIA H100 80GB HBM3"


def test_metric_long_drops_metrics_no_run_has(eager_pair, fixtures_dir):
    b1, b2, _ = eager_pair
    long = metrics.metric_long([b1, b2])
    assert "accuracy_rel_l2" not in set(long["metric"])  # fp32 eager runs measure no accuracy
    assert "peak_memory_mb" not in set(long["metric"])  # no GPU memory on CPU
    assert "engine_count" not in set(long["metric"])  # eager runs build no engine
    assert {"e2e_median_ms", "compile_s"} <= set(long["metric"])
    fig = compare_charts.metric_bars(long)
    assert len(fig.layout.annotations) == long["metric"].nunique()  # one titled panel per metric
    relu = trt_relu_forced_run(fixtures_dir)
    engines = metrics.metric_long([b1, relu]).query("metric == 'engine_count'")
    assert engines["value"].tolist() == [0.0, 18.0]


def test_layer_type_time_and_delta(eager_pair):
    b1, b2, _ = eager_pair
    df = metrics.layer_type_time([b1, b2], baseline_id=b1.run_id)
    conv = df[df["layer_type"] == "Conv2d"].set_index("run_id")
    assert conv.loc[b1.run_id, "total_ms"] == pytest.approx(
        b1.layers.loc[b1.layers["layer_type"] == "Conv2d", "avg_ms"].sum()
    )
    assert conv.loc[b1.run_id, "delta_ms"] == 0
    assert conv.loc[b2.run_id, "delta_ms"] == pytest.approx(
        conv.loc[b2.run_id, "total_ms"] - conv.loc[b1.run_id, "total_ms"]
    )
    assert conv.loc[b1.run_id, "layers"] == 20  # resnet18 has 20 convolutions
    fig = compare_charts.layer_type_diff_bar(df)
    assert len(fig.data) == 2


def test_latency_samples_overlay(eager_pair):
    b1, b2, _ = eager_pair
    samples = metrics.latency_samples([b1, b2])
    assert len(samples) == len(b1.latency_samples_ms) + len(b2.latency_samples_ms) == 16
    fig = compare_charts.latency_distribution(samples, max_ratio=float("inf"))  # CPU noise must not switch modes
    assert [t.type for t in fig.data] == ["histogram", "histogram"]
    assert fig.layout.barmode == "overlay"
    assert {s.x0 for s in fig.layout.shapes} == {b1.latency.median_ms, b2.latency.median_ms}


def test_latency_on_different_scales_uses_boxes_on_a_log_axis(eager_pair, fixtures_dir):
    b1, _, _ = eager_pair
    trt = trt_profiled_run(fixtures_dir)
    fig = compare_charts.latency_distribution(metrics.latency_samples([b1, trt]))
    assert [t.type for t in fig.data] == ["box", "box"]
    assert fig.layout.xaxis.type == "log"
    assert list(fig.data[1].x) == [RESNET18_FP16_MBS5_MEDIAN_MS]


def test_profiling_overhead_and_run_summary(eager_pair, fixtures_dir):
    trt = trt_profiled_run(fixtures_dir)
    o = metrics.profiling_overhead(trt)
    # the README's figure: the per-layer sum (0.77 ms) is over twice the e2e median (0.35 ms)
    assert o["profiled_sum_ms"] == pytest.approx(0.772, abs=1e-3)
    assert o["ratio"] == pytest.approx(0.772 / RESNET18_FP16_MBS5_MEDIAN_MS, rel=1e-3)
    summary = metrics.run_summary(trt).set_index("metric")
    assert summary.loc["TensorRT engines", "value"] == 1
    b1, _, _ = eager_pair
    assert "TensorRT engines" not in set(metrics.run_summary(b1)["metric"])


def test_history_filters(eager_pair, fixtures_dir):
    b1, b2, store = eager_pair
    store.save(trt_profiled_run(fixtures_dir))
    summary = store.list_runs()
    options = history.history_filter_options(summary)
    assert "NVIDIA H100 80GB HBM3" in options["device_name"] and "tensorrt_rtx" in options["flavour"]
    gpu = history.filter_history(summary, device_name=["NVIDIA H100 80GB HBM3"])
    assert gpu["backend"].tolist() == ["tensorrt"]
    both = history.filter_history(summary, precision=["fp32", "fp16"], backend=[])
    assert len(both) == 3
    today = date.fromisoformat(b1.created_at[:10])
    assert len(history.filter_history(summary, since=today, until=today)) == 3
    assert history.filter_history(summary, until=date(2000, 1, 1)).empty
    with pytest.raises(ValueError, match="unknown history filter"):
        history.filter_history(summary, colour=["red"])
    labels = history.summary_labels(summary)
    assert labels[summary.query("backend == 'tensorrt'")["run_id"].iloc[0]].endswith("· sample")
    assert labels[b1.run_id].startswith(f"resnet18 b1 eager fp32 · {b1.run_id[-8:]} · ")  # same settings: told apart


def test_an_analyze_run_is_not_timed_and_gets_no_speedup(eager_pair, fixtures_dir):
    b1, _, _ = eager_pair
    # what analyze mode stores: the dryrun's segmentation, no latency
    analyze = dataclasses.replace(
        trt_relu_forced_run(fixtures_dir), latency=LatencyStats.not_timed(1), latency_samples_ms=[]
    )
    table = metrics.metric_table([analyze, b1]).set_index("run_id")
    assert table.loc[analyze.run_id, "e2e_median_ms"] is None or pd.isna(table.loc[analyze.run_id, "e2e_median_ms"])
    assert pd.isna(table.loc[b1.run_id, "speedup"])  # nothing to be faster than
    assert table.loc[analyze.run_id, "engine_count"] == 18
    assert metrics.profiling_overhead(analyze)["e2e_median_ms"] is None
    assert "End-to-end median" not in set(metrics.run_summary(analyze)["metric"])
    assert "not timed" in layer_charts.profiling_overhead_bar(None, 1.0).layout.annotations[0].text


# -- one configuration on several GPUs ---------------------------------------------------------------
def h200_run(fixtures_dir, index: int, median_ms: float, host: str = "gpubox"):
    """The recorded resnet18 fp16 run as a job worker on GPU ``index`` of an H200 box files it (env.gpu_*)."""
    run = trt_profiled_run(fixtures_dir, is_sample=False)
    env = {**run.env, "device_name": "NVIDIA H200", "gpu_index": index, "gpu_uuid": f"GPU-{index}aa", "host": host}
    return dataclasses.replace(
        run, env=env, latency=LatencyStats.from_samples([median_ms], 1, "cuda_events"), latency_samples_ms=[median_ms]
    )


def test_one_configuration_on_two_gpus_of_one_type_is_told_apart_and_noted(fixtures_dir):
    r0, r1 = h200_run(fixtures_dir, 0, 0.350), h200_run(fixtures_dir, 1, 0.364)
    assert r0.key == r1.key
    assert settings_table.gpu_labels([r0, r1]) == {r0.run_id: "H200 #0", r1.run_id: "H200 #1"}
    table = metrics.metric_table([r0, r1]).set_index("run_id")
    assert table["gpu"].tolist() == ["H200 #0", "H200 #1"] and table["device"].nunique() == 1
    differ = settings_table.differing_settings([r0, r1])
    assert list(differ.index) == ["env.gpu"] and list(differ.loc["env.gpu"]) == ["H200 #0", "H200 #1"]
    assert settings_table.short_labels([r0, r1])[r1.run_id] == f"gpu=H200 #1 {r1.run_id[-8:]}"
    same = metrics.same_settings_across_gpus([r0, r1])
    assert len(same) == 1 and same["gpus"][0] == ["H200 #0", "H200 #1"]
    assert same["spread_pct"][0] == pytest.approx(4.0)
    notes = metrics.hardware_notes([r0, r1])
    assert len(notes) == 2 and not any("different machines" in n for n in notes)
    assert "different GPUs of one type (H200 #0, H200 #1)" in notes[0]
    assert "measured on H200 #0 and H200 #1" in notes[1] and "differ by 4.0%" in notes[1]
    assert "GPU-to-GPU variation" in notes[1]


def test_gpu_labels_add_the_host_only_when_runs_come_from_several(fixtures_dir, eager_pair):
    a, b = h200_run(fixtures_dir, 0, 0.35, host="box-a"), h200_run(fixtures_dir, 0, 0.35, host="box-b")
    assert settings_table.gpu_labels([a, b]) == {a.run_id: "H200 #0 @box-a", b.run_id: "H200 #0 @box-b"}
    legacy, (cpu, _, _) = trt_profiled_run(fixtures_dir), eager_pair  # no GPU index recorded
    assert settings_table.gpu_labels([legacy, cpu]) == {legacy.run_id: "H100 80GB HBM3", cpu.run_id: "CPU"}
    assert "env.gpu" not in settings_table.settings_table([legacy, cpu]).index
    assert "env.gpu" in settings_table.settings_table([legacy, a]).index


def test_different_settings_on_two_gpus_get_no_same_settings_note(fixtures_dir):
    r0 = h200_run(fixtures_dir, 0, 0.35)
    r1 = dataclasses.replace(h200_run(fixtures_dir, 1, 0.70), key="another-configuration")
    assert metrics.same_settings_across_gpus([r0, r1]).empty
    assert metrics.hardware_notes([r0, r1]) == [
        "Runs come from different GPUs of one type (H200 #0, H200 #1): differences include GPU-to-GPU variation."
    ]
    twice_on_one = [r0, h200_run(fixtures_dir, 0, 0.36)]  # run-to-run noise, one GPU
    assert metrics.same_settings_across_gpus(twice_on_one).empty and metrics.hardware_notes(twice_on_one) == []


def test_compare_page_shows_two_gpus_side_by_side(store, fixtures_dir, monkeypatch, tmp_path):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(tmp_path / "no-samples"))
    r0, r1 = h200_run(fixtures_dir, 0, 0.350), h200_run(fixtures_dir, 1, 0.364)
    for r in (r0, r1):
        store.save(r)
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "compare.py"), default_timeout=600)
    at.query_params["run"] = [r0.run_id, r1.run_id]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert table["gpu"].tolist() == ["H200 #0", "H200 #1"]
    assert [m.label for m in at.metric] == [f"gpu=H200 #0 {r0.run_id[-8:]}", f"gpu=H200 #1 {r1.run_id[-8:]}"]
    captions = [c.value for c in at.caption]
    assert any("measured on H200 #0 and H200 #1" in c and "GPU-to-GPU variation" in c for c in captions)
    assert any("**env.gpu**: `H200 #0` · `H200 #1`" in md.value for md in at.markdown)


# -- what really differs, and the figure that judges it -----------------------------------------------------
SAMPLES = __import__("pathlib").Path(__file__).resolve().parent.parent / "samples"


def sample(name: str):
    """A bundled run recorded on the H200 (samples/<name>.json.gz), as the store imports it."""
    import gzip
    import io
    import json

    from engine.result import RunResult

    doc = json.loads(gzip.decompress((SAMPLES / f"{name}.json.gz").read_bytes()))
    return RunResult.from_dict(doc["result"], pd.read_json(io.StringIO(json.dumps(doc["layers"])), orient="split"))


def test_the_bundled_batch_8_and_batch_1_runs_are_compared_per_sample_with_the_batch_named():
    b8, b1 = sample("resnet50_fp16_batch8_dynamic"), sample("resnet50_fp16_batch1_static")
    differ = settings_table.differing_settings([b8, b1])
    assert {"compile.cache_built_engines", "compile.reuse_cached_engines"} <= set(differ.index)  # they do differ
    labels = settings_table.short_labels([b8, b1])
    assert labels[b8.run_id] == f"batch=8 shapes=dynamic batch 1..32 {b8.run_id[-8:]}"
    assert labels[b1.run_id] == f"batch=1 shapes=static {b1.run_id[-8:]}"
    (*same, head) = differences.comparison_header([b8, b1])
    assert b8.plan_fingerprint != b1.plan_fingerprint and same == []  # two engine plans: no same-engine claim
    # the batch changes the kernels, but the dynamic engine has no replay and its stored GPU time is a kernel sum
    # (windows 6% apart): judged end to end, per sample, saying why
    assert head.startswith(
        "Differs: batch (8 · 1), inputs (dynamic batch 1..32 · static). Judged on end-to-end latency per "
        "sample (the batch sizes differ"
    )
    assert "no CUDA-graph replay (the engine takes dynamic shapes)" in head
    assert "cache" not in head  # engine caching changes nothing measured
    table = metrics.metric_table([b8, b1], baseline_id=b1.run_id).set_index("run_id")
    # per call batch 8 is slower; per sample it is faster: the throughput ratio
    g8, g1 = b8.latency.median_ms, b1.latency.median_ms
    assert g8 > g1 and b8.latency.median_ms > b1.latency.median_ms
    assert table.loc[b8.run_id, "speedup"] == pytest.approx((8 / g8) / (1 / g1))
    assert table.loc[b8.run_id, "delta_pct"] == pytest.approx(100 * (g8 / 8 / g1 - 1))
    assert table.loc[b8.run_id, "delta_pct"] < -50

    static8 = sample("resnet50_fp16_batch8_static")
    assert settings_table.short_labels([static8, b1])[static8.run_id] == f"batch=8 {static8.run_id[-8:]}"


def test_a_host_setting_is_judged_end_to_end_and_named():
    off, on = sample("resnet50_fp16_cudagraphs_off"), sample("resnet50_fp16_cudagraphs_on")
    head = differences.comparison_header([off, on])[-1]
    assert head == (
        "Differs: cudagraphs (False · True). Judged on end-to-end latency (a host setting differs: GPU "
        "time cannot show it)."
    )
    table = metrics.metric_table([off, on]).set_index("run_id")
    assert table.loc[on.run_id, "speedup"] == pytest.approx(off.latency.median_ms / on.latency.median_ms)


def _with_gpu(run, gpu_ms: float, plan: str, *, run_id: str):
    """The run with settled GPU busy time ``gpu_ms`` and plan ``plan`` (its recorded replay kept)."""
    from engine.result import BUSY, GpuTime

    busy = GpuTime(gpu_ms, gpu_ms * 0.999, gpu_ms * 1.001, 73, 200, 5, figure=BUSY, settled=True)
    return dataclasses.replace(run, run_id=run_id, gpu_time=busy, plan_fingerprint=plan)


def test_runs_of_one_engine_plan_are_said_to_be_the_same_engine_before_any_number():
    opt0, opt5 = sample("resnet50_fp16_opt0"), sample("resnet50_fp16_opt5")
    a = _with_gpu(opt0, 0.3866, "plan-A", run_id="20261201-000000-aaaaaaaa")
    b = _with_gpu(opt5, 0.3867, "plan-A", run_id="20261201-000000-bbbbbbbb")
    lines = differences.comparison_header([a, b])
    assert lines[0] == (
        "opt=0 aaaaaaaa and opt=5 bbbbbbbb ran the same engine plan on the same GPU at the same "
        "shapes: the same engine, so any latency gap between them is noise."
    )
    # both runs were replayed as CUDA graphs: the replay judges (kernels and their overlap, no host launches)
    assert lines[1] == "Differs: optimization_level (0 · 5). Judged on CUDA-graph replay."
    table = metrics.metric_table([a, b], baseline_id=a.run_id).set_index("run_id")
    assert table.loc[b.run_id, "same_plan"] and not table.loc[a.run_id, "same_plan"]
    assert table.loc[b.run_id, "judged_on"] == "CUDA-graph replay"
    assert table.loc[b.run_id, "speedup"] == pytest.approx(opt0.graph_replay.median_ms / opt5.graph_replay.median_ms)
    assert table.loc[b.run_id, "host_overhead_ms"] == pytest.approx(opt5.latency.median_ms - 0.3867)
    # another plan: no same-engine claim; one run without GPU time: judged end-to-end, saying why
    c = _with_gpu(opt5, 0.3700, "plan-B", run_id="20261201-000000-cccccccc")
    header = differences.comparison_header([a, c])[0]
    assert header == "Differs: optimization_level (0 · 5). Judged on CUDA-graph replay."
    # without the replays, GPU busy time judges
    a_, c_ = (dataclasses.replace(r, graph_replay=None) for r in (a, c))
    header = differences.comparison_header([a_, c_])[0]
    assert header.startswith("Differs: optimization_level (0 · 5). Judged on GPU time: no CUDA-graph replay")
    old = sample("resnet50_fp16_cudagraphs_off")  # recorded before GPU time existed
    assert old.gpu_time is None
    assert (
        "no CUDA-graph replay (not measured (recorded before GPU time existed)) for 1 of these runs"
        in differences.comparison_header([a, old])[-1]
    )


# -- the Compare page's cards (the page places them; engine.compare.cards words them) ------------------------------
def test_cards_say_the_per_sample_change_and_speedup_and_mark_the_baseline():
    from engine.compare import cards as compare_cards

    b8, b1 = sample("resnet50_fp16_batch8_dynamic"), sample("resnet50_fp16_batch1_static")
    table = metrics.metric_table([b8, b1], baseline_id=b1.run_id)
    cards = compare_cards.cards([b8, b1], table)
    row = table.set_index("run_id").loc[b8.run_id]
    labels = settings_table.short_labels([b8, b1])
    assert [c.name for c in cards] == [labels[b8.run_id], labels[b1.run_id]]
    assert cards[0].value == f"{b8.latency.median_ms:.3f} ms"
    words = compare_cards.delta_words(row.speedup, row.delta_pct)
    assert cards[0].delta == f"{words} · per sample" and not cards[0].neutral  # on the card's own figure, e2e
    assert cards[0].faster and words.endswith("× faster")  # per sample, batch 8 is far faster (see the test above)
    assert (cards[1].delta, cards[1].neutral) == ("baseline", True)
    assert "are on end-to-end latency per sample, against the baseline" in cards[0].help
    assert cards[0].caption == f"GPU time {b8.gpu_time.median_ms:.4f} ms · 85 kernels"


def test_cards_of_one_engine_plan_and_of_an_analyze_run(fixtures_dir):
    from engine.compare import cards as compare_cards

    opt0, opt5 = sample("resnet50_fp16_opt0"), sample("resnet50_fp16_opt5")
    a = _with_gpu(opt0, 0.3866, "plan-A", run_id="20261201-000000-aaaaaaaa")
    b = _with_gpu(opt5, 0.3867, "plan-A", run_id="20261201-000000-bbbbbbbb")
    base, same = compare_cards.cards([a, b], metrics.metric_table([a, b], baseline_id=a.run_id))
    assert (same.delta, same.neutral) == ("baseline's engine plan", True)
    assert same.caption == "GPU time 0.3867 ms · 73 kernels" and "GPU time 0.3867 ms" in same.help
    analyze = dataclasses.replace(
        trt_relu_forced_run(fixtures_dir), latency=LatencyStats.not_timed(1), latency_samples_ms=[]
    )
    card = compare_cards.cards([analyze, a], metrics.metric_table([analyze, a]))[0]
    assert (card.value, card.delta) == ("not timed", None) and "an analyze run" in card.help
