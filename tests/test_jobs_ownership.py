"""Whose job it is (issue 25): a joined job belongs to its first submitter, whoever cancels it and from wherever;
a resubmission after a crash never joins a job whose worker is gone; no password reaches a process that runs
model code."""

from __future__ import annotations

import os
import signal

import pytest
from test_jobs import finished, running_with_progress, slow, tiny, wait_until

from engine import jobs
from engine.access import ADMIN_PASSWORD_ENV, TEAM_PASSWORD_ENV, Identity
from engine.jobs.host import pid_alive, read_pid
from engine.jobs.supervisor import SupervisorPaths
from engine.store import RunStore
from engine.studies import record

ALICE, BOB, ROOT_ADMIN = Identity("alice"), Identity("bob"), Identity("root", admin=True)


def test_a_joiner_cancels_nothing_and_the_submitter_or_an_admin_does(system):
    job = system.submit(tiny(1), start_workers=False, submitted_by="alice")
    joined = system.submit(tiny(1), start_workers=False, submitted_by="bob")
    assert joined.joined and joined.job_id == job.job_id
    refused = system.cancel(job.job_id, by=BOB)
    assert refused.cancel_refused and refused.state == "queued" and not refused.cancel_requested
    assert system.get(job.job_id).state == "queued"
    # nobody named: who acts in this thread, the OS user without admin rights unless set (the dashboard sets it)
    assert system.cancel(job.job_id).cancel_refused
    jobs.set_submitter("bob")
    try:
        assert system.cancel(job.job_id).cancel_refused
        jobs.set_submitter("alice")
        done = system.cancel(job.job_id)
    finally:
        jobs.set_submitter("")
    assert not done.cancel_refused and done.state == "cancelled"
    other = system.submit(tiny(2), start_workers=False, submitted_by="alice")
    assert system.cancel(other.job_id, by=ROOT_ADMIN).state == "cancelled"
    assert system.cancel(other.job_id, by=BOB).cancel_refused == ""  # a final job: nothing to refuse


def test_cancelling_a_study_cancels_only_its_own_points(system):
    """A study's Cancel goes through the same rule: a point that joined someone else's job stops being followed,
    the job runs on."""
    from engine.studies import sweeps

    theirs = system.submit(tiny(3), start_workers=False, submitted_by="alice")
    plan = sweeps.plan_sweep(tiny(3), {sweeps.PRECISION_KNOB: ["fp32", "bf16"]}, sweep_id="joined_point", repeats=0)
    jobs.set_submitter("bob")
    try:
        submit = lambda r: system.submit(r, start_workers=False)  # noqa: E731
        execution = sweeps.SweepExecution(plan, RunStore(system.root), submit, system.get, system.cancel)
        execution.start()
        ids = [p.job_id for p in execution.points]
        assert theirs.job_id in ids
        execution.cancel()
    finally:
        jobs.set_submitter("")
    assert system.get(theirs.job_id).state == "queued"  # alice's job
    (own,) = [i for i in ids if i != theirs.job_id]
    assert system.get(own).state == "cancelled"  # bob's own point
    assert record.load_study(RunStore(system.root), execution.study_id).state == "cancelled"


def test_a_joiners_cancel_in_the_job_panel_stops_following_and_leaves_the_job_queued(system, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(jobs.AUTOSTART_ENV, "0")
    job = system.submit(tiny(5), start_workers=False, submitted_by="alice")

    def panel():
        import streamlit as st

        from engine.access import Identity
        from ui.job_panel import job_panel

        st.session_state["trtdash_identity"] = Identity("bob")
        job_panel()

    at = AppTest.from_function(panel, default_timeout=600)
    at.session_state["my_jobs"] = [job.job_id]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key=f"cancel:{job.job_id}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert system.get(job.job_id).state == "queued"
    assert at.session_state["my_jobs"] == []
    notes = at.session_state["my_job_notes"]
    assert [(n["state"], n["owner"]) for n in notes] == [("detached", "alice")]
    assert any("You stopped following" in i.value for i in at.info)


@pytest.mark.slow
def test_a_resubmission_after_the_supervisor_and_its_worker_were_killed_runs_instead_of_joining(system):
    """Issue 25, finding 4: the first identical resubmission joined the dead job and failed at once."""
    victim = system.submit(slow(110))
    job = running_with_progress(system, victim.job_id)
    paths = SupervisorPaths(system.root)
    supervisor, worker = read_pid(paths.pid), system.workers()[0]["pid"]
    for pid in (supervisor, worker):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not any(pid_alive(p) for p in (supervisor, worker, job.pid)), 600)
    again = system.submit(slow(110))
    assert not again.joined and again.job_id != victim.job_id
    dead = system.get(victim.job_id)
    assert dead.state == "failed" and "stopped" in dead.error
    running_with_progress(system, again.job_id)  # the new one runs (on a new supervisor's worker)
    refused = system.cancel(again.job_id, by=BOB)  # and, running, it is no more bob's to cancel than queued
    assert refused.cancel_refused and system.get(again.job_id).state == "running"
    assert not system.get(again.job_id).cancel_requested
    assert system.cancel(again.job_id).state in ("running", "cancelled")  # its submitter's cancel
    assert finished(system, again.job_id, 120).state == "cancelled"


def _environ(pid: int) -> dict[str, str]:
    raw = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


@pytest.mark.slow
def test_no_password_is_in_the_environment_of_the_supervisor_its_workers_or_a_job_process(system, monkeypatch):
    """Issue 25, finding 7: an admin-placed model .py runs in a job process and could read its environment."""
    team, admin = "team-secret-4711", "admin-secret-0815"
    monkeypatch.setenv(TEAM_PASSWORD_ENV, team)
    monkeypatch.setenv(ADMIN_PASSWORD_ENV, admin)
    job = running_with_progress(system, system.submit(slow(111)).job_id)
    worker = system.workers()[0]["pid"]
    supervisor = read_pid(SupervisorPaths(system.root).pid)
    for pid in (supervisor, worker, job.pid):
        env = _environ(pid)
        assert "TRTDASH_DATA_DIR" in env  # the environment was read
        assert TEAM_PASSWORD_ENV not in env and ADMIN_PASSWORD_ENV not in env, pid
        assert not any(team in v or admin in v for v in env.values()), pid
    system.cancel(job.job_id)
    assert finished(system, job.job_id, 120).state == "cancelled"
