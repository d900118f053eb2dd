"""A bundled auto-tune search (issue 28, item 4): a search stored in one data directory, bundled, and installed into a
fresh one opens with the same report and runs, and the Auto-tune tab shows it without a link. The search here is
answered by the H200 optimization_level sweep's recorded runs (as tests/test_report.py's); one recorded on the GPU
with scripts/record_autotune.py is installed the same way."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.settings.request import RunRequest
from engine.store import SAMPLES_DIR, RunStore
from engine.studies import sweeps
from engine.studies.autotune import bundle
from engine.studies.autotune.stored import list_plans, load_report, plan_autotune, run_plan, save_plan
from tests.test_report import SWEEP, sweep_evaluator

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """(store, autotune id, report) of a search stored in a data directory holding the samples."""
    store = RunStore(tmp_path_factory.mktemp("recorded") / "data")
    store.import_samples(SAMPLES_DIR)
    base = RunRequest.from_dict(sweeps.load_sweep(store, SWEEP).results[0].request)
    plan = plan_autotune(base, space={sweeps.OPTIMIZATION_LEVEL_KNOB: [0, 1, 2, 3, 4, 5]}, n_trials=6)
    save_plan(store.root, plan)
    return store, plan.autotune_id, run_plan(store.root, plan, store, sweep_evaluator(store))


def test_a_bundled_search_installs_with_its_report_and_runs(recorded, tmp_path):
    store, autotune_id, report = recorded
    out = tmp_path / "samples"
    path = bundle.write_bundle(store.root, autotune_id, store, out)
    assert path == out / "autotune" / f"{autotune_id}.json.gz"
    document = json.loads(gzip.decompress(path.read_bytes()))
    assert document["format"] == bundle.BUNDLE_FORMAT and len(document["trials"]) == len(report.trials)

    fresh = RunStore(tmp_path / "fresh")
    assert bundle.import_samples(fresh, out) == [autotune_id]
    assert bundle.import_samples(fresh, out) == [autotune_id]  # idempotent
    installed = load_report(fresh.root, autotune_id, fresh)
    assert installed is not None and installed.summary() == report.summary()
    assert installed.trials.drop(columns=["trial"], errors="ignore").equals(
        report.trials.drop(columns=["trial"], errors="ignore")
    )
    assert installed.best.run_id == report.best.run_id and fresh.get(report.best.run_id).is_sample
    assert [p.autotune_id for p in list_plans(fresh.root)] == [autotune_id]


def test_the_auto_tune_tab_shows_a_bundled_search(recorded, tmp_path, monkeypatch):
    """Item 4: Auto-tune had no bundled study for a CPU user to open."""
    store, autotune_id, report = recorded
    samples = tmp_path / "samples"
    bundle.write_bundle(store.root, autotune_id, store, samples)
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(samples))
    at = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=600)
    at.session_state["sweeps_tab"] = "Auto-tune"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="tune:chosen").value == autotune_id  # opened without a link
    assert any(report.summary().split("\n")[0] in m.value for m in at.markdown), [m.value for m in at.markdown]


def test_a_file_that_is_no_bundle_is_refused():
    with pytest.raises(bundle.BadAutotuneBundle, match="Not an auto-tune bundle"):
        bundle.read_bundle(gzip.compress(b'{"format": "something else"}'))
