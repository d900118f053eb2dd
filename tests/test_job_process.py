"""The job process's two-step warm-up: a gated standby imports at once but touches the GPU only once its
worker says the GPU is free (``JobProcess.warm``), so a GPU worker can start the next job process while a job
measures. Real spawned processes; the GPU step is a no-op here, the order of the messages is what is checked."""

from __future__ import annotations

import time

from engine.jobs.job_process import JobProcess


def _messages(proc: JobProcess, wait_s: float) -> list[str]:
    kinds = []
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.conn.poll(0.2):
            kind, _ = proc.conn.recv()
            kinds.append(kind)
            if kind == "ready":
                break
    return kinds


def test_a_gated_job_process_waits_for_the_go_ahead_before_it_reports_ready(tmp_path):
    proc = JobProcess(tmp_path, gated=True)
    try:
        first = _messages(proc, 120)
        assert first == ["imported"]            # imports done, then it waits: no "ready" without warm()
        assert _messages(proc, 3) == []         # still waiting
        proc.warm()
        assert _messages(proc, 60) == ["ready"]
        assert proc.proc.is_alive()
    finally:
        proc.close()
    assert not proc.proc.is_alive()


def test_an_ungated_job_process_reports_ready_on_its_own_and_wait_ready_skips_the_imported_step(tmp_path):
    plain = JobProcess(tmp_path)
    gated = JobProcess(tmp_path, gated=True)
    try:
        assert plain.wait_ready()["device_name"]
        assert gated.wait_ready()["device_name"]      # wait_ready sends the go-ahead itself
        assert gated.warm_sent
    finally:
        plain.close()
        gated.close()


def test_a_gated_job_process_closed_before_its_go_ahead_exits_cleanly(tmp_path):
    proc = JobProcess(tmp_path, gated=True)
    assert _messages(proc, 120) == ["imported"]
    proc.close()
    assert not proc.proc.is_alive()
    assert proc.proc.exitcode == 0
