"""Stored studies: one row per group of runs (its kind, plan, tags and state) and one row per point (its request,
the job that runs it, the run that answered it), in the store's SQLite file beside the runs.

Membership is written by the engine, never by a page: the submitter records each point's job id when it queues it,
the job process records the run when it saves it (``member_saved``), and the supervisor settles whatever a crash or
a joined/cached job left open (``settle``). Every run recorded as a member gets the study's tags, merged with the
ones it has (a cached run can belong to several studies). Nothing here knows what a sweep or a ladder is.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.store.paths import utc_now_iso
from engine.store.runs import RunNotFound, RunStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    study_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL,
    cancelled INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL,
    plan_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS study_members (
    study_id TEXT NOT NULL,
    point INTEGER NOT NULL,
    label TEXT NOT NULL,
    request_json TEXT NOT NULL,
    job_id TEXT,
    run_id TEXT,
    state TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (study_id, point)
);
CREATE INDEX IF NOT EXISTS study_members_job ON study_members(job_id);
"""

PENDING = "pending"  # a point not (yet) submitted
ACTIVE_MEMBER_STATES = ("queued", "running")
FINAL_MEMBER_STATES = ("done", "failed", "cancelled")
STUDY_STATES = ("running", "finished", "cancelled", "incomplete")

# a point run by a process of its own rather than a queue job (the CLI's auto-tune): "process:<host>:<pid>"
PROCESS_JOB_PREFIX = "process:"

_SCHEMA_READY: set[str] = set()  # database files whose study tables this process has made sure of

# job id -> (state, run id, error) of that job now, or None when the queue does not know it
JobLookup = Callable[[str], "tuple[str, str | None, str] | None"]


@dataclass
class MemberRow:
    point: int
    label: str
    request: dict[str, Any]
    job_id: str | None = None
    run_id: str | None = None
    state: str = PENDING
    error: str = ""


@dataclass
class StudyRow:
    study_id: str
    kind: str
    created_at: str
    state: str
    cancelled: bool
    tags: list[str]
    plan: dict[str, Any]
    members: list[MemberRow] = field(default_factory=list)


DRIVER_KEY = "state_from_point"  # plan key: the point whose job the study's state follows (an auto-tune's search)


def driver_point(plan: dict[str, Any]) -> int | None:
    """The point a study's state follows, or None: every point counts (a sweep, a ladder, a batch sweep)."""
    point = plan.get(DRIVER_KEY)
    return point if isinstance(point, int) else None


def study_state(members: Iterable[MemberRow], cancelled: bool, driver: int | None = None) -> str:
    """running while a point is queued or running; finished when every point has its run; cancelled when the user
    stopped it; incomplete otherwise (points failed, were cancelled one by one, or were never submitted).

    With a ``driver`` point (an auto-tune: its search job; the trials it measured are points too, and a failed
    trial is a finding, not a gap) the state is that point's: running while its job is queued or running,
    finished when it is done, cancelled, or incomplete (failed, never submitted)."""
    members = list(members)
    if driver is not None:
        members = [m for m in members if m.point == driver]
    states = [m.state for m in members]
    if states and all(s == "done" for s in states):
        return "finished"
    if cancelled:
        return "cancelled"
    if any(s in ACTIVE_MEMBER_STATES for s in states):
        return "running"
    return "incomplete"


def process_job_id() -> str:
    """The job id of a point this process runs itself (no queue job)."""
    return f"{PROCESS_JOB_PREFIX}{socket.gethostname()}:{os.getpid()}"


def process_state(job_id: str) -> tuple[str, str | None, str]:
    """A process-run point is running while its process lives (one on another host is taken to); it failed when
    the process ended without saying so (killed, crashed)."""
    host, _, pid = job_id.removeprefix(PROCESS_JOB_PREFIX).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return "running", None, ""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return "failed", None, "the process running it ended before it finished"
    except PermissionError:
        pass
    return "running", None, ""


class StudyTable:
    """The studies of one store (its SQLite file, its connection per thread)."""

    def __init__(self, store: RunStore):
        self.store = store
        self._conn = store._conn  # one connection per thread, shared with the runs
        db = f"{store.db_path}:{os.stat(store.db_path).st_ino}"  # a file made anew at the same path is new
        if db not in _SCHEMA_READY:
            self._conn().executescript(_SCHEMA)
            _SCHEMA_READY.add(db)

    # -- write ---------------------------------------------------------------------------------
    def create(
        self,
        study_id: str,
        kind: str,
        tags: Iterable[str],
        plan: dict[str, Any],
        members: Iterable[tuple[str, dict[str, Any]]],
    ) -> bool:
        """A new study with its points (label, request dict), none submitted. False when the id exists."""
        with self._conn() as c:
            if c.execute("SELECT 1 FROM studies WHERE study_id = ?", (study_id,)).fetchone():
                return False
            c.execute(
                "INSERT INTO studies (study_id, kind, created_at, state, cancelled, tags, plan_json)"
                " VALUES (?,?,?,?,0,?,?)",
                (
                    study_id,
                    kind,
                    utc_now_iso(),
                    "incomplete",
                    json.dumps(sorted(set(tags))),
                    json.dumps(plan, sort_keys=True, default=str),
                ),
            )
            for i, (label, request) in enumerate(members):
                c.execute(
                    "INSERT INTO study_members (study_id, point, label, request_json, state) VALUES (?,?,?,?,?)",
                    (study_id, i, label, json.dumps(request, sort_keys=True), PENDING),
                )
        return True

    def add_members(self, study_id: str, members: Iterable[tuple[str, dict[str, Any]]]) -> list[int]:
        """More points for an existing study (a plan started again under the same id); returns their indices."""
        with self._conn() as c:
            row = c.execute(
                "SELECT COALESCE(MAX(point), -1) AS n FROM study_members WHERE study_id = ?", (study_id,)
            ).fetchone()
            start = int(row["n"]) + 1
            added = []
            for i, (label, request) in enumerate(members, start):
                c.execute(
                    "INSERT INTO study_members (study_id, point, label, request_json, state) VALUES (?,?,?,?,?)",
                    (study_id, i, label, json.dumps(request, sort_keys=True), PENDING),
                )
                added.append(i)
        return added

    def submitted(
        self, study_id: str, point: int, job_id: str, state: str = "queued", run_id: str | None = None, error: str = ""
    ) -> None:
        """A point was queued as ``job_id`` (or answered at once: state done and its run)."""
        with self._conn() as c:
            c.execute(
                "UPDATE study_members SET job_id = ?, state = ?, run_id = ?, error = ?"
                " WHERE study_id = ? AND point = ?",
                (job_id, state, run_id, error, study_id, point),
            )
            if state in ACTIVE_MEMBER_STATES:
                c.execute("UPDATE studies SET cancelled = 0 WHERE study_id = ?", (study_id,))
        if run_id:
            self._tag(study_id, run_id)
        self._update_state(study_id)

    def add_measured(
        self, study_id: str, label: str, request: dict[str, Any], run_id: str | None, error: str = ""
    ) -> int:
        """A point measured by a job of the study itself (an auto-tune's trial): recorded done with its run, tagged
        (failed with ``error`` when it has no run). Returns its index."""
        (point,) = self.add_members(study_id, [(label, request)])
        with self._conn() as c:
            c.execute(
                "UPDATE study_members SET state = ?, run_id = ?, error = ? WHERE study_id = ? AND point = ?",
                ("done" if run_id else "failed", run_id, "" if run_id else error, study_id, point),
            )
        if run_id:
            self._tag(study_id, run_id)
        self._update_state(study_id)
        return point

    def member_saved(self, job_id: str, run_id: str) -> list[str]:
        """The job process saved (or found) ``run_id`` for ``job_id``: every point that job runs now has its run,
        tagged. Returns the studies it belongs to."""
        with self._conn() as c:
            rows = c.execute(
                "SELECT DISTINCT study_id FROM study_members WHERE job_id = ? ORDER BY study_id", (job_id,)
            ).fetchall()
            c.execute(
                "UPDATE study_members SET run_id = ?, state = 'done', error = '' WHERE job_id = ?", (run_id, job_id)
            )
        ids = [r["study_id"] for r in rows]
        for sid in ids:
            self._tag(sid, run_id)
            self._update_state(sid)
        return ids

    def settle(self, lookup: JobLookup, study_id: str | None = None) -> int:
        """Bring open points (queued/running, or done without their tags) up to date with their jobs, for one
        study or every study not finished. Returns how many points changed."""
        sql = (
            "SELECT m.study_id, m.point, m.job_id, m.state, m.run_id, s.plan_json FROM study_members m"
            " JOIN studies s ON s.study_id = m.study_id WHERE m.job_id IS NOT NULL AND m.state IN (?, ?)"
        )
        args: list[Any] = list(ACTIVE_MEMBER_STATES)
        if study_id is not None:
            sql += " AND m.study_id = ?"
            args.append(study_id)
        else:
            sql += " AND s.state != 'finished'"
        changed: set[str] = set()
        n = 0
        for r in self._conn().execute(sql, args).fetchall():
            if r["job_id"].startswith(PROCESS_JOB_PREFIX):
                now: tuple[str, str | None, str] | None = process_state(r["job_id"])
                if now is not None and now[0] == "running":
                    continue  # its process records how it ends
            else:
                now = lookup(r["job_id"])
            if now is None:
                state, run_id, error = "failed", None, "the queue no longer knows this point's job"
            else:
                state, run_id, error = now
            if state == r["state"] and run_id == r["run_id"]:
                continue
            driver = r["point"] == driver_point(json.loads(r["plan_json"]))
            if state == "done" and not run_id and not driver:
                continue  # a remote run not imported yet: the next settle gets it (a search job may end with none)
            with self._conn() as c:
                c.execute(
                    "UPDATE study_members SET state = ?, run_id = ?, error = ? WHERE study_id = ? AND point = ?",
                    (state, run_id, error or "", r["study_id"], r["point"]),
                )
            if run_id and state == "done":
                self._tag(r["study_id"], run_id)
            changed.add(r["study_id"])
            n += 1
        for sid in changed:
            self._update_state(sid)
        return n

    def set_cancelled(self, study_id: str, on: bool = True) -> None:
        with self._conn() as c:
            c.execute("UPDATE studies SET cancelled = ? WHERE study_id = ?", (int(on), study_id))
        self._update_state(study_id)

    def _tag(self, study_id: str, run_id: str) -> None:
        row = self._conn().execute("SELECT tags FROM studies WHERE study_id = ?", (study_id,)).fetchone()
        if row is None:
            return
        try:
            self.store.add_tags(run_id, json.loads(row["tags"]))
        except RunNotFound:  # deleted since, or a remote run not imported yet (settle retries it)
            return

    def _update_state(self, study_id: str) -> None:
        study = self.get(study_id)
        if study is None:
            return
        state = study_state(study.members, study.cancelled, driver_point(study.plan))
        if state != study.state:
            with self._conn() as c:
                c.execute("UPDATE studies SET state = ? WHERE study_id = ?", (state, study_id))

    # -- read ----------------------------------------------------------------------------------
    def get(self, study_id: str) -> StudyRow | None:
        row = self._conn().execute("SELECT * FROM studies WHERE study_id = ?", (study_id,)).fetchone()
        if row is None:
            return None
        members = [
            MemberRow(
                m["point"], m["label"], json.loads(m["request_json"]), m["job_id"], m["run_id"], m["state"], m["error"]
            )
            for m in self._conn().execute("SELECT * FROM study_members WHERE study_id = ? ORDER BY point", (study_id,))
        ]
        return StudyRow(
            row["study_id"],
            row["kind"],
            row["created_at"],
            row["state"],
            bool(row["cancelled"]),
            json.loads(row["tags"]),
            json.loads(row["plan_json"]),
            members,
        )

    def select(self, kind: str | None = None) -> list[tuple[str, str, str, str]]:
        """(study id, kind, created at, state), newest first."""
        sql = "SELECT study_id, kind, created_at, state FROM studies"
        args: tuple[Any, ...] = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            args = (kind,)
        rows = self._conn().execute(sql + " ORDER BY created_at DESC, study_id DESC", args)
        return [(r["study_id"], r["kind"], r["created_at"], r["state"]) for r in rows]
