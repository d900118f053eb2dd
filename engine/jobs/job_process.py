"""The job process: a spawned child of a worker that imports torch ahead of time (a warm standby), then
runs exactly one job through ``engine.runner.execute`` and reports its progress and outcome over a pipe.

A crash in native code (segfault, ``os._exit``, ``kill -9``, CUDA OOM) takes only this process down; the
worker turns its exit code into the job's error (``exit_reason``). It never outlives its worker: the
kernel kills it when the worker dies (parent-death signal), and a thread watches the parent as well.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, UserError
from engine.jobs.record import AUTOTUNE_KIND, RUN_KIND
from engine.jobs.routing import stored_run_on
from engine.models import load_limit
from engine.result import RunResult
from engine.settings.request import RunRequest
from engine.store import DATA_DIR_ENV, RunStore
from engine.store.studies import StudyTable

CHILD_READY_TIMEOUT_S = 120.0
CLOSE_GRACE_S = 15.0  # how long close() waits for a job process to exit before killing it


@dataclass(frozen=True)
class JobOrder:
    """What a worker hands its job process."""

    job_id: str
    request: dict[str, Any]
    key: str  # the cache key submit() computed
    ship: bool  # send the run back in the job record (a worker on another host)
    gpu_record: dict[str, Any]  # the physical GPU running it (gpu_index, gpu_uuid, host); {} on the CPU
    pinned: bool  # submitted for this GPU index: only a run measured on it answers it
    submitted_by: str = ""  # recorded on the run
    kind: str = RUN_KIND  # AUTOTUNE_KIND: run a stored auto-tune search (engine/studies/autotune/stored.py)


WARM = "warm"  # the worker's go-ahead to a gated job process: the GPU is free, warm it up now


class JobProcess:
    """A spawned child that imports torch and the engine ahead of time, then runs exactly one job.

    ``gated``: the child does its imports at once but waits for ``warm()`` before it touches the GPU (CUDA
    context, a tiny engine build): a GPU worker starts its next job process while a job runs, so that only
    the GPU warm-up is left between two jobs, and no other process uses the GPU while one measures."""

    def __init__(self, root: Path, *, gated: bool = False):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.cancel = ctx.Event()
        self.proc = ctx.Process(
            target=job_child_main, args=(child_conn, self.cancel, str(root), os.getpid(), gated), name="trtdash-job"
        )
        self.proc.start()
        child_conn.close()
        self.ready: dict[str, Any] | None = None
        self.gated = gated
        self.warm_sent = False

    def warm(self) -> None:
        """Let a gated child warm up the GPU (once; a no-op for an ungated one)."""
        if self.gated and not self.warm_sent:
            self.warm_sent = True
            with contextlib.suppress(OSError, BrokenPipeError):
                self.conn.send(WARM)

    def wait_ready(self, timeout_s: float = CHILD_READY_TIMEOUT_S) -> dict[str, Any]:
        self.warm()
        deadline = time.monotonic() + timeout_s
        while self.ready is None:
            if not self.conn.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError("the job process did not start in time")
            kind, info = self.conn.recv()
            if kind == "ready":
                self.ready = info
        return self.ready

    def poll_ready(self) -> bool:
        """True once the child has reported ready; reads what it sent so far without waiting."""
        while self.ready is None and self.conn.poll(0):
            kind, info = self.conn.recv()
            if kind == "ready":
                self.ready = info
        return self.ready is not None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(None)
        self.proc.join(CLOSE_GRACE_S)  # a process holding torch takes a while to tear down on a busy machine
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(2)


def error_parts(e: BaseException) -> tuple[str, str]:
    """(message, hint) the user sees for an exception raised while running a job."""
    if type(e).__name__ == "OutOfMemoryError":
        return ("The GPU ran out of memory.", "Use a smaller batch size or model, or a GPU with more memory.")
    if not isinstance(e, UserError):
        return f"{type(e).__name__}: {e}", ""
    hint = e.hint
    if isinstance(e, ConfigError):
        hint = hint or f"Change {e.field} and submit again."
    return e.message, hint


def exit_reason(code: int | None, stage: str = "") -> tuple[str, str]:
    """(error, hint) for a job process that ended without reporting, ``stage`` the last one it reported."""
    during = f" during {stage}" if stage else ""
    if code == -signal.SIGALRM:  # armed only around a .pt2 load (engine/models/load_limit.py)
        return load_limit.overrun_reason()
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hints = {
            "SIGKILL": "It was killed from outside, or by the kernel's out-of-memory killer: "
            "try a smaller batch or model, then run it again.",
            "SIGSEGV": "Native code (PyTorch, TensorRT or the CUDA driver) crashed. Try other compile "
            "settings or another Torch-TensorRT version; the worker log has details.",
            "SIGABRT": "Native code aborted (often a failed CUDA or TensorRT assertion); see the worker log.",
        }
        return f"The job process was killed by {name}{during}.", hints.get(name, "See the worker log.")
    return (
        f"The job process exited with code {code}{during} without a result.",
        "Model code (a model file's build_model(), example_inputs() or forward()) or a native library ended the "
        "process (os._exit or exit()); see the worker log.",
    )


class GpuRecordingStore(RunStore):
    """The store as a job process on a GPU worker sees it: each saved result also records the GPU.

    The runner fingerprints the only GPU the process sees (``cuda:0`` under ``CUDA_VISIBLE_DEVICES``);
    which physical GPU that is (index on the host, UUID) only the worker knows, and it is what tells
    two GPUs of one type apart. It is not part of the cache key: any GPU of the type may answer an
    unpinned request."""

    def __init__(self, root: Path | str, gpu_record: dict[str, Any]):
        super().__init__(root)
        self.gpu_record = gpu_record

    def save(self, result: RunResult, raw_files: dict[str, Path | bytes] | None = None) -> str:
        result.env.update(self.gpu_record)
        return super().save(result, raw_files)


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its worker dies (Linux): a job process must never
    outlive its worker holding the GPU, even while native code holds the GIL."""
    with contextlib.suppress(Exception):
        import ctypes  # noqa: PLC0415

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)


def _gpu_uuid() -> str | None:
    """The UUID of the one GPU this process sees, or None (no GPU, or a torch without the field)."""
    import torch  # noqa: PLC0415

    with contextlib.suppress(Exception):
        if torch.cuda.is_available():
            uuid_ = getattr(torch.cuda.get_device_properties(0), "uuid", None)
            return str(uuid_) if uuid_ else None
    return None


def _run_autotune(order: JobOrder, store: RunStore, progress: Any, cancelled: Any) -> str | None:
    """A stored auto-tune search, each trial a ``runner.execute`` in this process (its progress, its cancel);
    returns the best run's id. Imported late: engine.jobs never imports engine.studies at module level (the
    search's submit side, engine/studies/autotune/job.py, imports engine.jobs)."""
    from engine import runner  # noqa: PLC0415
    from engine.studies.autotune.stored import run_in_job  # noqa: PLC0415

    def measure(request: RunRequest, trial_progress: Any) -> RunResult:
        return runner.execute(request, store, trial_progress, gpu_index=0, submitted_by=order.submitted_by).result

    report = run_in_job(store.root, order.key.removeprefix(f"{AUTOTUNE_KIND}:"), store, measure, progress, cancelled)
    if cancelled():  # stopped between trials: what was measured is stored, the rest waits for a resume
        from engine.backends.base import Cancelled  # noqa: PLC0415

        raise Cancelled(f"job {order.job_id} cancelled")
    return report.best.run_id if report.best is not None else None


def job_child_main(conn: Connection, cancel: Any, root: str, parent_pid: int, gated: bool = False) -> None:
    """Body of a job process: warm up (imports; then, once the worker says so where ``gated``, the GPU), wait
    for one job, run it, report, exit."""
    _die_with_parent()
    if os.getppid() != parent_pid:  # the worker died before the line above took effect
        os._exit(3)
    os.environ[DATA_DIR_ENV] = root
    load_limit.end_process_on_overrun()  # this process runs one job: a .pt2 load past its limit ends it
    import torch  # noqa: F401, PLC0415 - the whole point of the standby child is importing this early

    from engine import (
        capabilities,  # noqa: PLC0415
        runner,
    )
    from engine.backends.base import Cancelled  # noqa: PLC0415

    def watch_parent() -> None:
        while True:  # a job process never outlives its worker
            if os.getppid() != parent_pid:
                os._exit(3)
            time.sleep(0.5)

    threading.Thread(target=watch_parent, daemon=True).start()
    from engine.backends import prewarm_gpu, prewarm_imports  # noqa: PLC0415

    prewarm_imports()
    if gated:
        conn.send(("imported", {}))
        try:
            go = conn.recv()
        except EOFError:
            return
        if go != WARM:
            return  # closed (None) before it was needed
    prewarm_gpu()
    caps = capabilities.detect()
    gpu = caps.gpus[0] if caps.gpus else None
    # what submit() checks requests against when the workers are on other hosts (Redis)
    conn.send(
        (
            "ready",
            {
                "gpu_name": gpu.name if gpu else None,
                "gpu_uuid": _gpu_uuid(),
                "device_name": gpu.name if gpu else f"CPU: {caps.cpu_name}",
                "flavour": caps.flavour,
                "torch_tensorrt_version": caps.torch_tensorrt_version,
                "compute_capability": gpu.compute_capability if gpu else None,
                "gpu_memory_bytes": gpu.memory_bytes if gpu else None,
                "ram_bytes": capabilities.ram_bytes(),
            },
        )
    )
    try:
        msg = conn.recv()
    except EOFError:
        return
    if msg is None:
        return
    order: JobOrder = msg
    job_id = order.job_id

    def progress(stage: str, fraction: float | None = None, detail: str = "") -> None:
        if cancel.is_set():
            raise Cancelled(f"job {job_id} cancelled")
        conn.send(("progress", stage, fraction, detail))

    try:
        store = GpuRecordingStore(root, order.gpu_record) if order.gpu_record else RunStore(root)
        if order.kind == AUTOTUNE_KIND:
            conn.send(("done", _run_autotune(order, store, progress, cancel.is_set), False, None))
            return
        host = None if order.ship else order.gpu_record.get("host")
        hit = stored_run_on(store, order.key, order.gpu_record.get("gpu_index"), host) if order.pinned else None
        if hit is not None:
            outcome = runner.Outcome(hit, cached=True)  # measured on this GPU while the job waited
        else:
            # the process sees one GPU, as cuda:0; a pinned job is not answered by a run from another GPU
            outcome = runner.execute(
                RunRequest.from_dict(order.request),
                store,
                progress,
                gpu_index=0,
                use_cache=not order.pinned,
                submitted_by=order.submitted_by,
            )
        if not order.ship:  # the study this job is a point of gets its run, tagged, whoever watches
            _record_membership(store, job_id, outcome.result.run_id)
        blob = store.export_run(outcome.result.run_id) if order.ship else None
        conn.send(("done", outcome.result.run_id, outcome.cached, blob))
    except Cancelled:
        conn.send(("cancelled",))
    except Exception as e:
        message, hint = error_parts(e)
        conn.send(("failed", message, hint, traceback.format_exc()))


def _record_membership(store: RunStore, job_id: str, run_id: str) -> None:
    """Record the run as the answer of every study point this job runs (and tag it). A failure here fails no
    measurement: the supervisor settles the point from the job record."""
    try:
        StudyTable(store).member_saved(job_id, run_id)
    except Exception:  # a locked database, say
        logging.getLogger(__name__).exception("job %s: recording its study membership failed", job_id)
