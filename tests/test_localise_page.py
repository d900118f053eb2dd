"""The Where-it-breaks page and the ladder tab's "Find where it breaks" in AppTest: a localisation measured here on the
fake-quantized model (real ModelOpt, CPU), the recorded H200 ladder, and the job queue's submit/get/cancel replaced by a
queue answered by those recorded runs (the real queue is tested in test_jobs.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from engine import capabilities, jobs
from engine.quantization import schemes
from engine.studies.localisation import headline
from engine.studies.localisation.records import LocalisationRecords
from tests.localise_fixtures import RecordedQueue, _key, outlier_study, trt_request
from tests.test_pages import figures
from tests.test_quantization import gpu_caps

pytestmark = pytest.mark.skipif(importlib.util.find_spec("modelopt") is None, reason="nvidia-modelopt not installed")
ROOT = Path(__file__).resolve().parent.parent
H200 = gpu_caps("tensorrt_rtx", "9.0")


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A localisation run here: the INT8 outlier resnet18 on the fake-quantized model (finds layer2.1.conv2)."""
    root = tmp_path_factory.mktemp("loc") / "data"
    study = outlier_study()
    records = LocalisationRecords(root)
    records.save(study)
    return root, records.load("outlier")  # as the page reads it


@pytest.fixture
def env(measured, monkeypatch, tmp_path):
    root, study = measured
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(root))
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(tmp_path / "no-samples"))
    return root, study


def page(**query) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "localise.py"), default_timeout=600)
    for k, v in query.items():
        at.query_params[k] = v
    return at


def _texts(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_a_stored_localisation_shows_its_sentence_charts_and_steps(env):
    _, study = env
    at = page(localise="outlier").run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"**{headline.headline(study)}**" in _texts(at) and study.summary() in _texts(at)
    assert study.summary().startswith("INT8 breaks at layer2.1.conv2")
    growth = next(f for f in figures(at) if (f.layout.title.text or "").startswith("Error through resnet18"))
    line = next(t for t in growth.data if t.name == "int8 fake-quant (fp32)")
    rows = study.error_growth.rows("int8 fake-quant (fp32)")
    assert list(line.x) == list(rows["order"]) and list(line.text) == list(rows["unit"])
    kept = next(t for t in growth.data if t.name == "kept by the fix")
    assert list(kept.text) == ["layer2.1.conv2"]
    steps = next(d.value for d in at.dataframe if "role" in d.value.columns)
    assert list(steps["role"]) == [s.role for s in study.steps] and list(steps["kept"])[-1] == 1
    worst = next(d.value for d in at.dataframe if "calib_amax" in d.value.columns)
    assert worst["unit"].iloc[0] == "layer2.1.conv2" and len(worst) == 10
    assert any("first beyond rel. L2 0.1 at layer2.1.conv2" in m.value for m in at.markdown)
    # no GPU here: what needs one is said, and its buttons are off with the reason
    assert any("Finding the layer builds a TensorRT engine per step" in i.value for i in at.info)
    profile = next(b for b in at.button if b.label == "Profile the fix")
    assert profile.disabled and "needs an NVIDIA GPU" in profile.help
    assert next(b for b in at.button if b.label == "Find where it breaks").disabled


def test_an_unknown_link_says_so_and_opens_the_newest(env):
    at = page(localise="no_such").run()
    assert any("No localisation 'no_such' is stored" in e.value for e in at.error)
    assert at.selectbox(key="loc:picked").value == "outlier"
    assert at.query_params["localise"] in ("outlier", ["outlier"])


def test_the_pytorch_search_runs_here_without_a_gpu(env):
    at = page().run()
    at.selectbox(key="loc:model.source").set_value("resnet18")
    at.number_input(key="loc:model.batch_size").set_value(1)
    at.number_input(key="loc:tol").set_value(0.5)
    at.number_input(key="loc:top1").set_value(95)
    at.run()
    next(b for b in at.button if b.label == "Search on the PyTorch model here").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    lid = at.query_params["localise"]
    lid = lid[0] if isinstance(lid, list) else lid
    study = LocalisationRecords(env[0]).load(lid)
    assert study.outcome == "nothing_to_fix" and study.measured_on == "fake-quantized PyTorch model (cpu)"
    assert study.criterion.min_top1 == 0.95 and "top-1 agreement ≥ 95%" in study.criterion.text()
    assert "The fp8/fp16 build is already within tolerance" in study.summary()


# -- from the precision ladder, on a faked H200 -------------------------------------------------------------------
@pytest.fixture
def h200(tmp_path, monkeypatch):
    from engine.store import RunStore

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TRTDASH_SAMPLES_DIR", raising=False)
    monkeypatch.setattr(schemes, "modelopt_installed", lambda: True)
    monkeypatch.setattr(capabilities, "detect", lambda: H200)
    store = RunStore(tmp_path / "data")
    store.import_samples()
    ids = store.runs_with_tag("ladder:resnet50_b8_h200")
    if not ids:
        pytest.skip("the bundled resnet50 ladder is not there")
    runs = {
        store.get(i).request["compile"]["precision"]
        + "/"
        + store.get(i).request["compile"].get("quantization", "none"): store.get(i)
        for i in ids
    }
    q = RecordedQueue({})
    for name in ("submit", "get", "cancel"):
        monkeypatch.setattr(jobs, name, getattr(q, name))
    monkeypatch.setattr(jobs, "ensure_workers", lambda *a, **k: [])
    return store, runs, q


def test_find_where_it_breaks_from_the_broken_ladder_step_and_follow_it(h200, tmp_path):
    store, runs, q = h200
    at = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=600)
    at.query_params["ladder"] = "resnet50_b8_h200"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    buttons = [b for b in at.button if b.label.startswith("Find where it breaks")]
    assert [b.label for b in buttons] == ["Find where it breaks: fp8/fp16"]  # INT8 weight-only is within 0.05
    fp8 = runs["fp16/fp8"]
    q.answers = {_key(trt_request()): ""}  # nothing answered yet: both references stay queued
    buttons[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    records = LocalisationRecords(tmp_path / "data")
    listed = records.summaries()
    (lid,) = listed[~listed["is_sample"]]["localisation_id"]  # beside the bundled samples/localisations
    study = records.load(lid)
    assert study.source == "ladder resnet50_b8_h200, fp8/fp16" and len(study.candidates) > 50
    assert [r.compile.keep_high_precision for r in q.requests] == [(), ()]
    assert q.requests[0] == study.request_for("unfixed") and _key(q.requests[0]) == _key(study.request_for("unfixed"))
    assert json.loads(json.dumps(fp8.request))["compile"]["quantization"] == "fp8"
    # the page follows it: the references finish (the recorded H200 runs), the first search build goes out
    q.jobs["job0"].update(state="done", run_id=fp8.run_id)
    q.jobs["job1"].update(state="done", run_id=runs["fp16/none"].run_id)
    loc = page(localise=lid)
    loc.session_state["localise_followed"] = [lid]
    loc.run()
    assert not loc.exception, [e.value for e in loc.exception]
    study = records.load(lid)
    assert study.step("unfixed").why.startswith("output not finite") and study.step("reference").passed
    assert len(q.requests) == 3 and len(q.requests[2].compile.keep_high_precision) == len(study.candidates) // 2
    (bar,) = loc.get("progress")
    assert bar.proto.text == study.progress_text()
    next(b for b in loc.button if b.label == "Cancel").click().run()
    assert q.cancelled == ["job2"] and records.load(lid).status == "cancelled"
    # Go on: the finished builds stay, the cancelled search build is asked for again, and the page follows it
    loc.run()
    go_on = next(b for b in loc.button if b.label == "Go on")
    assert not go_on.disabled and go_on.help.startswith("Cancelled after 0 search builds: going on keeps them")
    go_on.click().run()
    assert not loc.exception and not loc.error, [e.value for e in [*loc.exception, *loc.error]]
    study = records.load(lid)
    assert study.status == "running" and [s.state for s in study.steps] == ["done", "done", "queued"]
    assert len(q.requests) == 4 and q.requests[3] == q.requests[2]


def test_without_a_gpu_the_ladder_offers_the_search_disabled_with_the_reason(h200, monkeypatch):
    monkeypatch.setattr(
        capabilities,
        "detect",
        lambda: gpu_caps("none", "9.0").__class__(torch_version=torch.__version__, cuda_available=False),
    )
    at = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=600)
    at.query_params["ladder"] = "resnet50_b8_h200"
    at.run()
    (button,) = [b for b in at.button if b.label.startswith("Find where it breaks")]
    assert button.disabled and "needs an NVIDIA GPU with Torch-TensorRT installed" in button.help
    assert any("recorded localisations are on the Where it breaks page" in c.value for c in at.caption)


def test_both_recorded_localisations_open_from_the_picker(tmp_path, monkeypatch):
    """A fresh data directory with the bundled samples: the H200 resnet50 and vit_b_16 FP8 localisations are in the
    picker, and each opens with its sentence, its steps and no error."""
    from engine.studies.localisation.records import read_bundle

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TRTDASH_SAMPLES_DIR", raising=False)
    bundles = sorted((ROOT / "samples" / "localisations").glob("*.json.gz"))
    assert len(bundles) == 2
    at = page().run()
    assert not at.exception, [e.value for e in at.exception]
    picker = at.selectbox(key="loc:picked")
    for path in bundles:
        study, _ = read_bundle(path.read_bytes())
        assert any(o.startswith(f"{study.localisation_id} · ") for o in picker.options)
        picker.set_value(study.localisation_id)
        at.run()
        assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
        assert f"**{headline.headline(study)}**" in _texts(at) and study.summary() in _texts(at)
        steps = next(d.value for d in at.dataframe if "role" in d.value.columns)
        assert list(steps["step"]) == [s.index + 1 for s in study.steps]
        picker = at.selectbox(key="loc:picked")
    # the vit one, last: its two crashed builds named in the sentence, each with its whole CUDA message below
    assert any("step 11 (5 kept) crashed: CUDA illegal memory access" in m.value for m in at.markdown)
    for label in ("Step 4 (search, 12 kept): the job's error", "Step 11 (search, 5 kept): the job's error"):
        (error,) = [e for e in at.expander if e.label == label]
        assert "an illegal memory access was encountered" in error.code[0].value
