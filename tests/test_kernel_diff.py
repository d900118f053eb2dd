"""Compare's kernel diff and time split on the bundled H200 runs: resnet50 fp16 (one engine) against its relu-forced
sibling (four engines, five PyTorch subgraphs). Findings are asserted, the wording once."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pandas as pd
import pytest

from engine.compare import kernel_words, kernels, time_split
from engine.result import GraphReplay
from engine.store import RunStore
from engine.store.exchange import decode_run

ROOT = Path(__file__).resolve().parent.parent


def sample(name: str):
    run, raw = decode_run((ROOT / "samples" / f"{name}.json.gz").read_bytes())
    table = pd.read_csv(io.StringIO(raw[kernels.KERNEL_FILE])) if kernels.KERNEL_FILE in raw else None
    return run, table


@pytest.fixture(scope="module")
def pair():
    fast, fast_k = sample("resnet50_fp16")
    relu, relu_k = sample("resnet50_fp16_relu_forced_mbs5")
    return fast, relu, kernels.diff(fast, relu, fast_k, relu_k)


def test_the_total_is_the_change_in_kernel_time(pair):
    fast, relu, d = pair
    assert d.ms_delta == pytest.approx(relu.gpu_time.median_ms - fast.gpu_time.median_ms, abs=1e-3)
    assert (d.base_calls, d.other_calls) == (fast.gpu_time.kernels_per_inference, relu.gpu_time.kernels_per_inference)
    assert d.table["ms_delta"].sum() == pytest.approx(d.ms_delta)
    assert sum(f.ms_delta for f in d.findings) == pytest.approx(d.ms_delta, abs=2 * kernels.SAME_ABS_MS)


def test_the_extra_time_is_pytorch_kernels_of_the_fallback(pair):
    _, _, d = pair
    top = d.findings[0]
    assert top.origin == "pytorch" and top.ms_delta > 0.3
    assert top.calls_delta == 208 and top.appeared == 6 and top.disappeared == 0
    assert top.families[0].family == "batch norm"
    assert {f.family for f in top.families} >= {"batch norm", "copy / cast", "elementwise"}
    assert top.where == (
        "before engine 1",
        "between engines 1 and 2",
        "between engines 2 and 3",
        "between engines 3 and 4",
        "after engine 4",
    )
    # a library kernel is not said to be TensorRT's in one run and unknown in the other
    assert set(d.table["origin"]) == {"pytorch", "library", "tensorrt"}
    assert (d.table.loc[d.table["name"].str.startswith("cudnn_generated"), "origin"] == "library").all()


def test_kernels_appear_disappear_and_map_to_layers(pair):
    _, _, d = pair
    t = d.table.set_index("name")
    bn = next(n for n in t.index if "batch_norm_transform_input_kernel" in n)
    assert t.loc[bn, "status"] == "appeared" and t.loc[bn, "calls_other"] == 45 and t.loc[bn, "calls_base"] == 0
    gone = "cudnn_generated_fort_native_sm90_convFwd_pointwise_pointwise_pointwise_knob_39_128x16x32_12_1_0"
    assert t.loc[gone, "status"] == "disappeared" and t.loc[gone, "ms_delta"] < 0
    # a Myelin kernel is the tactic of a layer: named with it
    myl = "__myl_MoveConc_0xc1455be378008feffc8e73982aa134dd"
    assert t.loc[myl, "layer"] == "__myl_MoveConc_myl0_0" and t.loc[myl, "origin"] == "tensorrt"
    # the runtime's input copy ran in both; the fallback's casts launch it 7 more times
    copy = next(n for n in t.index if "float16_copy_kernel_cuda" in n)
    assert (t.loc[copy, "status"], t.loc[copy, "calls_base"], t.loc[copy, "calls_delta"]) == ("changed", 1, 7)
    assert list(d.table["ms_delta"].abs()) == sorted(d.table["ms_delta"].abs(), reverse=True)
    groups = d.groups()
    assert groups["ms_delta"].sum() == pytest.approx(d.ms_delta)


def test_a_run_against_itself_changes_nothing():
    run, table = sample("resnet50_fp16")
    d = kernels.diff(run, run, table, table)
    assert d.findings == () and set(d.table["status"]) == {"same"} and d.ms_delta == 0
    assert "the same kernels at the same speed" in kernel_words.headline(d)
    # without a fallback in either run, cuDNN kernels are the engine's
    assert set(d.table["origin"]) == {"tensorrt", "pytorch"}


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("__myl_ReshAddRelu_0xb065b5c850627dc1a25e42634d6d205d", "fused (Myelin)"),
        ("cudnn_generated_fort_native_sm90_convFwd_pointwise_pointwise_knob_39_128x16x32_12_1_0", "convolution"),
        ("sm90_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc_tilesize64x64x64", "convolution"),
        ("nvjet_sm90_hsh_8x64_64x16_2x1_v_bz_bias_TNN", "matmul / GEMM"),
        ("void at::native::batch_norm_transform_input_kernel<c10::Half, float, true, int>(x)", "batch norm"),
        ("void cudnn::engines_precompiled::nchwToNhwcKernel<__half, __half, float>(x)", "layout (NCHW↔NHWC)"),
        ("void at::native::vectorized_elementwise_kernel<8, at::native::CUDAFunctor_add<c10::Half>>(x)", "elementwise"),
        ("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<c10::Half>>(x)", "reduction"),
    ],
)
def test_kernel_families(name, family):
    assert kernels.family(name) == family


def test_short_names_keep_the_functor():
    name = (
        "void at::native::vectorized_elementwise_kernel<8, "
        "at::native::float16_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda(float)#1}, std::array<char*, 2ul> >"
        "(int, at::native::float16_copy_kernel_cuda)"
    )
    assert kernels.short_name(name) == "vectorized_elementwise_kernel[float16_copy_kernel_cuda]"
    cutlass = "void cutlass::Kernel2<cutlass_80_tensorop_f16_gemm>(p)"
    assert kernels.short_name(cutlass) == "cutlass_80_tensorop_f16_gemm"


def test_time_split_with_and_without_graph_replay(pair):
    fast, relu, _ = pair
    s = time_split.time_split(fast)
    assert [p.key for p in s.parts] == ["gpu_busy", "removed_by_graphs", "idle_under_replay"]
    assert s.part("gpu_busy").ms == fast.gpu_time.median_ms
    assert s.part("removed_by_graphs").ms == pytest.approx(fast.latency.median_ms - fast.graph_replay.median_ms)
    assert s.part("idle_under_replay").ms == pytest.approx(fast.graph_replay.median_ms - fast.gpu_time.median_ms)
    assert time_split.NOT_SEPARABLE in s.notes
    r = time_split.time_split(relu)
    assert r.part("removed_by_graphs").ms > 3.0  # the fallback's launch work: what CUDA graphs take away
    no_replay = dataclasses.replace(fast, graph_replay=GraphReplay(captured=False, reason="host sync"))
    n = time_split.time_split(no_replay)
    assert [p.key for p in n.parts] == ["gpu_busy", "host_idle"]
    assert n.part("host_idle").ms == pytest.approx(fast.latency.median_ms - fast.gpu_time.median_ms)
    assert any("host sync" in note for note in n.notes)


def test_time_split_says_what_it_lacks():
    run, _ = sample("resnet18_fp16")  # stored without GPU time
    s = time_split.time_split(run)
    assert s.parts == () and s.notes
    analyze, _ = sample("resnet50_fp16_analyze")
    assert time_split.time_split(analyze).parts == ()
    assert time_split.split_table([s]).empty


def test_replay_outside_the_band_is_clamped_and_said(pair):
    fast, _, _ = pair
    odd = dataclasses.replace(fast, graph_replay=GraphReplay(captured=True, median_ms=fast.gpu_time.median_ms / 2))
    s = time_split.time_split(odd)
    assert s.part("idle_under_replay").ms == 0.0
    assert any("shown as zero" in n for n in s.notes)


def test_wording_of_the_headline(pair):
    _, _, d = pair
    line = kernel_words.headline(d)
    assert line.startswith("+0.498 ms GPU kernel time per inference (0.382 → 0.880 ms), 66 → 331 kernel launches.")
    assert "208 more PyTorch (ATen) kernel launches" in line and "in the PyTorch fallback (5 subgraphs" in line


def test_stored_runs_and_a_run_without_a_kernel_table(tmp_path):
    store = RunStore(tmp_path / "data")
    ids = store.import_samples(ROOT / "samples")
    runs = {store.get(i).run_id: store.get(i) for i in ids}
    fast = next(r for r in runs.values() if r.run_id.endswith("c27676ce"))
    relu = next(r for r in runs.values() if r.run_id.endswith("a10bddc6"))
    d = kernels.diff_stored(store, fast, relu)
    assert d is not None and d.findings[0].origin == "pytorch"
    old = next(r for r in runs.values() if r.gpu_time is None and r.latency.timed)
    assert kernels.diff_stored(store, fast, old) is None
    assert kernels.missing_tables(store, [fast, old]) == [old]
