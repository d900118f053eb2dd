"""What one build of a localisation measured (``StepFigures``, read from a stored run) and the criterion a build
must pass to count as fixed (``Criterion``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from engine.result import RunResult
from engine.studies.ladder.plan import DEFAULT_TOLERANCE_REL_L2


@dataclass
class StepFigures:
    """What a step's build measured, as the localisation weighs it."""

    rel_l2: float | None  # output against eager fp32; None: not finite (or not measured)
    top1_agreement: float | None
    nonfinite: int | None  # NaN/inf values in the output; None: not counted
    conversion_problem: bool = False  # the engine departs from the fake-quantized model (engine.quantization)
    fake_quant_rel_l2: float | None = None
    e2e_ms: float | None = None
    gpu_ms: float | None = None  # GPU kernel time per inference, where measured
    build_s: float | None = None
    engine_bytes: int | None = None
    labelled: dict[str, Any] | None = None  # result.LabelledAccuracy as a dict
    measured_on: str = "engine"  # "engine" | "fake-quantized model"

    @property
    def finite(self) -> bool:
        return self.rel_l2 is not None and math.isfinite(self.rel_l2) and not self.nonfinite

    def accuracy_text(self) -> str:
        if not self.finite:
            count = f"{self.nonfinite} NaN/inf values" if self.nonfinite else "NaN or inf values"
            return f"output not finite: {count}"
        text = f"rel. L2 {self.rel_l2:.3g}"
        if self.top1_agreement is not None:
            text += f", top-1 agreement {self.top1_agreement:.0%}"
        if self.nonfinite is not None:
            text += f", {self.nonfinite} NaN"
        return text


def figures_from_result(result: RunResult) -> StepFigures:
    """The figures of a stored run: accuracy against eager fp32 (the three-way report's engine row for a quantized
    build), NaN/inf count where counted, latency as GPU kernel time where measured."""
    q = result.quantization
    acc = result.accuracy
    if q is not None and q.engine_vs_eager is not None:
        acc = q.engine_vs_eager
    rel = acc.rel_l2 if acc is not None else None
    return StepFigures(
        rel_l2=rel if rel is not None and math.isfinite(rel) else None,
        top1_agreement=acc.top1_agreement if acc is not None else None,
        nonfinite=getattr(acc, "nonfinite", None) if acc is not None else None,
        conversion_problem=bool(q and q.conversion_problem),
        fake_quant_rel_l2=q.fake_quant_vs_eager.rel_l2 if q is not None and q.fake_quant_vs_eager else None,
        e2e_ms=result.latency.median_ms if result.latency.timed else None,
        gpu_ms=result.gpu_time.median_ms if result.gpu_time is not None else None,
        build_s=result.build_s,
        engine_bytes=result.engine_bytes or None,
        labelled=asdict(q.labelled) if q is not None and q.labelled is not None else None,
    )


@dataclass(frozen=True)
class Criterion:
    """When a build counts as fixed: finite output, rel. L2 against eager fp32 within the tolerance, no conversion
    problem flagged, and (optionally) top-1 agreement at least ``min_top1`` (the ladder's ``within_tolerance``)."""

    tolerance_rel_l2: float = DEFAULT_TOLERANCE_REL_L2
    min_top1: float | None = None

    def failure(self, f: StepFigures) -> str:
        """Why the build fails the criterion, "" when it passes."""
        if not f.finite:
            return f.accuracy_text()
        assert f.rel_l2 is not None
        if f.rel_l2 > self.tolerance_rel_l2:
            return f"rel. L2 {f.rel_l2:.4g} > {self.tolerance_rel_l2:g}"
        if f.conversion_problem:
            return "the engine departs from the fake-quantized model (conversion problem)"
        if self.min_top1 is not None and f.top1_agreement is not None and f.top1_agreement < self.min_top1:
            return f"top-1 agreement {f.top1_agreement:.0%} < {self.min_top1:.0%}"
        return ""

    def passes(self, f: StepFigures) -> bool:
        return not self.failure(f)

    def text(self) -> str:
        return f"finite output, rel. L2 ≤ {self.tolerance_rel_l2:g} against eager fp32" + (
            f", top-1 agreement ≥ {self.min_top1:.0%}" if self.min_top1 is not None else ""
        )
