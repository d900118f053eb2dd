"""The figure a precision ladder is judged on, one choice for its verdict, table and chart (``LadderFigure``,
``ladder_table``):
precision and quantization change kernels, so a device figure judges (``engine.studies.judging.pick``): the
CUDA-graph replay when every rung captured one (it keeps the overlap of kernels on several streams, which an
INT8 weight-only vit_b_16 engine has), else GPU busy time when every rung's passed its checks, else end-to-end
latency, with the reason."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from engine.studies.judging import pick
from engine.studies.ladder.rungs import Rung
from engine.studies.statistics import END_TO_END, GPU_TIME, GRAPH_REPLAY, METRIC_NAMES, NOISE_SOURCES, format_ms


@dataclass(frozen=True)
class LadderFigure:
    metric: str  # GRAPH_REPLAY | GPU_TIME | END_TO_END
    reason: str = ""  # why it is not the CUDA-graph replay ("" when it is)

    @classmethod
    def of(cls, rungs: Sequence[Rung]) -> LadderFigure:
        """Chosen over the rungs that compete on latency: a rung whose engine output is broken (a conversion
        problem: NaN, a replay that cannot match it) never competes, so it cannot take the figure away."""
        competing = [r for r in rungs if not r.conversion_problem] or list(rungs)
        if not competing:
            return cls(END_TO_END)
        j = pick(GPU_TIME, [r.replay_problem for r in competing], [r.gpu_problem for r in competing])
        return cls(j.metric, j.reason)

    def has(self, r: Rung) -> bool:
        """The rung measured the judged figure (a broken rung may lack it)."""
        return {GRAPH_REPLAY: r.graph_ms, GPU_TIME: r.gpu_ms}.get(self.metric, r.median_ms) is not None

    @property
    def name(self) -> str:
        return METRIC_NAMES[self.metric]

    def ms(self, r: Rung) -> float:
        """The judged figure; a rung without it (``has``) is placed by its end-to-end median."""
        v = {GRAPH_REPLAY: r.graph_ms, GPU_TIME: r.gpu_ms}.get(self.metric)
        return v if v is not None else r.median_ms

    def band(self, r: Rung) -> tuple[float | None, float | None]:
        """The judged figure's own spread: replay p10-p90, fastest/slowest trace window, or e2e p10-p90."""
        if self.metric == GRAPH_REPLAY:
            return r.graph_low_ms, r.graph_high_ms
        if self.metric == GPU_TIME:
            return r.gpu_low_ms, r.gpu_high_ms
        return r.p10_ms, r.p90_ms

    @property
    def spread_name(self) -> str:
        return "p10-p90" if self.metric == END_TO_END else NOISE_SOURCES[self.metric]

    def text(self, r: Rung) -> str:
        """ "CUDA-graph replay 1.4524 ms (replay p10-p90 1.4492–1.4970 ms; end-to-end 1.589 ms)"."""
        lo, hi = self.band(r)
        spread = (
            f"{self.spread_name} {format_ms(lo, self.metric).removesuffix(' ms')}–{format_ms(hi, self.metric)}"
            if lo is not None and hi is not None
            else ""
        )
        if not self.has(r):
            problem = r.replay_problem if self.metric == GRAPH_REPLAY else r.gpu_problem
            return f"end-to-end {format_ms(r.median_ms)} (no {self.name}: {problem})"
        if self.metric == END_TO_END:
            return f"{format_ms(r.median_ms)}" + (f" ({spread})" if spread else "")
        parts = [p for p in (spread, f"end-to-end {format_ms(r.median_ms)}") if p]
        return f"{self.name} {format_ms(self.ms(r), self.metric)} ({'; '.join(parts)})"

    def short(self, r: Rung) -> str:
        return format_ms(self.ms(r), self.metric)

    def within_noise(self, a: Rung, b: Rung) -> str:
        """Why the gap between two rungs is no clear difference ("" when it is one)."""
        if a.plan is not None and a.plan == b.plan and a.where == b.where:
            return "the same engine plan: no difference"
        (a_lo, a_hi), (b_lo, b_hi) = self.band(a), self.band(b)
        if a_lo is None or a_hi is None or b_lo is None or b_hi is None:
            return ""
        overlap = a_lo <= b_hi and b_lo <= a_hi
        what = {GRAPH_REPLAY: "replay p10-p90 bands", GPU_TIME: "GPU-time windows", END_TO_END: "p10-p90 bands"}
        return f"the {what[self.metric]} overlap: within noise" if overlap else ""


def ladder_table(rungs: Iterable[Rung]) -> pd.DataFrame:
    """One row per rung, fastest first on the judged figure (``LadderFigure``): what the ladder chart and table
    show. ``judged_ms`` / ``judged_low_ms`` / ``judged_high_ms`` are that figure and its spread, ``judged`` its
    name."""
    rungs = list(rungs)
    fig = LadderFigure.of(rungs)
    rows = []
    for r in rungs:
        q = r.quantization
        fq = q.fake_quant_vs_eager if q else None
        conv = q.engine_vs_fake_quant if q else None
        lo, hi = fig.band(r) if fig.has(r) else (None, None)
        rows.append(
            {
                "label": r.label,
                "scheme": r.scheme,
                "precision": r.precision,
                "runtime": r.runtime,
                "judged": fig.name,
                "judged_ms": fig.ms(r) if fig.has(r) else None,
                "judged_low_ms": lo,
                "judged_high_ms": hi,
                "median_ms": r.median_ms,
                "p10_ms": r.p10_ms,
                "p90_ms": r.p90_ms,
                "graph_ms": r.graph_ms,
                "gpu_ms": r.gpu_ms,
                "gpu_low_ms": r.gpu_low_ms,
                "gpu_high_ms": r.gpu_high_ms,
                "kernels": r.kernels,
                "plan": r.plan,
                "build_s": r.build_s,
                "calibration_s": r.calibration_s,
                "engine_bytes": r.engine_bytes,
                "rel_l2": r.rel_l2,
                "top1_agreement": r.top1_agreement,
                "fake_quant_rel_l2": fq.rel_l2 if fq else None,
                "conversion_rel_l2": conv.rel_l2 if conv else None,
                "conversion_problem": r.conversion_problem,
                "run_id": r.run_id,
            }
        )
    df = pd.DataFrame(rows)
    if not len(df):
        return df
    return df.sort_values("judged_ms", kind="stable", na_position="last").reset_index(drop=True)
