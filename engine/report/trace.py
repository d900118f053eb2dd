"""A run's per-layer profile as a Chrome trace (JSON object format) that Perfetto and chrome://tracing open.

The layer table holds each layer's mean time per inference in execution order (``engine.result.LAYER_COLUMNS``),
so the trace is one synthetic inference: every layer a complete ("X") event starting where the previous one
ended. Each run is a process, each engine or PyTorch segment a thread (track) whose span event encloses its
layers. Times are whole nanoseconds written as microseconds (``ts``/``dur``), so a segment's span equals the sum
of its layers exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from engine.report.errors import ReportError
from engine.result import RunResult, normalise_layers

NOTE = (
    "Synthetic timeline: one inference laid out from the per-layer profile's mean time per layer, in execution "
    "order (profiling on, so layers take longer than in the end-to-end timing)."
)


def _us(ns: int) -> float:
    return ns / 1000.0


def _events(run: RunResult, pid: int) -> list[dict[str, Any]]:
    df = normalise_layers(run.layers).sort_values("order", kind="stable")
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": f"{run.label} ({run.run_id})"}},
        {"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0, "args": {"sort_index": pid}},
    ]
    tids: dict[str, int] = {}
    spans: list[dict[str, Any]] = []  # a stretch of consecutive layers of one segment, with its layers
    start_ns = 0
    for row in df.itertuples(index=False):
        segment = str(row.segment or row.runtime or "layers")
        if segment not in tids:
            tids[segment] = len(tids) + 1
            events += [
                {
                    "name": "thread_name",
                    "ph": "M",
                    "pid": pid,
                    "tid": tids[segment],
                    "args": {"name": f"{segment} ({row.runtime})" if row.runtime else segment},
                },
                {
                    "name": "thread_sort_index",
                    "ph": "M",
                    "pid": pid,
                    "tid": tids[segment],
                    "args": {"sort_index": tids[segment]},
                },
            ]
        dur_ns = max(0, round(float(row.avg_ms) * 1_000_000))
        tid = tids[segment]
        if not spans or spans[-1]["tid"] != tid:
            spans.append(
                {
                    "name": segment,
                    "tid": tid,
                    "runtime": str(row.runtime),
                    "start_ns": start_ns,
                    "end_ns": start_ns,
                    "layers": [],
                }
            )
        spans[-1]["end_ns"] = start_ns + dur_ns
        spans[-1]["layers"].append(
            {
                "name": str(row.name) or f"layer {row.order}",
                "cat": str(row.layer_type) or "layer",
                "ph": "X",
                "pid": pid,
                "tid": tid,
                "ts": _us(start_ns),
                "dur": _us(dur_ns),
                "args": {
                    "order": int(row.order),
                    "layer_type": str(row.layer_type),
                    "precision": str(row.precision),
                    "tactic": str(row.tactic),
                    "module_path": str(row.module_path),
                    "input_shapes": str(row.input_shapes),
                    "output_shapes": str(row.output_shapes),
                    "avg_ms": float(row.avg_ms),
                    "share": round(float(row.share), 6),
                },
            }
        )
        start_ns += dur_ns
    for span in spans:  # the enclosing span first: viewers nest a slice under the one listed before it
        events.append(
            {
                "name": span["name"],
                "cat": "segment",
                "ph": "X",
                "pid": pid,
                "tid": span["tid"],
                "ts": _us(span["start_ns"]),
                "dur": _us(span["end_ns"] - span["start_ns"]),
                "args": {"runtime": span["runtime"], "layers": len(span["layers"])},
            }
        )
        events += span["layers"]
    return events


def chrome_trace(runs: Sequence[RunResult]) -> bytes:
    """The per-layer timelines of ``runs`` (one process each) as Chrome-trace JSON bytes.

    Raises ``ReportError`` when no run has a per-layer profile; runs without one are listed in ``otherData``.
    """
    profiled = [r for r in runs if not r.layers.empty]
    if not profiled:
        names = ", ".join(r.run_id for r in runs)
        raise ReportError(
            f"No per-layer profile in {names}: there is no timeline to export.",
            "Run it again with per-layer profiling on (--layer-profile true), then export.",
        )
    events: list[dict[str, Any]] = []
    for pid, run in enumerate(profiled, start=1):
        events += _events(run, pid)
    doc = {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "source": "TensorRT profiler dashboard (python -m engine report --trace)",
            "note": NOTE,
            "runs": [r.run_id for r in profiled],
            "without_layer_profile": [r.run_id for r in runs if r.layers.empty],
        },
    }
    return json.dumps(doc, indent=None, separators=(",", ":"), allow_nan=False).encode("utf-8")
