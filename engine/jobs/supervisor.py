"""The supervisor: one long-lived process per data directory and host that owns this host's workers.

It starts one worker per GPU (pinned with ``CUDA_VISIBLE_DEVICES``) and one for the CPU, replaces a worker
that dies within seconds (no page needs to be open), and runs the periodic duties of the job system
(``Supervisor.duties``): failing jobs whose worker died, requeueing jobs whose queue message was lost.
Whoever needs workers calls ``JobSystem.ensure_workers()`` (the dashboard at start, ``submit``), which
starts a supervisor unless one runs; or a service manager runs ``python -m engine supervisor``. Either
way there is one: it holds a lock file in the data directory for its whole life, and a second one exits at
once. A submitter never owns the workers: the supervisor outlives the process that started it.

Workers exit when their supervisor is gone (after the job they are running); a new supervisor adopts the
live workers it finds in the pid files. SIGTERM stops the supervisor and its workers (a running job goes
back to the queue). Files, in ``<data dir>/workers/``: ``supervisor.lock``, ``supervisor.pid``,
``supervisor.json`` (its slots), ``<slot>.pid`` and ``<slot>.log`` per worker, ``supervisor.log``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.access import without_secrets
from engine.jobs.host import file_lock, hold_lock, lock_is_held, pid_alive, read_pid, runs
from engine.jobs.record import JobError
from engine.store import DATA_DIR_ENV, PROJECT_ROOT
from engine.store.studies import StudyTable

if TYPE_CHECKING:
    from engine.jobs.system import JobSystem

log = logging.getLogger(__name__)

QUEUE_URL_ENV = "TRTDASH_QUEUE_URL"
WORKERS_WAIT_S = 30.0  # ensure_workers(): how long to wait for every slot to have a live worker
START_WAIT_S = 30.0  # how long a caller waits for a supervisor it started to take its lock
POLL_S = 0.25
REPLACE_BACKOFF_MAX_S = 8.0  # a worker that keeps dying at start is retried at most this far apart
SHORT_LIFE_S = 20.0  # a worker that died younger than this counts as a failed start
AUTOSTART_IDLE_EXIT_S = 3600.0  # a supervisor started by ensure_workers() exits after this long with nothing
#                                  queued or running and no caller (a service-managed one runs until stopped)
STOP_GRACE_S = 15.0
WORKER_MARKER = "worker_main"  # in every worker's command line (pid files may outlive their process)


@dataclass(frozen=True)
class SupervisorPaths:
    root: Path

    @property
    def workers_dir(self) -> Path:
        p = self.root / "workers"
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def lock(self) -> Path:
        return self.workers_dir / "supervisor.lock"

    @property
    def start_lock(self) -> Path:
        return self.root / "workers.lock"

    @property
    def pid(self) -> Path:
        return self.workers_dir / "supervisor.pid"

    @property
    def info(self) -> Path:
        return self.workers_dir / "supervisor.json"

    @property
    def client(self) -> Path:
        return self.workers_dir / "last_client"

    def worker_pid(self, slot: str) -> Path:
        return self.workers_dir / f"{slot}.pid"

    def worker_log(self, slot: str) -> Path:
        return self.workers_dir / f"{slot}.log"

    def note_client(self) -> None:
        """Someone needs the workers now (keeps an auto-started supervisor from exiting idle)."""
        with contextlib.suppress(OSError):
            self.client.touch()


def slot_names(gpu_count: int) -> list[str]:
    return ["cpu"] + [f"gpu{i}" for i in range(gpu_count)]


def running(paths: SupervisorPaths) -> bool:
    """Whether a supervisor holds this data directory's lock (robust against pid reuse)."""
    return lock_is_held(paths.lock)


def slots(paths: SupervisorPaths) -> list[str] | None:
    """The worker slots the running supervisor keeps, or None when it has not said yet."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        return list(json.loads(paths.info.read_text())["slots"])
    return None


def _python_command(module: str, function: str, args: list[str]) -> list[str]:
    # not `-m engine`: that imports the CLI and torch; a supervisor and a worker need neither
    return [
        sys.executable,
        "-c",
        f"import sys; from {module} import {function}; sys.exit({function}(sys.argv[1:]))",
        *args,
    ]


def _child_env(root: Path, cuda_visible: str | None = None) -> dict[str, str]:
    # keep the caller's PYTHONPATH (where torch_tensorrt or huey may live) after the project root
    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    # without the passwords: the workers' job processes run model code, which could read them there
    env = dict(without_secrets(os.environ), **{DATA_DIR_ENV: str(root), "PYTHONPATH": pythonpath})
    if cuda_visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible
    return env


def start(
    paths: SupervisorPaths,
    gpu_count: int,
    queue_url: str | None,
    idle_exit_s: float | None = AUTOSTART_IDLE_EXIT_S,
    settle_only: bool = False,
) -> subprocess.Popen:
    """Start a supervisor in its own session: it does not end with the caller."""
    args = ["--data-dir", str(paths.root), "--gpus", str(gpu_count)] + (["--settle-only"] if settle_only else [])
    if queue_url:
        args += ["--queue-url", queue_url]
    if idle_exit_s is not None:
        args += ["--idle-exit-s", str(idle_exit_s)]
    with open(paths.workers_dir / "supervisor.log", "ab") as logf:
        return subprocess.Popen(
            _python_command("engine.jobs.commands", "supervisor_main", args),
            cwd=str(PROJECT_ROOT),
            env=_child_env(paths.root),
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_running(paths: SupervisorPaths, proc: subprocess.Popen, timeout_s: float = START_WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not running(paths):
        if proc.poll() is not None and not running(paths):
            raise RuntimeError(
                f"the job supervisor exited at start (code {proc.returncode}); "
                f"see {paths.workers_dir / 'supervisor.log'}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the job supervisor did not start within {timeout_s:.0f} s; see {paths.workers_dir / 'supervisor.log'}"
            )
        time.sleep(0.02)


@dataclass
class Duty:
    """Something the supervisor does every ``every_s`` seconds, for as long as it runs."""

    name: str
    every_s: float
    run: Callable[[], None]
    next_at: float = 0.0


@dataclass
class _Slot:
    name: str
    proc: subprocess.Popen | None = None  # a worker this supervisor started
    pid: int | None = None  # its pid, or an adopted worker's
    started_at: float = 0.0
    failed_starts: int = 0
    not_before: float = 0.0  # no new worker before (monotonic): backoff after failed starts

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid is not None and pid_alive(self.pid)


@dataclass
class Supervisor:
    system: JobSystem
    gpu_count: int
    idle_exit_s: float | None = None
    poll_s: float = POLL_S
    settle_only: bool = False  # no workers here (they run on other hosts): only keep the studies settled
    stopping: bool = False
    _slots: dict[str, _Slot] = field(default_factory=dict)
    _idle_since: float = field(default_factory=time.monotonic)

    @property
    def paths(self) -> SupervisorPaths:
        return SupervisorPaths(self.system.root)

    def duties(self) -> list[Duty]:
        """Everything the supervisor does periodically, in order; duties that must go on with no browser open
        (settling stored studies) are here."""
        if self.settle_only:
            return [Duty("settle studies", 2.0, self.settle_studies), Duty("idle exit", 5.0, self.check_idle)]
        return [
            Duty("keep one worker per slot", 0.5, self.keep_workers),
            Duty("reconcile jobs", 2.0, self.system.reconcile),
            Duty("settle studies", 2.0, self.settle_studies),
            Duty("idle exit", 5.0, self.check_idle),
        ]

    def run(self) -> int:
        lock_fd = hold_lock(self.paths.lock)
        if lock_fd is None:
            log.info("a supervisor already runs for %s (pid %s)", self.system.root, read_pid(self.paths.pid))
            return 0
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        self.paths.pid.write_text(f"{os.getpid()}\n")  # workers re-read this: they belong to us now
        names = [] if self.settle_only else slot_names(self.gpu_count)
        self.paths.info.write_text(json.dumps({"pid": os.getpid(), "slots": names, "started_ts": time.time()}))
        for name in names:
            slot = self._slots[name] = _Slot(name)
            pid = read_pid(self.paths.worker_pid(name))
            if pid and runs(pid, WORKER_MARKER):  # a worker of an earlier supervisor: adopted, replaced when it dies
                slot.pid, slot.started_at = pid, time.monotonic()
                log.info("adopted worker %s of %s", pid, name)
        duties = self.duties()
        log.info("supervisor %s for %s: slots %s", os.getpid(), self.system.root, ", ".join(names))
        try:
            while not self.stopping:
                now = time.monotonic()
                for duty in duties:
                    if now >= duty.next_at and not self.stopping:
                        duty.next_at = now + duty.every_s
                        try:
                            duty.run()
                        except Exception:  # one failing duty (a locked database, say) must not end the rest
                            log.exception("supervisor duty %r failed", duty.name)
                time.sleep(self.poll_s)
        finally:
            self._stop_workers()
            with contextlib.suppress(OSError):
                if read_pid(self.paths.pid) == os.getpid():
                    self.paths.pid.unlink()
            os.close(lock_fd)
        return 0

    def settle_studies(self) -> None:
        """Stored studies go on with no browser open: points finished meanwhile get their runs, tagged."""
        settle_studies(self.system)

    def _on_term(self, signum: int, frame: object) -> None:
        self.stopping = True

    def keep_workers(self) -> None:
        """Start a worker for every slot that has none; a dead one is replaced at once, one that keeps dying
        young is retried with a growing pause (at most REPLACE_BACKOFF_MAX_S)."""
        now = time.monotonic()
        for slot in self._slots.values():
            if slot.alive():
                if slot.failed_starts and now - slot.started_at > SHORT_LIFE_S:
                    slot.failed_starts = 0
                continue
            if slot.pid is not None:  # it was running: a death to replace
                code = slot.proc.returncode if slot.proc is not None else None
                young = now - slot.started_at < SHORT_LIFE_S
                slot.failed_starts = slot.failed_starts + 1 if young else 0
                slot.not_before = now + (
                    min(REPLACE_BACKOFF_MAX_S, 2.0 ** (slot.failed_starts - 1)) if slot.failed_starts else 0.0
                )
                log.warning("worker %s of %s is gone (exit code %s); replacing it", slot.pid, slot.name, code)
                slot.proc, slot.pid = None, None
            if now < slot.not_before:
                continue
            slot.proc = self._start_worker(slot.name)
            slot.pid, slot.started_at = slot.proc.pid, now
            self.paths.worker_pid(slot.name).write_text(f"{slot.pid}\n")

    def check_idle(self) -> None:
        """An auto-started supervisor ends after ``idle_exit_s`` with no job queued or running and no caller."""
        if self.idle_exit_s is None:
            return
        if self.system.table.select(("queued", "running"), limit=1):
            self._idle_since = time.monotonic()
            return
        with contextlib.suppress(OSError):
            client_age_s = time.time() - self.paths.client.stat().st_mtime
            self._idle_since = max(self._idle_since, time.monotonic() - client_age_s)
        if time.monotonic() - self._idle_since > self.idle_exit_s:
            log.info("supervisor idle for %.0f s: stopping", self.idle_exit_s)
            self.stopping = True

    def _start_worker(self, slot: str) -> subprocess.Popen:
        args = ["--data-dir", str(self.system.root), "--owner-file", str(self.paths.pid)]
        if self.system.queue_url:
            args += ["--queue-url", self.system.queue_url]
        if slot == "cpu":
            args += ["--cpu"]
            cuda_visible = ""
        else:
            args += ["--gpu", slot[3:]]
            cuda_visible = slot[3:]
        with open(self.paths.worker_log(slot), "ab") as logf:
            return subprocess.Popen(
                _python_command("engine.jobs.commands", "worker_main", args),
                cwd=str(PROJECT_ROOT),
                env=_child_env(self.system.root, cuda_visible),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _stop_workers(self) -> None:
        """SIGTERM every worker (each puts its running job back in the queue), SIGKILL what is left."""
        live = [s for s in self._slots.values() if s.alive()]
        for s in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(s.pid, signal.SIGTERM)  # type: ignore[arg-type]
        deadline = time.monotonic() + STOP_GRACE_S
        for s in live:
            while s.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if s.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(s.pid, signal.SIGKILL)  # type: ignore[arg-type]
            with contextlib.suppress(OSError):
                if read_pid(self.paths.worker_pid(s.name)) == s.pid:
                    self.paths.worker_pid(s.name).unlink()
        if not self.settle_only:  # the jobs are the workers' hosts' to reconcile
            with contextlib.suppress(Exception):
                self.system.reconcile()


def ensure_settler(system: JobSystem) -> None:
    """Where this host starts no workers (Redis: they run as services on the GPU hosts, see docs/scaling.md), a
    settle-only supervisor keeps this data directory's studies settled with no page open: it imports the runs the
    other hosts ship and records them as the studies' members. Nothing to do when a supervisor runs here."""
    paths = SupervisorPaths(system.root)
    paths.note_client()
    if running(paths):
        return
    with file_lock(paths.start_lock):
        if not running(paths):
            wait_running(paths, start(paths, 0, system.queue_url, settle_only=True))


def settle_studies(system: JobSystem) -> int:
    """Bring every unfinished stored study up to date with its jobs (a point whose job was joined or finished while
    no one recorded it); finished runs get their study's tags. Returns how many points changed."""

    def lookup(job_id: str) -> tuple[str, str | None, str] | None:
        try:
            job = system.get(job_id)  # imports a run shipped from another host
        except JobError:
            return None
        return job.state, job.run_id, job.error

    return StudyTable(system.store).settle(lookup)
