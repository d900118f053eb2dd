"""The Engine page through streamlit's AppTest on the bundled H200 sample runs: the layer picker, the details of the
picked layer, search, grouping by module, and a run with no layers to draw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
VIT = "20261124-043539-b7096f11"  # samples/vit_b_16_fp16.json.gz
RELU = "20261130-042639-a10bddc6"  # samples/resnet50_fp16_relu_forced_mbs5.json.gz
ANALYZE = "resnet50_fp16_analyze"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    root = tmp_path_factory.mktemp("engine-page") / "data"
    s = RunStore(root)
    s.import_samples(ROOT / "samples")
    return s


@pytest.fixture(autouse=True)
def data_dir(store, monkeypatch, tmp_path):
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(store.root))
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(tmp_path / "no-samples"))


def engine_page(run_id: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "engine_view.py"), default_timeout=600)
    at.query_params["run"] = [run_id]
    return at.run()


def details(at: AppTest) -> dict[str, str]:
    frame = next(d.value for d in at.dataframe if list(d.value.columns) == ["field", "value"])
    return dict(zip(frame["field"], frame["value"], strict=True))


def chart_nodes(at: AppTest) -> int:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return len(next(t for t in spec["data"] if t.get("name") == "layers")["customdata"])


def test_opens_on_the_slowest_layer_with_its_details():
    at = engine_page(VIT)
    assert not at.exception
    picker = at.selectbox(key="engine_layer")
    assert len(picker.options) == 149
    assert picker.value == "trt_engine_0:1"  # the patch-embedding convolution: 17% of the profiled time
    d = details(at)
    assert d["PyTorch module"] == "conv_proj" and d["layer type"] == "correlation" and d["precision"] == "fp16"
    assert chart_nodes(at) == 149


def test_picking_a_layer_shows_its_details():
    at = engine_page(VIT)
    at.selectbox(key="engine_layer").set_value("trt_engine_0:2").run()
    d = details(at)
    assert d["layer"] == "__myl_TranConcAddCastMeanSubMulMeanAddSqrtDivMulCastMulAdd_myl0_2"
    assert (d["PyTorch module"], d["module read from"]) == ("encoder.layers.encoder_layer_0.ln_1", "output tensor")


def test_search_narrows_the_picker_and_grouping_collapses_the_graph():
    at = engine_page(VIT)
    at.text_input(key="engine_query").input("encoder_layer_11").run()
    options = at.selectbox(key="engine_layer").options
    assert 0 < len(options) < 149
    # the picker moved to the slowest matching layer, and what it shows matches
    assert "encoder_layer_11" in " ".join(details(at).values())
    at.text_input(key="engine_query").input("").run()
    at.toggle(key="engine_group").set_value(True).run()
    assert not at.exception
    assert chart_nodes(at) < 60
    assert len(at.selectbox(key="engine_layer").options) == chart_nodes(at)


def test_fallback_run_lists_its_engines_and_subgraphs():
    at = engine_page(RELU)
    assert not at.exception
    summary = next(d.value for d in at.dataframe if "slowest" in d.value.columns)
    assert list(summary["engine"])[:3] == ["PyTorch fallback 1", "TensorRT engine 1", "PyTorch fallback 2"]
    assert any("linked in execution order only" in c.value for c in at.caption)


def test_a_run_with_nothing_to_draw_says_so(store):
    analyze = next(i for i in store.list_runs()["run_id"] if store.get(i).layers.empty)
    at = engine_page(analyze)
    assert not at.exception
    texts = " ".join(i.value for i in at.info) + " ".join(c.value for c in at.caption)
    assert "has no engine layers" in texts or "no per-layer profile" in texts or "No stored run" in texts
