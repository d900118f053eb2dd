"""Studies settle without a page looking: a settle-only supervisor (what the dashboard's host runs when its workers
are on other hosts) records the runs of jobs that ended, and the CLI settles before it reads. The jobs here are
records in the SQLite job table, ended as a worker on another host would end them; nothing polls the study."""

from __future__ import annotations

import time

import pytest

from engine.jobs import Job, JobSystem
from engine.jobs import supervisor as supervision
from engine.studies import record
from tests.fixture_runs import eager_run
from tests.test_jobs import wait_until


def _study_with_open_jobs(system: JobSystem, study_id: str) -> tuple[str, list[str]]:
    """A two-point study whose jobs are queued, then end (done, failed) in the job table only."""
    run = eager_run(system.store)
    record.create_study(system.store, "sweep", study_id, [f"sweep:{study_id}"], {}, [("a", run.request)] * 2)
    ids = []
    for i in range(2):
        job = Job(job_id=f"{study_id}-job{i}", request=run.request, key=f"k{i}", route="cpu", created_ts=time.time())
        system.table.insert_or_join(job, job.key)
        ids.append(job.job_id)
    record.submit_points(system.store, study_id, [0, 1], lambda r, it=iter(ids): next(it))
    assert record.load_study(system.store, study_id).state == "running"
    system.table.update(ids[0], state="done", run_id=run.run_id)
    system.table.update(ids[1], state="failed", error="out of memory")
    return run.run_id, ids


def test_a_settle_only_supervisor_records_what_ended_with_no_page_open(system):
    run_id, _ = _study_with_open_jobs(system, "remote_ended")
    paths = supervision.SupervisorPaths(system.root)
    supervision.ensure_settler(system)
    try:
        assert supervision.running(paths) and supervision.slots(paths) == []  # no worker started here
        study = wait_until(lambda: (s := record.load_study(system.store, "remote_ended")).state != "running" and s, 600)
        assert study.state == "incomplete" and study.run_ids == [run_id]
        assert [m.why_missing for m in study.missing] == ["failed: out of memory"]
        assert "sweep:remote_ended" in system.store.get(run_id).tags
        supervision.ensure_settler(system)  # one per data directory: a second call starts nothing
        assert supervision.running(paths)
    finally:
        system.stop_workers(timeout_s=5)
    assert not supervision.running(paths)


def test_the_cli_settles_studies_before_it_lists_or_reports(system, capsys):
    from engine.__main__ import main

    run_id, _ = _study_with_open_jobs(system, "cli_reads_it")
    assert main(["runs"]) == 0
    study = record.load_study(system.store, "cli_reads_it")
    assert study.state == "incomplete" and study.run_ids == [run_id]
    assert "sweep:cli_reads_it" in capsys.readouterr().out
    assert not supervision.running(supervision.SupervisorPaths(system.root))  # the CLI itself settled it


def test_a_point_run_by_a_process_of_its_own_is_running_while_it_lives(store):
    """The CLI's in-process auto-tune has no queue job: its point stays running while its process lives, and a
    process that died without saying so leaves it failed at the next settle, not running forever."""
    import subprocess
    import sys

    from engine.store.studies import PROCESS_JOB_PREFIX, StudyTable, process_job_id

    run = eager_run(store)
    record.create_study(store, "sweep", "by_a_process", [], {}, [("a", run.request), ("b", run.request)])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = f"{PROCESS_JOB_PREFIX}{process_job_id().split(':')[1]}:{dead.pid}"
    StudyTable(store).submitted("by_a_process", 0, process_job_id(), "running")
    StudyTable(store).submitted("by_a_process", 1, gone, "running")
    assert record.settle(store, "by_a_process", lambda job_id: pytest.fail(f"asked the queue for {job_id}")) == 1
    study = record.load_study(store, "by_a_process")
    assert [m.state for m in study.members] == ["running", "failed"] and study.state == "running"
    assert "ended before it finished" in study.members[1].error
