"""A stored study: one record per group of runs (a knob sweep, a precision ladder, a batch sweep, an auto-tune) with
its kind, plan, state and membership (point -> job -> run), kept in the store (engine/store/studies.py).

The record is written by the engine, so a study survives closed tabs and server restarts: ``submit_points`` records
each point's job as it queues it (a point answered from the store at once gets its run and tags there and then),
the job process records the run it saves, and the supervisor settles the rest. ``load_study`` reads it back with
what is missing; ``resume_study`` queues the missing points again.

One id scheme for every kind (``new_study_id``: ``<model>_<what>_<UTC stamp>``, readable in a link), one loader,
one not-found error (``StudyNotFound``). Studies recorded before records existed (the bundled samples) have tags
only; each kind's own loader (``sweeps.load_sweep``, ``ladder.load_ladder``, ``batch_sweep.load_batch_sweep``) reads
the record when there is one and the tags otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.errors import UserError, shown
from engine.settings.request import RunRequest
from engine.store import RunStore
from engine.store.studies import (
    ACTIVE_MEMBER_STATES,
    DRIVER_KEY,
    PENDING,
    StudyRow,
    StudyTable,
    driver_point,
)

KINDS = {"sweep": "knob sweep", "ladder": "precision ladder", "batch_sweep": "batch sweep", "autotune": "auto-tune"}
STUDY_ID_PATTERN = re.compile(r"[^\s,]{1,200}")  # no comma: an id lives inside the runs' comma-joined tags

SubmitFn = Callable[[RunRequest], Any]  # request -> job id, or an object with .job_id (and .state/.run_id: a Job)
StatusFn = Callable[[str], Any]  # job id -> a job (engine.jobs.Job), a dict or a JobView-like object


class StudyNotFound(UserError, KeyError):
    """No study is stored under this id (or the id cannot be one)."""

    def __init__(self, study_id: object, kind: str | None = None):
        what = KINDS.get(kind or "", "study")
        super().__init__(
            f"No {what} {shown(study_id, 80)} is stored: it was never started here, or the link is wrong.",
            f"Pick a {what} from the list, or start a new one.",
        )
        self.args = (study_id,)
        self.study_id = study_id

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Member:
    """One point of a study and what became of it."""

    point: int
    label: str
    request: dict[str, Any]
    job_id: str | None
    run_id: str | None
    state: str  # pending (never submitted) | queued | running | done | failed | cancelled
    error: str = ""

    @property
    def missing(self) -> bool:
        return self.state not in ("done", *ACTIVE_MEMBER_STATES)

    @property
    def why_missing(self) -> str:
        if self.state == PENDING:
            return "never run"
        return f"{self.state}: {self.error}" if self.error else self.state


@dataclass(frozen=True)
class Study:
    study_id: str
    kind: str
    created_at: str
    state: str  # running | finished | cancelled | incomplete
    tags: tuple[str, ...]
    plan: dict[str, Any]
    members: tuple[Member, ...]

    @property
    def driver(self) -> Member | None:
        """The point whose job the study's state follows (an auto-tune's search job), or None."""
        point = driver_point(self.plan)
        return next((m for m in self.members if m.point == point), None)

    @property
    def points(self) -> list[Member]:
        """What the study measures: every point but its driver (an auto-tune's trials, a sweep's points)."""
        driver = self.driver
        return [m for m in self.members if m is not driver]

    @property
    def done_count(self) -> int:
        return sum(m.state == "done" for m in self.points)

    @property
    def planned_count(self) -> int:
        """How many points the study plans: its points, or an auto-tune's trial budget (and its defaults run)."""
        planned = self.plan.get("planned_points")
        return max(int(planned), len(self.points)) if isinstance(planned, int) else len(self.points)

    @property
    def model(self) -> str:
        """The model it measures (its plan's, else its first point's request's), "" when neither says."""
        if isinstance(self.plan.get("model"), str):
            return self.plan["model"]
        for request in [self.plan.get("base"), *(m.request for m in self.members)]:
            if isinstance(request, dict) and isinstance(request.get("model"), dict):
                return str(request["model"].get("source", ""))
        return ""

    @property
    def label(self) -> str:
        """What a picker lists: "<id> · knob sweep · resnet18 · running · 3 of 6 measured, 1 missing"."""
        parts = [self.study_id, KINDS.get(self.kind, self.kind), self.model, self.state, self.counts_text]
        return " · ".join(p for p in parts if p)

    @property
    def counts_text(self) -> str:
        """E.g. "3 of 6 measured, 2 missing" (what a picker's label says of it)."""
        gone = len(self.missing)
        return f"{self.done_count} of {self.planned_count} measured" + (f", {gone} missing" if gone else "")

    @property
    def run_ids(self) -> list[str]:
        """The runs of its finished points, in plan order, each once."""
        return list(dict.fromkeys(m.run_id for m in self.members if m.state == "done" and m.run_id))

    @property
    def missing(self) -> list[Member]:
        """Points that have no run and are not on their way to one (failed, cancelled, never run). A study with a
        driver misses only that (its search stopped); a trial that failed is one of its findings."""
        driver = self.driver
        if driver is not None:
            return [driver] if driver.missing else []
        return [m for m in self.members if m.missing]

    @property
    def missing_text(self) -> str:
        """What is missing, in words ("" when nothing is): the page shows it above a Resume button."""
        gone = self.missing
        if not gone:
            return ""
        what = KINDS.get(self.kind, "study")
        lines = "; ".join(f"{m.label or f'point {m.point + 1}'} ({m.why_missing})" for m in gone)
        return (
            f"This {what} has {self.done_count} of {self.planned_count} points measured; "
            f"{len(gone)} missing: {lines}. Resume queues the missing points again."
        )

    @property
    def status_text(self) -> str:
        """E.g. "Knob sweep <id> (running): 3 of 6 points measured · 2 queued, 1 running"."""
        counts: dict[str, int] = {}
        for m in self.points:
            counts[m.state] = counts.get(m.state, 0) + 1
        counts.pop("done", None)
        rest = ", ".join(f"{n} {'never run' if s == PENDING else s}" for s, n in counts.items())
        return (
            f"{KINDS.get(self.kind, 'Study').capitalize()} {self.study_id} ({self.state}): {self.done_count} of "
            f"{self.planned_count} points measured" + (f" · {rest}" if rest else "")
        )


def resumed_text(count: int) -> str:
    return (
        f"{count} missing point{'s' if count != 1 else ''} queued again; this study fills in as they finish."
        if count
        else "Nothing is missing: every point has its run or is on its way."
    )


def check_study_id(study_id: object, kind: str | None = None) -> str:
    if not isinstance(study_id, str) or not STUDY_ID_PATTERN.fullmatch(study_id):
        raise StudyNotFound(study_id, kind)
    return study_id


def new_study_id(model: str, what: str) -> str:
    """The one id scheme: ``<model>_<what>_<YYYYMMDD-HHMMSS>`` (UTC), e.g. ``resnet50_fp16_batch_20260101-120000``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', model)}_{what}_{stamp}"


def _study(row: StudyRow) -> Study:
    members = tuple(Member(m.point, m.label, m.request, m.job_id, m.run_id, m.state, m.error) for m in row.members)
    return Study(row.study_id, row.kind, row.created_at, row.state, tuple(row.tags), row.plan, members)


def driver_plan(plan: dict[str, Any], point: int = 0) -> dict[str, Any]:
    """``plan`` for a study whose state follows one point's job (an auto-tune: its search job, point 0)."""
    return {**plan, DRIVER_KEY: point}


def create_study(
    store: RunStore,
    kind: str,
    study_id: str,
    tags: Iterable[str],
    plan: dict[str, Any],
    points: Sequence[tuple[str, dict[str, Any]]],
) -> list[int]:
    """Record a study and its points (label, request dict), none submitted yet. A study started again under an id
    that exists (same kind) gets the points added. Returns the indices of the points just recorded.

    ``kind`` is one of ``KINDS``; auto-tune records its trials as points the same way (``add_points`` for each
    trial it asks for), its search state in ``plan``."""
    if kind not in KINDS:
        raise ValueError(f"unknown study kind {kind!r}; one of {', '.join(KINDS)}")
    check_study_id(study_id, kind)
    table = StudyTable(store)
    if table.create(study_id, kind, tags, plan, points):
        return list(range(len(points)))
    existing = table.get(study_id)
    if existing is None or existing.kind != kind:
        raise StudyExists(study_id, existing.kind if existing else "?")
    return table.add_members(study_id, points)


def add_points(store: RunStore, study_id: str, points: Sequence[tuple[str, dict[str, Any]]]) -> list[int]:
    """More points for a stored study (an auto-tune trial, say); returns their indices."""
    load_study(store, study_id)
    return StudyTable(store).add_members(study_id, points)


class StudyExists(UserError, ValueError):
    def __init__(self, study_id: str, kind: str):
        super().__init__(
            f"The id {study_id!r} already names a {KINDS.get(kind, kind)}.",
            "Start the study under another id (leave it empty for a new one).",
        )


def load_study(store: RunStore, study_id: str, kind: str | None = None) -> Study:
    """The stored study; raises ``StudyNotFound`` when there is none (of ``kind``, when given)."""
    row = StudyTable(store).get(check_study_id(study_id, kind))
    if row is None or (kind is not None and row.kind != kind):
        raise StudyNotFound(study_id, kind)
    return _study(row)


def find_study(store: RunStore, study_id: str, kind: str | None = None) -> Study | None:
    """The stored study, or None (an old study known by its tags only)."""
    try:
        return load_study(store, study_id, kind)
    except StudyNotFound:
        return None


def list_studies(store: RunStore, kind: str | None = None) -> list[tuple[str, str, str, str]]:
    """(study id, kind, created at, state) of every stored study (of ``kind``), newest first."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown study kind {kind!r}; one of {', '.join(KINDS)}")
    return StudyTable(store).select(kind)


def submit_points(store: RunStore, study_id: str, points: Iterable[int], submit_fn: SubmitFn) -> list[str]:
    """Queue the given points of a stored study, recording each job as it is queued (a point answered from the
    store at once is recorded done with its run, tagged). Returns the job ids. A refusal from the queue propagates;
    the points queued before it stay recorded."""
    study = load_study(store, study_id)
    by_point = {m.point: m for m in study.members}
    table = StudyTable(store)
    ids = []
    for p in points:
        job = submit_fn(RunRequest.from_dict(by_point[p].request))
        job_id = job if isinstance(job, str) else job.job_id
        state = "queued" if isinstance(job, str) else job_state(getattr(job, "state", "queued"))
        run_id = None if isinstance(job, str) else getattr(job, "run_id", None)
        if state == "done" and not run_id:
            state = "queued"  # settled from the queue later
        table.submitted(study_id, p, job_id, state, run_id if state == "done" else None)
        ids.append(job_id)
    return ids


def settle(store: RunStore, study_id: str | None, status_fn: StatusFn) -> int:
    """Bring a study's open points (every unfinished study's, with ``study_id`` None) up to date with their jobs;
    finished runs get the study's tags. Returns how many points changed."""

    def lookup(job_id: str) -> tuple[str, str | None, str] | None:
        try:
            job = status_fn(job_id)
        except LookupError:  # the queue forgot it (JobError)
            return None
        get = job.get if isinstance(job, dict) else (lambda k, d=None: getattr(job, k, d))
        state = job_state(get("state", None) or get("status", "queued"))
        return state, get("run_id", None), str(get("error", "") or "")

    return StudyTable(store).settle(lookup, study_id)


def resume_study(store: RunStore, study_id: str, submit_fn: SubmitFn) -> int:
    """Queue the missing points (failed, cancelled, never run) again; returns how many were queued. A study with a
    driver (an auto-tune) resumes through its own kind (``autotune.job.resume_autotune``), not point by point."""
    study = load_study(store, study_id)
    if study.driver is not None:
        raise ValueError(f"{KINDS.get(study.kind, study.kind)} {study_id} resumes through its own job, not here")
    missing = [m.point for m in study.missing]
    if missing:
        StudyTable(store).set_cancelled(study_id, False)
        submit_points(store, study_id, missing, submit_fn)
    return len(missing)


def cancel_study(store: RunStore, study_id: str, cancel_fn: Callable[[str], Any]) -> int:
    """Cancel every queued or running point; the study reads cancelled. Returns how many jobs were asked to stop."""
    study = load_study(store, study_id)
    n = 0
    for m in study.members:
        if m.job_id and m.state in ACTIVE_MEMBER_STATES:
            cancel_fn(m.job_id)
            n += 1
    StudyTable(store).set_cancelled(study_id)
    return n


_STATE_ALIASES = {
    "finished": "done",
    "succeeded": "done",
    "complete": "done",
    "error": "failed",
    "pending": "queued",
    "canceled": "cancelled",
}


def job_state(state: Any) -> str:
    """A queue's word for a job's state in ours (queued, running, done, failed, cancelled)."""
    return _STATE_ALIASES.get(str(state), str(state))
