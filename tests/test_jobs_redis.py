"""Redis mode: a real redis-server on a loopback port, two worker processes acting as two hosts."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest
from test_jobs import finished, tiny, wait_until

from engine.jobs import JobSystem
from engine.store import PROJECT_ROOT, RunStore

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
pytestmark = pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="redis-server is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    wait_until(lambda: _pings(client), 600)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def start_host(name: str, root, url: str) -> subprocess.Popen:
    """A worker with its own data directory and host name, as on a separate machine."""
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    env.pop("TRTDASH_DATA_DIR", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "worker",
            "--cpu",
            "--queue-url",
            url,
            "--data-dir",
            str(root / name),
            "--host-id",
            name,
            "--owner-pid",
            str(os.getpid()),
        ],
        cwd=str(PROJECT_ROOT),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_two_hosts_consume_one_redis_queue_and_results_land_in_one_store(tmp_path, redis_url, monkeypatch):
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "app"))
    app = JobSystem(tmp_path / "app", redis_url)
    hosts = [start_host(n, tmp_path, redis_url) for n in ("hostA", "hostB")]
    try:
        wait_until(lambda: len([w for w in app.workers() if w["alive"]]) == 2, 600)
        first = app.submit(tiny(40, timed_iters=20))
        joined = app.submit(tiny(40, timed_iters=20))
        assert joined.job_id == first.job_id and joined.joined
        second = app.submit(tiny(41, timed_iters=20))
        done = [finished(app, j.job_id, 60) for j in (first, second)]
        assert [d.state for d in done] == ["done", "done"], [(d.error, d.traceback) for d in done]
        assert {d.worker_id.split("/")[0] for d in done} == {"hostA", "hostB"}
        for d in done:  # shipped through Redis into the app's store, and kept on the host that ran it
            assert app.store.get(d.run_id).latency.iters == 20
            host_store = RunStore(tmp_path / d.worker_id.split("/")[0])
            assert host_store.exists(d.run_id)
        again = app.submit(tiny(41, timed_iters=20))
        assert again.cached and again.run_id == done[1].run_id
    finally:
        for h in hosts:
            h.terminate()
        for h in hosts:
            h.wait(20)
    assert all(h.returncode == 0 for h in hosts)
    wait_until(lambda: app.workers() == [], 600)  # clean stop unregisters


def test_what_the_remote_workers_cannot_run_is_refused_at_submit(tmp_path, redis_url, monkeypatch):
    """Issue 15, defect 8: with the workers on other hosts, nothing was checked at submit: an INT8 (W8A8) job for
    TensorRT-RTX GPUs was queued and failed after it started. The workers' registrations say what they run."""
    import time

    import pytest

    from engine.errors import ConfigError
    from engine.settings.request import RunRequest

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "app"))
    app = JobSystem(tmp_path / "app", redis_url)
    int8 = RunRequest.from_dict({"backend": "tensorrt", "device": "cuda", "compile": {"quantization": "int8"}})
    rtx = {
        "worker_id": "gpuhost/gpu0/1",
        "host": "gpuhost",
        "pid": 1,
        "gpu_index": 0,
        "gpu_name": "NVIDIA H200",
        "routes": ["gpu0", "gputype-nvidiah200", "gpu"],
        "device_name": "NVIDIA H200",
        "flavour": "tensorrt_rtx",
        "torch_tensorrt_version": "2.11.0",
        "compute_capability": "9.0",
        "gpu_memory_bytes": 140 * 2**30,
        "ram_bytes": 2 * 2**40,
        "started_ts": time.time(),
    }
    app.table.register_worker(rtx)  # as the worker on that host registers itself (heartbeat: now)
    with pytest.raises(ConfigError) as e:
        app.submit(int8)
    assert e.value.field == "compile.quantization" and "int8 activation" in e.value.message
    assert "the worker of NVIDIA H200 on gpuhost" in e.value.message
    assert app.list_jobs() == []
    weight_only = int8.with_changes(**{"compile.quantization": "int8_weight_only"})
    assert app.submit(weight_only).state == "queued"  # what the worker runs is queued as before
    full = dict(rtx, worker_id="other/gpu0/2", host="other", flavour="tensorrt")
    app.table.register_worker(full)  # one worker of the route could run it: queued for that one
    assert app.submit(int8).state == "queued"
