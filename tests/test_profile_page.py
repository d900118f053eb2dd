"""The Profile page end to end in AppTest: form -> job queue -> worker -> store -> chart."""

import time

import pytest
import torchvision
from streamlit.testing.v1 import AppTest

from engine import jobs

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(tmp_path / "no-samples"))
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=600)
    at.run()
    yield at
    jobs.stop_workers()


def _fill_tiny(at):
    at.text_input(key="knob:model.input_shape").input("3,32,32")
    at.number_input(key="knob:measure.warmup_iters").set_value(1)
    at.number_input(key="knob:measure.timed_iters").set_value(5)
    at.number_input(key="knob:measure.profile_iters").set_value(1)


def _run_until_result(at, timeout_s=180):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        at.run()
        if at.query_params.get("run"):
            return at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
        errors = [e.value for e in at.error]
        assert not errors, errors
        time.sleep(0.5)
    raise AssertionError("no result within the time limit")


def test_banner_and_disabled_knobs_without_gpu(app):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the no-GPU banner")
    assert "No NVIDIA GPU" in app.warning[0].value
    assert app.number_input(key="knob:compile.min_block_size").disabled
    assert "only used by the tensorrt backend" in app.number_input(key="knob:compile.min_block_size").help
    app.selectbox(key="knob:backend").select("tensorrt").run()
    assert any("tensorrt needs an NVIDIA GPU" in e.value for e in app.error)
    assert "Unavailable here" in app.number_input(key="knob:compile.min_block_size").help
    assert app.button[0].disabled


def test_bad_knob_shows_the_field_and_submits_nothing(app):
    app.number_input(key="knob:model.batch_size").set_value(0)
    app.button[0].click().run()
    assert any(
        "model.batch_size" in e.value and "below the minimum 1" in e.value and "Nothing was submitted" in e.value
        for e in app.error
    )
    assert jobs.list_jobs() == []
    app.number_input(key="knob:model.batch_size").set_value(1)
    app.text_input(key="knob:model.input_shape").input("3,a,3").run()
    app.button[0].click().run()
    assert any("model.input_shape" in e.value for e in app.error)


def test_a_cpu_run_completes_and_shows_latency_and_the_layer_chart(app):
    _fill_tiny(app)
    app.button[0].click().run()
    run_id = _run_until_result(app)
    assert "e2e median" in [m.label for m in app.metric]
    median = next(m.value for m in app.metric if m.label == "e2e median")
    assert median.endswith(" ms") and float(median.split()[0]) > 0
    import json

    leaves = {n for n, m in torchvision.models.resnet18().named_modules() if n and not any(m.children())}
    shown: set[str] = set()
    for chart in app.get("plotly_chart"):  # the stage chart, then the slowest-layers chart
        names = {
            str(v).split(": ", 1)[-1].split(" · ")[0]
            for t in json.loads(chart.proto.spec)["data"]
            for v in (t.get("y") or [])
        }
        shown = max(shown, names & leaves, key=len)  # bars are labelled "<order>: <module> · <type>"
    assert len(shown) >= 15, shown  # the top-20 bars are the model's own leaf layers
    # the same request again is answered from the store at once
    app.query_params.clear()
    app.run()
    app.button[0].click().run()
    assert app.query_params.get("run") in (run_id, [run_id])


def test_quantization_schemes_the_gpu_cannot_run_are_marked_and_block_the_run(app, monkeypatch):
    """On an H200 with TensorRT-RTX (as recorded), INT8 activations are refused: the picker says so before Run."""
    from engine import capabilities

    h200_rtx = capabilities.Capabilities(
        torch_version="2.11.0",
        cuda_available=True,
        gpus=(capabilities.Gpu(0, "NVIDIA H200", 140 * 2**30, "9.0"),),
        torch_tensorrt_version="2.11.0",
        flavour="tensorrt_rtx",
        tensorrt_version="1.4.0.76",
    )
    monkeypatch.setattr(capabilities, "detect", lambda: h200_rtx)
    app.run()
    app.selectbox(key="knob:backend").select("tensorrt").run()
    picker = app.selectbox(key="knob:compile.quantization")
    assert not picker.disabled
    assert "int8 (unavailable here)" in picker.options and "int8_weight_only" in picker.options
    picker.select("int8").run()
    assert any("compile.quantization" in e.value and "int8 activation" in e.value for e in app.error)
    assert app.button[0].disabled
    app.selectbox(key="knob:compile.quantization").select("int8_weight_only").run()
    assert not any("compile.quantization" in e.value for e in app.error)


def test_the_model_picker_offers_every_torchvision_and_timm_model_by_name(app):
    picker = app.selectbox(key="knob:model.source")
    assert picker.value == "resnet18"
    assert {"regnet_y_800mf", "inception_v3", "timm/convnext_tiny", "timm/resnet10t", "hf/bert-base"} <= set(
        picker.options
    )
    assert len(picker.options) > 1_000
    picker.select("timm/resnet10t").run()
    assert app.text_input(key="knob:model.input_shape").placeholder == "model default: 3,176,176"
    assert any(c.value == "Inputs: x 1x3x176x176 float32" for c in app.caption)
    app.selectbox(key="knob:model.source").select("inception_v3").run()
    assert any(c.value == "Inputs: x 1x3x299x299 float32" for c in app.caption)
