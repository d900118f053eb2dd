"""A group of runs on the job queue: submitted together, polled together, cancelled together, recorded as a stored
study (engine/studies/record.py) whose finished runs the engine tags with the group's tags (a sweep's, a ladder's,
a batch sweep's), whether or not a page is watching. Also an
``evaluate(request) -> RunResult`` that goes through the queue and waits (auto-tune's trials).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.result import RunResult
from engine.settings.request import RunRequest
from engine.store import RunStore
from engine.studies import record


class GroupPlan(Protocol):
    """What a group's plan gives its execution: an id, the tags its runs get and the points to run."""

    @property
    def sweep_id(self) -> str: ...

    @property
    def tags(self) -> list[str]: ...

    @property
    def points(self) -> tuple[Any, ...]: ...  # each with a ``request``


FINISHED_STATES = ("done", "failed", "cancelled")


@dataclass
class JobView:
    """What the sweep needs to know about one queued job."""

    state: str  # "queued" | "running" | "done" | "failed" | "cancelled"
    run_id: str | None = None
    error: str | None = None
    detail: str = ""  # progress text, e.g. "build 40%"


SubmitFn = Callable[[RunRequest], Any]  # -> job id, or an object with .job_id (engine.jobs.Job)
StatusFn = Callable[[str], Any]  # job id -> JobView or any object with the same attributes
CancelFn = Callable[[str], Any]


def job_view(status: Any) -> JobView:
    """Read a job status from the queue: a JobView, a dict or an object with the same attributes."""
    if isinstance(status, JobView):
        return status
    get = status.get if isinstance(status, dict) else (lambda k, d=None: getattr(status, k, d))
    state = record.job_state(get("state", None) or get("status", "queued"))
    detail = get("detail", "") or get("stage", "") or ""
    return JobView(state, get("run_id", None), get("error", None), str(detail))


@dataclass
class PointState:
    point: Any  # one of the plan's points (it has a ``request``)
    job_id: str | None = None
    view: JobView = field(default_factory=lambda: JobView("queued"))
    tagged: bool = False  # finished, and its run (if any) carries the group's tags
    index: int = -1  # its point number in the stored study


class SweepExecution:
    """A group's jobs on a queue, as a view over its stored study (engine/studies/record.py): submitted together,
    polled together, cancelled together.

    ``start`` records the study and each point's job as it queues it; the engine tags each finished run (the job
    process when it saves it, the supervisor for the rest), so nothing is lost when this object is: a closed tab or
    a restarted server leaves the study complete in the store. ``poll`` only reads the jobs' progress and settles
    what it sees, so a page that polls shows tags at once.
    """

    def __init__(
        self,
        plan: GroupPlan,
        store: RunStore,
        submit_fn: SubmitFn,
        status_fn: StatusFn,
        cancel_fn: CancelFn,
        *,
        kind: str | None = None,
        labels: Sequence[str] | None = None,
    ):
        self.plan = plan
        self.store = store
        self.kind: str = kind or str(getattr(plan, "study_kind", "sweep"))
        self._submit, self._status, self._cancel = submit_fn, status_fn, cancel_fn
        self.points = [PointState(p) for p in plan.points]
        self._labels = list(labels) if labels is not None else [str(getattr(p, "label", "")) for p in plan.points]
        self._recorded = False

    @property
    def study_id(self) -> str:
        return self.plan.sweep_id

    def start(self) -> None:
        """Record the study (once) and queue every point that has no job yet."""
        if not self._recorded:
            indices = record.create_study(
                self.store,
                self.kind,
                self.study_id,
                self.plan.tags,
                plan_record(self.plan),
                [(label, ps.point.request.to_dict()) for label, ps in zip(self._labels, self.points, strict=True)],
            )
            for ps, i in zip(self.points, indices, strict=True):
                ps.index = i
            self._recorded = True
        try:
            record.submit_points(
                self.store, self.study_id, [ps.index for ps in self.points if ps.job_id is None], self._submit
            )
        finally:
            self._refresh({})

    def poll(self) -> list[PointState]:
        if not self._recorded:
            return self.points
        views: dict[str, JobView] = {}

        def status(job_id: str) -> JobView:
            views[job_id] = job_view(self._status(job_id))
            return views[job_id]

        record.settle(self.store, self.study_id, status)
        self._refresh(views)
        return self.points

    def _refresh(self, views: dict[str, JobView]) -> None:
        study = record.load_study(self.store, self.study_id)
        members = {m.point: m for m in study.members}
        for ps in self.points:
            m = members[ps.index]
            state = m.state if m.state != record.PENDING else ("cancelled" if study.state == "cancelled" else "queued")
            seen = views.get(m.job_id or "")
            ps.job_id = m.job_id
            ps.view = JobView(state, m.run_id, m.error or None, seen.detail if seen else "")
            ps.tagged = state in FINISHED_STATES

    def study(self) -> record.Study:
        """The stored study behind this execution (what a reopened page reads)."""
        return record.load_study(self.store, self.study_id)

    def cancel(self) -> int:
        """Cancel every job of the group that has not finished; returns how many were asked to stop."""
        if not self._recorded:
            return 0
        self.poll()
        n = record.cancel_study(self.store, self.study_id, self._cancel)
        self._refresh({})
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
        return f"{what} {self.plan.sweep_id}: {self.finished_count}/{len(self.points)} finished · " + ", ".join(
            f"{n} {state}" for state, n in self.counts().items()
        )

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for ps in self.points:
            out[ps.view.state] = out.get(ps.view.state, 0) + 1
        return out

    def wait(self, poll_s: float = 0.2, timeout_s: float | None = None) -> list[PointState]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.poll()
        while not self.finished:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"sweep {self.plan.sweep_id} not finished after {timeout_s} s")
            time.sleep(poll_s)
            self.poll()
        return self.points


def plan_record(plan: GroupPlan) -> dict[str, Any]:
    """What a stored study keeps of its plan beyond the points' requests: the base request and what the kind
    needs to label and re-plan it (knobs, batch sizes and strategies, skipped steps, notes)."""
    out: dict[str, Any] = {}
    base = getattr(plan, "base", None)
    if base is not None:
        out["base"] = base.to_dict()
    for name in ("knobs", "batch_sizes", "strategies", "skipped", "notes"):
        value = getattr(plan, name, None)
        if value is not None:
            out[name] = [list(v) if isinstance(v, tuple) else v for v in value]
    return out


def tag_run(store: RunStore, run_id: str, tags: Iterable[str]) -> None:
    """Add tags to a stored run, keeping the ones it has (a cached run can belong to several sweeps)."""
    store.add_tags(run_id, tags)


def evaluator_on_queue(
    store: RunStore, submit_fn: SubmitFn, status_fn: StatusFn, *, poll_s: float = 0.5, timeout_s: float | None = None
) -> Callable[[RunRequest], RunResult]:
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
