"""Knob sweeps: plan the runs, run them as one cancellable group on the job queue.

A sweep varies one or two compile knobs of a base request. Its runs are ordinary stored runs
that carry two kinds of tags (the convention the sample recordings follow too):
``sweep:<sweep_id>`` on every run, and ``knob:<dotted knob>`` for each swept knob, e.g.
``knob:compile.optimization_level``. The knob's value is read back from the run's request.

The default point is measured more than once (``DEFAULT_REPEATS`` extra runs, interleaved with the
other points so that they span the sweep's time): each repeat has its own ``measure.repeat``, so the
cache and the queue never answer it with the first run, and nothing it measures changes.

This module is the sweeps' front door: reading a sweep back (``engine.sweep_results``), comparing each value
with the default (``engine.sweep_comparisons``), the written verdict (``engine.sweep_verdict``) and the
per-knob behaviour (``engine.sweep_knobs``) are re-exported here.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.errors import ConfigError
from engine.judging import BOOTSTRAP_RESAMPLES, NOISE_CONFIDENCE, Drift, median_ci_ms  # noqa: F401 - re-exported
from engine.result import RunResult
from engine.settings.defaults import TRT_DEFAULT_OPTIMIZATION_LEVEL
from engine.settings.request import RunRequest
from engine.store import RunStore
from engine.sweep_comparisons import Comparison, compare_with_default  # noqa: F401 - re-exported
from engine.sweep_knobs import (  # noqa: F401 - re-exported: the sweeps' public names
    CUDAGRAPHS_KNOB,
    EXECUTED_OPS_KNOB,
    FRONTEND_KNOB,
    KNOB_TAG,
    MIN_BLOCK_SIZE_KNOB,
    OPTIMIZATION_LEVEL_KNOB,
    OPTIMIZATION_LEVELS,
    PRECISION_KNOB,
    RUNTIME_KNOB,
    SWEEP_TAG,
    SWEEPABLE_KNOBS,
    default_values,
    effective,
    hashable,
    knob_default,
    leaf,
    min_block_size_values,
    order_key,
    recommended_min_block_sizes,
    request_value,
    value_label,
)
from engine.sweep_results import (  # noqa: F401 - re-exported
    BUILD_STAGES,
    TABLE_COLUMNS,
    Sweep,
    build_signature,
    build_time_s,
    list_sweeps,
    load_sweep,
    measure_drift,
    pareto_front,
    repeat_of,
    sweep_from_results,
    sweep_table,
    tagged_results,
)
from engine.sweep_verdict import Verdict, format_ms, verdict  # noqa: F401 - re-exported

MAX_SWEEP_POINTS = 64
DEFAULT_REPEATS = 2          # extra runs of the default point in every sweep
REPEAT_KNOB = "measure.repeat"


# -- planning ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: the request and the knob values that make it different from the base."""

    request: RunRequest
    values: tuple[tuple[str, Any], ...]   # ((dotted knob, value), ...) in axis order
    repeat: int = 0                        # 1, 2, ...: a fresh-process repeat of the point with these values

    @property
    def label(self) -> str:
        text = ", ".join(f"{SWEEPABLE_KNOBS[k]}={value_label(k, v)}" for k, v in self.values)
        return f"{text} (repeat {self.repeat})" if self.repeat else text


@dataclass(frozen=True)
class SweepPlan:
    sweep_id: str
    base: RunRequest
    knobs: tuple[str, ...]
    points: tuple[SweepPoint, ...]
    notes: tuple[str, ...] = ()

    @property
    def tags(self) -> list[str]:
        return sweep_tags(self.sweep_id, self.knobs)


def sweep_tags(sweep_id: str, knobs: Iterable[str]) -> list[str]:
    return [f"{SWEEP_TAG}{sweep_id}", *(f"{KNOB_TAG}{k}" for k in knobs)]


def new_sweep_id(base: RunRequest, knobs: Sequence[str]) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    knob_part = "+".join(SWEEPABLE_KNOBS.get(k, leaf(k)) for k in knobs)
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", base.model.source)
    return f"{model}_{base.compile.precision}_{knob_part}_{stamp}"


def plan_sweep(base: RunRequest, axes: dict[str, Sequence[Any]], *, sweep_id: str | None = None,
               repeats: int = DEFAULT_REPEATS) -> SweepPlan:
    """Every combination of one or two knobs' values applied to ``base``, validated, and ``repeats`` more
    runs of the default point (every swept knob at its default; the first point when the sweep has none)
    interleaved with the others.

    ``axes`` maps a dotted knob (``compile.min_block_size``) to its values, e.g. from
    ``default_values``. Raises ``ConfigError`` naming the knob and the bad value.
    """
    if not 1 <= len(axes) <= 2:
        raise ConfigError("sweep.knobs", f"pick one or two knobs to sweep, not {len(axes)}")
    for knob, values in axes.items():
        if knob not in SWEEPABLE_KNOBS:
            raise ConfigError("sweep.knobs", f"{knob!r} cannot be swept; pick one of "
                                             f"{', '.join(SWEEPABLE_KNOBS)}")
        if not values:
            raise ConfigError(knob, "no values to sweep; list at least one")
    knobs = tuple(axes)
    ordered = [_sorted_values(k, axes[k]) for k in knobs]
    combos = list(itertools.product(*ordered))
    if len(combos) + repeats > MAX_SWEEP_POINTS:
        raise ConfigError("sweep.knobs", f"{len(combos) + repeats} runs (with {repeats} repeats of the default) "
                                         f"is more than the {MAX_SWEEP_POINTS} a sweep may hold; list fewer values")
    points = []
    for combo in combos:
        changes = dict(zip(knobs, combo, strict=True))
        try:
            request = base.with_changes(**changes)
        except ConfigError as e:
            raise ConfigError(e.field, f"in the sweep: {e.message}") from None
        points.append(SweepPoint(request, tuple(changes.items())))
    points = _with_repeats(points, _default_index(points), repeats)
    notes = []
    if OPTIMIZATION_LEVEL_KNOB in knobs:
        notes.append(f"optimization_level unset means TensorRT's default, level {TRT_DEFAULT_OPTIMIZATION_LEVEL}.")
    if CUDAGRAPHS_KNOB in knobs:
        notes.append("CUDA graphs change how the engine is launched, not how it is built: on and off are "
                     "separate sweep points, never repeats of one measurement.")
    if repeats:
        notes.append(f"The default point runs {repeats + 1} times, spread over the sweep: the spread of its runs is "
                     "the run-to-run noise a knob's effect must exceed.")
    if base.backend == "eager" and any(k != PRECISION_KNOB for k in knobs):
        notes.append("The eager backend ignores compile knobs other than precision: those runs coincide.")
    return SweepPlan(sweep_id or new_sweep_id(base, knobs), base, knobs, tuple(points), tuple(notes))


def _sorted_values(knob: str, values: Iterable[Any]) -> list[Any]:
    unique = list(dict.fromkeys(hashable(v) for v in values))
    return sorted(unique, key=lambda v: order_key(knob, v))


def _default_index(points: Sequence[SweepPoint]) -> int:
    """The point with every swept knob at its default (exactly, else as the compiler sees it), else the first."""
    for same in (lambda k, v: hashable(v) == hashable(knob_default(k)),
                 lambda k, v: effective(k, v) == effective(k, knob_default(k))):
        for i, p in enumerate(points):
            if all(same(k, v) for k, v in p.values):
                return i
    return 0


def _with_repeats(points: list[SweepPoint], index: int, repeats: int) -> list[SweepPoint]:
    """The default point (``points[index]``) first, then ``repeats`` more runs of it (each its own
    ``measure.repeat``) spread evenly between the other points, the last at the end: runs of one point far
    apart in time show the drift between runs. Without repeats the points stay as they are."""
    if repeats < 0:
        raise ConfigError("sweep.repeats", f"{repeats} is below 0")
    if repeats == 0:
        return list(points)
    original = points[index]
    first = original.request.measure.repeat
    others = points[:index] + points[index + 1:]
    out = [original]
    done = 0
    for i in range(1, repeats + 1):
        upto = round(i * len(others) / repeats)
        out += others[done:upto]
        done = upto
        out.append(SweepPoint(original.request.with_changes(**{REPEAT_KNOB: first + i}), original.values, first + i))
    return out


# -- running as a group ----------------------------------------------------------------------------
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
    point: SweepPoint
    job_id: str | None = None
    view: JobView = field(default_factory=lambda: JobView("queued"))
    tagged: bool = False


class SweepExecution:
    """A sweep's jobs on a queue: submitted together, polled together, cancelled together.

    Finished runs get the sweep's tags as soon as they are seen, so a sweep cancelled half-way
    still shows what it measured.
    """

    def __init__(self, plan: SweepPlan, store: RunStore, submit_fn: SubmitFn, status_fn: StatusFn,
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
