"""Stored studies: membership written by the engine (not the page), what is missing and resume, one not-found error,
and exact tag matching. Real eager CPU runs of a tiny resnet18."""

from __future__ import annotations

import dataclasses
import gc

import pytest

from engine.errors import UserError
from engine.store import RunStore, new_run_id
from engine.studies import record, sweeps
from engine.studies.batch_sweep import load_batch_sweep
from engine.studies.ladder import load_ladder
from tests.fixture_runs import eager_run
from tests.test_jobs import finished, tiny, wait_until
from tests.test_sweeps import ROOT, ThreadQueue


def _two_point_sweep(sweep_id: str):
    return sweeps.plan_sweep(tiny(), {sweeps.PRECISION_KNOB: ["fp32", "bf16"]}, sweep_id=sweep_id, repeats=0)


def test_closing_the_page_mid_sweep_and_restarting_the_server_loses_no_member(system):
    """The Done-when of issue 16: the page's execution object is dropped right after submit (the closed tab), the
    worker finishes, a fresh job system and store open the data directory (the restart): every point is recorded
    with its run, and every run carries the sweep's tags, although nothing ever polled the sweep."""
    root = system.root
    plan = _two_point_sweep("closed_tab_a_%")
    execution = sweeps.SweepExecution(plan, system.store, system.submit, system.get, system.cancel)
    execution.start()
    job_ids = [ps.job_id for ps in execution.points]
    assert all(job_ids)
    del execution
    gc.collect()
    for job_id in job_ids:  # the worker, not a page, finishes the jobs
        assert finished(system, job_id, timeout_s=180).state == "done"

    from engine.jobs import JobSystem

    restarted = JobSystem(root)
    store = RunStore(root)
    study = wait_until(lambda: (s := record.load_study(store, "closed_tab_a_%")).state == "finished" and s, 600)
    assert study.kind == "sweep" and [m.job_id for m in study.members] == job_ids
    assert [m.label for m in study.members] == [p.label for p in plan.points]
    assert all(m.state == "done" and m.run_id for m in study.members) and study.missing == []
    for run_id in study.run_ids:
        tags = store.get(run_id).tags
        assert "sweep:closed_tab_a_%" in tags and "knob:compile.precision" in tags
    assert sorted(store.runs_with_tag("sweep:closed_tab_a_%")) == sorted(study.run_ids)
    assert sweeps.load_sweep(store, "closed_tab_a_%").knobs == (sweeps.PRECISION_KNOB,)
    assert len(sweeps.load_sweep(store, "closed_tab_a_%").table) == 2
    assert ("closed_tab_a_%", "sweep") == record.list_studies(store, kind="sweep")[0][:2]

    # a point answered from the store at submit (a cache hit) is recorded and tagged there and then: no worker, no
    # poll, no job process ever sees it
    again = sweeps.plan_sweep(tiny(), {sweeps.PRECISION_KNOB: ["fp32"]}, sweep_id="from_cache", repeats=0)
    execution = sweeps.SweepExecution(again, restarted.store, restarted.submit, restarted.get, restarted.cancel)
    execution.start()
    del execution
    study = record.load_study(RunStore(root), "from_cache")
    assert study.state == "finished" and len(study.run_ids) == 1
    assert {"sweep:from_cache", "sweep:closed_tab_a_%"} <= set(store.get(study.run_ids[0]).tags)


def test_a_cancelled_point_is_reported_missing_and_resume_completes_it(store):
    q = ThreadQueue(store)
    q.gate.clear()  # hold the worker: both jobs stay queued
    plan = _two_point_sweep("with_a_gap")
    execution = sweeps.SweepExecution(plan, store, q.submit, q.status, q.cancel)
    execution.start()
    q.cancel(execution.points[1].job_id)  # bf16 cancelled on its own (from the queue panel, say)
    q.gate.set()
    execution.wait(timeout_s=600)
    assert execution.counts() == {"done": 1, "cancelled": 1}

    study = record.load_study(store, "with_a_gap")
    assert study.state == "incomplete"
    (gap,) = study.missing
    assert gap.label == plan.points[1].label and gap.state == "cancelled" and gap.why_missing == "cancelled"
    assert "1 of 2 points measured" in study.missing_text and "1 missing" in study.missing_text
    assert f"{plan.points[1].label} (cancelled)" in study.missing_text
    assert len(sweeps.load_sweep(store, "with_a_gap").table) == 1  # what it measured opens meanwhile

    from streamlit.testing.v1 import AppTest  # the Sweeps page says what is missing and offers Resume

    at = AppTest.from_file(str(ROOT / "pages" / "sweep.py"), default_timeout=600)
    at.query_params["sweep"] = "with_a_gap"
    at.run()
    assert not at.exception, at.exception
    assert any("1 missing" in w.value and "cancelled" in w.value for w in at.warning)
    assert any(b.label == "Resume" for b in at.button)

    assert record.resume_study(store, "with_a_gap", q.submit) == 1
    assert record.load_study(store, "with_a_gap").state == "running"
    wait_until(
        lambda: (
            record.settle(store, "with_a_gap", q.status) >= 0
            and record.load_study(store, "with_a_gap").state == "finished"
        ),
        120,
    )
    study = record.load_study(store, "with_a_gap")
    assert study.missing == [] and study.missing_text == "" and len(study.run_ids) == 2
    assert sorted(store.runs_with_tag("sweep:with_a_gap")) == sorted(study.run_ids)
    assert sorted(sweeps.load_sweep(store, "with_a_gap").table["precision"]) == ["bf16", "fp32"]
    assert record.resume_study(store, "with_a_gap", q.submit) == 0  # nothing left to queue


def test_points_the_queue_refused_are_never_run_and_cancel_marks_the_study(store):
    q = ThreadQueue(store)
    q.gate.clear()
    calls = []

    def refuse_second(request):
        calls.append(request)
        if len(calls) == 2:
            raise UserError("the queue is full", "try later")
        return q.submit(request)

    plan = _two_point_sweep("half_queued")
    execution = sweeps.SweepExecution(plan, store, refuse_second, q.status, q.cancel)
    with pytest.raises(UserError, match="queue is full"):
        execution.start()
    study = record.load_study(store, "half_queued")
    assert [m.state for m in study.members] == ["queued", "pending"]
    assert [m.why_missing for m in study.missing] == ["never run"]
    assert execution.cancel() == 1  # what the page does when a point is refused
    q.gate.set()
    study = record.load_study(store, "half_queued")
    assert study.state == "cancelled" and {m.why_missing for m in study.missing} <= {"cancelled", "never run"}


def test_an_unknown_study_raises_the_one_not_found_error(store):
    for bad in ("no_such_study", "a,b", "", " ", 42):
        with pytest.raises(record.StudyNotFound) as e:
            record.load_study(store, bad)
        assert isinstance(e.value, UserError) and isinstance(e.value, KeyError)
        assert "is stored" in e.value.message and "Pick a study from the list" in e.value.hint
    with pytest.raises(record.StudyNotFound, match="No precision ladder 'nope'"):
        record.load_study(store, "nope", kind="ladder")
    with pytest.raises(ValueError, match="unknown study kind"):
        record.list_studies(store, kind="nope")


def test_auto_tune_can_keep_its_trials_as_a_study(store):
    """The record is open to every kind: an auto-tune adds its trials as points as it asks for them."""
    assert record.create_study(store, "autotune", "resnet18_fp32_autotune_x", ["autotune:x"], {"budget": 3}, []) == []
    assert record.add_points(store, "resnet18_fp32_autotune_x", [("trial 0", tiny().to_dict())]) == [0]
    q = ThreadQueue(store)
    record.submit_points(store, "resnet18_fp32_autotune_x", [0], q.submit)
    wait_until(
        lambda: (
            record.settle(store, "resnet18_fp32_autotune_x", q.status) >= 0
            and record.load_study(store, "resnet18_fp32_autotune_x").state == "finished"
        ),
        60,
    )
    study = record.load_study(store, "resnet18_fp32_autotune_x", kind="autotune")
    assert study.plan == {"budget": 3} and "autotune:x" in store.get(study.run_ids[0]).tags
    with pytest.raises(record.StudyExists):
        record.create_study(store, "sweep", "resnet18_fp32_autotune_x", [], {}, [])


def test_tags_match_exactly_underscore_and_percent_are_plain_characters(store):
    """``runs_with_tag`` once matched with LIKE: ``_`` stood for any character and ``%`` for any text."""
    first = eager_run(store)
    ids = {}
    for tag in ("sweep:a_b", "sweep:aXb", "sweep:100%", "sweep:100%x", "sweep:Case"):
        other = dataclasses.replace(first, run_id=new_run_id(), tags=[tag])
        ids[tag] = store.save(other)
    for tag, run_id in ids.items():
        assert store.runs_with_tag(tag) == [run_id], tag
    assert store.runs_with_tag("sweep:case") == []
    assert store.runs_with_tag("sweep:a%") == [] and store.runs_with_tag("sweep:_") == []


def test_old_tagged_samples_open_without_a_record(tmp_path):
    """The bundled recordings carry tags only: their sweeps and ladders open through the loaders as before."""
    store = RunStore(tmp_path / "data")
    store.import_samples()
    assert record.list_studies(store) == []
    listed = sweeps.list_sweeps(store)
    assert len(listed)
    for sweep_id, knobs in zip(listed["sweep_id"], listed["knobs"], strict=True):
        if "model.batch_size" in knobs:
            assert len(load_batch_sweep(store, sweep_id).table) >= 1
        else:
            assert len(sweeps.load_sweep(store, sweep_id).results) >= 1
    from engine.studies.ladder import list_ladders

    for ladder_id in list_ladders(store):
        assert load_ladder(store, ladder_id)


def test_the_job_process_records_the_run_it_saves_for_every_study_its_job_serves(store):
    """What the job process calls when it saves a run (engine/jobs/job_process.py): the points that job runs, in
    any study (a job joined by a second study serves both), get the run and the studies' tags."""
    from engine.store.studies import StudyTable

    run = eager_run(store)
    for sid in ("one_study", "another_study"):
        record.create_study(store, "sweep", sid, [f"sweep:{sid}"], {}, [("fp32", run.request)])
        StudyTable(store).submitted(sid, 0, "job-shared")
    assert StudyTable(store).member_saved("job-shared", run.run_id) == ["another_study", "one_study"]
    for sid in ("one_study", "another_study"):
        study = record.load_study(store, sid)
        assert study.state == "finished" and study.run_ids == [run.run_id]
        assert f"sweep:{sid}" in store.get(run.run_id).tags
    assert StudyTable(store).member_saved("job-of-no-study", run.run_id) == []
