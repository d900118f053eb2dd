"""Jobs: queued, isolated, observable runs of ``engine.runner.execute`` in worker processes.

Public API (no streamlit here; pages poll it)::

    from engine import jobs

    job = jobs.submit(request, gpu=None)   # -> Job; cached key: state "done" at once (job.cached);
                                           #    identical request queued/running: that job (job.joined)
    job = jobs.get(job.job_id)             # state queued|running|done|failed|cancelled, stage, fraction,
                                           #    detail, position (1 = next, queued only), run_id, error, hint,
                                           #    submitted_by
    jobs.list_jobs(states=("queued", "running"), limit=50)   # newest first
    jobs.cancel(job_id, by=None)           # queued: never runs; running: stops at the next progress call,
                                           #    or its process is killed after CANCEL_GRACE_S; only by its
                                           #    submitter or an admin (by: engine.access.Identity, default
                                           #    the thread's): anyone else gets it back unchanged, with
                                           #    cancel_refused saying why
    jobs.ensure_workers()                  # start this host's supervisor if none runs (idempotent, any
                                           #    process, a few ms when it runs: fine from a polling fragment)
    jobs.settle_studies()                  # bring open stored studies up to date now (the supervisor does it too)
    jobs.stop_workers()                    # stop the supervisor and its workers; their jobs go back to the queue
    jobs.workers()                         # registered workers (host, queues, gpu name, heartbeat)
    jobs.gpu_choices()                     # [(label, value)] for a GPU picker; value goes to submit(gpu=)
    jobs.set_submitter(name, admin=False)  # who this thread submits and cancels as (default: OS user, no admin)
    jobs.engine_cache_dir(), jobs.timing_cache_path()   # Torch-TensorRT caches in the data directory

``gpu`` picks where a CUDA job runs: ``None`` any GPU worker, an ``int`` this host's GPU index, a
``str`` a GPU type (device name, e.g. "NVIDIA H100 80GB HBM3", or a unique part of it, "H100").
A result measured by a GPU worker records that GPU in ``result.env`` (``gpu_index`` on its host,
``gpu_uuid``, ``host``: two GPUs of one type differ only there). A job pinned to a GPU index is
answered from the store only by a run measured on that GPU; otherwise it runs there.

The package, by role (the flow of a job, top to bottom):

    record.py       the Job record, its states, who submitted it
    table.py        job tables: the interface and SQLite (``jobs.sqlite`` in the data directory)
    redis_table.py  the same records in Redis, for several hosts
    routing.py      which queue a request goes to, which queues a worker serves, GPU pinning
    system.py       JobSystem: submit, get, cancel, reconcile; the huey queues; ensure/stop workers
    worker_checks.py  at submit, with workers on other hosts: what their registrations say they would refuse
    supervisor.py   the long-lived process that owns this host's workers and runs periodic duties
    worker.py       a worker: one device, one job at a time, each in a fresh job process
    job_process.py  the job process: warmed up ahead, runs one job, reports over a pipe
    host.py         this host: its name, pid checks, lock files

The queue is huey: ``SqliteHuey`` in the data directory by default, ``RedisHuey`` when
``TRTDASH_QUEUE_URL=redis://host:port/db`` is set; the task code is the same. With Redis,
``ensure_workers()`` starts no workers unless ``TRTDASH_AUTOSTART_WORKERS=1`` (only a settle-only supervisor that
keeps this data directory's studies settled): run ``python -m engine
supervisor`` (or ``worker``) on each GPU host as a service; workers on other hosts keep results in their
own data directory and ship each run in the job record, and ``get`` imports it into the local store.
See docs/scaling.md.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from engine.access import Identity
from engine.jobs import supervisor as supervision
from engine.jobs.commands import supervisor_main, worker_main
from engine.jobs.job_process import error_parts, exit_reason
from engine.jobs.record import (
    ACTIVE_STATES,
    FINAL_STATES,
    STATES,
    Job,
    JobError,
    current_identity,
    current_submitter,
    set_submitter,
)
from engine.jobs.routing import measured_on, pinned_gpu, route_for, stored_run_on, worker_device, worker_routes
from engine.jobs.system import AUTOSTART_ENV, JobSystem
from engine.jobs.worker import CANCEL_GRACE_S, QUEUE_URL_ENV, Worker
from engine.settings.request import RunRequest
from engine.store import data_dir

__all__ = [
    "ACTIVE_STATES",
    "AUTOSTART_ENV",
    "CANCEL_GRACE_S",
    "FINAL_STATES",
    "QUEUE_URL_ENV",
    "STATES",
    "Job",
    "JobError",
    "JobSystem",
    "Worker",
    "cancel",
    "current_identity",
    "current_submitter",
    "default_system",
    "engine_cache_dir",
    "ensure_workers",
    "error_parts",
    "exit_reason",
    "get",
    "gpu_choices",
    "list_jobs",
    "measured_on",
    "pinned_gpu",
    "route_for",
    "set_submitter",
    "settle_studies",
    "stop_workers",
    "stored_run_on",
    "submit",
    "supervisor_main",
    "timing_cache_path",
    "worker_device",
    "worker_main",
    "worker_routes",
    "workers",
]


def engine_cache_dir() -> Path:
    """Torch-TensorRT's engine cache (``engine_cache_dir=`` of the compile call)."""
    p = data_dir() / "engine_cache"
    p.mkdir(parents=True, exist_ok=True)
    return p


def timing_cache_path() -> Path:
    """Torch-TensorRT's timing cache file (``timing_cache_path=``), shared by builds on this host."""
    p = data_dir() / "timing_cache.bin"
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


# -- module-level API on the configured system ---------------------------------------------------------
_SYSTEMS: dict[tuple[str, str | None], JobSystem] = {}
_SYSTEMS_LOCK = threading.Lock()


def default_system() -> JobSystem:
    """The job system for the current data directory and queue URL (one per process and configuration)."""
    key = (str(data_dir()), os.environ.get(QUEUE_URL_ENV) or None)
    with _SYSTEMS_LOCK:
        system = _SYSTEMS.get(key)
        if system is None:
            system = _SYSTEMS[key] = JobSystem(key[0], key[1])
        return system


def submit(request: RunRequest, *, gpu: int | str | None = None, submitted_by: str | None = None) -> Job:
    return default_system().submit(request, gpu=gpu, submitted_by=submitted_by)


def get(job_id: str) -> Job:
    return default_system().get(job_id)


def list_jobs(states: tuple[str, ...] | None = None, limit: int | None = 100) -> list[Job]:
    return default_system().list_jobs(states, limit)


def cancel(job_id: str, by: Identity | None = None) -> Job:
    return default_system().cancel(job_id, by)


def ensure_workers() -> list[int]:
    """Start this host's supervisor unless turned off: TRTDASH_AUTOSTART_WORKERS=0, or by default with Redis
    (there, workers run as services on the GPU hosts; see docs/scaling.md). Does not wait for the workers:
    cheap enough to call on every poll. Returns the pids of the live workers."""
    system = default_system()
    if system.autostart():
        return system.ensure_workers(wait_s=0)
    if system.queue_url:  # the workers run elsewhere: a settle-only supervisor keeps the studies settled here
        supervision.ensure_settler(system)
    return []


def settle_studies() -> int:
    """Bring every open stored study up to date with its jobs now (what the supervisor does every few seconds);
    the CLI calls it before it reads studies, so it sees their final state whatever runs here. Returns how many
    points changed; 0 when the queue cannot be reached (the study stays as recorded)."""
    try:
        return supervision.settle_studies(default_system())
    except Exception:  # an unreachable Redis, a locked database: reading goes on with what is recorded
        logging.getLogger(__name__).warning("settling the stored studies failed", exc_info=True)
        return 0


def stop_workers() -> int:
    return default_system().stop_workers()


def workers() -> list[dict[str, Any]]:
    return default_system().workers()


def gpu_choices() -> list[tuple[str, int | str | None]]:
    return default_system().gpu_choices()
