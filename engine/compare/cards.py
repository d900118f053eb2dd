"""The Compare page's cards, one per run, in words: its end-to-end median, its change and speedup against the
baseline on the judged figure (``engine.differences``), its GPU time and kernels. A run that ran the baseline's
engine plan says so instead of a delta (its gap is noise); an analyze run says it was not timed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from engine.compare.differences import comparison_basis
from engine.compare.settings_table import short_labels
from engine.result import RunResult


@dataclass(frozen=True)
class Card:
    name: str  # the run's short label: what differs, and its id tail
    value: str  # "0.350 ms", or "not timed"
    delta: str | None  # "+3.1% GPU time per sample · 0.97×", "baseline", "baseline's engine plan", None
    neutral: bool  # the delta is no change to colour (the baseline, or the baseline's engine plan)
    help: str
    caption: str = ""  # "GPU time 0.3866 ms · 73 kernels", "" without GPU time


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def cards(runs: Sequence[RunResult], table: pd.DataFrame) -> list[Card]:
    """One card per row of ``table`` (``compare.metric_table(runs, baseline)``), in its order."""
    short = short_labels(runs)
    basis = comparison_basis(runs)
    on = f" {basis.short}" if basis.short else ""
    out = []
    for row in table.itertuples():
        name = short[row.run_id]
        if _missing(row.e2e_median_ms):
            out.append(
                Card(name, "not timed", None, True, f"{row.run}: an analyze run, graph segmentation only, no latency.")
            )
            continue
        delta: str | None
        if row.baseline:
            delta = "baseline"
        elif row.same_plan:
            delta = "baseline's engine plan"
        else:
            delta = None if _missing(row.speedup) else f"{row.delta_pct:+.1f}%{on} · {row.speedup:.2f}×"
        gpu = not _missing(row.gpu_time_ms)
        out.append(
            Card(
                name,
                f"{row.e2e_median_ms:.3f} ms",
                delta,
                bool(row.baseline or row.same_plan),
                f"{row.run}: end-to-end median latency"
                + (f" · GPU time {row.gpu_time_ms:.4f} ms" if gpu else "")
                + f"; the change and the speedup (baseline / this run) are on {basis.label}, against the baseline.",
                f"GPU time {row.gpu_time_ms:.4f} ms · {row.kernels:.0f} kernels" if gpu else "",
            )
        )
    return out
