"""The job system on a real GPU: a pinned GPU worker beside the CPU worker, TensorRT jobs through
the queue, the GPU's name on the result, and a kill -9 of a job process on the GPU."""

from __future__ import annotations

import os
import signal
import time

import pytest
import torch

from engine import jobs
from engine.settings.request import RunRequest
from tests.test_jobs import finished

GPU_JOB_S = 300.0  # a TensorRT compile in a fresh job process, not a tiny eager run

pytestmark = pytest.mark.gpu


def trt(seed: int = 0, timed_iters: int = 50) -> RunRequest:
    return RunRequest.from_dict(
        {
            "backend": "tensorrt",
            "device": "cuda",
            "model": {"source": "resnet18"},
            "compile": {"precision": "fp16"},
            "measure": {
                "warmup_iters": 20,
                "timed_iters": timed_iters,
                "profile_iters": 5,
                "seed": seed,
                "compare_eager": False,
            },
        }
    )


def test_gpu_jobs_run_on_a_pinned_gpu_worker_and_survive_a_killed_job(system):
    pids = system.ensure_workers()
    n_gpus = torch.cuda.device_count()
    assert len(pids) == n_gpus + 1  # one worker per GPU + the CPU worker
    gpu_name = torch.cuda.get_device_name(0)

    t0 = time.monotonic()
    job = system.submit(trt(), gpu=0)
    assert job.route == "gpu0"
    done = finished(system, job.job_id, GPU_JOB_S)
    assert done.state == "done", (done.error, done.traceback[-2000:])
    result = system.store.get(done.run_id)
    print(
        f"\nqueue: resnet18 fp16 TensorRT job done in {time.monotonic() - t0:.1f} s, "
        f"median {result.latency.median_ms:.3f} ms on {result.env['device_name']}, "
        f"{result.engine_count} engine(s), worker {done.worker_id}"
    )
    assert result.env["device_name"] == gpu_name and result.engine_count >= 1
    assert result.latency.timer == "cuda_events" and len(result.layers) > 0

    again = system.submit(trt(), gpu=0)  # cached: answered at once from the store
    assert again.cached and again.run_id == done.run_id

    victim = system.submit(trt(seed=1, timed_iters=100_000), gpu=0)  # minutes: killed long before
    deadline = time.monotonic() + 300
    while (j := system.get(victim.job_id)).stage != "timing" and time.monotonic() < deadline:
        assert j.state in jobs.ACTIVE_STATES, (j.state, j.error)
        time.sleep(0.2)
    os.kill(j.pid, signal.SIGKILL)
    failed = finished(system, victim.job_id, GPU_JOB_S)
    assert failed.state == "failed" and failed.error
    print(f"killed GPU job: {failed.error}")

    after = finished(system, system.submit(trt(seed=2), gpu=0).job_id, GPU_JOB_S)
    assert after.state == "done", after.error
    print(f"next GPU job after the kill: median {system.store.get(after.run_id).latency.median_ms:.3f} ms")
