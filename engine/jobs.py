"""Jobs: queued, isolated, observable runs of ``engine.runner.execute`` in worker processes.

Public API (no streamlit here; pages poll it)::

    from engine import jobs

    job = jobs.submit(request, gpu=None)   # -> Job; cached key: state "done" at once (job.cached);
                                           #    identical request queued/running: that job (job.joined)
    job = jobs.get(job.job_id)             # state queued|running|done|failed|cancelled, stage, fraction,
                                           #    detail, position (1 = next, queued only), run_id, error, hint
    jobs.list_jobs(states=("queued", "running"), limit=50)   # newest first
    jobs.cancel(job_id)                    # queued: never runs; running: stops at the next progress call,
                                           #    or its process is killed after CANCEL_GRACE_S
    jobs.ensure_workers()                  # start this host's workers if none run (idempotent, any process,
                                           #    ~5 ms when they run: fine to call from a polling fragment)
    jobs.stop_workers()                    # stop them; a job they were running goes back to the queue
    jobs.workers()                         # registered workers (host, queues, gpu name, heartbeat)
    jobs.gpu_choices()                     # [(label, value)] for a GPU picker; value goes to submit(gpu=)
    jobs.engine_cache_dir(), jobs.timing_cache_path()   # Torch-TensorRT caches in the data directory

``gpu`` picks where a CUDA job runs: ``None`` any GPU worker, an ``int`` this host's GPU index, a
``str`` a GPU type (device name, e.g. "NVIDIA H100 80GB HBM3", or a unique part of it, "H100").
A result measured by a GPU worker records that GPU in ``result.env`` (``gpu_index`` on its host,
``gpu_uuid``, ``host``: two GPUs of one type differ only there). A job pinned to a GPU index is
answered from the store only by a run measured on that GPU; otherwise it runs there.

How it works. The queue is huey: ``SqliteHuey`` in the data directory by default, ``RedisHuey`` when
``TRTDASH_QUEUE_URL=redis://host:port/db`` is set; the task code is the same. One huey queue per
route (``cpu``, ``gpu``, ``gpu<i>``, ``gputype-<name>``). The job table (state, progress, outcome)
lives next to the queue: ``jobs.sqlite`` in the data directory, or hashes in the same Redis.

A worker process (``python -m engine worker``) serves one device: the CPU, or one GPU pinned with
``CUDA_VISIBLE_DEVICES``. It runs every job in a fresh spawned child process that imported torch
ahead of time (a warm standby), so a crash in native code (segfault, ``os._exit``, ``kill -9``,
CUDA OOM) fails that job with the reason and the worker carries on with a new child. When a worker
itself dies, its job process dies with it (the kernel kills it: parent-death signal), its running job
is failed by the next ``ensure_workers``/``get`` with a reason naming the worker's device, and the next
``ensure_workers``/``submit`` starts a new worker for that device (the dashboard's job panel calls
``ensure_workers`` every second while a job of the session is active). Workers started by
``ensure_workers`` exit when the app process that last called it is gone (a new app process adopts
running workers). With Redis, ``ensure_workers()`` starts nothing unless
``TRTDASH_AUTOSTART_WORKERS=1``: workers are services.

With Redis, workers on other hosts keep results in their own data directory and ship each run in
the job record; ``get`` imports it into the local store, so all results land in one store.
See docs/scaling.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import logging
import multiprocessing
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from huey import RedisHuey, SqliteHuey
from huey.api import Huey

from engine.config import ConfigError, RunRequest, validate
from engine.result import RunResult
from engine.store import DATA_DIR_ENV, PROJECT_ROOT, RunStore, data_dir

log = logging.getLogger(__name__)

QUEUE_URL_ENV = "TRTDASH_QUEUE_URL"
AUTOSTART_ENV = "TRTDASH_AUTOSTART_WORKERS"   # "0" turns off starting workers from submit()

STATES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("done", "failed", "cancelled")

IDLE_POLL_S = 0.05            # how often an idle worker looks at its queues
HEARTBEAT_S = 2.0
HEARTBEAT_TIMEOUT_S = 20.0    # a worker on another host silent this long is dead
PROGRESS_WRITE_S = 0.25       # progress rows are written at most this often (stage changes always)
CANCEL_GRACE_S = 10.0         # a cancelled job that reports no progress this long is killed
STOP_GRACE_S = 10.0
CHILD_READY_TIMEOUT_S = 120.0


# -- data -------------------------------------------------------------------------------------------
@dataclass
class Job:
    """One submitted request and what became of it. Timestamps are epoch seconds."""

    job_id: str
    request: dict[str, Any]
    key: str
    route: str                      # huey queue: "cpu", "gpu", "gpu<i>", "gputype-<slug>"
    state: str = "queued"
    stage: str = ""
    fraction: float | None = None
    detail: str = ""
    run_id: str | None = None
    cached: bool = False            # answered from the store, nothing was run
    error: str = ""
    hint: str = ""
    traceback: str = ""
    worker_id: str = ""
    pid: int | None = None          # the job process while running
    gpu: str = ""                   # what the submitter asked for ("", "0", "H100" ...)
    cancel_requested: bool = False
    created_ts: float = 0.0
    started_ts: float | None = None
    finished_ts: float | None = None
    updated_ts: float = 0.0
    position: int | None = None     # 1 = next on its route; queued jobs only, computed on read
    joined: bool = False            # submit() found this identical job already queued/running

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def elapsed_s(self) -> float:
        end = self.finished_ts or time.time()
        return end - (self.started_ts or self.created_ts)


_STORED = [f.name for f in dataclasses.fields(Job) if f.name not in ("position", "joined")]


class JobError(LookupError):
    """A job operation the user asked for cannot be done; ``message`` says why and what to do."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message + (f" {hint}" if hint else ""))
        self.message = message
        self.hint = hint


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


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def route_for(request: RunRequest, gpu: int | str | None, cuda_available: bool) -> str:
    """The queue a request goes to: CPU work to the CPU worker, CUDA work to the chosen GPU."""
    device = request.device
    if device == "auto":
        device = "cuda" if (cuda_available or gpu is not None) else "cpu"
    if device == "cpu":
        return "cpu"
    if gpu is None or gpu == "":
        return "gpu"
    if isinstance(gpu, int) or (isinstance(gpu, str) and gpu.isdigit()):
        return f"gpu{int(gpu)}"
    return f"gputype-{_slug(gpu)}"


def pinned_gpu(route: str) -> int | None:
    """The GPU index a route pins its jobs to ("gpu1" -> 1), or None (CPU, any GPU, a GPU type)."""
    return int(route[3:]) if re.fullmatch(r"gpu\d+", route) else None


def measured_on(env: dict[str, Any], gpu_index: int | None, host: str | None) -> bool:
    """Whether a result's environment records this GPU index (on ``host``; any host when None)."""
    return env.get("gpu_index") == gpu_index and (host is None or env.get("host") == host)


def stored_run_on(store: RunStore, key: str, gpu_index: int | None, host: str | None) -> RunResult | None:
    """The newest stored run with this cache key measured on this GPU, or None. Runs of one key from
    GPUs of one type are equal for the cache; the newest may come from the other GPU."""
    hit = store.find_by_key(key)
    if hit is None or measured_on(hit.env, gpu_index, host):
        return hit
    runs = store.list_runs(is_sample=False)     # newest first
    for run_id in runs.loc[runs["key"] == key, "run_id"]:
        run = store.get(run_id)
        if measured_on(run.env, gpu_index, host):
            return run
    return None


def worker_routes(gpu_index: int | None, gpu_name: str | None) -> list[str]:
    """Queues a worker serves, most specific first."""
    if gpu_index is None:
        return ["cpu"]
    return [f"gpu{gpu_index}", f"gputype-{_slug(gpu_name or '')}", "gpu"]


# -- job table: SQLite file or Redis, one small interface -------------------------------------------
class JobTable(Protocol):
    shares_store: bool   # workers write into the same RunStore as the app (one host)

    def insert_or_join(self, job: Job, dedupe: str) -> tuple[Job, bool]: ...
    def get(self, job_id: str) -> Job | None: ...
    def select(self, states: tuple[str, ...] | None = None, limit: int | None = None) -> list[Job]: ...
    def update(self, job_id: str, only_if: tuple[str, ...] | None = None, **values: Any) -> bool: ...
    def put_blob(self, job_id: str, blob: bytes) -> None: ...
    def take_blob(self, job_id: str) -> bytes | None: ...
    def register_worker(self, info: dict[str, Any]) -> None: ...
    def heartbeat(self, worker_id: str) -> None: ...
    def remove_worker(self, worker_id: str) -> None: ...
    def workers(self) -> list[dict[str, Any]]: ...


_JOBS_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT UNIQUE NOT NULL,
    dedupe TEXT NOT NULL,
    state TEXT NOT NULL,
    route TEXT NOT NULL,
    body TEXT NOT NULL,
    blob BLOB
);
CREATE INDEX IF NOT EXISTS jobs_dedupe ON jobs(dedupe, state);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, route);
CREATE TABLE IF NOT EXISTS workers (
    worker_id TEXT PRIMARY KEY,
    heartbeat_ts REAL NOT NULL,
    body TEXT NOT NULL
);
"""


def _job_from_body(body: str) -> Job:
    d = json.loads(body)
    return Job(**{k: v for k, v in d.items() if k in _STORED})


def _job_body(job: Job) -> str:
    return json.dumps({k: getattr(job, k) for k in _STORED}, sort_keys=True)


class SqliteJobTable:
    """``jobs.sqlite`` in the data directory: one JSON body per job, state and route as columns."""

    shares_store = True

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conn().executescript(_JOBS_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def insert_or_join(self, job: Job, dedupe: str) -> tuple[Job, bool]:
        with self._tx() as c:
            row = c.execute("SELECT body FROM jobs WHERE dedupe = ? AND state IN ('queued', 'running') "
                            "ORDER BY seq LIMIT 1", (dedupe,)).fetchone()
            if row:
                return _job_from_body(row[0]), True
            c.execute("INSERT INTO jobs (job_id, dedupe, state, route, body) VALUES (?,?,?,?,?)",
                      (job.job_id, dedupe, job.state, job.route, _job_body(job)))
        return job, False

    def get(self, job_id: str) -> Job | None:
        row = self._conn().execute("SELECT body FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return _job_from_body(row[0]) if row else None

    def select(self, states: tuple[str, ...] | None = None, limit: int | None = None) -> list[Job]:
        sql, args = "SELECT body FROM jobs", []
        if states:
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            args += list(states)
        sql += " ORDER BY seq DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_job_from_body(r[0]) for r in self._conn().execute(sql, args)]

    def update(self, job_id: str, only_if: tuple[str, ...] | None = None, **values: Any) -> bool:
        with self._tx() as c:
            row = c.execute("SELECT body FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                return False
            job = _job_from_body(row[0])
            if only_if and job.state not in only_if:
                return False
            job = dataclasses.replace(job, updated_ts=time.time(), **values)
            c.execute("UPDATE jobs SET state = ?, body = ? WHERE job_id = ?", (job.state, _job_body(job), job_id))
        return True

    def put_blob(self, job_id: str, blob: bytes) -> None:
        self._conn().execute("UPDATE jobs SET blob = ? WHERE job_id = ?", (blob, job_id))

    def take_blob(self, job_id: str) -> bytes | None:
        row = self._conn().execute("SELECT blob FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def register_worker(self, info: dict[str, Any]) -> None:
        self._conn().execute("INSERT OR REPLACE INTO workers (worker_id, heartbeat_ts, body) VALUES (?,?,?)",
                             (info["worker_id"], time.time(), json.dumps(info)))

    def heartbeat(self, worker_id: str) -> None:
        self._conn().execute("UPDATE workers SET heartbeat_ts = ? WHERE worker_id = ?", (time.time(), worker_id))

    def remove_worker(self, worker_id: str) -> None:
        self._conn().execute("DELETE FROM workers WHERE worker_id = ?", (worker_id,))

    def workers(self) -> list[dict[str, Any]]:
        rows = self._conn().execute("SELECT body, heartbeat_ts FROM workers ORDER BY worker_id")
        return [{**json.loads(b), "heartbeat_ts": ts} for b, ts in rows]


# Compare-and-set on a job hash: ARGV[1] = allowed states ("" = any), then field/value pairs.
_REDIS_UPDATE = """
local s = redis.call('HGET', KEYS[1], 'state')
if not s then return 0 end
if ARGV[1] ~= '' then
  local ok = false
  for st in string.gmatch(ARGV[1], '[^,]+') do if cjson.encode(st) == s then ok = true end end
  if not ok then return 0 end
end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

# Insert a job unless an identical one is queued or running. KEYS: active key, job hash, job index.
_REDIS_INSERT = """
local existing = redis.call('GET', KEYS[1])
if existing then
  local s = redis.call('HGET', ARGV[3] .. existing, 'state')
  if s == '"queued"' or s == '"running"' then return existing end
end
redis.call('SET', KEYS[1], ARGV[1])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return ARGV[1]
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisJobTable:
    """Jobs as Redis hashes (one JSON value per field, so concurrent field updates never collide)."""

    shares_store = False

    def __init__(self, url: str, prefix: str = "trtdash"):
        import redis  # noqa: PLC0415 - only needed in Redis mode

        self.r = redis.Redis.from_url(url)
        self.p = prefix
        self._update = self.r.register_script(_REDIS_UPDATE)
        self._insert = self.r.register_script(_REDIS_INSERT)

    def _k(self, job_id: str) -> str:
        return f"{self.p}:job:{job_id}"

    def insert_or_join(self, job: Job, dedupe: str) -> tuple[Job, bool]:
        flat: list[Any] = []
        for k in _STORED:
            flat += [k, json.dumps(getattr(job, k))]
        got = self._insert(keys=[f"{self.p}:active:{dedupe}", self._k(job.job_id), f"{self.p}:jobs"],
                           args=[job.job_id, job.created_ts, f"{self.p}:job:", *flat])
        got = _text(got)
        if got == job.job_id:
            return job, False
        existing = self.get(got)
        return (existing, True) if existing else (job, False)

    def get(self, job_id: str) -> Job | None:
        h = self.r.hgetall(self._k(job_id))
        if not h:
            return None
        d = {_text(k): json.loads(v) for k, v in h.items() if _text(k) in _STORED}
        return Job(**d)

    def select(self, states: tuple[str, ...] | None = None, limit: int | None = None) -> list[Job]:
        out = []
        for jid in self.r.zrevrange(f"{self.p}:jobs", 0, -1):
            job = self.get(_text(jid))
            if job is None or (states and job.state not in states):
                continue
            out.append(job)
            if limit and len(out) >= limit:
                break
        return out

    def update(self, job_id: str, only_if: tuple[str, ...] | None = None, **values: Any) -> bool:
        values["updated_ts"] = time.time()
        flat: list[Any] = []
        for k, v in values.items():
            flat += [k, json.dumps(v)]
        return bool(self._update(keys=[self._k(job_id)], args=[",".join(only_if or ()), *flat]))

    def put_blob(self, job_id: str, blob: bytes) -> None:
        self.r.set(f"{self.p}:blob:{job_id}", blob, ex=7 * 86400)

    def take_blob(self, job_id: str) -> bytes | None:
        blob = self.r.get(f"{self.p}:blob:{job_id}")
        return blob if isinstance(blob, bytes) else None

    def register_worker(self, info: dict[str, Any]) -> None:
        key = f"{self.p}:worker:{info['worker_id']}"
        self.r.hset(key, mapping={"body": json.dumps(info), "heartbeat_ts": time.time()})
        self.r.expire(key, int(HEARTBEAT_TIMEOUT_S * 3))
        self.r.sadd(f"{self.p}:workers", info["worker_id"])

    def heartbeat(self, worker_id: str) -> None:
        key = f"{self.p}:worker:{worker_id}"
        if self.r.exists(key):   # only the heartbeat field: registrations may change concurrently
            self.r.hset(key, "heartbeat_ts", time.time())
            self.r.expire(key, int(HEARTBEAT_TIMEOUT_S * 3))

    def remove_worker(self, worker_id: str) -> None:
        self.r.delete(f"{self.p}:worker:{worker_id}")
        self.r.srem(f"{self.p}:workers", worker_id)

    def workers(self) -> list[dict[str, Any]]:
        out = []
        for wid in sorted(self.r.smembers(f"{self.p}:workers")):
            h = {_text(k): _text(v) for k, v in self.r.hgetall(f"{self.p}:worker:{_text(wid)}").items()}
            if "body" not in h:
                self.r.srem(f"{self.p}:workers", wid)
                continue
            out.append({**json.loads(h["body"]), "heartbeat_ts": float(h["heartbeat_ts"])})
        return out


# -- the job system: queue + table + store for one configuration ------------------------------------
def _this_host() -> str:
    return os.environ.get("TRTDASH_HOST_ID") or socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a zombie has exited; only its parent has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _worker_device(worker_id: str, info: dict[str, Any] | None) -> str:
    """The device a worker served ("GPU 1", "the CPU"), from its registration or its id (host/slot/pid)."""
    index = info.get("gpu_index") if info else None
    if index is None:
        slot = worker_id.rsplit("/", 2)[-2] if worker_id.count("/") >= 2 else ""
        index = pinned_gpu(slot)
    return "the CPU" if index is None else f"GPU {index}"


def _exit_reason(code: int | None) -> tuple[str, str]:
    """(error, hint) for a job process that ended without reporting."""
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
        return f"The job process was killed by {name}.", hints.get(name, "See the worker log.")
    return (f"The job process exited with code {code} without a result.",
            "Something in the model or backend called exit(); see the worker log.")


class JobSystem:
    """Submit, observe and cancel jobs; start and stop this host's workers.

    Everything is configured by ``data_dir`` (job table, huey queue, store, worker pid files) and
    ``queue_url`` (Redis for several hosts; None for the embedded SQLite queue).
    """

    def __init__(self, root: Path | str | None = None, queue_url: str | None = None):
        self.root = Path(root) if root is not None else data_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.queue_url = queue_url or None
        self.table: JobTable = (RedisJobTable(self.queue_url) if self.queue_url
                                else SqliteJobTable(self.root / "jobs.sqlite"))
        self._hueys: dict[str, Huey] = {}
        self._tasks: dict[str, Any] = {}
        self._store: RunStore | None = None
        self._children: dict[str, subprocess.Popen] = {}

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
            self._tasks[route] = h.task(name="run_job")(_run_job_task)
            self._hueys[route] = h
        return h

    def _enqueue(self, job_id: str, route: str) -> None:
        h = self.huey(route)
        h.enqueue(self._tasks[route].s(job_id, id=job_id))   # huey task id = job id, so revoke_by_id works

    # -- submit / observe ------------------------------------------------------------------------
    def submit(self, request: RunRequest, *, gpu: int | str | None = None, start_workers: bool | None = None) -> Job:
        """Queue a request, answer it from the store, or join the identical job already queued/running.

        Raises ``ConfigError`` for an invalid request (before anything is queued).
        """
        from engine import capabilities, runner  # noqa: PLC0415 - torch only when submitting

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
        if not self.queue_url:   # one host: what this machine cannot do is an error now
            capabilities.check_request(request, caps)
            if pinned is not None and pinned >= len(caps.gpus):
                raise ConfigError("gpu", f"GPU {pinned} does not exist; this machine has {len(caps.gpus)}")
        key, _ = runner.request_key(request, caps, gpu_index)   # runs no model code in the app's process
        now = time.time()
        job = Job(job_id=uuid.uuid4().hex[:12], request=request.to_dict(), key=key, route=route,
                  gpu="" if gpu is None else str(gpu), created_ts=now, updated_ts=now)
        if pinned is None:
            hit = self.store.find_by_key(key)
        else:   # not a run from another GPU of the same type: the user asked for this one
            hit = stored_run_on(self.store, key, pinned, self._pinned_host())
        if hit is not None:
            job.state, job.run_id, job.cached, job.stage, job.finished_ts = "done", hit.run_id, True, "cached", now
            job.started_ts, job.fraction, job.detail = now, 1.0, "answered from the store; nothing was run"
            self.table.insert_or_join(job, f"cached:{job.job_id}")
            return job
        job, joined = self.table.insert_or_join(job, f"{key}:{route}")
        if joined:
            job.joined = True
            return self._with_position(job)
        self._enqueue(job.job_id, route)
        if start_workers if start_workers is not None else self._autostart():
            self.ensure_workers()
        return self.get(job.job_id)

    def _pinned_host(self) -> str | None:
        """Where a GPU index points: this host, or (Redis) any host with a worker for that index."""
        return None if self.queue_url else _this_host()

    def _resolve_gpu_type(self, wanted: str) -> str:
        """A GPU type as given, or the one live worker GPU name it is a unique part of ("H100")."""
        names = {w["gpu_name"] for w in self.workers() if w["alive"] and w.get("gpu_name")}
        if wanted in names:
            return wanted
        matches = [n for n in names if _slug(wanted) in _slug(n)]
        return matches[0] if len(matches) == 1 else wanted

    def _autostart(self) -> bool:
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
        if any(j.state == "queued" for j in jobs):   # positions count every queued job, listed or not
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
            ahead = [j for j in self.table.select(("queued",))
                     if j.route == job.route and j.created_ts <= job.created_ts]
            job.position = max(1, len(ahead))
            if not job.detail and not any(job.route in w.get("routes", ()) for w in self.workers() if w["alive"]):
                job.detail = f"waiting for a worker that serves {job.route!r} (none is running)"
        return job

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job (it never runs) or ask a running one to stop. Final jobs are left as they are."""
        now = time.time()
        if self.table.update(job_id, only_if=("queued",), state="cancelled", stage="cancelled",
                             detail="cancelled before it started", finished_ts=now):
            with contextlib.suppress(Exception):
                job = self.table.get(job_id)
                if job:
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
        here = _this_host()
        for w in sorted(live, key=lambda w: (w["host"], w.get("gpu_index") or 0)):
            if w["host"] == here and not self.queue_url:
                out.append((f"GPU {w['gpu_index']}: {w['gpu_name']}", int(w["gpu_index"])))
        for name in sorted({w["gpu_name"] for w in live}):
            if (f"Any {name}", name) not in out:
                out.append((f"Any {name}", name))
        return out

    def _worker_alive(self, w: dict[str, Any]) -> bool:
        if w.get("host") == _this_host():
            return _pid_alive(int(w["pid"]))
        return time.time() - float(w.get("heartbeat_ts", 0)) < HEARTBEAT_TIMEOUT_S

    def _fail_if_worker_dead(self, job: Job) -> Job:
        info = next((w for w in self.table.workers() if w["worker_id"] == job.worker_id), None)
        if info is not None and self._worker_alive(info):
            return job
        if info is None and time.time() - (job.started_ts or 0) < HEARTBEAT_TIMEOUT_S:
            return job   # a worker that just exited cleanly requeues its job itself
        device = _worker_device(job.worker_id, info)
        self.table.update(job.job_id, only_if=("running",), state="failed", finished_ts=time.time(),
                          error=f"The worker of {device} stopped while running this job ({job.worker_id}): "
                                "it was killed or crashed.",
                          hint=f"A new worker for {device} takes over its queue; submit the request again.")
        return self.table.get(job.job_id) or job

    def reconcile(self) -> None:
        """Fail running jobs whose worker is gone; drop registrations of dead workers on this host."""
        for job in self.table.select(("running",)):
            self._fail_if_worker_dead(job)
        for w in self.table.workers():
            if w.get("host") == _this_host() and not _pid_alive(int(w["pid"])):
                self.table.remove_worker(w["worker_id"])

    def _pid_dir(self) -> Path:
        p = self.root / "workers"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def _owner_file(self) -> Path:
        return self._pid_dir() / "owner"

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.root / "workers.lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def ensure_workers(self, gpu_count: int | None = None) -> list[int]:
        """Start this host's workers that are not running: one per visible GPU and one for the CPU.

        Idempotent across threads and processes (a lock file in the data directory). Returns the
        worker pids. Workers started here exit when this process is gone.
        """
        if gpu_count is None:
            from engine import capabilities  # noqa: PLC0415

            gpu_count = len(capabilities.detect().gpus)
        for name, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[name]
        pids = []
        with self._lock():
            # the newest app process adopts the running workers: they live as long as it does
            self._owner_file().write_text(f"{os.getpid()}\n")
            self.reconcile()
            for slot in ["cpu"] + [f"gpu{i}" for i in range(gpu_count)]:
                pidfile = self._pid_dir() / f"{slot}.pid"
                with contextlib.suppress(FileNotFoundError, ValueError):
                    pid = int(pidfile.read_text().split()[0])
                    if _pid_alive(pid):
                        pids.append(pid)
                        continue
                proc = self._start_worker(slot)
                pidfile.write_text(f"{proc.pid}\n")
                self._children[slot] = proc
                pids.append(proc.pid)
        return pids

    def _start_worker(self, slot: str) -> subprocess.Popen:
        # keep the caller's PYTHONPATH (where torch_tensorrt or huey may live) after the project root
        pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = dict(os.environ, **{DATA_DIR_ENV: str(self.root), "PYTHONPATH": pythonpath})
        args = ["--data-dir", str(self.root), "--owner-file", str(self._owner_file())]
        if self.queue_url:
            args += ["--queue-url", self.queue_url]
        if slot == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
            args += ["--cpu"]
        else:
            args += ["--gpu", slot[3:]]
        log_path = self.root / "workers" / f"{slot}.log"
        with open(log_path, "ab") as logf:
            return subprocess.Popen(
                [sys.executable, "-c", "import sys; from engine.jobs import worker_main; "
                 "sys.exit(worker_main(sys.argv[1:]))", *args],
                cwd=str(PROJECT_ROOT), env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True)

    def stop_workers(self, timeout_s: float = STOP_GRACE_S + 5) -> int:
        """Stop this host's workers (SIGTERM, then SIGKILL after ``timeout_s``). Returns how many stopped."""
        with self._lock():
            pids = []
            for pidfile in self._pid_dir().glob("*.pid"):
                with contextlib.suppress(ValueError, OSError):
                    pid = int(pidfile.read_text().split()[0])
                    if _pid_alive(pid):
                        os.kill(pid, signal.SIGTERM)
                        pids.append(pid)
                pidfile.unlink(missing_ok=True)
            deadline = time.monotonic() + timeout_s
            for pid in pids:
                while _pid_alive(pid) and time.monotonic() < deadline:
                    self._reap()
                    time.sleep(0.05)
                if _pid_alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
            self._reap()
            self.reconcile()
        return len(pids)

    def _reap(self) -> None:
        for name, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[name]


# -- the worker ---------------------------------------------------------------------------------------
_CURRENT_WORKER: Worker | None = None


def _run_job_task(job_id: str) -> None:
    """The huey task: run a job on the worker that dequeued it."""
    if _CURRENT_WORKER is None:
        raise RuntimeError("run_job executes only inside a worker process")
    _CURRENT_WORKER.run_job(job_id)


class _JobProcess:
    """A spawned child that imports torch and the engine ahead of time, then runs exactly one job."""

    def __init__(self, root: Path):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.cancel = ctx.Event()
        self.proc = ctx.Process(target=_job_child_main, args=(child_conn, self.cancel, str(root), os.getpid()),
                                name="trtdash-job")
        self.proc.start()
        child_conn.close()
        self.ready: dict[str, Any] | None = None

    def wait_ready(self, timeout_s: float = CHILD_READY_TIMEOUT_S) -> dict[str, Any]:
        if self.ready is None:
            if not self.conn.poll(timeout_s):
                raise RuntimeError("the job process did not start in time")
            kind, info = self.conn.recv()
            self.ready = info
        return self.ready

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(None)
        self.proc.join(2)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(2)


class Worker:
    """Takes jobs from its queues one at a time and runs each in a fresh child process."""

    def __init__(self, system: JobSystem, *, gpu_index: int | None, owner_pid: int | None = None,
                 owner_file: Path | None = None, worker_id: str | None = None, poll_s: float = IDLE_POLL_S):
        self.system = system
        self.table = system.table
        self.gpu_index = gpu_index
        self.owner_pid = owner_pid
        self.owner_file = owner_file
        self._owner_checked = 0.0
        self.poll_s = poll_s
        slot = "cpu" if gpu_index is None else f"gpu{gpu_index}"
        self.worker_id = worker_id or f"{_this_host()}/{slot}/{os.getpid()}"
        self.stopping = False
        self.routes: list[str] = []
        self.gpu_record: dict[str, Any] = {}   # written into result.env of every run measured here
        self._standby: _JobProcess | None = None

    def _spawn(self) -> _JobProcess:
        return _JobProcess(self.system.root)

    def _owner_gone(self) -> bool:
        """True when the app that started this worker (and every app that adopted it since) is gone."""
        if time.monotonic() - self._owner_checked < 1.0:
            return False
        self._owner_checked = time.monotonic()
        if self.owner_file is not None:
            with contextlib.suppress(OSError, ValueError):
                self.owner_pid = int(self.owner_file.read_text().split()[0])
        return self.owner_pid is not None and not _pid_alive(self.owner_pid)

    def run(self) -> int:
        global _CURRENT_WORKER
        _CURRENT_WORKER = self
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        self._standby = self._spawn()
        info = self._standby.wait_ready()
        gpu_name = info.get("gpu_name") if self.gpu_index is not None else None
        gpu_uuid = info.get("gpu_uuid") if self.gpu_index is not None else None
        self.routes = worker_routes(self.gpu_index, gpu_name)
        if self.gpu_index is not None:
            self.gpu_record = {"gpu_index": self.gpu_index, "gpu_uuid": gpu_uuid, "host": _this_host()}
        self._info = {"worker_id": self.worker_id, "host": _this_host(), "pid": os.getpid(),
                      "gpu_index": self.gpu_index, "gpu_name": gpu_name, "gpu_uuid": gpu_uuid, "routes": self.routes,
                      "device_name": info.get("device_name"), "started_ts": time.time(),
                      "job_id": None, "standby_ready": True}
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
            _CURRENT_WORKER = None
        return 0

    def _set_info(self, **values: Any) -> None:
        self._info.update(values)
        self.table.register_worker(self._info)

    def _note_standby_ready(self) -> None:
        """Publish when the next job process has finished warming up (the UI and benchmarks wait on it)."""
        sb = self._standby
        if sb is not None and sb.ready is None and sb.conn.poll(0):
            sb.wait_ready(0)
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
        if not self.table.update(job_id, only_if=("queued",), state="running", worker_id=self.worker_id,
                                 started_ts=now, stage="starting", detail=f"on {self.worker_id}"):
            return   # cancelled while queued
        job = self.table.get(job_id)
        assert job is not None
        child = self._standby or self._spawn()
        self._standby = None
        self._set_info(job_id=job_id, standby_ready=False)
        try:
            self._supervise(job, child)
        finally:
            child.close()
            if not self.stopping:
                self._standby = self._spawn()   # warm up the next one between jobs, never during one
            self._set_info(job_id=None)

    def _supervise(self, job: Job, child: _JobProcess) -> None:
        """Hand the job to the child, relay its progress, honour cancel and stop, record the outcome."""
        child.conn.send(_JobOrder(job.job_id, job.request, job.key, ship=not self.table.shares_store,
                                  gpu_record=self.gpu_record, pinned=pinned_gpu(job.route) is not None))
        self.table.update(job.job_id, only_if=("running",), pid=child.proc.pid)
        last_write, last_stage, cancel_at = 0.0, "", None
        next_check = time.monotonic()
        eof = False
        while True:
            if not eof and child.conn.poll(0.1):
                try:
                    msg = child.conn.recv()
                except (EOFError, OSError):   # the child is gone; its exit code says why
                    child.proc.join(5)
                    eof, msg = True, None
                if msg is None:
                    pass
                elif msg[0] == "ready":
                    child.ready = msg[1]
                elif msg[0] == "progress":
                    _, stage, fraction, detail = msg
                    t = time.monotonic()
                    if stage != last_stage or t - last_write >= PROGRESS_WRITE_S:
                        self.table.update(job.job_id, only_if=("running",), stage=stage, fraction=fraction,
                                          detail=detail)
                        last_write, last_stage = t, stage
                else:
                    self._finish(job, msg)
                    return
            # checked after every message too: a chatty job must still see cancel and stop
            if eof or (not child.proc.is_alive() and not child.conn.poll(0)):
                child.proc.join(1)
                error, hint = _exit_reason(child.proc.exitcode)
                if cancel_at is not None:
                    self._finish(job, ("cancelled",))
                else:
                    self._finish(job, ("failed", error, hint, ""))
                return
            if self.stopping:
                child.proc.kill()
                child.proc.join(5)
                self.table.update(job.job_id, only_if=("running",), state="queued", stage="", fraction=None,
                                  worker_id="", pid=None, started_ts=None,
                                  detail="interrupted by a worker shutdown; waiting to run again")
                self.system._enqueue(job.job_id, job.route)
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
            self.table.update(job.job_id, state="done", run_id=run_id, cached=bool(cached), stage="done",
                              fraction=1.0, detail="answered from the store" if cached else "stored",
                              finished_ts=now)
        elif kind == "cancelled":
            self.table.update(job.job_id, state="cancelled", stage="cancelled", detail="cancelled while running",
                              finished_ts=now)
        else:
            _, error, hint, tb = msg
            self.table.update(job.job_id, state="failed", error=error, hint=hint, traceback=tb, finished_ts=now)
            log.warning("job %s failed: %s", job.job_id, error)


def _error_parts(e: BaseException) -> tuple[str, str]:
    """(message, hint) the user sees for an exception raised while running a job."""
    if type(e).__name__ == "OutOfMemoryError":
        return ("The GPU ran out of memory.", "Use a smaller batch size or model, or a GPU with more memory.")
    message = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
    hint = getattr(e, "hint", "") or ""
    if isinstance(e, ConfigError):
        hint = hint or f"Change {e.field} and submit again."
    return str(message), str(hint)


@dataclass(frozen=True)
class _JobOrder:
    """What a worker hands its job process."""

    job_id: str
    request: dict[str, Any]
    key: str                        # the cache key submit() computed
    ship: bool                      # send the run back in the job record (a worker on another host)
    gpu_record: dict[str, Any]      # the physical GPU running it (gpu_index, gpu_uuid, host); {} on the CPU
    pinned: bool                    # submitted for this GPU index: only a run measured on it answers it


class _GpuRecordingStore(RunStore):
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


def _job_child_main(conn: Connection, cancel: Any, root: str, parent_pid: int) -> None:
    """Body of a job process: warm up, wait for one job, run it, report, exit."""
    _die_with_parent()
    if os.getppid() != parent_pid:   # the worker died before the line above took effect
        os._exit(3)
    os.environ[DATA_DIR_ENV] = root
    import torch  # noqa: F401, PLC0415 - the whole point of the standby child is importing this early

    from engine import capabilities, runner  # noqa: PLC0415
    from engine.backends.base import Cancelled  # noqa: PLC0415

    def watch_parent() -> None:
        while True:   # a job process never outlives its worker
            if os.getppid() != parent_pid:
                os._exit(3)
            time.sleep(0.5)

    threading.Thread(target=watch_parent, daemon=True).start()
    from engine.backends import prewarm  # noqa: PLC0415

    prewarm()
    caps = capabilities.detect()
    gpu_name = caps.gpus[0].name if caps.gpus else None
    conn.send(("ready", {"gpu_name": gpu_name, "gpu_uuid": _gpu_uuid(),
                         "device_name": gpu_name or f"CPU: {caps.cpu_name}"}))
    try:
        msg = conn.recv()
    except EOFError:
        return
    if msg is None:
        return
    order: _JobOrder = msg
    job_id = order.job_id

    def progress(stage: str, fraction: float | None = None, detail: str = "") -> None:
        if cancel.is_set():
            raise Cancelled(f"job {job_id} cancelled")
        conn.send(("progress", stage, fraction, detail))

    try:
        store = _GpuRecordingStore(root, order.gpu_record) if order.gpu_record else RunStore(root)
        host = None if order.ship else order.gpu_record.get("host")
        hit = stored_run_on(store, order.key, order.gpu_record.get("gpu_index"), host) if order.pinned else None
        if hit is not None:
            outcome = runner.Outcome(hit, cached=True)   # measured on this GPU while the job waited
        else:
            # the process sees one GPU, as cuda:0; a pinned job is not answered by a run from another GPU
            outcome = runner.execute(RunRequest.from_dict(order.request), store, progress, gpu_index=0,
                                     use_cache=not order.pinned)
        blob = store.export_run(outcome.result.run_id) if order.ship else None
        conn.send(("done", outcome.result.run_id, outcome.cached, blob))
    except Cancelled:
        conn.send(("cancelled",))
    except Exception as e:
        message, hint = _error_parts(e)
        conn.send(("failed", message, hint, traceback.format_exc()))


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


def submit(request: RunRequest, *, gpu: int | str | None = None) -> Job:
    return default_system().submit(request, gpu=gpu)


def get(job_id: str) -> Job:
    return default_system().get(job_id)


def list_jobs(states: tuple[str, ...] | None = None, limit: int | None = 100) -> list[Job]:
    return default_system().list_jobs(states, limit)


def cancel(job_id: str) -> Job:
    return default_system().cancel(job_id)


def ensure_workers() -> list[int]:
    """Start this host's workers unless turned off: TRTDASH_AUTOSTART_WORKERS=0, or by default with Redis
    (there, workers run as services on the GPU hosts; see docs/scaling.md). Cheap enough to call on every poll."""
    system = default_system()
    return system.ensure_workers() if system._autostart() else []


def stop_workers() -> int:
    return default_system().stop_workers()


def workers() -> list[dict[str, Any]]:
    return default_system().workers()


def gpu_choices() -> list[tuple[str, int | str | None]]:
    return default_system().gpu_choices()


# -- `python -m engine worker` ---------------------------------------------------------------------------
def worker_main(argv: list[str]) -> int:
    """Run one worker in the foreground until SIGTERM/SIGINT (or until its owner process exits)."""
    p = argparse.ArgumentParser(prog="python -m engine worker",
                                description="Run jobs from the queue on one device (the CPU or one GPU).")
    dev = p.add_mutually_exclusive_group()
    dev.add_argument("--gpu", type=int, default=None, help="GPU index to serve (pinned with CUDA_VISIBLE_DEVICES)")
    dev.add_argument("--cpu", action="store_true", help="serve CPU jobs (the default)")
    p.add_argument("--data-dir", default=None, help=f"data directory (default: ${DATA_DIR_ENV} or ./data)")
    p.add_argument("--queue-url", default=None, help=f"redis://host:port/db (default: ${QUEUE_URL_ENV}; "
                                                     "empty = the SQLite queue in the data directory)")
    p.add_argument("--host-id", default=None, help="name of this host in the job table (default: hostname)")
    p.add_argument("--owner-pid", type=int, default=None, help="exit when this process is gone")
    p.add_argument("--owner-file", type=Path, default=None,
                   help="exit when the process whose pid this file holds is gone (re-read: apps adopt workers)")
    ns = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if ns.data_dir:
        os.environ[DATA_DIR_ENV] = ns.data_dir
    if ns.host_id:
        os.environ["TRTDASH_HOST_ID"] = ns.host_id
    if ns.gpu is not None:
        # the job processes see only this GPU, as cuda:0
        os.environ["CUDA_VISIBLE_DEVICES"] = str(ns.gpu)
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    url = ns.queue_url if ns.queue_url is not None else os.environ.get(QUEUE_URL_ENV)
    system = JobSystem(ns.data_dir or data_dir(), url or None)
    return Worker(system, gpu_index=ns.gpu, owner_pid=ns.owner_pid, owner_file=ns.owner_file).run()
