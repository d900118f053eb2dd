"""The precision an engine's layers ran in, read from real TensorRT layer information (tests/fixtures/ and the
bundled samples' raw files, recorded on the H100/H200 with TensorRT-RTX), checked against the run's label."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from engine.profiling import engine_precision
from engine.profiling.engine_precision import LABEL_ABSENT, LOWERED, EnginePrecisionMismatch
from engine.report.run_blocks import headline_facts
from engine.result import EnginePrecision, RunResult
from engine.run_figures import ENGINE_PRECISION, layer_profile_figures
from engine.settings.request import CompileSettings
from engine.store.exchange import decode_run

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests/fixtures/h100-rtx/resnet18_fp16/_run_on_acc_0_engine_layer_information.json"
SAMPLES = ROOT / "samples"


def sample(name: str) -> tuple[RunResult, list[str]]:
    """A bundled sample run and its engines' layer information, in the order it stored them."""
    result, raw = decode_run(gzip.decompress((SAMPLES / f"{name}.json.gz").read_bytes()))
    infos = [raw[k] for k in sorted(raw) if k.endswith("_layer_information.json")]
    assert infos, f"{name} has no layer information"
    return result, infos


def compile_settings(precision: str = "fp16", **knobs) -> CompileSettings:
    return CompileSettings(precision=precision, **knobs)


def test_the_recorded_fp16_engine_runs_fp16():
    p = engine_precision.engine_precision(compile_settings("fp16"), [FIXTURE.read_text()])
    assert p == EnginePrecision({"fp16": 24}, "fp16", "")  # its 12 other layers output nothing
    engine_precision.check(p)


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("resnet18_fp16", {"fp16": 24}),
        ("resnet18_fp32", {"fp32": 24}),
        ("resnet50_fp32", {"fp32": 57}),
        ("mobilenet_v3_small_fp16", {"fp16": 82}),
        ("mobilenet_v3_small_fp32", {"fp32": 82}),
        ("vit_b_16_fp16", {"fp16": 148, "fp32": 1}),
        ("resnet18_fp16_relu_forced_mbs1", {"fp16": 61}),  # 18 engines, counted together
    ],
)
def test_every_recorded_sample_engine_matches_its_label(name, counts):
    result, infos = sample(name)
    c = CompileSettings(**{k: v for k, v in result.request["compile"].items() if k == "precision"})
    p = engine_precision.engine_precision(c, infos)
    assert p is not None and p.layer_counts == counts and p.mismatch == ""
    engine_precision.check(p)


def test_an_fp32_engine_labelled_fp16_fails_loudly():
    """The bug's shape on the README's stack: an fp16 request, an engine all fp32. The real fp32 recording stands
    for that engine (the same model, recorded by the same runtime)."""
    _, infos = sample("resnet18_fp32")
    p = engine_precision.engine_precision(compile_settings("fp16"), infos)
    assert p == EnginePrecision({"fp32": 24}, "fp16", LABEL_ABSENT)
    with pytest.raises(EnginePrecisionMismatch) as err:
        engine_precision.check(p)
    assert err.value.precision is p and err.value.hint


def derived_from_the_fp16_recording(keep_fp16: int) -> str:
    """The real resnet18 fp16 layer information with every layer's output datatype rewritten to Float but the
    last ``keep_fp16`` (a derived copy: nothing else changed)."""
    doc = json.loads(FIXTURE.read_text())
    with_outputs = [layer for layer in doc["Layers"] if layer.get("Outputs")]
    for layer in with_outputs[: len(with_outputs) - keep_fp16]:
        for out in layer["Outputs"]:
            out["Format/Datatype"] = "Float"
    return json.dumps(doc)


def test_derived_copies_one_fp16_layer_is_enough_none_is_a_mismatch():
    mixed = engine_precision.engine_precision(compile_settings("fp16"), [derived_from_the_fp16_recording(1)])
    assert mixed == EnginePrecision({"fp32": 23, "fp16": 1}, "fp16", "")
    all_fp32 = engine_precision.engine_precision(compile_settings("fp16"), [derived_from_the_fp16_recording(0)])
    assert all_fp32 == EnginePrecision({"fp32": 24}, "fp16", LABEL_ABSENT)


def test_an_engine_with_fp16_layers_labelled_fp32_is_lowered():
    _, infos = sample("vit_b_16_fp16")
    p = engine_precision.engine_precision(compile_settings("fp32"), infos)
    assert p == EnginePrecision({"fp16": 148, "fp32": 1}, "fp32", LOWERED)
    with pytest.raises(EnginePrecisionMismatch):
        engine_precision.check(p)
    fp16_only = engine_precision.engine_precision(compile_settings("fp32"), [FIXTURE.read_text()])
    assert fp16_only is not None and fp16_only.mismatch == LABEL_ABSENT


def test_a_quantized_run_is_held_to_its_base_precision():
    c = compile_settings("fp16", quantization="int8_weight_only", quant_base_precision="fp16")
    assert engine_precision.expected_precision(c) == "fp16"
    assert engine_precision.engine_precision(c, [FIXTURE.read_text()]).mismatch == ""
    c32 = compile_settings("fp32", quantization="fp8", quant_base_precision="fp32")
    # fp8 layers in an fp32-base quantized build are its point, not a lowering; but fp32 must be there
    assert engine_precision.engine_precision(c32, [FIXTURE.read_text()]).mismatch == LABEL_ABSENT


def test_an_engine_of_integer_layers_only_says_nothing_about_float_precision():
    """A derived copy of the real fp16 recording with every output relabelled Int64 (an engine of shape arithmetic
    only, as a heavily fragmented build can make): no float layer, so no verdict on the label."""
    doc = json.loads(FIXTURE.read_text())
    for layer in doc["Layers"]:
        for out in layer.get("Outputs") or []:
            out["Format/Datatype"] = "Int64"
    p = engine_precision.engine_precision(compile_settings("fp16"), [json.dumps(doc)])
    assert p == EnginePrecision({"int64": 24}, "fp16", "")


def test_layer_names_only_say_nothing():
    assert engine_precision.engine_precision(compile_settings(), ['{"Layers": ["a", "b"], "Bindings": []}']) is None
    assert engine_precision.engine_precision(compile_settings(), []) is None


def test_the_run_keeps_it_and_the_page_and_report_show_it():
    result, infos = sample("vit_b_16_fp16")
    result.engine_precision = engine_precision.engine_precision(compile_settings("fp16"), infos)
    back = RunResult.from_dict(result.to_dict())
    assert back.engine_precision == result.engine_precision
    figure = next(f for f in layer_profile_figures(back) if f.label == ENGINE_PRECISION)
    assert figure.value == "fp16 99%" and figure.ms == pytest.approx(148 / 149)
    fact = next(f for f in headline_facts(back).items if f.key == "engine_precision")
    assert fact.value == pytest.approx(148 / 149) and "fp32 1" in fact.text
    assert not any(
        f.label == ENGINE_PRECISION
        for f in layer_profile_figures(RunResult.from_dict(sample("resnet18_fp16")[0].to_dict()))
    )
