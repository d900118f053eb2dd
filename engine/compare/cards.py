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
from engine.run_figures import e2e_figure, noise_warning


@dataclass(frozen=True)
class Card:
    name: str  # the run's short label: what differs, and its id tail
    value: str  # "0.350 ms", or "not timed"
    delta: str | None  # "3.1% slower · GPU time per sample", "2688× faster", "baseline", "baseline's engine plan"
    neutral: bool  # the delta is no change to colour (the baseline, or the baseline's engine plan)
    help: str
    caption: str = ""  # "GPU time 0.3866 ms · 73 kernels", "" without GPU time
    faster: bool | None = None  # against the baseline on the judged figure; None: no direction (neutral, unknown)


RATIO_FROM = 1.5  # from this many times faster or slower a delta reads as a ratio ("2688× slower"), below as a share


def delta_words(speedup: float, delta_pct: float) -> str:
    """A change against the baseline as people say it: "12.4% faster", "2.30× slower", "2688× faster" (``speedup``
    is baseline / this run, above 1 faster), not "−100.0% · 2687.60×"."""
    faster = speedup >= 1
    ratio = speedup if faster else 1 / speedup
    if ratio < RATIO_FROM:
        return f"{abs(delta_pct):.1f}% {'faster' if faster else 'slower'}"
    digits = 2 if ratio < 10 else 1 if ratio < 100 else 0
    return f"{ratio:.{digits}f}× {'faster' if faster else 'slower'}"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def cards(runs: Sequence[RunResult], table: pd.DataFrame) -> list[Card]:
    """One card per row of ``table`` (``compare.metric_table(runs, baseline)``), in its order."""
    short = short_labels(runs)
    basis = comparison_basis(runs)
    on = f" · {basis.short}" if basis.short else ""
    out = []
    by_id = {r.run_id: r for r in runs}
    for row in table.itertuples():
        name = short[row.run_id]
        run = by_id[row.run_id]
        if _missing(row.e2e_median_ms):
            out.append(
                Card(name, "not timed", None, True, f"{row.run}: an analyze run, graph segmentation only, no latency.")
            )
            continue
        delta: str | None
        faster = None
        if row.baseline:
            delta = "baseline"
        elif row.same_plan:
            delta = "baseline's engine plan"
        elif _missing(row.speedup) or row.speedup <= 0:
            delta = None
        else:
            delta, faster = delta_words(row.speedup, row.delta_pct) + on, row.speedup >= 1
        gpu = not _missing(row.gpu_time_ms)
        out.append(
            Card(
                name,
                e2e_figure(run).value,
                delta,
                bool(row.baseline or row.same_plan),
                f"{row.run}: end-to-end median latency"
                + (f" · GPU time {row.gpu_time_ms:.4f} ms" if gpu else "")
                + f"; the change and the speedup (baseline / this run) are on {basis.label}, against the baseline.",
                " · ".join(
                    part
                    for part in (
                        f"GPU time {row.gpu_time_ms:.4f} ms · {row.kernels:.0f} kernels" if gpu else "",
                        "noisy: its median is unreliable" if noise_warning(run) is not None else "",
                    )
                    if part
                ),
                faster,
            )
        )
    return out
