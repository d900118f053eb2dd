"""A group of runs on the job queue: submitted together, polled together, cancelled together, and each finished
run tagged with the group's tags as soon as it is seen (a sweep's, a ladder's, a batch sweep's). Also an
``evaluate(request) -> RunResult`` that goes through the queue and waits (auto-tune's trials).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.result import RunResult
from engine.settings.request import RunRequest
from engine.store import RunStore


class GroupPlan(Protocol):
    """What a group's plan gives its execution: an id, the tags its runs get and the points to run."""

    @property
    def sweep_id(self) -> str: ...

    @property
    def tags(self) -> list[str]: ...

    @property
    def points(self) -> tuple[Any, ...]: ...   # each with a ``request``


FINISHED_STATES = ("done", "failed", "cancelled")


@dataclass
class JobView:
    """What the sweep needs to know about one queued job."""

    state: str                 # "queued" | "running" | "done" | "failed" | "cancelled"
    run_id: str | None = None
    error: str | None = None
    detail: str = ""           # progress text, e.g. "build 40%"


SubmitFn = Callable[[RunRequest], Any]   # -> job id, or an object with .job_id (engine.jobs.Job)
StatusFn = Callable[[str], Any]          # job id -> JobView or any object with the same attributes
CancelFn = Callable[[str], Any]


def job_view(status: Any) -> JobView:
    """Read a job status from the queue: a JobView, a dict or an object with the same attributes."""
    if isinstance(status, JobView):
        return status
    get = status.get if isinstance(status, dict) else (lambda k, d=None: getattr(status, k, d))
    state = str(get("state", None) or get("status", "queued"))
    state = {"finished": "done", "succeeded": "done", "complete": "done", "error": "failed",
             "pending": "queued", "canceled": "cancelled"}.get(state, state)
    detail = get("detail", "") or get("stage", "") or ""
    return JobView(state, get("run_id", None), get("error", None), str(detail))


@dataclass
class PointState:
    point: Any                 # one of the plan's points (it has a ``request``)
    job_id: str | None = None
    view: JobView = field(default_factory=lambda: JobView("queued"))
    tagged: bool = False


class SweepExecution:
    """A sweep's jobs on a queue: submitted together, polled together, cancelled together.

    Finished runs get the sweep's tags as soon as they are seen, so a sweep cancelled half-way
    still shows what it measured.
    """

    def __init__(self, plan: GroupPlan, store: RunStore, submit_fn: SubmitFn, status_fn: StatusFn,
                 cancel_fn: CancelFn):
        self.plan = plan
        self.store = store
        self._submit, self._status, self._cancel = submit_fn, status_fn, cancel_fn
        self.points = [PointState(p) for p in plan.points]

    def start(self) -> None:
        for ps in self.points:
            if ps.job_id is None:
                job = self._submit(ps.point.request)
                ps.job_id = job if isinstance(job, str) else job.job_id   # an id, or a queue's Job record

    def poll(self) -> list[PointState]:
        for ps in self.points:
            if ps.job_id is None or (ps.view.state in FINISHED_STATES and ps.tagged):
                continue
            ps.view = job_view(self._status(ps.job_id))
            if ps.view.state == "done" and ps.view.run_id and not ps.tagged:
                tag_run(self.store, ps.view.run_id, self.plan.tags)
                ps.tagged = True
            elif ps.view.state in ("failed", "cancelled"):
                ps.tagged = True
        return self.points

    def cancel(self) -> int:
        """Cancel every job of the sweep that has not finished; returns how many were asked to stop."""
        self.poll()
        n = 0
        for ps in self.points:
            if ps.job_id is not None and ps.view.state not in FINISHED_STATES:
                self._cancel(ps.job_id)
                n += 1
        return n

    @property
    def finished(self) -> bool:
        return all(ps.view.state in FINISHED_STATES for ps in self.points)

    @property
    def finished_count(self) -> int:
        return sum(ps.view.state in FINISHED_STATES for ps in self.points)

    @property
    def fraction_finished(self) -> float:
        return self.finished_count / len(self.points)

    def status_text(self, what: str = "Sweep") -> str:
        """E.g. "Sweep <id>: 3/6 finished · 3 done, 2 queued, 1 running"."""
        return (f"{what} {self.plan.sweep_id}: {self.finished_count}/{len(self.points)} finished · "
                + ", ".join(f"{n} {state}" for state, n in self.counts().items()))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for ps in self.points:
            out[ps.view.state] = out.get(ps.view.state, 0) + 1
        return out

    def wait(self, poll_s: float = 0.2, timeout_s: float | None = None) -> list[PointState]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.finished:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"sweep {self.plan.sweep_id} not finished after {timeout_s} s")
            time.sleep(poll_s)
            self.poll()
        return self.points


def tag_run(store: RunStore, run_id: str, tags: Iterable[str]) -> None:
    """Add tags to a stored run, keeping the ones it has (a cached run can belong to several sweeps)."""
    current = store.get(run_id).tags
    merged = set(current) | set(tags)
    if merged != set(current):
        store.set_tags(run_id, merged)


def evaluator_on_queue(store: RunStore, submit_fn: SubmitFn, status_fn: StatusFn, *, poll_s: float = 0.5,
                       timeout_s: float | None = None) -> Callable[[RunRequest], RunResult]:
    """An ``evaluate(request) -> RunResult`` that goes through the job queue and waits."""

    def evaluate(request: RunRequest) -> RunResult:
        job = submit_fn(request)
        job_id = job if isinstance(job, str) else job.job_id
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            view = job_view(status_fn(job_id))
            if view.state == "done" and view.run_id:
                return store.get(view.run_id)
            if view.state in FINISHED_STATES:
                raise RuntimeError(view.error or f"job {job_id} {view.state}")
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} not finished after {timeout_s} s")
            time.sleep(poll_s)

    return evaluate
