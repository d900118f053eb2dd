"""Job tables: where jobs' state, progress and outcome live, behind one small interface (``JobTable``).

``SqliteJobTable`` is ``jobs.sqlite`` in the data directory (one host); ``RedisJobTable``
(engine/jobs/redis_table.py) keeps the same records in the Redis that carries the queue (several hosts).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from engine.jobs.record import Job, job_body, job_from_body


class JobTable(Protocol):
    """What the job system needs of a job table; ``update`` is a compare-and-set on the job's state."""

    shares_store: bool  # workers write into the same RunStore as the app (one host)

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
            row = c.execute(
                "SELECT body FROM jobs WHERE dedupe = ? AND state IN ('queued', 'running') ORDER BY seq LIMIT 1",
                (dedupe,),
            ).fetchone()
            if row:
                return job_from_body(row[0]), True
            c.execute(
                "INSERT INTO jobs (job_id, dedupe, state, route, body) VALUES (?,?,?,?,?)",
                (job.job_id, dedupe, job.state, job.route, job_body(job)),
            )
        return job, False

    def get(self, job_id: str) -> Job | None:
        row = self._conn().execute("SELECT body FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return job_from_body(row[0]) if row else None

    def select(self, states: tuple[str, ...] | None = None, limit: int | None = None) -> list[Job]:
        sql, args = "SELECT body FROM jobs", []
        if states:
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            args += list(states)
        sql += " ORDER BY seq DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [job_from_body(r[0]) for r in self._conn().execute(sql, args)]

    def update(self, job_id: str, only_if: tuple[str, ...] | None = None, **values: Any) -> bool:
        with self._tx() as c:
            row = c.execute("SELECT body FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                return False
            job = job_from_body(row[0])
            if only_if and job.state not in only_if:
                return False
            job = dataclasses.replace(job, updated_ts=time.time(), **values)
            c.execute("UPDATE jobs SET state = ?, body = ? WHERE job_id = ?", (job.state, job_body(job), job_id))
        return True

    def put_blob(self, job_id: str, blob: bytes) -> None:
        self._conn().execute("UPDATE jobs SET blob = ? WHERE job_id = ?", (blob, job_id))

    def take_blob(self, job_id: str) -> bytes | None:
        row = self._conn().execute("SELECT blob FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def register_worker(self, info: dict[str, Any]) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO workers (worker_id, heartbeat_ts, body) VALUES (?,?,?)",
            (info["worker_id"], time.time(), json.dumps(info)),
        )

    def heartbeat(self, worker_id: str) -> None:
        self._conn().execute("UPDATE workers SET heartbeat_ts = ? WHERE worker_id = ?", (time.time(), worker_id))

    def remove_worker(self, worker_id: str) -> None:
        self._conn().execute("DELETE FROM workers WHERE worker_id = ?", (worker_id,))

    def workers(self) -> list[dict[str, Any]]:
        rows = self._conn().execute("SELECT body, heartbeat_ts FROM workers ORDER BY worker_id")
        return [{**json.loads(b), "heartbeat_ts": ts} for b, ts in rows]
