"""Each value of a swept knob against the knob's default, as numbers: the judged figure of both runs (GPU time
for kernel knobs, end-to-end for host knobs: ``engine.studies.judging``), the other figure beside it, and the noise
a gap must exceed: the larger of both runs' own noise (bootstrap CI of the e2e median / GPU-time trace windows) and the
run-to-run drift of that figure between fresh-process runs of one build (``Sweep.drift``). Two runs of one engine
plan under a kernel knob differ by noise whatever the gap. ``engine.studies.sweeps.verdict`` puts these in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from engine.studies.judging import same_engine
from engine.studies.knobs import SWEEPABLE_KNOBS, effective, hashable, kernel_knob, knob_default, order_key, value_label
from engine.studies.statistics import END_TO_END, reading
from engine.studies.sweeps.results import Sweep


@dataclass
class Comparison:
    """One knob value measured against the knob's default, on the judged figure (``metric``), with the noise
    that judges the gap. ``reference_ms`` / ``candidate_ms`` are that figure; the ``*_e2e_ms`` and
    ``*_gpu_ms`` fields hold both figures for display."""

    knob: str
    series: str  # the other knob and its value, e.g. "precision=fp16" ("" if none)
    reference_label: str
    candidate_label: str
    reference_run: str
    candidate_run: str
    reference_ms: float
    candidate_ms: float
    noise_ms: float | None  # a gap smaller than this is not a measured difference
    noise_source: str  # "bootstrap CI" | "trace windows" | "repeat runs" | ""
    reference_build_s: float | None
    candidate_build_s: float | None
    reference_engines: int
    candidate_engines: int
    reference_pytorch_segments: int | None
    candidate_pytorch_segments: int | None
    same_build: bool = False  # the compiler built the same thing (e.g. an identical partition)
    ci_noise_ms: float | None = None  # the within-run part of noise_ms, before drift
    metric: str = END_TO_END  # the judged figure: engine.studies.statistics.GRAPH_REPLAY | GPU_TIME | END_TO_END
    same_plan: bool = False  # both runs recorded the same engine plan (judging.same_engine)
    reference_e2e_ms: float | None = None
    candidate_e2e_ms: float | None = None
    reference_gpu_ms: float | None = None
    candidate_gpu_ms: float | None = None
    reference_kernels: float | None = None
    candidate_kernels: float | None = None
    reference_low_ms: float | None = None  # the judged figure's own spread (Reading.low_ms / high_ms)
    reference_high_ms: float | None = None
    candidate_low_ms: float | None = None
    candidate_high_ms: float | None = None

    @property
    def delta_ms(self) -> float:
        return self.candidate_ms - self.reference_ms

    @property
    def delta_pct(self) -> float:
        return 100.0 * self.delta_ms / self.reference_ms if self.reference_ms else float("nan")

    @property
    def noise_by_identity(self) -> bool:
        """The same engine plan under a knob that changes kernels: the gap is noise whatever its size."""
        return self.same_plan and kernel_knob(self.knob)

    @property
    def significant(self) -> bool | None:
        if self.noise_by_identity:
            return False
        # a gap equal to the drift seen between two runs of one build is that drift (the relative
        # drift times a median can land a rounding error below the gap it came from)
        return None if self.noise_ms is None else abs(self.delta_ms) > self.noise_ms * (1 + 1e-9)

    @property
    def build_delta_s(self) -> float | None:
        if self.reference_build_s is None or self.candidate_build_s is None:
            return None
        return self.candidate_build_s - self.reference_build_s


def compare_with_default(sweep: Sweep, knob: str | None = None) -> list[Comparison]:
    """Every value of ``knob`` against its default value, per value of the other knob. Repeats of a point
    (``measure.repeat`` > 0) are not compared: they measure the noise."""
    knob = knob or sweep.knobs[0]
    table = sweep.table
    other = [k for k in sweep.knobs if k != knob]
    groups = table.groupby([other[0]], dropna=False, sort=False) if other else [((None,), table)]
    runs = {r.run_id: r for r in sweep.results}
    metric = sweep.judging.metric
    out = []
    default = knob_default(knob)
    for _, group in groups:
        order = sorted(
            range(len(group)),
            key=lambda i: (
                order_key(knob, group[knob].iloc[i]),  # noqa: B023
                group["repeat"].iloc[i],
            ),
        )  # noqa: B023
        group = group.iloc[order]
        effective_values = group[knob].map(lambda v: effective(knob, v))
        refs = group[effective_values == effective(knob, default)]
        if refs.empty:
            continue
        # the unset value is the default proper; "3" is the same build measured again
        exact = refs[refs[knob].map(lambda v: hashable(v) == hashable(default))]
        ref = (exact if len(exact) else refs).iloc[0]
        ref_run = runs[ref["run_id"]]
        ref_reading = reading(ref_run, metric)
        drift_ms = sweep.drift.fraction * ref_reading.ms if sweep.drift and ref_reading else None
        for _, cand in group.iterrows():
            if cand["run_id"] == ref["run_id"] or cand["repeat"] > 0:
                continue
            cand_run = runs[cand["run_id"]]
            cand_reading = reading(cand_run, metric)
            if ref_reading is None or cand_reading is None:
                continue
            halves = [ref_reading.half_width_ms, cand_reading.half_width_ms]
            stat = None if any(h is None for h in halves) else float(sum(h for h in halves if h is not None))
            noise, source = stat, ref_reading.noise_source if stat is not None else ""
            if drift_ms is not None and (noise is None or drift_ms > noise):
                noise, source = drift_ms, "repeat runs"
            series = ""
            if other:
                other_label = value_label(other[0], cand[other[0]], sweep.recommended_min_block_size)
                series = f"{SWEEPABLE_KNOBS[other[0]]}={other_label}"
            out.append(
                Comparison(
                    knob=knob,
                    series=series,
                    reference_label=value_label(knob, ref[knob], sweep.recommended_min_block_size),
                    candidate_label=value_label(knob, cand[knob], sweep.recommended_min_block_size),
                    reference_run=ref["run_id"],
                    candidate_run=cand["run_id"],
                    reference_ms=ref_reading.ms,
                    candidate_ms=cand_reading.ms,
                    noise_ms=noise,
                    noise_source=source,
                    reference_build_s=_opt_float(ref["build_s"]),
                    candidate_build_s=_opt_float(cand["build_s"]),
                    reference_engines=int(ref["engine_count"]),
                    candidate_engines=int(cand["engine_count"]),
                    reference_pytorch_segments=_opt_int(ref["pytorch_segments"]),
                    candidate_pytorch_segments=_opt_int(cand["pytorch_segments"]),
                    same_build=ref["build"] == cand["build"],
                    ci_noise_ms=stat,
                    metric=metric,
                    same_plan=same_engine(ref_run, cand_run),
                    reference_e2e_ms=float(ref["median_ms"]),
                    candidate_e2e_ms=float(cand["median_ms"]),
                    reference_gpu_ms=_opt_float(ref["gpu_ms"]),
                    candidate_gpu_ms=_opt_float(cand["gpu_ms"]),
                    reference_kernels=_opt_float(ref["kernels"]),
                    candidate_kernels=_opt_float(cand["kernels"]),
                    reference_low_ms=ref_reading.low_ms,
                    reference_high_ms=ref_reading.high_ms,
                    candidate_low_ms=cand_reading.low_ms,
                    candidate_high_ms=cand_reading.high_ms,
                )
            )
    return out


def _opt_float(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _opt_int(v: Any) -> int | None:
    return None if v is None or pd.isna(v) else int(v)
