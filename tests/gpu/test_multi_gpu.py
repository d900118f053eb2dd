"""The shared-box job system on two GPUs (issue 10), in one test of a few minutes: one worker per GPU;
the same TensorRT job alone on each GPU and then one per GPU at once, timed as if alone; a job pinned to
GPU 1 running there while the worker of GPU 0 is killed mid-job and replaced; both GPUs' results in one
store, compared side by side. Prints the figures for the issue's note."""

from __future__ import annotations

import os
import signal
import time

import pytest
import torch

from bench.multi_gpu import (
    GPU_JOB_S,
    gpu_worker,
    measure_together_vs_alone,
    multicast_settings_lost,
    resubmit_together,
    result_line,
    run_at_once,
    trt_request,
    wait_gpu_workers_idle,
    watch,
)
from engine import jobs
from engine.compare import metrics, settings_table
from engine.jobs.host import pid_alive, this_host
from tests.test_jobs import wait_until

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs (an nvidia-h200-x2 machine)"),
]

# Each job is a fresh process timing a freshly built engine. On the 2xH200 the GPU-bound resnet50 b32 job
# measured 1.98-2.10 ms alone (spread 1-4%) and 1.96-1.99 ms together (bench/multi_gpu.py, 2026-11-24).
# 1.15 leaves room for that noise and still fails a real disturbance (two jobs sharing one GPU would be ~2x);
# bench/multi_gpu.py holds the tighter goal (<= 1.10).
TOGETHER_OVER_ALONE_MAX = 1.15


def say(text: str) -> None:
    print(text, flush=True)


def test_two_gpus_one_worker_each_undisturbed_timings_killed_worker_replaced_one_store(system):
    t0 = time.monotonic()
    names = {i: torch.cuda.get_device_name(i) for i in (0, 1)}

    # (a) the supervisor starts one worker per GPU and the CPU worker; NVLink multicast stays off in them
    pids = system.ensure_workers()
    assert len(set(pids)) == torch.cuda.device_count() + 1
    wait_gpu_workers_idle(system, (0, 1))
    workers = {i: gpu_worker(system, i) for i in (0, 1)}
    for i, w in workers.items():
        assert w["routes"][0] == f"gpu{i}" and w["gpu_name"] == names[i]
        assert not multicast_settings_lost(w["pid"])
        say(f"\nworker of GPU {i}: pid {w['pid']}, {w['gpu_name']}, uuid {w.get('gpu_uuid')}")
    uuids = {i: w.get("gpu_uuid") for i, w in workers.items()}
    if all(uuids.values()):
        assert uuids[0] != uuids[1]
    say(f"workers up in {time.monotonic() - t0:.0f} s")

    # (b) alone on each GPU, both at once, alone again: the two ran at the same time, each on its own GPU
    # GPU-bound (resnet50 b32, ~2 ms): resnet18 b1 is launch-bound and its fresh-process medians swung from
    # 0.34 to 0.66 ms alone on the 2xH200, which hides any effect of the other GPU (seen 2026-11-24)
    figures = measure_together_vs_alone(system, log=say, timed_iters=2000, model="resnet50", batch=32)
    for line in figures.lines():
        say(line)
    say(result_line(figures.max_ratio))
    together = figures.together
    assert together.overlap_s > 0, "the two jobs did not run at the same time"
    for job, i in zip(together.jobs, (0, 1), strict=True):
        assert job.route == f"gpu{i}" and f"/gpu{i}/" in job.worker_id
        env = system.store.get(job.run_id).env
        assert env["gpu_index"] == i and env["device_name"] == names[i] and env["host"] == this_host()
        assert env["gpu_uuid"] == uuids[i]
    # the together phase's request (resnet50 b32, not trt_request's resnet18 b1 default) pinned to GPU 1 again:
    # answered by GPU 1's own run, not GPU 0's
    again = resubmit_together(system, figures, 1)
    assert again.cached and again.run_id == together.jobs[1].run_id, (again.state, again.run_id)
    say(f"(b) done at {time.monotonic() - t0:.0f} s")

    # (c) a long job on GPU 0, a job pinned to GPU 1; the worker of GPU 0 is killed while its job is timing
    old = workers[0]["pid"]
    long = system.submit(trt_request(4, timed_iters=100_000), gpu=0)  # minutes: killed long before
    pinned = system.submit(trt_request(5), gpu=1)
    assert (long.route, pinned.route) == ("gpu0", "gpu1")
    deadline = time.monotonic() + GPU_JOB_S
    while (j := system.get(long.job_id)).stage != "timing" or not j.pid:
        assert j.state in jobs.ACTIVE_STATES and time.monotonic() < deadline, (j.state, j.stage, j.error)
        time.sleep(0.2)
    assert not multicast_settings_lost(j.pid)  # the job process inherited them too
    os.kill(old, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until(lambda: not pid_alive(j.pid), 15)  # its job process does not linger on the GPU
    say(f"worker {old} of GPU 0 killed; its job process {j.pid} gone {time.monotonic() - killed_at:.1f} s later")
    new_pids = system.ensure_workers()  # the supervisor replaced it already: waits for it
    failed = system.get(long.job_id)
    assert failed.state == "failed", failed.state
    assert "worker of GPU 0 stopped" in failed.error and failed.hint
    say(f"GPU 0's job: {failed.error} {failed.hint}")
    done1 = watch(system, [pinned.job_id]).jobs[0]
    assert done1.state == "done", (done1.error, done1.traceback[-2000:])
    assert f"/gpu1/{workers[1]['pid']}" in done1.worker_id
    assert system.store.get(done1.run_id).env["gpu_index"] == 1
    say(f"GPU 1's job completed meanwhile: {system.store.get(done1.run_id).latency.median_ms:.4f} ms")
    assert old not in new_pids and workers[1]["pid"] in new_pids
    new = wait_until(lambda: (w := gpu_worker(system, 0)) and w["pid"] != old and w, GPU_JOB_S)
    assert new["pid"] in new_pids
    nxt = run_at_once(system, [(trt_request(6), 0)]).jobs[0]
    assert nxt.worker_id.endswith(f"/gpu0/{new['pid']}")
    say(
        f"new worker {new['pid']} of GPU 0 ran the next job: "
        f"{system.store.get(nxt.run_id).latency.median_ms:.4f} ms; (c) done at {time.monotonic() - t0:.0f} s"
    )

    # (d) every result from both GPUs is in the one store and compares side by side, GPUs told apart
    measured = figures.run_ids["alone"] + figures.run_ids["together"] + [done1.run_id, nxt.run_id]
    assert set(measured) <= set(system.store.list_runs()["run_id"])
    runs = [system.store.get(r) for r in figures.run_ids["together"]]
    short = {i: names[i].removeprefix("NVIDIA ").strip() for i in (0, 1)}
    assert settings_table.gpu_labels(runs) == {runs[0].run_id: f"{short[0]} #0", runs[1].run_id: f"{short[1]} #1"}
    table = metrics.metric_table(runs)
    assert table["gpu"].tolist() == [f"{short[0]} #0", f"{short[1]} #1"]
    same = metrics.same_settings_across_gpus(runs)
    assert len(same) == 1 and same["gpus"][0] == sorted([f"{short[0]} #0", f"{short[1]} #1"])
    assert list(settings_table.differing_settings(runs).index) == ["env.gpu"]
    say(table[["gpu", "e2e_median_ms", "e2e_p90_ms", "delta_pct", "compile_s"]].to_string(index=False))
    everything = [system.store.get(r) for r in measured]
    say(
        metrics.metric_table(everything)[["gpu", "e2e_median_ms"]]
        .assign(seed=[r.request["measure"]["seed"] for r in everything])
        .to_string(index=False)
    )
    for note in metrics.hardware_notes(runs):
        say(f"note: {note}")
    say(f"total {time.monotonic() - t0:.0f} s")

    # asserted last, so that one device call reports (c) and (d) even when the timings are off
    assert figures.max_ratio <= TOGETHER_OVER_ALONE_MAX, figures.lines()
    assert all(figures.within_noise(g) for g in (0, 1)), figures.lines()
