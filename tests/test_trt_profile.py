"""Per-layer profile parsing on real files Torch-TensorRT wrote on an H100 (shared/fixtures/h100-rtx)."""

import pytest

from engine.profiling import trt_profile as tp
from engine.result import FUSED, LAYER_COLUMNS


@pytest.fixture
def engine_dir(fixtures_dir):
    return fixtures_dir / "h100-rtx" / "resnet18_fp16"


def test_trex_profile_has_every_layer_with_averages(engine_dir):
    text = (engine_dir / "_run_on_acc_0_engine_engine_execution_profile.trace").read_text()
    timings = tp.parse_trex_profile(text)
    assert len(timings) == 36
    first = timings[1]
    assert first.name == "__myl_CorrMulAddRelu_myl0_1"
    assert first.avg_ms == pytest.approx(0.111734)
    # 350 inferences were profiled: total / average must say so for every timed layer
    for t in timings:
        if t.avg_ms > 0:
            assert t.total_ms / t.avg_ms == pytest.approx(350, rel=1e-3)


def test_layer_info_detailed_fields(engine_dir):
    info = tp.parse_layer_info((engine_dir / "_run_on_acc_0_engine_layer_information.json").read_text())
    assert len(info) == 36
    pool = info["[MAX]-[aten_ops.max_pool2d.default]-[maxpool/max_pool2d_default]_myl0_2"]
    assert pool.layer_type == "maxpool"
    assert pool.precision == "fp16"
    assert pool.input_shapes == "1x64x112x112"
    assert pool.output_shapes == "1x64x56x56"
    assert pool.tactic == "__myelin_CASK_STUB"


def test_layer_info_names_only():
    info = tp.parse_layer_info('{"Layers": ["a", "b"], "Bindings": ["x"]}')
    assert list(info) == ["a", "b"] and info["a"].layer_type == ""


@pytest.mark.parametrize(
    "name,expected",
    [
        ("[CONVOLUTION]-[aten_ops.convolution.default]-[layer4.1.conv2/convolution_19]", "layer4.1.conv2"),
        ("[CONVOLUTION]-[aten_ops.convolution.default]-[layer4.1.conv2/convolution_19]_myl0_33", "layer4.1.conv2"),
        ("[MAX]-[aten_ops.max_pool2d.default]-[maxpool/max_pool2d_default]_myl0_2", "maxpool"),
        ("__myl_CorrMulAddRelu_myl0_1", FUSED),
        ("__mye35665_myl0_7", FUSED),
        ("_gemm_mha_v2_myl0_8", FUSED),  # vit_b_16 fp16 on the H200: Myelin's fused attention kernel
        (
            "[CONVOLUTION]-[aten_ops.convolution.default]-[conv1/convolution] + "
            "[RELU]-[aten_ops.relu.default]-[relu/relu]",
            "conv1 + relu",
        ),
        ("[SHUFFLE]-[aten_ops.reshape.default]-[/_reshape_copy]", ""),
        ("Reformatting CopyNode for Input Tensor 0", ""),
    ],
)
def test_module_path(name, expected):
    assert tp.module_path(name) == expected


def test_precision_strings():
    assert tp.precision_of("Half") == "fp16"
    assert tp.precision_of("Float") == "fp32"
    assert tp.precision_of("Row major linear FP16 format") == "fp16"
    assert tp.precision_of("Channel major BF16 format") == "bf16"
    assert tp.precision_of("Int8") == "int8"
    assert tp.precision_of("") == ""


def test_layer_table_from_profile_dir(engine_dir):
    engines = tp.read_profile_dir(engine_dir)
    assert [e.segment for e in engines] == ["trt_engine_0"]
    df = tp.layer_table(engines)
    assert list(df.columns) == LAYER_COLUMNS
    assert len(df) == 36
    assert df["order"].tolist() == list(range(36))
    assert df["share"].sum() == pytest.approx(1.0)
    # the engine total matches the profile's own percentages
    conv = df[df["module_path"] == "layer4.1.conv2"].iloc[0]
    assert conv["share"] * 100 == pytest.approx(4.3225, rel=1e-3)
    assert (conv["layer_type"], conv["precision"], conv["input_shapes"]) == ("correlation", "fp16", "1x512x7x7")
    assert (df["module_path"] == FUSED).sum() >= 25
    assert set(df["precision"]) <= {"fp16", ""}
    assert (df["precision"] == "fp16").sum() == 24  # the 12 others are Myelin signal/wait layers without outputs
    assert df["avg_ms"].sum() == pytest.approx(0.772, abs=0.01)  # README: per-layer sum 0.77 ms


def test_read_profile_dir_in_given_order(engine_dir):
    assert [e.segment for e in tp.read_profile_dir(engine_dir, ["_run_on_acc_0"])] == ["trt_engine_0"]
    assert tp.read_profile_dir(engine_dir, ["_run_on_acc_7"]) == []


def test_perfetto_first_inference_trace(fixtures_dir):
    text = (fixtures_dir / "h100-rtx" / "first_inference_profile_resnet18_fp16.trace").read_text()
    timings = tp.parse_perfetto_trace(text, iterations=1)
    assert len(timings) >= 30
    assert timings[1].name == "__myl_CorrMulAddRelu_myl0_1"
    assert timings[1].avg_ms == pytest.approx(1.29933)  # the JIT-inflated first conv (1.3 ms)
    assert tp.parse_perfetto_trace(text, iterations=2)[1].avg_ms == pytest.approx(1.29933 / 2)


def test_perfetto_skips_cpu_function_events(engine_dir):
    text = (engine_dir / "_run_on_acc_0_engine_output_profile.trace").read_text()
    assert tp.parse_perfetto_trace(text, iterations=1) == []


def test_reported_times_are_averaged():
    recs = [("a", 1.0), ("b", 2.0), ("a", 3.0), ("b", 2.0)]
    out = tp.aggregate_reported_times(recs, iterations=2)
    assert [(t.name, t.avg_ms) for t in out] == [("a", 2.0), ("b", 2.0)]


def test_bad_files_raise_format_errors():
    with pytest.raises(tp.ProfileFormatError):
        tp.parse_trex_profile("not json")
    with pytest.raises(tp.ProfileFormatError):
        tp.parse_trex_profile('[{"foo": 1}]')
    with pytest.raises(tp.ProfileFormatError):
        tp.parse_layer_info('{"Bindings": []}')


def test_segment_ids():
    assert tp.segment_id("_run_on_acc_0_engine") == "trt_engine_0"
    assert tp.segment_id("_run_on_gpu_3") == "pytorch_3"
    assert tp.segment_id("other") == "other"
