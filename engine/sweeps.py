"""Knob sweeps: plan the runs, run them as one cancellable group, read them back, judge them.

A sweep varies one or two compile knobs of a base request. Its runs are ordinary stored runs
that carry two kinds of tags (the convention the sample recordings follow too):
``sweep:<sweep_id>`` on every run, and ``knob:<dotted knob>`` for each swept knob, e.g.
``knob:compile.optimization_level``. The knob's value is read back from the run's request.

The verdict is generated from measured numbers only: each value is compared with the knob's
Torch-TensorRT default, and a difference counts only when it is larger than the noise: the
bootstrap confidence interval of both medians, or the spread between runs of identical
configurations in the same sweep (``optimization_level`` unset and ``3`` are the same build),
whichever is larger.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from engine.config import (
    FRONTENDS,
    MIN_BLOCK_SIZE,
    PRECISIONS,
    TRT_DEFAULT_OPTIMIZATION_LEVEL,
    CompileSettings,
    ConfigError,
    RunRequest,
)
from engine.result import RunResult, Segmentation
from engine.store import RunNotFound, RunStore

SWEEP_TAG = "sweep:"
KNOB_TAG = "knob:"

MIN_BLOCK_SIZE_KNOB = "compile.min_block_size"
OPTIMIZATION_LEVEL_KNOB = "compile.optimization_level"
PRECISION_KNOB = "compile.precision"
RUNTIME_KNOB = "compile.use_python_runtime"
FRONTEND_KNOB = "compile.frontend"
EXECUTED_OPS_KNOB = "compile.torch_executed_ops"
CUDAGRAPHS_KNOB = "compile.enable_cudagraphs"

SWEEPABLE_KNOBS: dict[str, str] = {
    MIN_BLOCK_SIZE_KNOB: "min_block_size",
    OPTIMIZATION_LEVEL_KNOB: "optimization_level",
    PRECISION_KNOB: "precision",
    RUNTIME_KNOB: "runtime",
    FRONTEND_KNOB: "frontend",
    EXECUTED_OPS_KNOB: "torch_executed_ops",
    CUDAGRAPHS_KNOB: "cudagraphs",
}
OPTIMIZATION_LEVELS = (0, 1, 2, 3, 4, 5)
MAX_SWEEP_POINTS = 64

# Stages that make up build time when a backend records no compile_s (which already holds partition and build).
BUILD_STAGES = ("export_s", "partition_s", "build_s")
NOISE_CONFIDENCE = 0.90
BOOTSTRAP_RESAMPLES = 2000


# -- knob values ---------------------------------------------------------------------------------
def knob_default(knob: str) -> Any:
    """Torch-TensorRT's default for a swept knob (the field default in ``CompileSettings``)."""
    return CompileSettings.__dataclass_fields__[_leaf(knob)].default


def recommended_min_block_sizes(segmentation: Segmentation | None) -> list[int]:
    """The dryrun's recommended ``min_block_size`` values ("minimal" and "moderate" segmentation)."""
    if segmentation is None:
        return []
    return sorted({r.min_block_size for r in segmentation.recommendations if r.kind != "current"})


def min_block_size_values(recommendations: Segmentation | Iterable[int] | None = None,
                          user_values: Iterable[int] = ()) -> list[int]:
    """Torch-TensorRT's default (5), the dryrun's recommended values and the user's list, sorted."""
    if isinstance(recommendations, Segmentation) or recommendations is None:
        recommended = recommended_min_block_sizes(recommendations)
    else:
        recommended = list(recommendations)
    values = {MIN_BLOCK_SIZE, *recommended, *user_values}
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(MIN_BLOCK_SIZE_KNOB, f"{v!r} is not a positive integer")
    return sorted(values)


def default_values(knob: str, *, recommendations: Segmentation | Iterable[int] | None = None,
                   user_values: Iterable[Any] = ()) -> list[Any]:
    """The values a sweep of ``knob`` covers unless the user lists others.

    ``optimization_level`` covers 0-5 and leaves out "unset": unset is TensorRT's level 3.
    ``torch_executed_ops`` covers "none" plus each set the user lists (tuples of op names).
    """
    if knob == MIN_BLOCK_SIZE_KNOB:
        return min_block_size_values(recommendations, user_values)
    if knob == OPTIMIZATION_LEVEL_KNOB:
        # unset and 3 build the same engine: measuring both gives the sweep a run-to-run noise figure
        return list(user_values) or [None, *OPTIMIZATION_LEVELS]
    if knob == PRECISION_KNOB:
        return list(user_values) or list(PRECISIONS)
    if knob in (RUNTIME_KNOB, CUDAGRAPHS_KNOB):
        return [False, True]
    if knob == FRONTEND_KNOB:
        return list(FRONTENDS)
    if knob == EXECUTED_OPS_KNOB:
        sets = [tuple(sorted(set(s))) for s in user_values]
        return [(), *[s for s in dict.fromkeys(sets) if s]]
    raise ConfigError("sweep.knob", f"{knob!r} cannot be swept; pick one of {', '.join(SWEEPABLE_KNOBS)}")


def value_label(knob: str, value: Any, recommended: Sequence[int] = ()) -> str:
    """How a knob value reads on a chart axis and in the verdict."""
    default = knob_default(knob) if knob in SWEEPABLE_KNOBS else object()
    if knob == OPTIMIZATION_LEVEL_KNOB:
        return f"default ({TRT_DEFAULT_OPTIMIZATION_LEVEL})" if value is None else str(value)
    if knob == RUNTIME_KNOB:
        text = "Python" if value else "C++"
    elif knob == CUDAGRAPHS_KNOB:
        text = "on" if value else "off"
    elif knob == FRONTEND_KNOB:
        text = {"dynamo": "dynamo (AOT)", "torch_compile": "torch_compile (JIT)"}.get(value, str(value))
    elif knob == EXECUTED_OPS_KNOB:
        ops = tuple(value or ())
        text = ", ".join(_short_op(o) for o in ops) if ops else "none"
    else:
        text = str(value)
    notes = []
    if _hashable(value) == _hashable(default):
        notes.append("default")
    if knob == MIN_BLOCK_SIZE_KNOB and value in recommended:
        notes.append("recommended")
    return f"{text} ({', '.join(notes)})" if notes else text


def _short_op(op: str) -> str:
    # torch.ops.aten.relu.default -> relu
    parts = op.split(".")
    return parts[3] if len(parts) >= 4 else op


def _effective(knob: str, value: Any) -> Any:
    """The value the compiler actually uses (unset optimization_level is level 3)."""
    if knob == OPTIMIZATION_LEVEL_KNOB and value is None:
        return TRT_DEFAULT_OPTIMIZATION_LEVEL
    if knob == EXECUTED_OPS_KNOB:
        return tuple(value or ())
    return value


def _order_key(knob: str, value: Any) -> tuple:
    if knob in (MIN_BLOCK_SIZE_KNOB, OPTIMIZATION_LEVEL_KNOB):
        return (_effective(knob, value), 0 if value is None else 1)
    if knob == PRECISION_KNOB:
        return (PRECISIONS.index(value) if value in PRECISIONS else 99, str(value))
    if knob == FRONTEND_KNOB:
        return (FRONTENDS.index(value) if value in FRONTENDS else 99, str(value))
    if knob in (RUNTIME_KNOB, CUDAGRAPHS_KNOB):
        return (bool(value),)
    if knob == EXECUTED_OPS_KNOB:
        return (len(value or ()), tuple(value or ()))
    return (str(value),)


def _leaf(knob: str) -> str:
    return knob.split(".")[-1]


def request_value(request: dict[str, Any], knob: str) -> Any:
    """A dotted knob's value in a stored request dict (lists come back as tuples)."""
    value: Any = request
    for part in knob.split("."):
        value = value[part]
    return tuple(value) if isinstance(value, list) else value


# -- planning ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: the request and the knob values that make it different from the base."""

    request: RunRequest
    values: tuple[tuple[str, Any], ...]   # ((dotted knob, value), ...) in axis order

    @property
    def label(self) -> str:
        return ", ".join(f"{SWEEPABLE_KNOBS[k]}={value_label(k, v)}" for k, v in self.values)


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
    knob_part = "+".join(SWEEPABLE_KNOBS.get(k, _leaf(k)) for k in knobs)
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", base.model.source)
    return f"{model}_{base.compile.precision}_{knob_part}_{stamp}"


def plan_sweep(base: RunRequest, axes: dict[str, Sequence[Any]], *, sweep_id: str | None = None) -> SweepPlan:
    """Every combination of one or two knobs' values applied to ``base``, validated.

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
    if len(combos) > MAX_SWEEP_POINTS:
        raise ConfigError("sweep.knobs", f"{len(combos)} runs is more than the {MAX_SWEEP_POINTS} a sweep "
                                         "may hold; list fewer values")
    points = []
    for combo in combos:
        changes = dict(zip(knobs, combo, strict=True))
        try:
            request = base.with_changes(**changes)
        except ConfigError as e:
            raise ConfigError(e.field, f"in the sweep: {e.message}") from None
        points.append(SweepPoint(request, tuple(changes.items())))
    notes = []
    if OPTIMIZATION_LEVEL_KNOB in knobs:
        notes.append(f"optimization_level unset means TensorRT's default, level {TRT_DEFAULT_OPTIMIZATION_LEVEL}.")
    if CUDAGRAPHS_KNOB in knobs:
        notes.append("CUDA graphs change how the engine is launched, not how it is built: on and off are "
                     "separate sweep points, never repeats of one measurement.")
    if base.backend == "eager" and any(k != PRECISION_KNOB for k in knobs):
        notes.append("The eager backend ignores compile knobs other than precision: those runs coincide.")
    return SweepPlan(sweep_id or new_sweep_id(base, knobs), base, knobs, tuple(points), tuple(notes))


def _sorted_values(knob: str, values: Iterable[Any]) -> list[Any]:
    unique = list(dict.fromkeys(_hashable(v) for v in values))
    return sorted(unique, key=lambda v: _order_key(knob, v))


def _hashable(v: Any) -> Any:
    return tuple(sorted(set(v))) if isinstance(v, (list, tuple, set)) else v


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


# -- reading a sweep back ----------------------------------------------------------------------------
def list_sweeps(store: RunStore) -> pd.DataFrame:
    """Sweeps found in the store's tags: sweep_id, knobs, runs, model, device, is_sample, newest."""
    runs = store.list_runs()
    rows: dict[str, dict[str, Any]] = {}
    for r in runs.itertuples():
        tags = [t for t in str(r.tags).split(",") if t]
        knobs = sorted({_knob_from_tag(t) for t in tags if t.startswith(KNOB_TAG)})
        for t in tags:
            if not t.startswith(SWEEP_TAG):
                continue
            sid = t[len(SWEEP_TAG):]
            row = rows.setdefault(sid, {"sweep_id": sid, "knobs": set(), "runs": 0, "model": r.model,
                                        "device_name": r.device_name, "is_sample": True,
                                        "newest": r.created_at})
            row["knobs"].update(knobs)
            row["runs"] += 1
            row["is_sample"] = row["is_sample"] and bool(r.is_sample)
            row["newest"] = max(row["newest"], r.created_at)
    out = pd.DataFrame(list(rows.values()),
                       columns=["sweep_id", "knobs", "runs", "model", "device_name", "is_sample", "newest"])
    out["knobs"] = out["knobs"].map(lambda s: ", ".join(sorted(s)))
    return out.sort_values("newest", ascending=False).reset_index(drop=True)


def _knob_from_tag(tag: str) -> str:
    return tag[len(KNOB_TAG):].split("=", 1)[0]


@dataclass
class Sweep:
    """A sweep read back from the store: its runs and one table row per run."""

    sweep_id: str
    knobs: tuple[str, ...]
    results: list[RunResult]
    table: pd.DataFrame
    recommended_min_block_size: list[int] = field(default_factory=list)
    drift: Drift | None = None


@dataclass
class Drift:
    """Run-to-run variation seen in this sweep's context: one build timed in separate runs."""

    fraction: float                      # (slowest - fastest) / fastest median of that build
    runs: list[tuple[str, float]]        # (what the run was, its median ms), fastest first


TABLE_COLUMNS = ["run_id", "build", "x_label", "x_order", "series", "median_ms", "p10_ms", "p90_ms", "ci_low_ms",
                 "ci_high_ms", "build_s", "engine_count", "pytorch_segments", "coverage", "total_ops",
                 "rel_l2", "is_default", "pareto", "device_name", "precision", "backend"]


def tagged_results(store: RunStore, sweep_id: str, what: str = "sweep") -> list[RunResult]:
    """The runs tagged ``sweep:<sweep_id>``; raises ``RunNotFound`` naming the ``what`` when there are none."""
    ids = store.runs_with_tag(f"{SWEEP_TAG}{sweep_id}")
    if not ids:
        err = RunNotFound(sweep_id)
        err.message = (f"No stored run belongs to {what} {sweep_id!r}: it was deleted or never finished. "
                       f"Pick a {what} from the list or run a new one.")
        raise err
    return [store.get(i) for i in ids]


def load_sweep(store: RunStore, sweep_id: str) -> Sweep:
    """The runs tagged ``sweep:<sweep_id>``; raises ``RunNotFound`` naming the sweep when there are none."""
    results = tagged_results(store, sweep_id)
    return sweep_from_results(sweep_id, results, others=_runs_alike(store, results))


def _runs_alike(store: RunStore, results: list[RunResult], limit: int = 100) -> list[RunResult]:
    """Stored runs outside the sweep of the same model and backend: candidates for repeat builds."""
    first = results[0].request
    summary = store.list_runs(model=first["model"]["source"], backend=first["backend"])
    inside = {r.run_id for r in results}
    out = []
    for run_id in summary["run_id"]:
        if run_id in inside:
            continue
        try:
            out.append(store.get(run_id))
        except RunNotFound:     # deleted meanwhile
            continue
        if len(out) >= limit:
            break
    return out


def sweep_from_results(sweep_id: str, results: list[RunResult], knobs: Sequence[str] | None = None,
                       others: Sequence[RunResult] = ()) -> Sweep:
    """A sweep from its runs; ``others`` are runs outside it that may have timed one of its builds again."""
    if knobs is None:
        found = {_knob_from_tag(t) for r in results for t in r.tags if t.startswith(KNOB_TAG)}
        knobs = sorted(found, key=lambda k: list(SWEEPABLE_KNOBS).index(k) if k in SWEEPABLE_KNOBS else 99)
    knobs = tuple(knobs) or _varying_knobs(results)
    recommended = _recommended_in(results)
    timed = [r for r in results if r.latency.iters > 0]   # analyze (dryrun) runs time nothing
    table = sweep_table(timed, knobs, recommended)
    drift = measure_drift(timed, [r for r in others if r.latency.iters > 0], knobs)
    return Sweep(sweep_id, knobs, timed, table, recommended, drift)


def build_signature(result: RunResult) -> str:
    """What was timed, so that two runs with the same signature timed the same build: model, inputs,
    weights seed, device and versions, backend and the compile knobs as the compiler sees them
    (unset optimization_level is level 3; min_block_size acts only through the partition it
    produces, so once the partition is known it stands in for the knob). Runtime knobs that change
    what is timed without changing the engine (``enable_cudagraphs``: one graph launch instead of
    one per kernel) stay in: their runs are different measurements, not repeats of one."""
    r = result.request
    knobs = dict(r["compile"])
    if r["backend"] != "tensorrt":
        knobs = {"precision": knobs["precision"]}
    else:
        knobs.setdefault("enable_cudagraphs", False)   # runs stored before the knob existed ran without
        if knobs.get("optimization_level") is None:
            knobs["optimization_level"] = TRT_DEFAULT_OPTIMIZATION_LEVEL
        seg = result.segmentation
        if seg is not None and seg.segments:
            knobs.pop("min_block_size", None)
            knobs["partition"] = [(s.kind, s.op_count) for s in seg.segments]
    env = {k: result.env.get(k) for k in ("device_name", "flavour", "torch", "torch_tensorrt", "tensorrt")}
    payload = {"model": r["model"], "backend": r["backend"], "seed": r["measure"].get("seed"), "compile": knobs,
               "env": env}
    blob = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def measure_drift(results: Sequence[RunResult], others: Sequence[RunResult] = (),
                  knobs: Sequence[str] = ()) -> Drift | None:
    """The largest relative gap between runs that timed the same build, among the sweep's builds."""
    groups: dict[str, list[RunResult]] = {}
    for r in [*results, *others]:
        groups.setdefault(build_signature(r), []).append(r)
    inside = {build_signature(r) for r in results}
    worst: Drift | None = None
    for sig, runs in groups.items():
        if sig not in inside or len(runs) < 2:
            continue
        runs = sorted(runs, key=lambda r: r.latency.median_ms)
        fastest, slowest = runs[0].latency.median_ms, runs[-1].latency.median_ms
        if fastest <= 0:
            continue
        fraction = (slowest - fastest) / fastest
        if worst is None or fraction > worst.fraction:
            in_sweep = {r.run_id for r in results}
            worst = Drift(fraction, [(_run_text(r, knobs, r.run_id in in_sweep), r.latency.median_ms)
                                     for r in (runs[0], runs[-1])])
    return worst


def _run_text(result: RunResult, knobs: Sequence[str], in_sweep: bool) -> str:
    if in_sweep and knobs:
        return ", ".join(f"{SWEEPABLE_KNOBS.get(k, k)}={value_label(k, request_value(result.request, k))}"
                         for k in knobs)
    return f"run {result.run_id}"


def _varying_knobs(results: list[RunResult]) -> tuple[str, ...]:
    return tuple(k for k in SWEEPABLE_KNOBS if len({_hashable(request_value(r.request, k)) for r in results}) > 1)


def _recommended_in(results: list[RunResult]) -> list[int]:
    """The dryrun recommendations of the default-min_block_size run (else of any run)."""
    with_seg = [r for r in results if r.segmentation is not None and r.segmentation.recommendations]
    at_default = [r for r in with_seg if request_value(r.request, MIN_BLOCK_SIZE_KNOB) == MIN_BLOCK_SIZE]
    for r in at_default + with_seg:
        values = recommended_min_block_sizes(r.segmentation)
        if values:
            return values
    return []


def build_time_s(result: RunResult) -> float | None:
    """Seconds from the model to a compiled module: torch.export plus the compile call (which holds
    partitioning and the engine builds; for torch_compile, the first call that traces and builds).
    None for a run that compiled nothing (eager)."""
    stages = result.stages_s
    if "compile_s" in stages:
        return float(stages.get("export_s", 0.0) + stages["compile_s"])
    parts = [stages[s] for s in BUILD_STAGES if s in stages]
    return float(sum(parts)) if parts else None


def median_ci_ms(samples_ms: Sequence[float], confidence: float = NOISE_CONFIDENCE,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Bootstrap confidence interval of the median latency (percentile method, fixed seed)."""
    x = np.asarray(samples_ms, dtype=float)
    if x.size == 0:
        raise ValueError("no latency samples")
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(x, size=(resamples, x.size), replace=True), axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(medians, alpha)), float(np.quantile(medians, 1 - alpha))


def sweep_table(results: list[RunResult], knobs: Sequence[str], recommended: Sequence[int] = ()) -> pd.DataFrame:
    """One row per run: knob values (raw and labelled), latency with p10-p90 and the median's CI,
    build time, segmentation counts, accuracy, and whether the point is on the latency/build Pareto front."""
    rows = []
    results = sorted(results, key=lambda r: tuple(_order_key(k, request_value(r.request, k))
                                                  for k in reversed(knobs)))
    for r in results:
        values = [request_value(r.request, k) for k in knobs]
        seg = r.segmentation
        if r.latency_samples_ms:
            lo, hi = median_ci_ms(r.latency_samples_ms)
        else:
            lo = hi = float("nan")
        row = {k: v for k, v in zip(knobs, values, strict=True)}
        row.update({
            "run_id": r.run_id,
            "build": build_signature(r),
            "x_label": value_label(knobs[0], values[0], recommended) if knobs else "",
            "x_order": _order_key(knobs[0], values[0]) if knobs else (),
            "series": value_label(knobs[1], values[1], recommended) if len(knobs) > 1 else "",
            "median_ms": r.latency.median_ms, "p10_ms": r.latency.p10_ms, "p90_ms": r.latency.p90_ms,
            "ci_low_ms": lo, "ci_high_ms": hi,
            "build_s": build_time_s(r),
            "engine_count": r.engine_count if r.request["backend"] == "tensorrt" else 0,
            "pytorch_segments": seg.pytorch_segment_count if seg else None,
            "coverage": seg.coverage if seg else None,
            "total_ops": seg.total_ops if seg else None,
            "rel_l2": r.accuracy.rel_l2 if r.accuracy else None,
            "is_default": all(_effective(k, v) == _effective(k, knob_default(k))
                              for k, v in zip(knobs, values, strict=True)),
            "device_name": r.env.get("device_name", "?"),
            "precision": r.request["compile"]["precision"],
            "backend": r.request["backend"],
        })
        rows.append(row)
    df = pd.DataFrame(rows, columns=[*knobs, *TABLE_COLUMNS])
    for k in knobs:   # keep knob values as given: unset stays None, levels stay ints
        df[k] = pd.Series([row[k] for row in rows], dtype=object)
    df["pareto"] = pareto_front(df)
    return df


def pareto_front(table: pd.DataFrame) -> pd.Series:
    """True for runs no other run beats on both median latency and build time."""
    out = pd.Series(False, index=table.index)
    have = table.dropna(subset=["median_ms", "build_s"]) if len(table) else table
    for i, row in have.iterrows():
        dominated = ((have["median_ms"] <= row["median_ms"]) & (have["build_s"] <= row["build_s"])
                     & ((have["median_ms"] < row["median_ms"]) | (have["build_s"] < row["build_s"]))).any()
        out[i] = not dominated
    return out


# -- verdict ---------------------------------------------------------------------------------------
@dataclass
class Comparison:
    """One knob value measured against the knob's default, with the noise that judges the gap."""

    knob: str
    series: str                    # the other knob and its value, e.g. "precision=fp16" ("" if none)
    reference_label: str
    candidate_label: str
    reference_run: str
    candidate_run: str
    reference_ms: float
    candidate_ms: float
    noise_ms: float | None         # a gap smaller than this is not a measured difference
    noise_source: str              # "bootstrap CI" | "repeat runs" | ""
    reference_build_s: float | None
    candidate_build_s: float | None
    reference_engines: int
    candidate_engines: int
    reference_pytorch_segments: int | None
    candidate_pytorch_segments: int | None
    same_build: bool = False       # the compiler built the same thing (e.g. an identical partition)
    ci_noise_ms: float | None = None   # the bootstrap part of noise_ms, before drift

    @property
    def delta_ms(self) -> float:
        return self.candidate_ms - self.reference_ms

    @property
    def delta_pct(self) -> float:
        return 100.0 * self.delta_ms / self.reference_ms if self.reference_ms else float("nan")

    @property
    def significant(self) -> bool | None:
        # a gap equal to the drift seen between two runs of one build is that drift (the relative
        # drift times a median can land a rounding error below the gap it came from)
        return None if self.noise_ms is None else abs(self.delta_ms) > self.noise_ms * (1 + 1e-9)

    @property
    def build_delta_s(self) -> float | None:
        if self.reference_build_s is None or self.candidate_build_s is None:
            return None
        return self.candidate_build_s - self.reference_build_s


@dataclass
class Verdict:
    knob: str
    headline: str
    lines: list[str]
    comparisons: list[Comparison]

    def markdown(self) -> str:
        return "\n".join([f"**{self.headline}**", "", *(f"- {line}" for line in self.lines)])


def compare_with_default(sweep: Sweep, knob: str | None = None) -> list[Comparison]:
    """Every value of ``knob`` against its default value, per value of the other knob."""
    knob = knob or sweep.knobs[0]
    table = sweep.table
    other = [k for k in sweep.knobs if k != knob]
    groups = table.groupby([other[0]], dropna=False, sort=False) if other else [((None,), table)]
    out = []
    default = knob_default(knob)
    for _, group in groups:
        order = sorted(range(len(group)), key=lambda i: _order_key(knob, group[knob].iloc[i]))  # noqa: B023
        group = group.iloc[order]
        effective = group[knob].map(lambda v: _effective(knob, v))
        refs = group[effective == _effective(knob, default)]
        if refs.empty:
            continue
        # the unset value is the default proper; "3" is the same build measured again
        exact = refs[refs[knob].map(lambda v: _hashable(v) == _hashable(default))]
        ref = (exact if len(exact) else refs).iloc[0]
        drift_ms = sweep.drift.fraction * float(ref["median_ms"]) if sweep.drift else None
        for _, cand in group.iterrows():
            if cand["run_id"] == ref["run_id"]:
                continue
            stat = _ci_noise(ref, cand)
            noise, source = stat, "bootstrap CI" if stat is not None else ""
            if drift_ms is not None and (noise is None or drift_ms > noise):
                noise, source = drift_ms, "repeat runs"
            series = ""
            if other:
                other_label = value_label(other[0], cand[other[0]], sweep.recommended_min_block_size)
                series = f"{SWEEPABLE_KNOBS[other[0]]}={other_label}"
            out.append(Comparison(
                knob=knob, series=series,
                reference_label=value_label(knob, ref[knob], sweep.recommended_min_block_size),
                candidate_label=value_label(knob, cand[knob], sweep.recommended_min_block_size),
                reference_run=ref["run_id"], candidate_run=cand["run_id"],
                reference_ms=float(ref["median_ms"]), candidate_ms=float(cand["median_ms"]),
                noise_ms=noise, noise_source=source,
                reference_build_s=_opt_float(ref["build_s"]), candidate_build_s=_opt_float(cand["build_s"]),
                reference_engines=int(ref["engine_count"]), candidate_engines=int(cand["engine_count"]),
                reference_pytorch_segments=_opt_int(ref["pytorch_segments"]),
                candidate_pytorch_segments=_opt_int(cand["pytorch_segments"]),
                same_build=ref["build"] == cand["build"], ci_noise_ms=stat))
    return out


def _ci_noise(a: pd.Series, b: pd.Series) -> float | None:
    """Half-widths of both medians' confidence intervals added: the gap that CIs can explain."""
    halves = [(r["ci_high_ms"] - r["ci_low_ms"]) / 2 for r in (a, b)]
    if any(pd.isna(h) for h in halves):
        return None
    return float(sum(halves))


def _opt_float(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _opt_int(v: Any) -> int | None:
    return None if v is None or pd.isna(v) else int(v)


def verdict(sweep: Sweep, knob: str | None = None) -> Verdict:
    """The written verdict for one knob of a sweep, from its measured numbers."""
    knob = knob or sweep.knobs[0]
    comparisons = compare_with_default(sweep, knob)
    name = SWEEPABLE_KNOBS.get(knob, knob)
    if not comparisons:
        default = value_label(knob, knob_default(knob))
        return Verdict(knob, f"{name}: no verdict", [
            f"The sweep has no run at the default {name}={default} to compare against, or only that one run."],
            [])
    lines = []
    by_series: dict[str, list[Comparison]] = {}
    for c in comparisons:
        by_series.setdefault(c.series, []).append(c)
    for series, comps in by_series.items():
        prefix = f"At {series}: " if series else ""
        lines.append(prefix + _reference_sentence(comps[0], knob))
        if knob == MIN_BLOCK_SIZE_KNOB:
            lines += _min_block_size_lines(comps, sweep.recommended_min_block_size)
        else:
            lines += [_comparison_sentence(c, knob) for c in comps]
        lines.append(_summary_sentence(comps, knob))
    lines.append(_noise_sentence(sweep.drift))
    masked = [c for c in comparisons if c.noise_source == "repeat runs" and not c.same_build
              and c.ci_noise_ms is not None and abs(c.delta_ms) > c.ci_noise_ms]
    if masked:
        lines.append(f"{len(masked)} gap{'s' if len(masked) != 1 else ''} ("
                     + ", ".join(c.candidate_label for c in masked)
                     + ") exceed the bootstrap intervals but not the drift: re-run the sweep, ideally with the "
                       "values interleaved and repeated, to tell the knob from the drift.")
    if knob == OPTIMIZATION_LEVEL_KNOB:
        lines.append(f"optimization_level unset is TensorRT's default, level {TRT_DEFAULT_OPTIMIZATION_LEVEL}.")
    return Verdict(knob, _headline(comparisons, knob), lines, comparisons)


def _noise_sentence(drift: Drift | None) -> str:
    text = f"Noise: a gap counts when it exceeds the {NOISE_CONFIDENCE:.0%} bootstrap intervals of both medians"
    if drift is None:
        return (text + ". No build of this sweep was timed twice, so drift between runs (clocks, other load) is "
                       "not in that figure: treat gaps of a few percent with care.")
    (fast_what, fast_ms), (slow_what, slow_ms) = drift.runs
    return (text + f" and the run-to-run drift seen here: the same build timed {format_ms(fast_ms)} ({fast_what}) "
                   f"and {format_ms(slow_ms)} ({slow_what}), {drift.fraction:.1%} apart, so a gap must exceed "
                   "that share of the default's latency.")


def format_ms(v: float) -> str:
    return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f} s"


def _engines(n: int, pytorch: int | None) -> str:
    text = f"{n} TensorRT engine{'s' if n != 1 else ''}"
    if pytorch is not None:
        text += f" + {pytorch} PyTorch subgraph{'s' if pytorch != 1 else ''}"
    return text


def _gap(c: Comparison) -> str:
    direction = "faster" if c.delta_ms < 0 else "slower"
    text = f"{format_ms(abs(c.delta_ms))} ({abs(c.delta_pct):.1f}%) {direction}"
    if c.significant is None:
        return text + " (noise unknown: no latency samples)"
    if c.significant:
        return text + f", more than the noise (±{format_ms(c.noise_ms or 0.0)})"
    return text + f", within the noise (±{format_ms(c.noise_ms or 0.0)}): no measured difference"


def _build_gap(c: Comparison) -> str:
    if c.build_delta_s is None:
        return ""
    return (f"; build {_s(c.candidate_build_s)} against {_s(c.reference_build_s)} "
            f"({'+' if c.build_delta_s >= 0 else '−'}{abs(c.build_delta_s):.1f} s)")


def _reference_sentence(c: Comparison, knob: str) -> str:
    name = SWEEPABLE_KNOBS.get(knob, knob)
    label = c.reference_label.replace(" (default)", "")
    if label.startswith("default"):    # optimization_level unset
        label = f"unset ({TRT_DEFAULT_OPTIMIZATION_LEVEL})"
    text = f"Default {name}={label}: median {format_ms(c.reference_ms)}"
    if _shows_engines(c):
        text += f", {_engines(c.reference_engines, c.reference_pytorch_segments)}"
    if c.reference_build_s is not None:
        text += f", build {_s(c.reference_build_s)}"
    return text + "."


def _comparison_sentence(c: Comparison, knob: str) -> str:
    name = SWEEPABLE_KNOBS.get(knob, knob)
    text = f"{name}={c.candidate_label}: {format_ms(c.candidate_ms)}, {_gap(c)}{_build_gap(c)}"
    if _shows_engines(c):
        text += f"; {_engines(c.candidate_engines, c.candidate_pytorch_segments)}"
    if c.same_build:
        why = " (identical partition)" if c.candidate_pytorch_segments is not None else ""
        text += f" — the same build as the default{why}, so this gap is run-to-run variation"
    return text + "."


def _shows_engines(c: Comparison) -> bool:
    # engine counts matter for partitioning knobs, and only for runs that compiled something
    partitioning = c.knob in (MIN_BLOCK_SIZE_KNOB, EXECUTED_OPS_KNOB)
    compiled = c.reference_pytorch_segments is not None or c.reference_engines > 0 or c.candidate_engines > 0
    return partitioning and compiled


def _min_block_size_lines(comps: list[Comparison], recommended: Sequence[int]) -> list[str]:
    lines = []
    rec_labels = {value_label(MIN_BLOCK_SIZE_KNOB, v, recommended) for v in recommended}
    for c in comps:
        lines.append(_comparison_sentence(c, MIN_BLOCK_SIZE_KNOB))
    if not recommended:
        lines.append("No dryrun recommendation in this sweep: run the analyze mode (dryrun) to get the "
                     "min_block_size it recommends.")
    elif not any(c.candidate_label in rec_labels for c in comps):
        values = ", ".join(str(v) for v in recommended)
        if MIN_BLOCK_SIZE in recommended:
            lines.append(f"The dryrun recommends {values}: the default already gives the minimal segmentation.")
        else:
            lines.append(f"The dryrun recommends min_block_size={values}, but the sweep has no run of it.")
    return lines


def _summary_sentence(comps: list[Comparison], knob: str) -> str:
    name = SWEEPABLE_KNOBS.get(knob, knob)
    faster = [c for c in comps if c.significant and c.delta_ms < 0]
    slower = [c for c in comps if c.significant and c.delta_ms > 0]
    if not faster:
        text = f"No {name} value is measurably faster than the default"
        if slower:
            text += "; " + ", ".join(c.candidate_label for c in slower) + " measurably slower"
        return text + "."
    best = min(faster, key=lambda c: c.candidate_ms)
    text = (f"Fastest: {name}={best.candidate_label}, {format_ms(-best.delta_ms)} ({-best.delta_pct:.1f}%) "
            f"faster than the default")
    if best.build_delta_s is not None:
        if best.build_delta_s > 0:
            per_s = -best.delta_ms / best.build_delta_s
            text += f" for {best.build_delta_s:.1f} s more build time ({per_s:.3f} ms of latency per build second)"
        else:
            text += f" and {-best.build_delta_s:.1f} s quicker to build"
    return text + "."


def _headline(comparisons: list[Comparison], knob: str) -> str:
    name = SWEEPABLE_KNOBS.get(knob, knob)
    faster = [c for c in comparisons if c.significant and c.delta_ms < 0]
    if not faster:
        return f"{name}: no value is measurably faster than the default"
    best = min(faster, key=lambda c: c.candidate_ms)
    where = f" at {best.series}" if best.series else ""
    return (f"{name}: {best.candidate_label} beats the default by {-best.delta_pct:.1f}%{where} "
            f"({format_ms(best.reference_ms)} → {format_ms(best.candidate_ms)})")
