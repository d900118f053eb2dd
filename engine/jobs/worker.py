"""The worker: serves one device (the CPU, or one GPU pinned with ``CUDA_VISIBLE_DEVICES``), takes jobs
from its queues one at a time and runs each in a fresh job process (engine/jobs/job_process.py) that was
warmed up before the job arrived.

Workers are started and replaced by the supervisor (engine/jobs/supervisor.py), or run as services with
``python -m engine worker``. A worker stopped with SIGTERM puts the job it was running back in the queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.jobs.host import HEARTBEAT_S, pid_alive, this_host
from engine.jobs.job_process import JobOrder, JobProcess, exit_reason
from engine.jobs.record import Job
from engine.jobs.routing import pinned_gpu, worker_routes

if TYPE_CHECKING:
    from engine.jobs.system import JobSystem

log = logging.getLogger(__name__)

QUEUE_URL_ENV = "TRTDASH_QUEUE_URL"
IDLE_POLL_S = 0.05  # how often an idle worker looks at its queues
PROGRESS_WRITE_S = 0.25  # progress rows are written at most this often (stage changes always)
CANCEL_GRACE_S = 10.0  # a cancelled job that reports no progress this long is killed
# what a worker publishes from its warmed-up job process: submit() checks requests against it (Redis)
MACHINE_FIELDS = ("flavour", "torch_tensorrt_version", "compute_capability", "gpu_memory_bytes", "ram_bytes")

CURRENT_WORKER: Worker | None = None


def run_job_task(job_id: str) -> None:
    """The huey task: run a job on the worker that dequeued it."""
    if CURRENT_WORKER is None:
        raise RuntimeError("run_job executes only inside a worker process")
    CURRENT_WORKER.run_job(job_id)


class Worker:
    """Takes jobs from its queues one at a time and runs each in a fresh child process."""

    def __init__(
        self,
        system: JobSystem,
        *,
        gpu_index: int | None,
        owner_pid: int | None = None,
        owner_file: Path | None = None,
        worker_id: str | None = None,
        poll_s: float = IDLE_POLL_S,
    ):
        self.system = system
        self.table = system.table
        self.gpu_index = gpu_index
        self.owner_pid = owner_pid
        self.owner_file = owner_file
        self._owner_checked = 0.0
        self.poll_s = poll_s
        slot = "cpu" if gpu_index is None else f"gpu{gpu_index}"
        self.worker_id = worker_id or f"{this_host()}/{slot}/{os.getpid()}"
        self.stopping = False
        self.routes: list[str] = []
        self.gpu_record: dict[str, Any] = {}  # written into result.env of every run measured here
        self._standby: JobProcess | None = None

    def _spawn(self, *, gated: bool = False) -> JobProcess:
        return JobProcess(self.system.root, gated=gated)

    def _owner_gone(self) -> bool:
        """True when the app that started this worker (and every app that adopted it since) is gone."""
        if time.monotonic() - self._owner_checked < 1.0:
            return False
        self._owner_checked = time.monotonic()
        if self.owner_file is not None:
            with contextlib.suppress(OSError, ValueError):
                self.owner_pid = int(self.owner_file.read_text().split()[0])
        return self.owner_pid is not None and not pid_alive(self.owner_pid)

    def run(self) -> int:
        global CURRENT_WORKER
        CURRENT_WORKER = self
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        self._standby = self._spawn()
        info = self._standby.wait_ready()
        gpu_name = info.get("gpu_name") if self.gpu_index is not None else None
        gpu_uuid = info.get("gpu_uuid") if self.gpu_index is not None else None
        self.routes = worker_routes(self.gpu_index, gpu_name)
        if self.gpu_index is not None:
            self.gpu_record = {"gpu_index": self.gpu_index, "gpu_uuid": gpu_uuid, "host": this_host()}
        self._info = {
            "worker_id": self.worker_id,
            "host": this_host(),
            "pid": os.getpid(),
            "gpu_index": self.gpu_index,
            "gpu_name": gpu_name,
            "gpu_uuid": gpu_uuid,
            "routes": self.routes,
            "device_name": info.get("device_name"),
            "started_ts": time.time(),
            "job_id": None,
            "standby_ready": True,
            **{k: info.get(k) for k in MACHINE_FIELDS},
        }
        self.table.register_worker(self._info)
        beat = threading.Thread(target=self._heartbeat, daemon=True)
        beat.start()
        log.info("worker %s serving %s", self.worker_id, ", ".join(self.routes))
        hueys = [self.system.huey(r) for r in self.routes]
        try:
            while not self.stopping and not self._owner_gone():
                task = None
                for h in hueys:
                    task = h.dequeue()
                    if task is not None:
                        h.execute(task)
                        break
                if task is None:
                    self._note_standby_ready()
                    time.sleep(self.poll_s)
        finally:
            if self._standby is not None:
                self._standby.close()
            self.table.remove_worker(self.worker_id)
            CURRENT_WORKER = None
        return 0

    def _set_info(self, **values: Any) -> None:
        self._info.update(values)
        self.table.register_worker(self._info)

    def _note_standby_ready(self) -> None:
        """Publish when the next job process has finished warming up (the UI and benchmarks wait on it)."""
        sb = self._standby
        if sb is not None and sb.ready is None:
            sb.warm()  # nothing runs now: a gated standby may use the GPU
            if sb.poll_ready():
                self._set_info(standby_ready=True)

    def _on_term(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _heartbeat(self) -> None:
        while not self.stopping:
            with contextlib.suppress(Exception):
                self.table.heartbeat(self.worker_id)
            time.sleep(HEARTBEAT_S)

    def run_job(self, job_id: str) -> None:
        now = time.time()
        if not self.table.update(
            job_id,
            only_if=("queued",),
            state="running",
            worker_id=self.worker_id,
            started_ts=now,
            stage="starting",
            detail=f"on {self.worker_id}",
        ):
            return  # cancelled while queued
        job = self.table.get(job_id)
        assert job is not None
        child = self._standby if self._standby is not None and self._standby.proc.is_alive() else self._spawn()
        child.warm()  # a gated standby that has not warmed up yet does so now, before it runs the job
        # A GPU worker starts the next job process now: it imports (a CPU core, no GPU) while this job runs and
        # warms up the GPU only once this job is over, so two jobs are a GPU warm-up apart instead of a whole
        # start (~12 s on the H200). A CPU worker's jobs are timed on the CPU: its next one starts afterwards.
        gpu = self.gpu_index is not None
        self._standby = self._spawn(gated=True) if gpu and not self.stopping else None
        self._set_info(job_id=job_id, standby_ready=False)
        try:
            self._supervise(job, child)
        finally:
            child.close()
            if self._standby is not None and self.stopping:
                self._standby.close()
                self._standby = None
            elif self._standby is None and not self.stopping:
                self._standby = self._spawn()  # warm up the next one between jobs, never during one
            if self._standby is not None:
                self._standby.warm()
            self._set_info(job_id=None)

    def _supervise(self, job: Job, child: JobProcess) -> None:
        """Hand the job to the child, relay its progress, honour cancel and stop, record the outcome."""
        child.conn.send(
            JobOrder(
                job.job_id,
                job.request,
                job.key,
                ship=not self.table.shares_store,
                gpu_record=self.gpu_record,
                pinned=pinned_gpu(job.route) is not None,
                submitted_by=job.submitted_by,
                kind=job.kind,
            )
        )
        self.table.update(job.job_id, only_if=("running",), pid=child.proc.pid)
        last_write, last_stage, cancel_at = 0.0, "", None
        next_check = time.monotonic()
        eof = False
        while True:
            if not eof and child.conn.poll(0.1):
                try:
                    msg = child.conn.recv()
                except (EOFError, OSError):  # the child is gone; its exit code says why
                    child.proc.join(5)
                    eof, msg = True, None
                if msg is None:
                    pass
                elif msg[0] == "ready":
                    child.ready = msg[1]
                elif msg[0] == "imported":  # a gated child's first step; its "ready" follows
                    pass
                elif msg[0] == "progress":
                    _, stage, fraction, detail = msg
                    t = time.monotonic()
                    if stage != last_stage or t - last_write >= PROGRESS_WRITE_S:
                        self.table.update(
                            job.job_id, only_if=("running",), stage=stage, fraction=fraction, detail=detail
                        )
                        last_write, last_stage = t, stage
                else:
                    self._finish(job, msg)
                    return
            # checked after every message too: a chatty job must still see cancel and stop
            if eof or (not child.proc.is_alive() and not child.conn.poll(0)):
                child.proc.join(1)
                error, hint = exit_reason(child.proc.exitcode, last_stage)
                if cancel_at is not None:
                    self._finish(job, ("cancelled",))
                else:
                    self._finish(job, ("failed", error, hint, ""))
                return
            if self.stopping:
                child.proc.kill()
                child.proc.join(5)
                self.table.update(
                    job.job_id,
                    only_if=("running",),
                    state="queued",
                    stage="",
                    fraction=None,
                    worker_id="",
                    pid=None,
                    started_ts=None,
                    detail="interrupted by a worker shutdown; waiting to run again",
                )
                self.system.enqueue(job.job_id, job.route)
                return
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.5
                current = self.table.get(job.job_id)
                if cancel_at is None and current is not None and current.cancel_requested:
                    child.cancel.set()
                    cancel_at = time.monotonic()
                if cancel_at is not None and time.monotonic() - cancel_at > CANCEL_GRACE_S:
                    child.proc.kill()

    def _finish(self, job: Job, msg: tuple) -> None:
        now = time.time()
        kind = msg[0]
        if kind == "done":
            _, run_id, cached, blob = msg
            if blob is not None:
                self.table.put_blob(job.job_id, blob)
            self.table.update(
                job.job_id,
                state="done",
                run_id=run_id,
                cached=bool(cached),
                stage="done",
                fraction=1.0,
                detail="answered from the store" if cached else "stored",
                finished_ts=now,
            )
        elif kind == "cancelled":
            self.table.update(
                job.job_id, state="cancelled", stage="cancelled", detail="cancelled while running", finished_ts=now
            )
        else:
            _, error, hint, tb = msg
            self.table.update(job.job_id, state="failed", error=error, hint=hint, traceback=tb, finished_ts=now)
            log.warning("job %s failed: %s", job.job_id, error)
