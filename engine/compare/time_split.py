"""Where one inference's end-to-end time goes: the GPU running kernels, and the GPU idle waiting on the host.

Derived from what a run stores, never invented: the end-to-end median (``LatencyStats``), the GPU kernel time per
inference (``GpuTime.median_ms``, read through its field, however the GPU-time pass defines it) and, where the module
could be captured, the CUDA-graph replay median (``GraphReplay``). With a replay the idle time splits in two: what
replaying the same kernels as one graph removed (host launch and runtime work per kernel and per engine, the PyTorch
fallback's host side) and what stays idle even under replay (gaps between kernels, the graph launch itself).

What the stored data cannot say: the host time before the first kernel apart from the gaps between kernels (that
needs kernel timestamps; runs store per-kernel totals). The three figures come from separate passes, so the parts
need not add up exactly; a part that comes out below zero is shown as zero and said.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.result import RunResult

NOT_SEPARABLE = (
    "Host time before the first kernel and gaps between kernels are not told apart: the run stores per-kernel "
    "totals, not kernel timestamps."
)
SEPARATE_PASSES = (
    "End-to-end latency, kernel time and graph replay come from separate passes, so the parts need not add up exactly."
)


@dataclass(frozen=True)
class TimePart:
    key: str  # "gpu_busy" | "removed_by_graphs" | "idle_under_replay" | "host_idle"
    label: str
    ms: float
    how: str  # which stored figures it is derived from


@dataclass(frozen=True)
class TimeSplit:
    run_id: str
    label: str
    e2e_ms: float
    parts: tuple[TimePart, ...]  # empty when the run lacks what the split needs (notes say what)
    notes: tuple[str, ...]

    def part(self, key: str) -> TimePart | None:
        return next((p for p in self.parts if p.key == key), None)


def time_split(run: RunResult, label: str = "") -> TimeSplit:
    label = label or run.label
    e2e = run.latency.median_ms
    if not run.latency.timed:
        return TimeSplit(run.run_id, label, 0.0, (), ("an analyze run times nothing",))
    gpu = run.gpu_time
    if gpu is None:
        why = "GPU kernel time was not measured" + (" (a CPU run)" if run.env.get("device") != "cuda" else "")
        return TimeSplit(run.run_id, label, e2e, (), (why,))
    busy = min(gpu.median_ms, e2e)
    notes = [NOT_SEPARABLE, SEPARATE_PASSES]
    if gpu.median_ms > e2e:
        notes.append(
            f"GPU kernel time ({gpu.median_ms:.3f} ms) exceeds the end-to-end median ({e2e:.3f} ms): kernels overlap "
            "on several streams or the passes differ; the GPU part is capped at the end-to-end time."
        )
    parts = [TimePart("gpu_busy", "GPU running kernels", busy, "GPU time (kernel trace), per inference")]
    replay = run.graph_replay
    if replay is not None and replay.captured and replay.median_ms is not None:
        removed = e2e - replay.median_ms
        under = replay.median_ms - busy
        if removed < 0 or under < 0:
            notes.append(
                f"The CUDA-graph replay ({replay.median_ms:.3f} ms) lies outside GPU time–end-to-end "
                f"({busy:.3f}–{e2e:.3f} ms): a part below zero is shown as zero."
            )
        parts += [
            TimePart(
                "removed_by_graphs",
                "GPU idle: host launch work (CUDA graphs remove it)",
                max(0.0, removed),
                "end-to-end median − CUDA-graph replay median",
            ),
            TimePart(
                "idle_under_replay",
                "GPU idle even under graph replay",
                max(0.0, under),
                "CUDA-graph replay median − GPU time",
            ),
        ]
    else:
        why = replay.reason if replay is not None and replay.reason else "replay not attempted"
        notes.append(f"No CUDA-graph replay ({why}): the idle time is not split further.")
        parts.append(
            TimePart("host_idle", "GPU idle, waiting on the host", max(0.0, e2e - busy), "end-to-end median − GPU time")
        )
    return TimeSplit(run.run_id, label, e2e, tuple(parts), tuple(notes))


def split_table(splits: list[TimeSplit]) -> pd.DataFrame:
    """Long table of the runs' splits (label, part key and label, ms, share of end to end, how derived)."""
    rows = [
        {
            "run": s.label,
            "key": p.key,
            "part": p.label,
            "ms": p.ms,
            "share": p.ms / s.e2e_ms if s.e2e_ms > 0 else 0.0,
            "how": p.how,
        }
        for s in splits
        for p in s.parts
    ]
    return pd.DataFrame(rows, columns=["run", "key", "part", "ms", "share", "how"])
