"""A sweep read back from the store: its runs (found by tag), one table row per run, the figure that
judges it and how much that figure moved between runs of one build.

Runs are grouped into builds by ``build_signature``: what was compiled and how it is launched. Runs of
one build (a repeated point, ``optimization_level`` unset and 3, min_block_size values that produce the
same partition, levels whose builder chose the same engine plan) are fresh-process repeats of one
measurement: their spread (``Drift``) is the run-to-run noise a knob's effect must exceed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from engine.result import RunResult
from engine.settings.defaults import MIN_BLOCK_SIZE, TRT_DEFAULT_OPTIMIZATION_LEVEL
from engine.store import RunNotFound, RunStore
from engine.studies.judging import Judging, choose, steadier
from engine.studies.knobs import (
    KNOB_TAG,
    MIN_BLOCK_SIZE_KNOB,
    SWEEP_TAG,
    SWEEPABLE_KNOBS,
    effective,
    hashable,
    knob,
    knob_default,
    order_key,
    recommended_min_block_sizes,
    request_value,
    value_label,
)
from engine.studies.record import find_study
from engine.studies.statistics import END_TO_END, GPU_TIME, GRAPH_REPLAY, Drift, median_ci_ms, reading, worst_drift

TABLE_COLUMNS = [
    "run_id",
    "build",
    "x_label",
    "x_order",
    "series",
    "repeat",
    "median_ms",
    "p10_ms",
    "p90_ms",
    "ci_low_ms",
    "ci_high_ms",
    "gpu_ms",
    "gpu_low_ms",
    "gpu_high_ms",
    "kernels",
    "graph_ms",
    "graph_low_ms",
    "graph_high_ms",
    "host_overhead_ms",
    "plan",
    "judged",
    "judged_ms",
    "judged_low_ms",
    "judged_high_ms",
    "build_s",
    "engine_count",
    "pytorch_segments",
    "coverage",
    "total_ops",
    "rel_l2",
    "is_default",
    "pareto",
    "device_name",
    "precision",
    "backend",
]
# what the sweep page's table leaves out: keys the verdict and the charts work from, and each run's device,
# precision and backend (a swept knob has a column of its own before these)
_NOT_SHOWN = {
    "run_id",
    "build",
    "x_order",
    "graph_low_ms",
    "graph_high_ms",
    "judged",
    "judged_ms",
    "judged_low_ms",
    "judged_high_ms",
    "total_ops",
    "is_default",
    "device_name",
    "precision",
    "backend",
}
TABLE_SHOWN = [*(c for c in TABLE_COLUMNS if c not in _NOT_SHOWN), "run_id"]
"""The columns the sweep page shows after the knobs, in this order (the run id last)."""


def list_sweeps(store: RunStore) -> pd.DataFrame:
    """Sweeps found in the store's tags: sweep_id, knobs, runs, model, device, is_sample, newest."""
    runs = store.list_runs()
    rows: dict[str, dict[str, Any]] = {}
    for r in runs.itertuples():
        tags = [t for t in str(r.tags).split(",") if t]
        knobs = sorted({knob_from_tag(t) for t in tags if t.startswith(KNOB_TAG)})
        for t in tags:
            if not t.startswith(SWEEP_TAG):
                continue
            sid = t[len(SWEEP_TAG) :]
            row = rows.setdefault(
                sid,
                {
                    "sweep_id": sid,
                    "knobs": None,
                    "runs": 0,
                    "model": r.model,
                    "device_name": r.device_name,
                    "is_sample": True,
                    "newest": r.created_at,
                },
            )
            row["knobs"] = sweep_knobs(row["knobs"], knobs)
            row["runs"] += 1
            row["is_sample"] = row["is_sample"] and bool(r.is_sample)
            row["newest"] = max(row["newest"], r.created_at)
    out = pd.DataFrame(
        list(rows.values()), columns=["sweep_id", "knobs", "runs", "model", "device_name", "is_sample", "newest"]
    )
    out["knobs"] = out["knobs"].map(lambda s: ", ".join(sorted(s or ())))
    return out.sort_values("newest", ascending=False).reset_index(drop=True)


def sweep_knobs(so_far: set[str] | None, run_knobs: Iterable[str]) -> set[str]:
    """The knobs of a sweep: those every one of its runs is tagged with. A run shared with another sweep (the
    default point of an optimization_level and a min_block_size sweep is one request) carries that sweep's
    knob as well."""
    return set(run_knobs) if so_far is None else so_far & set(run_knobs)


def knob_from_tag(tag: str) -> str:
    return tag[len(KNOB_TAG) :].split("=", 1)[0]


@dataclass
class Sweep:
    """A sweep read back from the store: its runs, one table row per run, the figure that judges it
    (``judging``) and the run-to-run drift of that figure (``drift``; ``drifts`` holds both figures')."""

    sweep_id: str
    knobs: tuple[str, ...]
    results: list[RunResult]
    table: pd.DataFrame
    recommended_min_block_size: list[int] = field(default_factory=list)
    drift: Drift | None = None
    judging: Judging = field(default_factory=lambda: Judging(END_TO_END, END_TO_END))
    drifts: dict[str, Drift] = field(default_factory=dict)


def tagged_results(store: RunStore, sweep_id: str, what: str = "sweep", tag: str = SWEEP_TAG) -> list[RunResult]:
    """The runs of a stored study (its record's finished points), or of a study known by its tags only (a bundled
    sample: the runs tagged ``<tag><sweep_id>``); raises ``RunNotFound`` naming the ``what`` when there are none."""
    study = find_study(store, sweep_id)
    ids = (study.run_ids if study is not None else []) or store.runs_with_tag(f"{tag}{sweep_id}")
    results = []
    for run_id in ids:
        try:
            results.append(store.get(run_id))
        except RunNotFound:  # deleted since
            continue
    if not results:
        err = RunNotFound(sweep_id)
        err.message = (
            f"No stored run belongs to {what} {sweep_id!r}: it was deleted or never finished. "
            f"Pick a {what} from the list or run a new one."
        )
        raise err
    return results


def load_sweep(store: RunStore, sweep_id: str) -> Sweep:
    """A sweep's runs (its stored record's, else those tagged ``sweep:<sweep_id>``); raises ``RunNotFound`` naming
    the sweep when there are none."""
    results = tagged_results(store, sweep_id)
    study = find_study(store, sweep_id)
    knobs = (study.plan.get("knobs") or None) if study is not None else None
    return sweep_from_results(sweep_id, results, knobs, others=_runs_alike(store, results))


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
        except RunNotFound:  # deleted meanwhile
            continue
        if len(out) >= limit:
            break
    return out


def sweep_from_results(
    sweep_id: str, results: list[RunResult], knobs: Sequence[str] | None = None, others: Sequence[RunResult] = ()
) -> Sweep:
    """A sweep from its runs; ``others`` are runs outside it that may have timed one of its builds again."""
    if knobs is None:
        found: set[str] | None = None
        for r in results:
            found = sweep_knobs(found, (knob_from_tag(t) for t in r.tags if t.startswith(KNOB_TAG)))
        found = found or set()
        knobs = sorted(found, key=lambda k: list(SWEEPABLE_KNOBS).index(k) if k in SWEEPABLE_KNOBS else 99)
    knobs = tuple(knobs) or _varying_knobs(results)
    recommended = _recommended_in(results)
    timed = [r for r in results if r.latency.iters > 0]  # analyze (dryrun) runs time nothing
    others = [r for r in others if r.latency.iters > 0]
    drifts = {
        m: d for m in (GRAPH_REPLAY, GPU_TIME, END_TO_END) if (d := measure_drift(timed, others, knobs, m)) is not None
    }
    judging = steadier(choose(knobs, timed), timed, {m: d.fraction for m, d in drifts.items()})
    table = sweep_table(timed, knobs, recommended, judging.metric)
    return Sweep(sweep_id, knobs, timed, table, recommended, drifts.get(judging.metric), judging, drifts)


def build_signature(result: RunResult) -> str:
    """What was timed, so that two runs with the same signature timed the same build: model, inputs,
    weights seed, device and versions, backend and the compile knobs as the compiler sees them
    (unset optimization_level is level 3; min_block_size acts only through the partition it
    produces, so once the partition is known it stands in for the knob; once the engine plan's
    fingerprint is known, it stands in for every knob that only steers the build, and for the seed
    of the random weights). Runtime knobs
    that change what is timed without changing the engine (``enable_cudagraphs``: one graph launch
    instead of one per kernel) stay in: their runs are different measurements, not repeats of one."""
    r = result.request
    knobs = dict(r["compile"])
    if r["backend"] != "tensorrt":
        knobs = {"precision": knobs["precision"]}
    else:
        knobs.setdefault("enable_cudagraphs", False)  # runs stored before the knob existed ran without
        if knobs.get("optimization_level") is None:
            knobs["optimization_level"] = TRT_DEFAULT_OPTIMIZATION_LEVEL
        seg = result.segmentation
        if seg is not None and seg.segments:
            knobs.pop("min_block_size", None)
            knobs["partition"] = [(s.kind, s.op_count) for s in seg.segments]
        if result.plan_fingerprint is not None:
            # knob values that change nothing once the engine plan is known: the plan fingerprint stands in for
            # them (``Knob.build_only``), and for the partition the build-only knobs produced
            knobs = {k: v for k, v in knobs.items() if k != "partition" and not knob(f"compile.{k}").build_only}
            knobs["plan"] = result.plan_fingerprint
    env = {k: result.env.get(k) for k in ("device_name", "flavour", "torch", "torch_tensorrt", "tensorrt")}
    # the weights' seed changes values, not kernels: once the plan is known it no longer tells builds apart
    seed = r["measure"].get("seed") if result.plan_fingerprint is None else None
    payload = {"model": r["model"], "backend": r["backend"], "seed": seed, "compile": knobs, "env": env}
    blob = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def measure_drift(
    results: Sequence[RunResult], others: Sequence[RunResult] = (), knobs: Sequence[str] = (), metric: str = END_TO_END
) -> Drift | None:
    """The largest relative gap of ``metric`` between runs that timed the same build, among the sweep's builds."""
    groups: dict[str, list[RunResult]] = {}
    for r in [*results, *others]:
        groups.setdefault(build_signature(r), []).append(r)
    inside = {build_signature(r) for r in results}
    in_sweep = {r.run_id for r in results}
    return worst_drift(
        (runs for sig, runs in groups.items() if sig in inside),
        metric,
        lambda r: _run_text(r, knobs, r.run_id in in_sweep),
    )


def repeat_of(result: RunResult) -> int:
    """The run's ``measure.repeat`` (0 for the first run of its settings, and for runs stored before repeats)."""
    return int((result.request.get("measure") or {}).get("repeat") or 0)


def _run_text(result: RunResult, knobs: Sequence[str], in_sweep: bool) -> str:
    if in_sweep and knobs:
        text = ", ".join(
            f"{SWEEPABLE_KNOBS.get(k, k)}={value_label(k, request_value(result.request, k))}" for k in knobs
        )
        return text + (f", repeat {repeat_of(result)}" if repeat_of(result) else "")
    return f"run {result.run_id}"


def _varying_knobs(results: list[RunResult]) -> tuple[str, ...]:
    return tuple(k for k in SWEEPABLE_KNOBS if len({hashable(request_value(r.request, k)) for r in results}) > 1)


def _recommended_in(results: list[RunResult]) -> list[int]:
    """The dryrun recommendations of the default-min_block_size run (else of any run)."""
    with_seg = [r for r in results if r.segmentation is not None and r.segmentation.recommendations]
    at_default = [r for r in with_seg if request_value(r.request, MIN_BLOCK_SIZE_KNOB) == MIN_BLOCK_SIZE]
    for r in at_default + with_seg:
        values = recommended_min_block_sizes(r.segmentation)
        if values:
            return values
    return []


def sweep_table(
    results: list[RunResult], knobs: Sequence[str], recommended: Sequence[int] = (), metric: str = END_TO_END
) -> pd.DataFrame:
    """One row per run: knob values (raw and labelled), end-to-end latency with p10-p90 and the median's CI,
    GPU time with its fastest/slowest window and kernels per call, CUDA-graph replay, host overhead, the engine
    plan, the judged figure (``metric``), build time, segmentation counts, accuracy, and whether the point is on
    the judged-latency / build-time Pareto front."""
    rows = []
    results = sorted(
        results, key=lambda r: (tuple(order_key(k, request_value(r.request, k)) for k in reversed(knobs)), repeat_of(r))
    )
    for r in results:
        values = [request_value(r.request, k) for k in knobs]
        seg = r.segmentation
        if r.latency_samples_ms:
            lo, hi = median_ci_ms(r.latency_samples_ms)
        else:
            lo = hi = float("nan")
        g, graph = r.gpu_time, r.graph_replay
        # the judged figure with its own spread (e2e: the median's CI, computed above)
        judged = reading(r, metric) if metric != END_TO_END else None
        row = {k: v for k, v in zip(knobs, values, strict=True)}
        row.update(
            {
                "run_id": r.run_id,
                "build": build_signature(r),
                "x_label": value_label(knobs[0], values[0], recommended) if knobs else "",
                "x_order": order_key(knobs[0], values[0]) if knobs else (),
                "series": value_label(knobs[1], values[1], recommended) if len(knobs) > 1 else "",
                "repeat": repeat_of(r),
                "median_ms": r.latency.median_ms,
                "p10_ms": r.latency.p10_ms,
                "p90_ms": r.latency.p90_ms,
                "ci_low_ms": lo,
                "ci_high_ms": hi,
                "gpu_ms": g.median_ms if g else None,
                "gpu_low_ms": g.min_ms if g else None,
                "gpu_high_ms": g.max_ms if g else None,
                "kernels": g.kernels_per_inference if g else None,
                "graph_ms": graph.median_ms if graph is not None and graph.captured else None,
                "graph_low_ms": graph.p10_ms if graph is not None and graph.captured else None,
                "graph_high_ms": graph.p90_ms if graph is not None and graph.captured else None,
                "host_overhead_ms": r.host_overhead_ms,
                "plan": r.plan_fingerprint,
                "judged": metric,
                "judged_ms": judged.ms if judged else r.latency.median_ms,
                "judged_low_ms": judged.low_ms if judged else lo,
                "judged_high_ms": judged.high_ms if judged else hi,
                "build_s": r.build_s,
                "engine_count": r.engine_count if r.request["backend"] == "tensorrt" else 0,
                "pytorch_segments": seg.pytorch_segment_count if seg else None,
                "coverage": seg.coverage if seg else None,
                "total_ops": seg.total_ops if seg else None,
                "rel_l2": r.accuracy.rel_l2 if r.accuracy else None,
                "is_default": all(
                    effective(k, v) == effective(k, knob_default(k)) for k, v in zip(knobs, values, strict=True)
                ),
                "device_name": r.env.get("device_name", "?"),
                "precision": r.request["compile"]["precision"],
                "backend": r.request["backend"],
            }
        )
        rows.append(row)
    df = pd.DataFrame(rows, columns=[*knobs, *TABLE_COLUMNS])
    for k in knobs:  # keep knob values as given: unset stays None, levels stay ints
        df[k] = pd.Series([row[k] for row in rows], dtype=object)
    df["pareto"] = pareto_front(df)
    return df


def pareto_front(table: pd.DataFrame) -> pd.Series:
    """True for runs no other run beats on both the judged latency and build time (``median_ms`` where the
    table has no ``judged_ms``); a repeated run (``repeat`` > 0) is never on the front."""
    y = "judged_ms" if "judged_ms" in table else "median_ms"
    out = pd.Series(False, index=table.index)
    have = table.dropna(subset=[y, "build_s"]) if len(table) else table
    if "repeat" in have:
        have = have[have["repeat"] == 0]  # repeats measure the noise of their point: not a choice of their own
    for i, row in have.iterrows():
        dominated = (
            (have[y] <= row[y])
            & (have["build_s"] <= row["build_s"])
            & ((have[y] < row[y]) | (have["build_s"] < row["build_s"]))
        ).any()
        out[i] = not dominated
    return out
