"""The one study picker of the Sweeps tabs lists stored records in any state (a running sweep, a queued auto-tune)
beside the tagged samples, and a picked running study shows its state, what is missing and Resume."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import jobs
from engine.jobs import Job
from engine.settings.request import RunRequest
from engine.store.studies import StudyTable
from engine.studies import record
from engine.studies.autotune.stored import plan_autotune, save_plan
from engine.studies.autotune.study_record import record_search, record_search_job
from engine.studies.sweeps import PRECISION_KNOB
from tests.test_autotune import TINY
from tests.test_jobs import tiny
from ui.studies.picker import study_choices

ROOT = Path(__file__).resolve().parent.parent


def _queued_job(job_id: str, request: dict, key: str) -> Job:
    """A job waiting in the queue (no worker runs in these tests: it stays queued)."""
    job = Job(job_id=job_id, request=request, key=key, route="cpu", created_ts=time.time())
    jobs.default_system().table.insert_or_join(job, key)
    return jobs.get(job_id)


@pytest.fixture
def studies(store, monkeypatch):
    """A knob sweep with one point queued and one never submitted, and an auto-tune whose search job is queued."""
    monkeypatch.delenv(jobs.QUEUE_URL_ENV, raising=False)
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(store.root / "no-samples"))
    points = [(p, tiny().with_changes(**{PRECISION_KNOB: p}).to_dict()) for p in ("fp32", "bf16")]
    record.create_study(store, "sweep", "open_sweep", ["sweep:open_sweep"], {"base": tiny().to_dict()}, points)
    _queued_job("sweep-job-0", points[0][1], "k0")
    StudyTable(store).submitted("open_sweep", 0, "sweep-job-0")
    plan = plan_autotune(RunRequest.from_dict(TINY), space={PRECISION_KNOB: ["fp32", "bf16"]}, n_trials=2)
    save_plan(store.root, plan)
    record_search(store, plan)
    record_search_job(store, plan, _queued_job("search-job", plan.base, f"autotune:{plan.autotune_id}"))
    return plan.autotune_id


def test_running_studies_are_listed_from_their_records_beside_the_tagged_ones(store, studies):
    choices = study_choices(store, "sweep", {"old_sample": "old_sample · resnet50 · H200 · 4 runs · sample"})
    assert list(choices) == ["open_sweep", "old_sample"]
    assert choices["open_sweep"] == "open_sweep · knob sweep · resnet18 · running · 0 of 2 measured, 1 missing"
    tune = study_choices(store, "autotune", {})
    assert tune == {studies: f"{studies} · auto-tune · resnet18 · running · 0 of 3 measured"}
    assert study_choices(store, "ladder", {}) == {}


def test_the_sweeps_page_picks_a_running_study_and_says_what_is_missing(store, studies):
    page = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=600)
    page.query_params["sweep"] = "open_sweep"
    page.run()
    assert not page.exception, page.exception
    picker = page.selectbox(key="sweep:chosen")
    assert picker.value == "open_sweep" and "running · 0 of 2 measured, 1 missing" in picker.format_func("open_sweep")
    captions = [c.value for c in page.caption]
    assert any(c.startswith("Knob sweep open_sweep (running): 0 of 2 points measured") for c in captions), captions
    assert any("bf16 (never run)" in w.value for w in page.warning)
    assert any(b.label == "Resume" for b in page.button)
    assert any("No stored run belongs to sweep" in i.value for i in page.info)  # nothing measured yet
    page.session_state["sweeps_tab"] = "Auto-tune"  # only the open tab is computed
    page.run()
    tune = page.selectbox(key="tune:chosen")
    assert f"{studies} · auto-tune · resnet18 · running · 0 of 3 measured" in tune.options  # the labels it lists


def test_a_study_with_no_finished_point_is_known_to_report_and_says_what_it_waits_for(store, studies, capsys):
    from engine.__main__ import main
    from engine.report.studies import find_study, known_studies

    assert ("sweep", "open_sweep") in {(r.kind, r.study_id) for r in known_studies(store)}
    assert find_study(store, "sweep:open_sweep").study_id == "open_sweep"
    out = store.root / "open.html"
    assert main(["report", "--study", "open_sweep", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Knob sweep open_sweep has no measured point yet" in err and "0 of 2 measured" in err
    assert "hint: Wait for its first point, or resume it" in err and not out.exists()
