"""The job system with real worker processes, a real SQLite queue and tiny eager CPU jobs."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time

import pytest

from engine import jobs
from engine.errors import ConfigError
from engine.jobs import JobSystem, route_for
from engine.jobs.host import pid_alive, this_host
from engine.settings.request import RunRequest


def tiny(seed: int = 0, timed_iters: int = 5, side: int = 32) -> RunRequest:
    """resnet18 on a 3x32x32 input: a real eager CPU run that takes well under a second."""
    return RunRequest.from_dict(
        {
            "device": "cpu",
            "model": {"source": "resnet18", "input_shape": [3, side, side]},
            "measure": {
                "warmup_iters": 1,
                "timed_iters": timed_iters,
                "layer_profile": False,
                "accuracy": False,
                "seed": seed,
            },
        }
    )


def slow(seed: int = 100) -> RunRequest:
    """Runs for minutes unless stopped; reports progress every 10 iterations."""
    return tiny(seed, timed_iters=100_000, side=64)


def wait_until(fn, timeout_s: float = 60.0, every_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"condition not met within {timeout_s}s")


def finished(system: JobSystem, job_id: str, timeout_s: float = 60.0) -> jobs.Job:
    return wait_until(lambda: (j := system.get(job_id)).state in jobs.FINAL_STATES and j, timeout_s)


def running_with_progress(system: JobSystem, job_id: str) -> jobs.Job:
    return wait_until(lambda: (j := system.get(job_id)).state == "running" and j.stage == "timing" and j.pid and j)


def test_routes_follow_device_and_gpu_choice():
    cpu = tiny()
    assert route_for(cpu, None, cuda_available=True) == "cpu"
    cuda = cpu.with_changes(device="cuda")
    assert route_for(cuda, None, cuda_available=True) == "gpu"
    assert route_for(cuda, 1, cuda_available=True) == "gpu1"
    assert route_for(cuda, "NVIDIA H100 80GB HBM3", cuda_available=True) == "gputype-nvidiah10080gbhbm3"
    assert route_for(cpu.with_changes(device="auto"), None, cuda_available=False) == "cpu"
    assert jobs.worker_routes(0, "NVIDIA L4") == ["gpu0", "gputype-nvidial4", "gpu"]


def test_cuda_request_without_gpu_is_refused_before_queueing(system):
    with pytest.raises(ConfigError) as e:
        system.submit(tiny().with_changes(device="cuda"), start_workers=False)
    assert e.value.field == "device"
    assert system.list_jobs() == []


@pytest.mark.slow
def test_kill_9_of_the_job_process_fails_the_job_and_the_next_job_succeeds(system):
    victim = system.submit(slow())
    job = running_with_progress(system, victim.job_id)
    worker_pid = system.workers()[0]["pid"]
    os.kill(job.pid, signal.SIGKILL)
    failed = finished(system, victim.job_id, 20)
    assert failed.state == "failed"
    assert "SIGKILL" in failed.error and failed.hint
    nxt = system.submit(tiny(2))
    assert nxt.state == "queued" and nxt.position == 1
    nxt = finished(system, nxt.job_id)
    assert nxt.state == "done", (nxt.error, nxt.traceback)
    assert nxt.worker_id.endswith(f"/{worker_pid}")  # the worker survived its job process
    assert system.store.get(nxt.run_id).latency.iters == 5
    assert len(system.store.list_runs()) == 1  # nothing half written by the killed job
    again = system.submit(tiny(2))
    assert again.state == "done" and again.cached and again.run_id == nxt.run_id


@pytest.mark.slow
def test_kill_9_of_the_worker_fails_its_job_and_a_new_worker_takes_over(system):
    victim = system.submit(slow(101))
    job = running_with_progress(system, victim.job_id)
    old = system.workers()[0]["pid"]
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: not pid_alive(job.pid), 600)  # the job process does not outlive its worker
    new_pids = system.ensure_workers()
    assert old not in new_pids
    failed = system.get(victim.job_id)
    assert failed.state == "failed" and "stopped" in failed.error
    nxt = finished(system, system.submit(tiny(3)).job_id)
    assert nxt.state == "done"
    assert nxt.worker_id.endswith(f"/{new_pids[0]}")


@pytest.mark.slow
def test_five_sessions_submitting_four_jobs_each_compile_each_request_once(system):
    system.ensure_workers()
    requests = [tiny(10), tiny(11), tiny(10), tiny(11)]  # two distinct requests, each submitted 10 times
    handles: list[jobs.Job] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def session():
        try:
            for r in requests:
                job = system.submit(r)
                with lock:
                    handles.append(job)
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=session) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(handles) == 20
    outcomes = [finished(system, h.job_id, 90) for h in handles]
    assert all(o.state == "done" for o in outcomes), [(o.state, o.error) for o in outcomes]
    runs = system.store.list_runs()
    assert len(runs) == 2 and runs["key"].nunique() == 2  # compiled once per distinct request
    assert len({o.run_id for o in outcomes}) == 2
    executed = [j for j in system.list_jobs() if j.state == "done" and not j.cached]
    assert len(executed) == 2
    assert sum(h.joined for h in handles) + sum(h.cached for h in handles) == 18


@pytest.mark.slow
def test_restart_keeps_history_and_queue_and_requeues_an_interrupted_job(system, tmp_path):
    first = finished(system, system.submit(tiny(20)).job_id)
    assert first.state == "done"
    interrupted = system.submit(slow(102))
    running_with_progress(system, interrupted.job_id)
    assert system.stop_workers() == 1
    back = system.get(interrupted.job_id)
    assert back.state == "queued" and back.pid is None
    queued = system.submit(tiny(21), start_workers=False)

    restarted = JobSystem(tmp_path / "data")  # a fresh app process: new connections, same data dir
    listed = {j.job_id: j for j in restarted.list_jobs()}
    assert listed[first.job_id].state == "done"
    assert listed[interrupted.job_id].position == 1 and listed[queued.job_id].position == 2
    assert restarted.cancel(interrupted.job_id).state == "cancelled"  # keeps the test short
    restarted.ensure_workers()
    try:
        assert finished(restarted, queued.job_id).state == "done"
        assert restarted.store.exists(first.run_id)
    finally:
        restarted.stop_workers(timeout_s=5)


@pytest.mark.slow
def test_cancel_queued_never_runs_and_cancel_running_stops_it(system):
    running = system.submit(slow(103))
    waiting = system.submit(tiny(30))
    running_with_progress(system, running.job_id)
    assert system.get(waiting.job_id).position == 1

    assert system.cancel(waiting.job_id).state == "cancelled"
    system.cancel(running.job_id)
    stopped = finished(system, running.job_id, 20)
    assert stopped.state == "cancelled"
    assert stopped.finished_ts - stopped.updated_ts < 1
    nxt = finished(system, system.submit(tiny(31)).job_id)
    assert nxt.state == "done"
    never = system.get(waiting.job_id)
    assert never.state == "cancelled" and never.started_ts is None and never.run_id is None
    assert len(system.store.list_runs()) == 1


def test_torch_tensorrt_caches_live_in_the_data_dir(system, tmp_path):
    assert jobs.engine_cache_dir().is_relative_to(tmp_path / "data")
    assert jobs.engine_cache_dir().is_dir()
    assert jobs.timing_cache_path().parent.is_dir()


def test_a_gpu_type_is_matched_by_a_unique_part_of_its_name(system):
    """Registrations as GPU workers on other hosts write them (alive: this process's pid)."""
    for i, name in enumerate(("NVIDIA H100 80GB HBM3", "NVIDIA L4")):
        system.table.register_worker(
            {
                "worker_id": f"{this_host()}/gpu{i}/x",
                "host": this_host(),
                "pid": os.getpid(),
                "gpu_index": i,
                "gpu_name": name,
                "routes": [],
            }
        )
    assert system._resolve_gpu_type("H100") == "NVIDIA H100 80GB HBM3"
    assert system._resolve_gpu_type("nvidia") == "nvidia"  # ambiguous: left as given
    labels = [label for label, _ in system.gpu_choices()]
    assert labels[0] == "Any GPU" and "Any NVIDIA L4" in labels and "GPU 1: NVIDIA L4" in labels


@pytest.mark.slow
def test_a_submitter_that_exits_leaves_the_workers_running_and_a_dead_worker_is_replaced_within_10_s(tmp_path):
    """Issue 15, defect 4: a script that called submit() and exited took the workers down with it (they were owned
    by the last caller of ensure_workers), and a dead worker was replaced only when someone called ensure_workers.
    Now the supervisor owns the workers: nobody in this test starts or polls anything after the script exits."""
    import json
    import subprocess
    import sys

    from engine.store import PROJECT_ROOT

    root = tmp_path / "data"
    requests = [tiny(seed).to_dict() for seed in (60, 61, 62)]
    code = (
        "import json, sys; from engine.settings.request import RunRequest; from engine.jobs import JobSystem; "
        "s = JobSystem(sys.argv[1]); "
        "print(*[s.submit(RunRequest.from_dict(r)).job_id for r in json.loads(sys.argv[2])], flush=True)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(root), json.dumps(requests)],
        cwd=str(PROJECT_ROOT),
        env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    job_ids = out.stdout.split()
    assert len(job_ids) == 3
    observer = JobSystem(root)  # only reads: get() never starts a worker
    try:
        done = [finished(observer, j, 300) for j in job_ids]
        assert [d.state for d in done] == ["done"] * 3, [(d.state, d.error) for d in done]
        from engine.jobs.supervisor import SupervisorPaths

        paths = SupervisorPaths(root)
        old = wait_until(lambda: next((w["pid"] for w in observer.workers() if w["alive"]), None), 600)
        os.kill(old, signal.SIGKILL)
        killed_at = time.monotonic()

        def replacement() -> int | None:
            pid = int((paths.worker_pid("cpu")).read_text().split()[0])
            return pid if pid != old and pid_alive(pid) else None

        new = wait_until(replacement, 600, every_s=0.1)
        print(
            f"\nworker {old} killed; replacement {new} started {time.monotonic() - killed_at:.1f} s later, "
            "with no page open and nobody calling ensure_workers"
        )
        later = observer.submit(tiny(63), start_workers=False)
        assert finished(observer, later.job_id, 300).worker_id.endswith(f"/{new}")
    finally:
        observer.stop_workers(timeout_s=10)


@pytest.mark.slow
def test_a_job_whose_queue_message_was_lost_runs_once_and_the_identical_request_joins_it(system):
    """Issue 15, defect 3: a worker that died after huey handed it a job, before the job said running, left a
    job queued forever with no queue message, and every identical request joined it and never ran."""
    ghost = system.submit(tiny(70), start_workers=False)
    taken = system.huey("cpu").dequeue()  # what the dying worker took with it
    assert taken is not None and taken.id == ghost.job_id
    assert system.huey("cpu").pending() == []
    twin = system.submit(tiny(70), start_workers=False)
    assert twin.joined and twin.job_id == ghost.job_id
    system.ensure_workers()  # the supervisor's reconcile duty finds the lost message
    done = finished(system, ghost.job_id, 300)
    assert done.state == "done" and done.requeues == 1, (done.state, done.error)
    assert len(system.store.list_runs()) == 1  # ran once
    assert finished(system, twin.job_id, 10).run_id == done.run_id


def test_a_job_lost_from_the_queue_again_and_again_fails_with_the_reason(system):
    job = system.submit(tiny(71), start_workers=False)
    for expected in (1, 2, 3):
        system.huey("cpu").dequeue()
        assert system.requeue_lost(grace_s=0) == [job.job_id]
        assert system.get(job.job_id).requeues == expected and [t.id for t in system.huey("cpu").pending()] == [
            job.job_id
        ]
    system.huey("cpu").dequeue()
    system.requeue_lost(grace_s=0)
    failed = system.get(job.job_id)
    assert failed.state == "failed" and "lost from the queue 4 times" in failed.error and failed.hint
    present = system.submit(tiny(72), start_workers=False)  # a job whose message is there is left alone
    assert system.requeue_lost(grace_s=0) == [] and system.get(present.job_id).requeues == 0


@pytest.mark.slow
def test_the_supervisor_is_one_per_data_directory_and_outlives_stop_and_start(system, tmp_path):
    import subprocess
    import sys

    from engine.jobs.supervisor import SupervisorPaths, running
    from engine.store import PROJECT_ROOT

    system.ensure_workers()
    paths = SupervisorPaths(system.root)
    assert running(paths)
    first = int(paths.pid.read_text())
    second = subprocess.run(
        [sys.executable, "-m", "engine", "supervisor", "--data-dir", str(system.root), "--gpus", "0"],
        cwd=str(PROJECT_ROOT),
        env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0 and "already runs" in second.stderr  # idempotent: it exits at once
    assert int(paths.pid.read_text()) == first and pid_alive(first)
    assert system.stop_workers() == 1 and not running(paths) and not pid_alive(first)


TINY_MODEL = """
import torch


def build_model():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())


def example_inputs(batch_size):
    return (torch.randn(batch_size, 3, 16, 16),)
"""


def file_request(name: str, seed: int = 0) -> RunRequest:
    return RunRequest.from_dict(
        {
            "device": "cpu",
            "model": {"source": f"file:{name}"},
            "measure": {"warmup_iters": 1, "timed_iters": 5, "layer_profile": False, "accuracy": False, "seed": seed},
        }
    )


@pytest.mark.slow
def test_model_code_that_exits_or_segfaults_fails_its_job_not_the_app(system, tmp_path, monkeypatch):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    monkeypatch.setenv("TRTDASH_MODELS_DIR", str(models_dir))
    (models_dir / "exits.py").write_text(
        "import os\n\ndef build_model():\n    os._exit(7)\n\ndef example_inputs(batch_size):\n    return ()\n"
    )
    (models_dir / "segfaults.py").write_text(
        "import ctypes\n\ndef build_model():\n    ctypes.string_at(0)\n\n"
        "def example_inputs(batch_size):\n    return ()\n"
    )
    (models_dir / "tiny.py").write_text(TINY_MODEL)
    system.ensure_workers()
    exits = system.submit(file_request("exits.py"))  # model code never runs in this process
    segfaults = system.submit(file_request("segfaults.py"))
    fine = system.submit(file_request("tiny.py"))
    exited, crashed, done = (finished(system, j.job_id, 90) for j in (exits, segfaults, fine))
    assert exited.state == "failed" and "exited with code 7" in exited.error
    assert crashed.state == "failed" and "SIGSEGV" in crashed.error and "crashed" in crashed.hint
    assert done.state == "done", (done.error, done.traceback)
    assert system.store.get(done.run_id).key == fine.key  # the submit-time key is the stored run's key
    assert system.submit(file_request("tiny.py")).cached


@pytest.mark.slow
def test_model_code_that_calls_sys_exit_fails_its_job_with_the_reason(system, tmp_path, monkeypatch):
    """Issue 15, defect 8: sys.exit(0) in model code ended the job process with code 0 and no result."""
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    monkeypatch.setenv("TRTDASH_MODELS_DIR", str(models_dir))
    (models_dir / "exits0.py").write_text(
        "import sys\n\ndef build_model():\n    sys.exit(0)\n\ndef example_inputs(batch_size):\n    return ()\n"
    )
    job = finished(system, system.submit(file_request("exits0.py")).job_id, 300)
    assert job.state == "failed" and "sys.exit(0)" in job.error and "never exit" in job.hint


def test_errors_inside_a_job_become_a_message_and_a_hint():
    import torch

    message, hint = jobs.error_parts(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert message == "The GPU ran out of memory." and "smaller batch" in hint
    message, hint = jobs.error_parts(ConfigError("compile.min_block_size", "0 is below the minimum 1"))
    assert message == "0 is below the minimum 1" and "compile.min_block_size" in hint
    assert jobs.exit_reason(-11)[0] == "The job process was killed by SIGSEGV."
    assert jobs.exit_reason(3)[0] == "The job process exited with code 3 without a result."


# -- several GPUs: GPU workers stood in for by workers pinned to GPU indices that run eager CPU requests ----------
def queue_on(system: JobSystem, request: RunRequest, route: str) -> jobs.Job:
    """Queue a CPU request on a GPU route, as submit() does for a CUDA request pinned to that GPU. This
    machine has no GPU, so submit() refuses CUDA requests; the worker of "GPU i" runs what it is given."""
    from engine import runner

    key, _ = runner.request_key(request)
    now = time.time()
    job = jobs.Job(
        job_id=f"{route}-{request.measure.seed}",
        request=request.to_dict(),
        key=key,
        route=route,
        gpu=route[3:],
        created_ts=now,
        updated_ts=now,
    )
    system.table.insert_or_join(job, f"{key}:{route}")
    system.enqueue(job.job_id, route)
    return job


def gpu_worker_pid(system: JobSystem, index: int) -> int:
    return next(w["pid"] for w in system.workers() if w["gpu_index"] == index and w["alive"])


@pytest.mark.slow
def test_one_worker_per_gpu_runs_at_the_same_time_records_its_gpu_and_is_replaced_when_killed(system):
    pids = system.ensure_workers(gpu_count=2)
    assert len(set(pids)) == 3  # the CPU worker and one per GPU
    # every worker registers once it has imported torch: on a loaded machine the CPU one may come last
    wait_until(lambda: {tuple(w["routes"][:1]) for w in system.workers()} == {("cpu",), ("gpu0",), ("gpu1",)}, 600)

    # two jobs at once, one per GPU: they overlap in time and each result says which GPU ran it
    a, b = queue_on(system, tiny(40, timed_iters=200, side=64), "gpu0"), queue_on(system, tiny(41, 200, 64), "gpu1")
    done_a, done_b = finished(system, a.job_id, 300), finished(system, b.job_id, 300)
    assert done_a.state == done_b.state == "done", (done_a.error, done_b.error)
    assert max(done_a.started_ts, done_b.started_ts) < min(done_a.finished_ts, done_b.finished_ts)
    for job, index in ((done_a, 0), (done_b, 1)):
        env = system.store.get(job.run_id).env
        assert env["gpu_index"] == index and env["host"] == this_host() and "gpu_uuid" in env
        assert f"/gpu{index}/" in job.worker_id

    # the worker of GPU 0 is killed mid-job: that job fails naming GPU 0, GPU 1's job completes,
    # the job process does not outlive its worker, and a new worker takes GPU 0's place
    victim, other = queue_on(system, slow(104), "gpu0"), queue_on(system, tiny(42, 200, 64), "gpu1")
    job = running_with_progress(system, victim.job_id)
    old = gpu_worker_pid(system, 0)
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: not pid_alive(job.pid), 600)
    new_pids = system.ensure_workers(gpu_count=2)
    failed = system.get(victim.job_id)
    assert failed.state == "failed"
    assert "worker of GPU 0 stopped" in failed.error and f"/gpu0/{old}" in failed.error
    assert "GPU 0" in failed.hint
    survived = finished(system, other.job_id, 300)
    assert survived.state == "done" and system.store.get(survived.run_id).env["gpu_index"] == 1
    assert old not in new_pids and len(set(new_pids) & set(pids)) == 2  # only GPU 0's worker is new
    nxt = finished(system, queue_on(system, tiny(43), "gpu0").job_id, 300)
    assert nxt.state == "done" and nxt.worker_id.endswith(f"/gpu0/{gpu_worker_pid(system, 0)}")
    assert gpu_worker_pid(system, 0) in new_pids


def test_a_job_pinned_to_a_gpu_is_answered_only_by_a_run_measured_on_that_gpu(system, monkeypatch):
    """Two GPUs of one type give equal cache keys; only the recorded GPU index tells their runs apart."""
    from engine import capabilities, runner
    from engine.runner import execute
    from engine.store import new_run_id

    caps = dataclasses.replace(
        capabilities.detect(),
        cuda_available=True,
        gpus=(
            capabilities.Gpu(0, "NVIDIA H200", 141 << 30, "9.0"),
            capabilities.Gpu(1, "NVIDIA H200", 141 << 30, "9.0"),
        ),
    )
    monkeypatch.setattr(capabilities, "detect", lambda: caps)
    request = tiny(50).with_changes(device="cuda")
    key, env = runner.request_key(request, caps, 1)
    assert key == runner.request_key(request, caps, 0)[0]
    measured = execute(tiny(50), system.store, use_cache=False).result  # a real run, filed as each GPU's

    def file_as(gpu_index: int, created_at: str) -> str:
        env_ = {**env, "gpu_index": gpu_index, "gpu_uuid": f"GPU-{gpu_index}", "host": this_host()}
        return system.store.save(
            dataclasses.replace(measured, run_id=new_run_id(), key=key, env=env_, created_at=created_at)
        )

    on_gpu0_id = file_as(0, "2026-01-01T00:00:00+00:00")
    on_gpu0 = system.submit(request, gpu=0, start_workers=False)
    assert on_gpu0.cached and on_gpu0.state == "done" and on_gpu0.run_id == on_gpu0_id
    on_any = system.submit(request, start_workers=False)
    assert on_any.cached and on_any.run_id == on_gpu0_id  # any H200 may answer an unpinned request
    on_gpu1 = system.submit(request, gpu=1, start_workers=False)
    assert not on_gpu1.cached and on_gpu1.state == "queued" and on_gpu1.route == "gpu1"
    assert "waiting for a worker that serves 'gpu1'" in on_gpu1.detail
    with pytest.raises(ConfigError, match="GPU 2 does not exist"):
        system.submit(request, gpu=2, start_workers=False)

    on_gpu1_id = file_as(1, "2026-01-02T00:00:00+00:00")  # newer: the one find_by_key returns
    assert system.submit(request, gpu=1, start_workers=False).run_id == on_gpu1_id
    again = system.submit(request, gpu=0, start_workers=False)  # GPU 0's older run still answers GPU 0
    assert again.cached and again.run_id == on_gpu0_id


def test_a_dead_workers_job_names_the_device_it_served():
    assert jobs.worker_device("h/gpu3/12", None) == "GPU 3"
    assert jobs.worker_device("h/cpu/12", None) == "the CPU"
    assert jobs.worker_device("h/x/12", {"gpu_index": 0}) == "GPU 0"
    assert jobs.measured_on({"gpu_index": 1, "host": "h"}, 1, "h") and jobs.measured_on({"gpu_index": 1}, 1, None)
    assert not jobs.measured_on({"gpu_index": 1, "host": "h"}, 0, "h") and not jobs.measured_on({}, 0, None)
    assert not jobs.measured_on({"gpu_index": 1, "host": "other"}, 1, "h")


@pytest.mark.slow
def test_the_dashboards_job_panel_fails_a_dead_workers_job_and_starts_a_new_worker(system):
    """What a user waiting on the Profile page sees when the worker running their job is killed."""
    from streamlit.testing.v1 import AppTest

    def panel():
        from ui.job_panel import job_panel

        job_panel()

    victim = system.submit(slow(105))
    job = running_with_progress(system, victim.job_id)
    old = system.workers()[0]["pid"]
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: not pid_alive(job.pid), 600)
    at = AppTest.from_function(panel, default_timeout=600)
    at.session_state["my_jobs"] = [victim.job_id]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("failed: The worker of the CPU stopped" in e.value for e in at.error), [e.value for e in at.error]
    new = wait_until(lambda: [w["pid"] for w in system.workers() if w["alive"]], 600)
    assert old not in new
    # a fresh worker imports torch and warms a job process first: minutes on a loaded 2-core CI machine
    assert finished(system, system.submit(tiny(44)).job_id, 240).worker_id.endswith(f"/{new[0]}")


def test_a_jobs_progress_and_stage_as_the_job_panel_and_the_queue_overview_show_them():
    request = {"model": {"source": "resnet18"}, "backend": "eager"}
    queued = jobs.Job("a" * 32, request, "k", "cpu", position=2, created_ts=time.time() - 3, submitted_by="bob")
    assert (queued.progress, queued.stage_text) == (0.0, "queued, position 2")
    running = dataclasses.replace(
        queued,
        state="running",
        stage="timing",
        detail="50/100",
        fraction=1.7,
        started_ts=time.time() - 1.26,
        position=None,
    )
    assert (running.progress, running.stage_text) == (1.0, "timing · 50/100")
    assert dataclasses.replace(running, stage="", detail="", fraction=-0.5).stage_text == "starting"
    row = running.overview_row()
    assert row == {
        "job": "aaaaaaaa",
        "submitted by": "bob",
        "model": "resnet18",
        "backend": "eager",
        "state": "running",
        "position": None,
        "stage": "timing · 50/100",
        "route": "cpu",
        "elapsed_s": pytest.approx(1.3, abs=0.2),
    }
