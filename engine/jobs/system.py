"""The job system of one configuration (a data directory, and a Redis URL for several hosts): submit,
observe and cancel jobs, reconcile what dead workers left behind, and keep this host's supervisor running.

The queue is huey (``SqliteHuey`` in the data directory, ``RedisHuey`` with a Redis URL): one queue per
route (engine/jobs/routing.py), one task, ``run_job``, whose id is the job id. Job state lives in a job
table beside it (engine/jobs/table.py, engine/jobs/redis_table.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from huey import RedisHuey, SqliteHuey
from huey.api import Huey

from engine import access, capabilities
from engine.access import Action, Identity
from engine.errors import ConfigError
from engine.jobs import supervisor as supervision
from engine.jobs.host import HEARTBEAT_TIMEOUT_S, file_lock, pid_alive, read_pid, runs, this_host
from engine.jobs.record import Job, JobError, current_identity, current_submitter
from engine.jobs.redis_table import RedisJobTable
from engine.jobs.routing import pinned_gpu, route_for, slug, stored_run_on, worker_device
from engine.jobs.table import JobTable, SqliteJobTable
from engine.jobs.worker import run_job_task
from engine.jobs.worker_checks import check_against_workers
from engine.settings.request import RunRequest, validate
from engine.store import RunStore, data_dir

log = logging.getLogger(__name__)

AUTOSTART_ENV = "TRTDASH_AUTOSTART_WORKERS"  # "0" turns off starting the supervisor from submit()
STOP_GRACE_S = 10.0
# A queued job whose queue message has been missing this long was lost: a worker took the message and died
# before marking the job running (or a submitter died between recording the job and queueing it). A live
# worker marks a job running within milliseconds of taking its message.
LOST_MESSAGE_GRACE_S = 5.0
MAX_REQUEUES = 3


class JobSystem:
    """Submit, observe and cancel jobs; start and stop this host's supervisor and its workers.

    Everything is configured by ``root`` (job table, huey queue, store, worker pid files) and
    ``queue_url`` (Redis for several hosts; None for the embedded SQLite queue).
    """

    def __init__(self, root: Path | str | None = None, queue_url: str | None = None):
        self.root = Path(root) if root is not None else data_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.queue_url = queue_url or None
        self.table: JobTable = (
            RedisJobTable(self.queue_url) if self.queue_url else SqliteJobTable(self.root / "jobs.sqlite")
        )
        self._hueys: dict[str, Huey] = {}
        self._tasks: dict[str, Any] = {}
        self._store: RunStore | None = None
        self._supervisor: subprocess.Popen | None = None
        self._missing_since: dict[str, float] = {}  # queued job id -> when its queue message was first missed

    @property
    def store(self) -> RunStore:
        if self._store is None:
            self._store = RunStore(self.root)
        return self._store

    def huey(self, route: str) -> Huey:
        """The huey queue of a route, with the one task registered on it."""
        h = self._hueys.get(route)
        if h is None:
            if self.queue_url:
                h = RedisHuey(f"trtdash-{route}", url=self.queue_url, blocking=False, results=False)
            else:
                h = SqliteHuey(f"trtdash-{route}", filename=str(self.root / "queue.sqlite"), results=False)
            self._tasks[route] = h.task(name="run_job")(run_job_task)
            self._hueys[route] = h
        return h

    def enqueue(self, job_id: str, route: str) -> None:
        h = self.huey(route)
        h.enqueue(self._tasks[route].s(job_id, id=job_id))  # huey task id = job id, so revoke_by_id works

    # -- submit / observe ------------------------------------------------------------------------
    def submit(
        self,
        request: RunRequest,
        *,
        gpu: int | str | None = None,
        start_workers: bool | None = None,
        submitted_by: str | None = None,
    ) -> Job:
        """Queue a request, answer it from the store, or join the identical job already queued/running.

        Raises ``ConfigError`` for an invalid request, or one the machine that would run it refuses
        (before anything is queued). ``submitted_by`` defaults to ``record.current_submitter()``.
        """
        from engine import runner  # noqa: PLC0415 - torch only when submitting

        validate(request)
        caps = capabilities.detect()
        if isinstance(gpu, str) and gpu and not gpu.isdigit():
            gpu = self._resolve_gpu_type(gpu)
        route = route_for(request, gpu, caps.cuda_available)
        if route == "cpu" and request.device == "auto":
            request = dataclasses.replace(request, device="cpu")
        if route.startswith("gpu") and request.device == "auto":
            request = dataclasses.replace(request, device="cuda")
        pinned = pinned_gpu(route)
        gpu_index = pinned or 0
        if not self.queue_url:  # one host: what this machine cannot do is an error now
            runner.check_request(request, caps, gpu_index)
            if pinned is not None and pinned >= len(caps.gpus):
                raise ConfigError("gpu", f"GPU {pinned} does not exist; this machine has {len(caps.gpus)}")
        else:  # the workers are elsewhere: what their registrations say they cannot do
            check_against_workers(request, route, self.workers())
        key, _ = runner.request_key(request, caps, gpu_index)  # runs no model code in the app's process
        now = time.time()
        job = Job(
            job_id=uuid.uuid4().hex[:12],
            request=request.to_dict(),
            key=key,
            route=route,
            gpu="" if gpu is None else str(gpu),
            created_ts=now,
            updated_ts=now,
            submitted_by=submitted_by or current_submitter(),
        )
        if pinned is None:
            hit = self.store.find_by_key(key)
        else:  # not a run from another GPU of the same type: the user asked for this one
            hit = stored_run_on(self.store, key, pinned, self._pinned_host())
        if hit is not None:
            job.state, job.run_id, job.cached, job.stage, job.finished_ts = "done", hit.run_id, True, "cached", now
            job.started_ts, job.fraction, job.detail = now, 1.0, "answered from the store; nothing was run"
            self.table.insert_or_join(job, f"cached:{job.job_id}")
            return job
        found, joined = self.table.insert_or_join(job, f"{key}:{route}")
        if joined and found.state == "running" and self._fail_if_worker_dead(found).state != "running":
            # its worker is gone (killed with the supervisor, say): that job is failed now, and this one runs
            found, joined = self.table.insert_or_join(job, f"{key}:{route}")
        job = found
        if joined:
            job.joined = True
            return self._with_position(job)
        self.enqueue(job.job_id, route)
        if start_workers if start_workers is not None else self.autostart():
            self.ensure_workers(wait_s=0)
        return self.get(job.job_id)

    def _pinned_host(self) -> str | None:
        """Where a GPU index points: this host, or (Redis) any host with a worker for that index."""
        return None if self.queue_url else this_host()

    def _resolve_gpu_type(self, wanted: str) -> str:
        """A GPU type as given, or the one live worker GPU name it is a unique part of ("H100")."""
        names = {w["gpu_name"] for w in self.workers() if w["alive"] and w.get("gpu_name")}
        if wanted in names:
            return wanted
        matches = [n for n in names if slug(wanted) in slug(n)]
        return matches[0] if len(matches) == 1 else wanted

    def autostart(self) -> bool:
        """Whether submit() and ensure_workers() start this host's supervisor (off by default with Redis,
        where workers run as services on the GPU hosts; see docs/scaling.md)."""
        default = "0" if self.queue_url else "1"
        return os.environ.get(AUTOSTART_ENV, default) not in ("0", "false", "no")

    def get(self, job_id: str) -> Job:
        job = self.table.get(job_id)
        if job is None:
            raise JobError(f"Job {job_id!r} does not exist.", "Submit the request again.")
        if job.state == "running":
            job = self._fail_if_worker_dead(job)
        if job.state == "done" and job.run_id and not self.table.shares_store and not self.store.exists(job.run_id):
            blob = self.table.take_blob(job_id)
            if blob:
                self.store.import_run(blob)
        return self._with_position(job)

    def list_jobs(self, states: tuple[str, ...] | None = None, limit: int | None = 100) -> list[Job]:
        """Jobs newest first, optionally only those in ``states``."""
        jobs = self.table.select(states, limit)
        queued = []
        if any(j.state == "queued" for j in jobs):  # positions count every queued job, listed or not
            queued = sorted(self.table.select(("queued",)), key=lambda j: j.created_ts)
        positions: dict[str, int] = {}
        per_route: dict[str, int] = {}
        for j in queued:
            per_route[j.route] = per_route.get(j.route, 0) + 1
            positions[j.job_id] = per_route[j.route]
        for j in jobs:
            j.position = positions.get(j.job_id)
        return jobs

    def _with_position(self, job: Job) -> Job:
        if job.state == "queued":
            ahead = [
                j for j in self.table.select(("queued",)) if j.route == job.route and j.created_ts <= job.created_ts
            ]
            job.position = max(1, len(ahead))
            if not job.detail and not any(job.route in w.get("routes", ()) for w in self.workers() if w["alive"]):
                job.detail = f"waiting for a worker that serves {job.route!r} (none is running)"
        return job

    def cancel(self, job_id: str, by: Identity | None = None) -> Job:
        """Cancel a queued job (it never runs) or ask a running one to stop. Final jobs are left as they are.
        A job is its first submitter's: ``by`` (default: who acts in this thread) cancels it only as that or as an
        admin (``engine.access.refusal``). Anyone else (a joiner) gets it back unchanged, ``cancel_refused`` saying
        why: they only stop following it."""
        job = self.get(job_id)
        if job.active:
            reason = access.refusal(by or current_identity(), Action.CANCEL_OTHERS_JOB, job.submitted_by)
            if reason:
                job.cancel_refused = reason
                return job
        now = time.time()
        if self.table.update(
            job_id,
            only_if=("queued",),
            state="cancelled",
            stage="cancelled",
            detail="cancelled before it started",
            finished_ts=now,
        ):
            with contextlib.suppress(Exception):
                self.huey(job.route).revoke_by_id(job_id)
        else:
            self.table.update(job_id, only_if=("running",), cancel_requested=True, detail="cancelling...")
        return self.get(job_id)

    # -- workers -----------------------------------------------------------------------------------
    def workers(self) -> list[dict[str, Any]]:
        """Registered workers, each with ``alive`` (pid check on this host, heartbeat elsewhere)."""
        return [{**w, "alive": self._worker_alive(w)} for w in self.table.workers()]

    def gpu_choices(self) -> list[tuple[str, int | str | None]]:
        """(label, value for submit(gpu=...)) for every GPU a live worker serves; empty without GPUs."""
        live = [w for w in self.workers() if w["alive"] and w.get("gpu_name")]
        if not live:
            return []
        out: list[tuple[str, int | str | None]] = [("Any GPU", None)]
        here = this_host()
        for w in sorted(live, key=lambda w: (w["host"], w.get("gpu_index") or 0)):
            if w["host"] == here and not self.queue_url:
                out.append((f"GPU {w['gpu_index']}: {w['gpu_name']}", int(w["gpu_index"])))
        for name in sorted({w["gpu_name"] for w in live}):
            if (f"Any {name}", name) not in out:
                out.append((f"Any {name}", name))
        return out

    def _worker_alive(self, w: dict[str, Any]) -> bool:
        if w.get("host") == this_host():
            return pid_alive(int(w["pid"]))
        return time.time() - float(w.get("heartbeat_ts", 0)) < HEARTBEAT_TIMEOUT_S

    def _fail_if_worker_dead(self, job: Job) -> Job:
        info = next((w for w in self.table.workers() if w["worker_id"] == job.worker_id), None)
        if info is not None and self._worker_alive(info):
            return job
        if info is None and time.time() - (job.started_ts or 0) < HEARTBEAT_TIMEOUT_S:
            return job  # a worker that just exited cleanly requeues its job itself
        device = worker_device(job.worker_id, info)
        self.table.update(
            job.job_id,
            only_if=("running",),
            state="failed",
            finished_ts=time.time(),
            error=f"The worker of {device} stopped while running this job ({job.worker_id}): it was killed or crashed.",
            hint=f"A new worker for {device} takes over its queue; submit the request again.",
        )
        return self.table.get(job.job_id) or job

    def reconcile(self) -> None:
        """Fail running jobs whose worker is gone, requeue queued jobs whose queue message was lost, and drop
        registrations of dead workers on this host. The supervisor calls this every few seconds."""
        for job in self.table.select(("running",)):
            self._fail_if_worker_dead(job)
        self.requeue_lost()
        for w in self.table.workers():
            if w.get("host") == this_host() and not pid_alive(int(w["pid"])):
                self.table.remove_worker(w["worker_id"])

    def requeue_lost(self, grace_s: float = LOST_MESSAGE_GRACE_S) -> list[str]:
        """Queued jobs with no message in their queue for ``grace_s`` (seen over two calls or more) are queued
        again, at most ``MAX_REQUEUES`` times, then failed with the reason. Returns the ids requeued or failed.

        Running a job twice is impossible either way: a worker runs a job only after moving it from queued to
        running (a compare-and-set), so a second message for a job already taken is skipped."""
        now = time.time()
        queued = self.table.select(("queued",))
        pending: dict[str, set[str]] = {}
        for route in {j.route for j in queued}:
            pending[route] = {t.id for t in self.huey(route).pending()}
        queued = self.table.select(("queued",))  # after the queues were read: a job taken meanwhile is gone
        missing = {j.job_id: j for j in queued if j.job_id not in pending.get(j.route, set())}
        self._missing_since = {jid: self._missing_since.get(jid, now) for jid in missing}
        acted = []
        for jid, job in missing.items():
            if now - self._missing_since[jid] < grace_s:
                continue
            del self._missing_since[jid]
            if job.requeues >= MAX_REQUEUES:
                ok = self.table.update(
                    jid,
                    only_if=("queued",),
                    state="failed",
                    finished_ts=now,
                    error=f"The job was lost from the queue {job.requeues + 1} times before it started "
                    "(each time a worker took it and died).",
                    hint="Something kills this host's workers; see workers/*.log in the data directory, then "
                    "submit the request again.",
                )
            else:
                ok = self.table.update(
                    jid,
                    only_if=("queued",),
                    requeues=job.requeues + 1,
                    detail="queued again: the worker that took it died before starting it",
                )
                if ok:
                    self.enqueue(jid, job.route)
            if ok:
                log.warning(
                    "job %s had no queue message: %s", jid, "failed" if job.requeues >= MAX_REQUEUES else "queued again"
                )
                acted.append(jid)
        return acted

    # -- this host's supervisor and workers ----------------------------------------------------------
    def ensure_workers(self, gpu_count: int | None = None, wait_s: float = supervision.WORKERS_WAIT_S) -> list[int]:
        """Make sure this host's supervisor runs (it starts one worker per visible GPU and one for the CPU, and
        replaces any that dies); return the live worker pids, waiting up to ``wait_s`` for every slot to have one.

        Idempotent across threads and processes, and cheap when the supervisor runs (one lock probe and a few
        pid files: fine from a polling fragment with ``wait_s=0``). The supervisor is its own long-lived process:
        it does not end with the caller (a script that submits and exits leaves the workers running)."""
        if gpu_count is None:
            gpu_count = len(capabilities.detect().gpus)
        paths = supervision.SupervisorPaths(self.root)
        paths.note_client()
        if not supervision.running(paths):
            with file_lock(paths.start_lock):
                if not supervision.running(paths):
                    self._supervisor = supervision.start(paths, gpu_count, self.queue_url)
                    supervision.wait_running(paths, self._supervisor)
        slots = supervision.slots(paths) or supervision.slot_names(gpu_count)
        deadline = time.monotonic() + wait_s
        while True:
            pids = [
                pid
                for slot in slots
                if (pid := read_pid(paths.worker_pid(slot))) and runs(pid, supervision.WORKER_MARKER)
            ]
            if len(pids) == len(slots) or time.monotonic() >= deadline:
                return pids
            time.sleep(0.05)

    def stop_workers(self, timeout_s: float = STOP_GRACE_S + 5) -> int:
        """Stop this host's supervisor and its workers (SIGTERM, then SIGKILL after ``timeout_s``); a job a
        worker was running goes back to the queue. Returns how many workers stopped."""
        paths = supervision.SupervisorPaths(self.root)
        with file_lock(paths.start_lock):
            supervisor_pid = read_pid(paths.pid)
            if supervisor_pid and supervision.running(paths) and pid_alive(supervisor_pid):
                os.kill(supervisor_pid, signal.SIGTERM)
            pids = []
            for pidfile in paths.workers_dir.glob("*.pid"):
                if pidfile == paths.pid:
                    continue
                pid = read_pid(pidfile)
                if pid and runs(pid, supervision.WORKER_MARKER):  # never a process that reused a stale pid
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                    pids.append(pid)
            deadline = time.monotonic() + timeout_s
            for pid in [*pids, *([supervisor_pid] if supervisor_pid else [])]:
                while pid_alive(pid) and time.monotonic() < deadline:
                    self._reap()
                    time.sleep(0.05)
                if pid_alive(pid):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)
            self._reap()
            for pidfile in paths.workers_dir.glob("*.pid"):
                pidfile.unlink(missing_ok=True)
            self.reconcile()
        return len(pids)

    def _reap(self) -> None:
        if self._supervisor is not None and self._supervisor.poll() is not None:
            self._supervisor = None
