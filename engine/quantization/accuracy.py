"""The three-way accuracy of a quantized build: eager fp32 -> the fake-quantized PyTorch model -> the compiled
engine, each pair compared on the same inputs, and the conversion-problem rule that tells a TensorRT conversion
failure from quantization error."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch

from engine.profiling.accuracy import _first_tensor, compare_outputs
from engine.quantization.schemes import SCHEMES
from engine.result import Accuracy, LabelledAccuracy, QuantizationReport

if TYPE_CHECKING:
    from engine.quantization.calibration import CalibrationData

# The conversion-problem rule: the engine departs from the fake-quantized model more than
# CONVERSION_RATIO times as far as that model departs from eager fp32, and by more than
# CONVERSION_FLOOR_REL_L2 (so that an fp16 engine over a near-lossless scheme is not flagged),
# or loses more than CONVERSION_TOP1_DROP of the top-1 agreement the fake-quantized model kept.
# Seen on the H200 with TensorRT-RTX 1.4: FP8 resnet50, fake-quant 0.075, engine 2.88, top-1 agreement 0.
CONVERSION_RATIO = 4.0
CONVERSION_FLOOR_REL_L2 = 0.05
CONVERSION_TOP1_DROP = 0.5


def is_conversion_problem(fake_quant_vs_eager: Accuracy, engine_vs_fake_quant: Accuracy) -> bool:
    """The engine departs from the fake-quantized model far more than that model departs from eager.
    An engine output holding NaN or inf (rel. L2 not finite) is always one (seen: FP8 resnet50 on the H200)."""
    if not _finite(engine_vs_fake_quant.rel_l2):
        return True
    rel_limit = max(CONVERSION_RATIO * fake_quant_vs_eager.rel_l2, CONVERSION_FLOOR_REL_L2)
    if engine_vs_fake_quant.rel_l2 > rel_limit:
        return True
    a, b = fake_quant_vs_eager.top1_agreement, engine_vs_fake_quant.top1_agreement
    return a is not None and b is not None and a - b > CONVERSION_TOP1_DROP


def nonfinite_count(output: Any) -> int:
    """NaN and inf values in a model output (its first tensor, the one accuracy compares)."""
    t = _first_tensor(output)
    return int((~torch.isfinite(t)).sum()) if t.is_floating_point() else 0


def three_way_report(
    scheme: str,
    base_precision: str,
    calibration: CalibrationData,
    eager_output: Any,
    fake_quant_output: Any,
    engine_output: Any = None,
    *,
    quantizers: int = 0,
    labelled: LabelledAccuracy | None = None,
    kept: Sequence[str] = (),
) -> QuantizationReport:
    """eager fp32 -> fake-quantized model -> compiled engine, each pair compared on the same inputs."""
    fq = replace(
        compare_outputs(fake_quant_output, eager_output, "eager fp32"), nonfinite=nonfinite_count(fake_quant_output)
    )
    engine_fq = engine_eager = None
    problem = False
    if engine_output is not None:
        count = nonfinite_count(engine_output)
        engine_fq = replace(
            compare_outputs(engine_output, fake_quant_output, "fake-quantized PyTorch model"), nonfinite=count
        )
        engine_eager = replace(compare_outputs(engine_output, eager_output, "eager fp32"), nonfinite=count)
        problem = is_conversion_problem(fq, engine_fq)
    return QuantizationReport(
        scheme=scheme,
        base_precision=base_precision,
        calibration=calibration.description,
        calibration_batches=len(calibration.batches),
        calibration_meaningful=calibration.meaningful,
        quantizers=quantizers,
        fake_quant_vs_eager=fq,
        engine_vs_fake_quant=engine_fq,
        engine_vs_eager=engine_eager,
        conversion_problem=problem,
        labelled=labelled,
        kept=list(kept),
    )


def _finite(value: float | None) -> bool:
    """A stored NaN comes back from JSON as None."""
    return value is not None and math.isfinite(value)


def conversion_problem_text(report: QuantizationReport) -> str:
    """The red flag's wording, from the report's numbers; "" when there is no problem."""
    if not report.conversion_problem or report.fake_quant_vs_eager is None or report.engine_vs_fake_quant is None:
        return ""
    fq, eng = report.fake_quant_vs_eager, report.engine_vs_fake_quant
    top1 = f", top-1 agreement {eng.top1_agreement:.0%}" if eng.top1_agreement is not None else ""
    departs = (
        f"by rel. L2 {eng.rel_l2:.3g}" if _finite(eng.rel_l2) else "completely: its output holds NaN or inf values"
    )
    return (
        f"Conversion problem, not a quantization one: the compiled engine departs from the fake-quantized "
        f"PyTorch model {departs}{top1}, while the fake-quantized model departs from "
        f"eager fp32 by only {fq.rel_l2:.3g}. The {SCHEMES[report.scheme].label} scales are fine; "
        "TensorRT's conversion of them is not. Do not ship this engine."
    )
