"""The job process's two-step warm-up: a gated standby imports at once but touches the GPU only once its
worker says the GPU is free (``JobProcess.warm``), so a GPU worker can start the next job process while a job
measures. Real spawned processes; the GPU step is a no-op here, the order of the messages is what is checked."""

from __future__ import annotations

import time

import pytest

from engine.jobs.job_process import JobProcess

pytestmark = pytest.mark.slow  # each test spawns processes that import torch


def _messages(proc: JobProcess, wait_s: float, until: str = "ready") -> list[str]:
    """The kinds of message the child sends within ``wait_s``, stopping at the first ``until`` (the step
    awaited): waiting on for "ready" after "imported" would sit out the whole ``wait_s``."""
    kinds = []
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.conn.poll(0.2):
            kind, _ = proc.conn.recv()
            kinds.append(kind)
            if kind in (until, "ready"):
                break
    return kinds


def test_a_gated_job_process_waits_for_the_go_ahead_before_it_reports_ready(tmp_path):
    proc = JobProcess(tmp_path, gated=True)
    try:
        first = _messages(proc, 120, until="imported")
        assert first == ["imported"]  # imports done, then it waits: no "ready" without warm()
        assert _messages(proc, 5) == []  # still waiting
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
        assert gated.wait_ready()["device_name"]  # wait_ready sends the go-ahead itself
        assert gated.warm_sent
    finally:
        plain.close()
        gated.close()


def test_a_gated_job_process_closed_before_its_go_ahead_exits_cleanly(tmp_path):
    proc = JobProcess(tmp_path, gated=True)
    assert _messages(proc, 120, until="imported") == ["imported"]
    proc.close()
    assert not proc.proc.is_alive()
    assert proc.proc.exitcode == 0


def test_a_gpu_worker_runs_its_next_job_in_the_process_it_started_during_the_previous_job(tmp_path):
    """A worker that serves a GPU (gpu_index set) starts the next job process when a job starts and hands it
    the GPU once that job is over; the next job runs in exactly that process. Driven through ``run_job`` with
    tiny eager CPU jobs (no GPU here: the GPU warm-up step is a no-op, the hand-over is what is checked)."""
    from engine.jobs import JobSystem
    from engine.jobs.worker import Worker
    from engine.settings.request import RunRequest

    def tiny(seed: int) -> RunRequest:
        return RunRequest.from_dict(
            {
                "device": "cpu",
                "model": {"source": "resnet18", "input_shape": [3, 32, 32]},
                "measure": {
                    "warmup_iters": 1,
                    "timed_iters": 5,
                    "layer_profile": False,
                    "accuracy": False,
                    "seed": seed,
                },
            }
        )

    system = JobSystem(tmp_path / "data")
    worker = Worker(system, gpu_index=0)
    worker._info = {"worker_id": worker.worker_id, "host": "test", "pid": 0, "routes": ["cpu"]}
    worker._standby = worker._spawn()
    try:
        first = system.submit(tiny(1), start_workers=False)
        worker.run_job(first.job_id)
        assert system.get(first.job_id).state == "done", system.get(first.job_id).error
        standby = worker._standby
        assert standby is not None and standby.gated and standby.warm_sent  # started during the job, now warm
        second = system.submit(tiny(2), start_workers=False)
        worker.run_job(second.job_id)
        done = system.get(second.job_id)
        assert done.state == "done", done.error
        assert done.pid == standby.proc.pid  # the job ran in the process started during the first job
        assert worker._standby is not None and worker._standby is not standby
    finally:
        if worker._standby is not None:
            worker._standby.close()
