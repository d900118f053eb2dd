"""One run's timing figures (e2e, GPU time, CUDA-graph replay, host overhead) on Profile, Layers, History and in
words: measured, missing on a CPU run ("needs an NVIDIA GPU"), missing on a GPU run stored before GPU time existed.

The GPU-time fields are set on the recorded H100 resnet18 run (tests/fixtures) as the backend fills them since
GPU time exists: the figures' logic on such inputs, not a claim about what the H100 measured."""

import dataclasses
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import run_figures
from engine.result import GpuTime, GraphReplay
from engine.store import RunStore, new_run_id
from tests.fixture_runs import eager_run, trt_profiled_run

ROOT = Path(__file__).resolve().parent.parent


def measured(fixtures_dir, *, captured: bool = True):
    run = trt_profiled_run(fixtures_dir, is_sample=False)
    graph = (
        GraphReplay(True, "", 0.2712, 0.2705, 0.2730, 200)
        if captured
        else GraphReplay(False, "PyTorch fallback between engines syncs with the host")
    )
    return dataclasses.replace(
        run,
        run_id=new_run_id(),
        gpu_time=GpuTime(0.2650, 0.2648, 0.2655, 52.0, 500, 5),
        graph_replay=graph,
        plan_fingerprint="f00d",
    )


def test_figures_of_a_measured_gpu_run(fixtures_dir):
    run = measured(fixtures_dir)
    e2e, gpu, graph, host, throughput = run_figures.timing_figures(run)
    assert (e2e.value, gpu.value, graph.value) == ("0.350 ms", "0.2650 ms", "0.2712 ms")
    assert gpu.ms == 0.2650 and "window spread 0.26% (5 windows, 500 inferences)" in gpu.detail
    assert "52 kernels per inference" in gpu.detail
    assert host.ms == pytest.approx(0.350 - 0.2650) and host.value == "0.0850 ms"
    assert host.detail.startswith("24% of the end-to-end median · ")
    assert graph.detail.startswith("p10–p90 0.2705–0.2730 ms · 200 replays")
    assert throughput.value == f"{1000 / 0.35:,.0f} /s"
    not_captured = run_figures.graph_figure(measured(fixtures_dir, captured=False))
    assert not_captured.value == "not captured" and "PyTorch fallback" in not_captured.detail
    assert run_figures.gpu_time_cell(run) == "0.2650 ms (52 kernels)"
    doc = run_figures.timing_json(run)
    assert doc["gpu_time_ms"] == 0.2650 and doc["host_overhead_ms"] == pytest.approx(0.085)


def test_missing_figures_say_why(fixtures_dir, store):
    cpu = eager_run(store)
    for f in run_figures.timing_figures(cpu)[1:4]:
        assert f.value == "needs an NVIDIA GPU" and not f.measured
    old_gpu = trt_profiled_run(fixtures_dir)  # stored before the GPU-time pass existed
    assert run_figures.gpu_figure(old_gpu).value == "not measured (recorded before GPU time existed)"
    assert run_figures.host_figure(old_gpu).value == "not measured (recorded before GPU time existed)"
    assert "GPU time: needs an NVIDIA GPU" in run_figures.timing_lines(cpu)


def _page(name: str, run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=600)
    if run_id:
        at.query_params["run"] = [run_id]
    return at.run()


def test_pages_show_gpu_time_beside_end_to_end(fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(tmp_path / "no-samples"))
    store = RunStore(tmp_path / "data")
    gpu, cpu, old = measured(fixtures_dir), eager_run(store), trt_profiled_run(fixtures_dir)
    store.save(gpu)
    store.save(old)

    at = _page("profile", gpu.run_id)
    assert not at.exception, at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["e2e median"] == "0.350 ms" and shown["GPU time"] == "0.2650 ms"
    assert shown["CUDA-graph replay"] == "0.2712 ms" and shown["Host overhead"] == "0.0850 ms"
    assert any(c.value == "24% of the end-to-end median" for c in at.caption)
    assert any(c.value == "window spread 0.26% (5 windows, 500 inferences)" for c in at.caption)

    at = _page("profile", cpu.run_id)
    assert "GPU time" not in {m.label for m in at.metric}  # not a number: said in words that wrap
    captions = [c.value for c in at.caption]
    start = captions.index(f"p10–p90 {cpu.latency.p10_ms:.3f}–{cpu.latency.p90_ms:.3f} ms")
    assert captions[start + 1 : start + 4] == ["GPU time", "CUDA-graph replay", "Host overhead"]
    assert sum(md.value == "**needs an NVIDIA GPU**" for md in at.markdown) == 3  # GPU time, replay, host
    at = _page("profile", old.run_id)
    assert "**not measured (recorded before GPU time existed)**" in [md.value for md in at.markdown]

    at = _page("layers", gpu.run_id)
    shown = {m.label: m.value for m in at.metric}
    assert shown["GPU time"] == "0.2650 ms" and shown["Profiled / GPU time"] == f"{gpu.profiled_sum_ms / 0.265:.2f}×"
    assert "Throughput" not in shown

    at = _page("history")
    table = at.dataframe[0].value.set_index("run_id")
    assert table.loc[gpu.run_id, "gpu_time"] == "0.2650 ms (52 kernels)"
    assert table.loc[cpu.run_id, "gpu_time"] == "needs an NVIDIA GPU"
    assert table.loc[old.run_id, "gpu_time"] == "not measured (recorded before GPU time existed)"


# -- the parts Layers and Segmentation show (pages place these figures, they compute none) ------------------------
def test_layer_profile_figures_of_the_recorded_h100_run(fixtures_dir):
    run = measured(fixtures_dir)
    layers, summed, over_e2e, over_gpu = run_figures.layer_profile_figures(run)
    total = float(run.layers["avg_ms"].sum())
    assert (layers.label, layers.value, layers.ms) == ("Layers profiled", f"{len(run.layers):,}", len(run.layers))
    assert summed.value == f"{total:.3f} ms" and summed.ms == pytest.approx(total)
    assert over_e2e.value == f"{total / 0.35:.2f}×" and over_e2e.ms == pytest.approx(total / 0.35)
    assert over_gpu.label == "Profiled / GPU time" and over_gpu.ms == pytest.approx(total / 0.2650)


def test_layer_profile_figures_without_a_profile_leave_out_what_they_cannot_give(fixtures_dir):
    from tests.fixture_runs import trt_relu_forced_run

    (layers,) = run_figures.layer_profile_figures(trt_relu_forced_run(fixtures_dir))
    assert (layers.value, layers.ms) == ("0", 0.0)


def test_segmentation_figures_and_recommendations_of_the_relu_forced_run(fixtures_dir):
    from tests.fixture_runs import trt_relu_forced_run

    run = trt_relu_forced_run(fixtures_dir)
    seg = run.segmentation
    figures = {f.label: f for f in run_figures.segmentation_figures(run)}
    assert [f.value for f in figures.values()] == ["89", "72", "80.9%", "18", "1"]
    assert figures["Coverage"].ms == pytest.approx(seg.supported_ops / seg.total_ops)
    recs = run_figures.recommendations(run)
    assert [(r.min_block_size, r.rerun) for r in recs] == [
        (r.min_block_size, r.kind != "current") for r in seg.recommendations
    ]
    current = next(r for r in recs if not r.rerun)
    assert current.text.startswith("**Equivalent to this run**: min_block_size = 3 → 18 TensorRT engine(s)")
    without = dataclasses.replace(run, segmentation=None)
    assert run_figures.segmentation_figures(without) == [] and run_figures.recommendations(without) == []
