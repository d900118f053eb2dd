"""The Sweeps page's Batch sweep tab in AppTest: the form, a real eager sweep through the job queue, stored sweeps."""

import gzip
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import jobs
from engine.studies import batch_sweep as bs
from engine.studies.sweeps import sweep_tags

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


@pytest.fixture
def app(store, monkeypatch):
    monkeypatch.delenv(jobs.QUEUE_URL_ENV, raising=False)
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(store.root / "no-samples"))
    at = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=600)
    at.session_state["sweeps_tab"] = "Batch sweep"  # only the open tab is computed
    yield at
    jobs.stop_workers()


def _fill_tiny(at, sizes="1,2,4"):
    at.selectbox(key="batch:model.source").set_value("resnet18")
    at.text_input(key="batch:model.input_shape").set_value("3,32,32")
    at.text_input(key="batch:sizes").set_value(sizes)
    at.number_input(key="batch:measure.warmup_iters").set_value(1)
    at.number_input(key="batch:measure.timed_iters").set_value(5)
    return at.run()


def _run_button(at):
    return next(b for b in at.button if b.label == "Run batch sweep")


def _table(at):
    return next(d.value for d in at.dataframe if "throughput_per_s" in d.value.columns)


def _errors(at):
    """Error texts as the reader sees them (pages escape markdown in text they did not write)."""
    return [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]


def test_bad_batch_sizes_name_the_values_and_submit_nothing(app):
    app.run()
    _fill_tiny(app, sizes="1, x, 4, 2.5")
    assert any("batch_sweep.batch_sizes" in e and "'x', '2.5' are not whole numbers" in e for e in _errors(app))
    assert _run_button(app).disabled
    assert not any(" runs: batch " in c.value for c in app.caption)  # no batch plan shown
    assert "batch_execution" not in app.session_state
    assert jobs.list_jobs() == []
    # a size out of range is named by the plan, with the allowed range
    app.text_input(key="batch:sizes").set_value("0,8").run()
    assert any("[0] outside 1..4096" in e for e in _errors(app)) and _run_button(app).disabled


def test_without_a_gpu_the_tab_offers_the_eager_backend_static_only(app):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the form on a machine without a GPU")
    app.run()
    assert app.selectbox(key="batch:backend").options == ["eager"]
    assert any(
        "tensorrt backend needs an NVIDIA GPU" in c.value and "static batches only" in c.value for c in app.caption
    )
    assert app.multiselect(key="batch:strategies:eager").options == ["static: one engine per batch size"]


def test_an_eager_batch_sweep_runs_on_the_queue_and_opens_with_its_verdict(app, store):
    app.run()
    _fill_tiny(app)
    assert any(c.value.startswith("3 runs: batch 1 (static); batch 2 (static); batch 4 (static)") for c in app.caption)
    _run_button(app).click().run()
    assert not app.exception and not _errors(app), _errors(app)
    execution = app.session_state["batch_execution"]
    assert len(jobs.list_jobs()) == 3  # every point went to the real queue
    deadline = time.monotonic() + 600
    while "batch_execution" in app.session_state and time.monotonic() < deadline:
        app.run()  # the progress fragment polls, then opens the finished sweep
        assert not app.exception and not _errors(app), _errors(app)
        time.sleep(0.5)
    sweep_id = execution.plan.sweep_id
    assert app.query_params.get("batch") in (sweep_id, [sweep_id])
    assert execution.counts() == {"done": 3}
    sweep = bs.load_batch_sweep(store, sweep_id)
    assert [r.request["backend"] for r in sweep.results] == ["eager"] * 3
    frame = _table(app)
    assert frame["batch_size"].tolist() == [1, 2, 4] and set(frame["strategy"]) == {"static"}
    assert frame["median_ms"].tolist() == sweep.table["median_ms"].tolist()
    assert bs.verdict(sweep).markdown() in [m.value for m in app.markdown]
    specs = [c.proto.spec for c in app.get("plotly_chart")]
    assert any("Latency vs batch size" in s for s in specs) and any("Throughput vs batch size" in s for s in specs)
    assert not any("Peak GPU memory" in s for s in specs)  # CPU: nothing to draw


def test_a_link_opens_a_stored_batch_sweep_and_an_unknown_one_is_named(app, store):
    ids = [
        store.import_run(gzip.decompress((SAMPLES / n).read_bytes()))
        for n in ("resnet50_fp16.json.gz", "resnet50_b8_ladder_fp16.json.gz")
    ]
    for run_id in ids:
        store.set_tags(run_id, sweep_tags("h200_pair", [bs.BATCH_KNOB]))
    app.query_params["batch"] = "h200_pair"
    app.run()
    assert not app.exception, app.exception
    assert app.selectbox(key="batch:chosen").value == "h200_pair"
    assert _table(app)["batch_size"].tolist() == [1, 8]
    app.number_input(key="batch:capacity:h200_pair").set_value(140.0).run()
    expected = bs.verdict(bs.load_batch_sweep(store, "h200_pair"), 140 * 2**30).markdown()
    assert expected in [m.value for m in app.markdown] and "would fill the GPU's 140 GiB" in expected
    assert any("Peak GPU memory vs batch size" in c.proto.spec for c in app.get("plotly_chart"))
    # a batch sweep is not offered as a knob sweep in the Sweep results tab (its knob is no compile knob)
    app.session_state["sweeps_tab"] = "Sweep results"  # a click on the tab: only the open one is computed
    app.run()
    assert any(i.value.startswith("No sweep stored yet") for i in app.info)

    app.query_params["batch"] = "no_such_batch_sweep"
    app.run()
    assert any("No stored run belongs to batch sweep 'no_such_batch_sweep'" in e for e in _errors(app))


def test_with_tensorrt_the_form_plans_static_engines_and_one_dynamic_engine(app, monkeypatch):
    """On an H200 with TensorRT-RTX (faked capabilities: nothing is run), both strategies are offered."""
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
    assert app.selectbox(key="batch:backend").value == "tensorrt"
    app.text_input(key="batch:sizes").set_value("1,8,32").run()
    assert app.multiselect(key="batch:strategies:tensorrt").value == ["static", "dynamic"]
    assert not app.number_input(key="batch:opt").disabled
    plan = next(c.value for c in app.caption if c.value.startswith("6 runs: "))
    assert plan.startswith("6 runs: batch 1 (static); batch 8 (static); batch 32 (static); batch 1 (dynamic)")
    assert "One dynamic engine for batch 1..32, tuned for batch 8" in plan
    app.number_input(key="batch:opt").set_value(64).run()
    assert any("batch_sweep.opt_batch" in e and "64 is outside the swept range 1..32" in e for e in _errors(app))
    assert _run_button(app).disabled


def test_cancel_stops_every_point_of_a_running_batch_sweep(app, store):
    app.run()
    _fill_tiny(app, sizes="1,2")
    app.number_input(key="batch:measure.timed_iters").set_value(100_000).run()  # far too long to finish
    _run_button(app).click().run()
    execution = app.session_state["batch_execution"]
    deadline = time.monotonic() + 600
    while not any(p.view.state == "running" for p in execution.poll()) and time.monotonic() < deadline:
        time.sleep(0.2)
    app.run()
    next(b for b in app.button if b.label == "Cancel batch sweep").click().run()
    deadline = time.monotonic() + 600
    while "batch_execution" in app.session_state and time.monotonic() < deadline:
        app.run()
        time.sleep(0.5)
    assert execution.counts() == {"cancelled": 2}
    assert bs.list_batch_sweeps(store).empty
    assert any(w.value == f"Batch sweep {execution.plan.sweep_id} measured nothing: 2 cancelled." for w in app.warning)
    assert app.query_params.get("batch") is None and not _errors(app)
