"""Each page run through streamlit's AppTest against a store of real runs: what the user reads
(numbers, rows, chart data), empty states, and a deleted or unknown run id in the URL."""

import base64
import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from engine import run_figures
from engine import store as store_module
from engine.compare import settings_table as compare
from engine.store import RunStore
from tests.fixture_runs import FIXTURES, eager_run, store_trt_runs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory, fixtures_dir_module):
    """Two eager CPU runs (batch 1 and 2) and the two H100 TensorRT runs, in one data directory."""
    root = tmp_path_factory.mktemp("pages") / "data"
    store = RunStore(root)
    b1, b2 = eager_run(store, 1), eager_run(store, 2)
    profiled, relu = store_trt_runs(store, fixtures_dir_module)
    return {"root": root, "store": store, "b1": b1, "b2": b2, "trt": profiled, "relu": relu}


@pytest.fixture(scope="module")
def fixtures_dir_module():
    if not FIXTURES.is_dir():
        pytest.fail(f"recorded GPU fixtures missing at {FIXTURES}")
    return FIXTURES


@pytest.fixture(autouse=True)
def data_dir(runs, monkeypatch, tmp_path):
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(runs["root"]))
    # no bundled samples: the tests count exactly the runs they stored
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(tmp_path / "no-samples"))
    yield


def page(name: str, *run_ids: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=600)
    if run_ids:
        at.query_params["run"] = list(run_ids)
    return at.run()


def _decode(obj):
    """Plotly's JSON writes numeric arrays as typed base64 ({"dtype", "bdata"}); turn them back into lists."""
    if isinstance(obj, dict):
        if set(obj) >= {"dtype", "bdata"}:
            return np.frombuffer(base64.b64decode(obj["bdata"]), dtype=np.dtype(obj["dtype"])).tolist()
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def figures(at: AppTest) -> list[go.Figure]:
    """The figures the page sent to the browser, as the browser receives them."""
    return [go.Figure(_decode(json.loads(el.proto.spec))) for el in at.get("plotly_chart")]


def figure(at: AppTest, title_start: str):
    return next(f for f in figures(at) if (f.layout.title.text or "").startswith(title_start))


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def url_runs(at: AppTest) -> list[str]:
    value = at.query_params.get("run", [])
    return [value] if isinstance(value, str) else list(value)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


# -- Layers ------------------------------------------------------------------------------------


def test_layers_of_an_eager_run(runs):
    b1 = runs["b1"]
    at = page("layers", b1.run_id)
    no_exception(at)
    m = metrics(at)
    assert m["e2e median"] == run_figures.e2e_figure(b1).value  # "12.345 ms"; "1118 ms" from 100 ms on
    assert m["Layers profiled"] == "60"
    assert m["Sum of per-layer averages"] == f"{b1.profiled_sum_ms:.3f} ms"
    top = figure(at, "Slowest 20 layers")
    shown = {y: x for t in top.data for y, x in zip(t.y, t.x, strict=True)}
    assert len(shown) == 21 and "other (40 layers)" in shown
    assert max(shown[k] for k in shown if not k.startswith("other")) == pytest.approx(b1.layers["avg_ms"].max())
    table = at.dataframe[-1].value
    assert len(table) == 60 and set(table["layer_type"]) >= {"Conv2d", "BatchNorm2d", "ReLU"}
    assert url_runs(at) == [b1.run_id]

    at.text_input(key="layers_query").input("layer4.1").run()
    found = at.dataframe[-1].value
    assert len(found) == 6 and found["module_path"].str.startswith("layer4.1").all()


def test_layers_of_a_tensorrt_sample_show_overhead_and_fused_layers(runs):
    trt = runs["trt"]
    at = page("layers", trt.run_id)
    no_exception(at)
    assert any("sample run" in md.value for md in at.markdown)
    m = metrics(at)
    assert m["e2e median"] == "0.350 ms"
    assert m["Sum of per-layer averages"] == "0.772 ms"
    assert m["Profiled / e2e"] == "2.21×"
    tree = figure(at, "Time rolled up the nn.Module tree")
    assert "<fused>" in list(tree.data[0].labels)
    precision = figure(at, "Time share by layer precision")
    assert "fp16" in list(precision.data[0].y)
    overhead = figure(at, "Profiling overhead")
    assert list(overhead.data[0].x) == pytest.approx([0.35, trt.profiled_sum_ms])
    assert [b.label for b in at.get("download_button")][:2] == ["Layer table (CSV)", "Full run (JSON)"]


def test_layers_without_a_run_in_the_url_opens_the_newest_and_links_it(runs):
    at = page("layers")
    no_exception(at)
    store = runs["store"]  # the newest run with a layer profile (issue 16: not "Layers profiled 0")
    newest = next(i for i in store.list_runs()["run_id"] if not store.get(i).layers.empty)
    assert url_runs(at) == [newest]
    assert at.selectbox(key="run_picker").value == newest


def test_layers_without_a_profile_say_so(runs):
    at = page("layers", runs["relu"].run_id)
    no_exception(at)
    assert any("no per-layer profile" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_layers_and_segmentation_open_on_the_newest_run_that_holds_what_they_show(runs):
    import dataclasses

    from engine.store import new_run_id

    store, relu, b1 = runs["store"], runs["relu"], runs["b1"]
    # the newest run: a TensorRT run stored with its segmentation but no layer profile
    no_profile = dataclasses.replace(relu, run_id=new_run_id(), created_at="2099-01-01T00:00:00+00:00")
    # then an eager run, newer still: a layer profile, no segmentation
    eager = dataclasses.replace(b1, run_id=new_run_id(), created_at="2099-01-02T00:00:00+00:00")
    store.save(no_profile)
    try:
        with_profile = next(i for i in store.list_runs()["run_id"] if not store.get(i).layers.empty)
        at = page("layers")
        no_exception(at)
        assert at.selectbox(key="run_picker").value == with_profile and url_runs(at) == [with_profile]
        assert metrics(at)["Layers profiled"] == f"{len(store.get(with_profile).layers):,}" != "0"
        assert any(
            c.value.startswith("Opened the newest run with a layer profile")
            and no_profile.label in c.value
            and "has none" in c.value
            for c in at.caption
        ), [c.value for c in at.caption]
        seg = page("segmentation")  # the newest run has a segmentation: it opens, nothing to explain
        assert seg.selectbox(key="run_picker").value == no_profile.run_id
        assert not any("has none" in c.value for c in seg.caption)

        store.save(eager)
        seg = page("segmentation")
        no_exception(seg)
        assert seg.selectbox(key="run_picker").value == no_profile.run_id
        assert any(
            eager.label in c.value and "eager runs execute the whole model in PyTorch" in c.value for c in seg.caption
        ), [c.value for c in seg.caption]
        assert metrics(seg)["TensorRT engines"] == "18"
        assert page("layers").selectbox(key="run_picker").value == eager.run_id  # holds a profile: no note
    finally:
        for run in (no_profile, eager):
            if store.exists(run.run_id):
                store.delete(run.run_id)


def test_a_runs_link_opens_the_same_runs_and_is_written_back_as_run(runs):
    b1, b2 = runs["b1"], runs["b2"]
    at = AppTest.from_file(str(ROOT / "pages" / "compare.py"), default_timeout=600)
    at.query_params["runs"] = f"{b1.run_id},{b2.run_id}"
    at.run()
    no_exception(at)
    assert at.multiselect(key="runs_picker").value == [b1.run_id, b2.run_id]
    assert url_runs(at) == [b1.run_id, b2.run_id] and "runs" not in at.query_params


def test_the_pages_folder_holds_only_the_navigation_pages_each_entering_through_the_dashboard():
    """Streamlit's legacy automatic page list is the pages/ folder: nothing but the navigation's pages lives there,
    and each hands itself to dashboard.py's navigation before anything else (ui/navigation.py says why)."""
    import ast
    import re

    scripts = sorted(p.name for p in (ROOT / "pages").iterdir() if p.suffix == ".py")
    registered = re.findall(r'st\.Page\(\s*"pages/(\w+\.py)"', (ROOT / "dashboard.py").read_text())
    assert scripts == sorted(registered) and len(scripts) == 8
    for name in scripts:
        body = ast.parse((ROOT / "pages" / name).read_text()).body
        first = next(
            n
            for n in body
            if not isinstance(n, (ast.Import, ast.ImportFrom))
            and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
        )
        assert ast.unparse(first) == "through_dashboard()", name
        imports = [n for n in body[: body.index(first)] if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert [ast.unparse(n) for n in imports] == [
            "import streamlit as st",
            "from ui.navigation import through_dashboard",
        ], name


@pytest.mark.parametrize("name", ["layers", "segmentation"])
def test_unknown_run_id_in_the_url(runs, name):
    at = page(name, "20200101-000000-deadbeef")
    no_exception(at)
    assert at.error[0].value.startswith("Run '20200101-000000-deadbeef' does not exist")
    assert "History" in at.error[0].value
    assert not at.get("plotly_chart")


def test_empty_store(runs, monkeypatch, tmp_path):
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "empty"))
    for name in ("layers", "segmentation", "compare", "history"):
        at = page(name)
        no_exception(at)
        assert "No runs stored yet" in at.info[0].value, name


# -- Segmentation ------------------------------------------------------------------------------


def test_segmentation_of_the_relu_forced_run(runs):
    at = page("segmentation", runs["relu"].run_id)
    no_exception(at)
    m = metrics(at)
    assert (m["Operators"], m["Supported"], m["Coverage"], m["TensorRT engines"]) == ("89", "72", "80.9%", "18")
    strip = figure(at, "Graph segments")
    assert sum(strip.data[0].x) == 72 and len(strip.data[0].x) == 18
    unsupported = figure(at, "Unsupported or excluded ops")
    assert list(unsupported.data[0].x) == [17]
    nodes = next(d.value for d in at.dataframe if "location" in d.value.columns)
    assert len(nodes) == 17 and "layer4.1.relu/relu_16" in set(nodes["location"])
    labels = [b.label for b in at.button]
    assert "Run again with min_block_size = 6" in labels and "Run again with min_block_size = 4" in labels
    assert "Run again with min_block_size = 3" not in labels  # "current": the same 18 engines again


def test_run_again_builds_the_same_request_with_the_recommended_min_block_size(runs, monkeypatch):
    import ui.job_panel
    from engine.capabilities import Capabilities

    submitted = []
    monkeypatch.setattr(ui.job_panel, "submit_request", lambda request: submitted.append(request))
    monkeypatch.setattr(Capabilities, "disabled_reason", lambda self, knob, value=None: None)  # as on a GPU box
    relu = runs["relu"]
    at = page("segmentation", relu.run_id)
    next(b for b in at.button if b.label.endswith("= 6")).click().run()
    no_exception(at)
    assert len(submitted) == 1
    req = submitted[0]
    assert req.compile.min_block_size == 6
    assert req.compile.torch_executed_ops == ("torch.ops.aten.relu.default",)
    assert req.to_dict() == {**relu.request, "compile": {**relu.request["compile"], "min_block_size": 6}}


def test_run_again_on_a_machine_without_gpu_explains_why(runs):
    from engine import capabilities

    if capabilities.detect().can_compile:
        pytest.skip("this machine can compile with TensorRT")
    at = page("segmentation", runs["relu"].run_id)
    no_exception(at)
    buttons = [b for b in at.button if b.label.startswith("Run again")]
    assert buttons and all(b.disabled for b in buttons)
    assert any("needs an NVIDIA GPU" in c.value for c in at.caption)


def test_a_refused_submission_is_explained_not_raised(runs):
    from engine import jobs

    try:
        at = AppTest.from_function(_submit_cpu_request_for_a_missing_model, default_timeout=600).run()
    finally:
        jobs.stop_workers()  # submitting starts this host's queue workers
    no_exception(at)
    assert at.error[0].value.startswith("Nothing was submitted: ")
    assert "no_such_model.py" in at.error[0].value
    assert any(e.label == "Technical details" for e in at.expander)


def _submit_cpu_request_for_a_missing_model():
    from engine.settings.request import RunRequest
    from ui.job_panel import submit_request

    submit_request(RunRequest.from_dict({"model": {"source": "file:no_such_model.py"}, "device": "cpu"}))


def test_segmentation_of_an_eager_run(runs):
    at = page("segmentation", runs["b1"].run_id)
    no_exception(at)
    assert "eager runs execute the whole model in PyTorch" in at.info[0].value


# -- Compare -----------------------------------------------------------------------------------


def test_compare_two_eager_runs(runs):
    b1, b2 = runs["b1"], runs["b2"]
    at = page("compare", b1.run_id, b2.run_id)
    no_exception(at)
    table = at.dataframe[0].value.set_index("run")
    # batch 1 against batch 2: compared per sample (the throughput ratio), the batch named before any number
    assert table.loc[compare.run_label(b2), "speedup"] == pytest.approx(
        b2.latency.throughput_per_s / b1.latency.throughput_per_s
    )
    assert table.loc[compare.run_label(b1), "baseline"]
    assert at.markdown[0].value.startswith("Differs: batch (1 · 2). Judged on end-to-end latency per sample")
    card = next(m for m in at.metric if m.label == compare.short_labels([b1, b2])[b2.run_id])
    assert card.value == run_figures.e2e_figure(b2).value and card.delta.endswith(" · per sample")
    assert any("**model.batch_size**: `1` · `2`" in md.value for md in at.markdown)
    settings = next(d.value for d in at.dataframe if "differs" in d.value.columns)
    assert list(settings.index[settings["differs"]]) == ["model.batch_size"]
    latency = figure(at, "Latency per inference")
    assert sorted(len(t.x) for t in latency.data) == [8, 8]
    bars = figure(at, "Runs side by side")
    assert {t.name for t in bars.data} == {compare.run_label(b1), compare.run_label(b2)}

    at.selectbox(key="compare_baseline").select(b2.run_id).run()
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[compare.run_label(b2), "speedup"] == pytest.approx(1.0)
    assert table.loc[compare.run_label(b1), "speedup"] == pytest.approx(
        b1.latency.throughput_per_s / b2.latency.throughput_per_s
    )


def test_compare_across_machines_with_an_unknown_id(runs):
    b1, trt = runs["b1"], runs["trt"]
    at = page("compare", b1.run_id, "20200101-000000-deadbeef", trt.run_id)
    no_exception(at)
    assert "20200101-000000-deadbeef" in at.error[0].value
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[compare.run_label(trt), "device"] == "NVIDIA H100 80GB HBM3"
    assert any("different machines" in c.value for c in at.caption)
    types = figure(at, "Profiled time per layer type")
    # eager module types and TensorRT layer types, each in its own panel (engine.charts.compare)
    assert {"Conv2d", "runtime_fusion (fused kernels)"} <= {y for t in types.data for y in t.y}
    assert len({t.yaxis for t in types.data}) == 2
    assert url_runs(at) == [b1.run_id, trt.run_id]  # the unknown id is dropped from the link


def test_compare_needs_two_runs(runs):
    at = page("compare", runs["b1"].run_id)
    no_exception(at)
    assert "Pick 2 to 6 runs" in at.info[0].value


# -- History -----------------------------------------------------------------------------------


def test_history_filters_and_shareable_selection(runs):
    b1, trt = runs["b1"], runs["trt"]
    at = page("history", b1.run_id, trt.run_id)
    no_exception(at)
    assert len(at.dataframe[0].value) == 4
    link = at.code[0].value
    assert link.endswith(f"/history?run={b1.run_id}&run={trt.run_id}")
    assert any("Compare these 2 runs" in md.value for md in at.markdown)
    at.multiselect(key="filter_device_name").select("NVIDIA H100 80GB HBM3").run()
    shown = at.dataframe[0].value
    assert len(shown) == 2 and shown["is_sample"].all()
    at.multiselect(key="filter_backend").select("eager").run()
    assert at.dataframe[0].value.empty


def test_history_marks_a_baseline_that_compare_then_uses(runs):
    b1, b2 = runs["b1"], runs["b2"]
    store = runs["store"]
    at = page("history", b2.run_id)
    at.button(key="mark_baseline").click().run()
    no_exception(at)
    assert store.list_runs().set_index("run_id").loc[b2.run_id, "is_baseline"]
    at = page("compare", b1.run_id, b2.run_id)
    assert at.selectbox(key="compare_baseline").value == b2.run_id
    store.set_baseline(b2.run_id, False)


def test_history_delete_then_the_old_link_explains(runs):
    store = runs["store"]
    doomed = eager_run(store, 3)
    at = page("history", doomed.run_id)
    at.checkbox(key="confirm_delete").check().run()
    at.button(key="delete_runs").click().run()
    no_exception(at)
    assert not store.exists(doomed.run_id)
    assert not (store.runs_dir / doomed.run_id).exists()
    at = page("layers", doomed.run_id)
    no_exception(at)
    assert "does not exist" in at.error[0].value


def test_compare_with_an_analyze_run_says_not_timed(runs, fixtures_dir_module):
    import dataclasses

    from engine.latency_stats import LatencyStats
    from engine.store import new_run_id

    store = runs["store"]
    analyze = dataclasses.replace(
        runs["relu"], run_id=new_run_id(), latency=LatencyStats.not_timed(1), latency_samples_ms=[]
    )
    store.save(analyze)
    try:
        at = page("compare", analyze.run_id, runs["b1"].run_id)
        no_exception(at)
        m = metrics(at)
        short = compare.short_labels([analyze, runs["b1"]])
        assert m[short[analyze.run_id]] == "not timed"
        assert m[short[runs["b1"].run_id]] == run_figures.e2e_figure(runs["b1"]).value
        options = at.multiselect(key="runs_picker").options  # what the picker lists
        assert sum(o.endswith("· not timed · sample") for o in options) == 1
    finally:
        store.delete(analyze.run_id)


def test_coming_back_to_a_page_keeps_the_runs_of_the_link(runs):
    b1, b2 = runs["b1"], runs["b2"]
    at = AppTest.from_function(_picker_on_a_page_you_can_leave, default_timeout=600)
    at.query_params["run"] = [b1.run_id, b2.run_id]
    at.run()
    assert at.multiselect(key="runs_picker").value == [b1.run_id, b2.run_id]
    at.checkbox(key="on_this_page").uncheck().run()  # another page: streamlit drops the picker's state
    at.checkbox(key="on_this_page").check().run()  # back again, same link
    no_exception(at)
    assert at.multiselect(key="runs_picker").value == [b1.run_id, b2.run_id]


def _picker_on_a_page_you_can_leave():
    import streamlit as st

    from ui.run_picker import pick_runs

    if st.checkbox("on this page", value=True, key="on_this_page"):
        pick_runs(6)


def test_compare_keeps_the_first_six_runs_of_a_longer_link(runs, monkeypatch):
    store = runs["store"]
    extra = [eager_run(store, bs) for bs in (3, 4, 5)]
    ids = [runs[k].run_id for k in ("b1", "b2", "trt", "relu")] + [r.run_id for r in extra]
    try:
        at = page("compare", *ids)
        no_exception(at)
        assert "first 6 are shown" in at.warning[-1].value
        assert at.multiselect(key="runs_picker").value == ids[:6]
        assert len(at.dataframe[0].value) == 6
    finally:
        for r in extra:
            store.delete(r.run_id)


def test_every_bundled_sample_opens_on_layers_and_segmentation(tmp_path, monkeypatch):
    """The recorded GPU samples as a CPU-only user meets them: marked, charted, never a traceback."""
    samples = sorted(store_module.SAMPLES_DIR.glob("*.json.gz"))
    if not samples:
        pytest.skip("no bundled samples in samples/")
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TRTDASH_SAMPLES_DIR")
    store = RunStore(tmp_path / "data")
    ids = store.import_samples(store_module.SAMPLES_DIR)
    assert len(ids) == len(samples)
    for run_id in ids:
        run = store.get(run_id)
        layers = page("layers", run_id)
        no_exception(layers)
        assert any("sample run" in md.value for md in layers.markdown), run_id
        if len(run.layers):
            top = figure(layers, "Slowest")
            assert max(x for t in top.data for x in t.x) == pytest.approx(
                max(run.layers["avg_ms"].max(), run.layers["avg_ms"].nsmallest(max(len(run.layers) - 20, 0)).sum())
            )
        seg = page("segmentation", run_id)
        no_exception(seg)
        if run.segmentation is not None and run.segmentation.total_ops:
            assert metrics(seg)["Operators"] == f"{run.segmentation.total_ops:,}", run_id
