"""The written verdict of a precision ladder, from the measured numbers only: the fastest scheme within the
accuracy tolerance against the fastest unquantized build (fp16 on any recent GPU), on the figure figure.py chooses
(CUDA-graph replay, else GPU busy time, else end-to-end, named with its spread), or that no scheme beats it and
why."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.errors import ConfigError
from engine.quantization.accuracy import conversion_problem_text
from engine.quantization.schemes import SCHEMES
from engine.studies.ladder.figure import LadderFigure
from engine.studies.ladder.plan import DEFAULT_TOLERANCE_REL_L2
from engine.studies.ladder.rungs import Rung
from engine.studies.statistics import END_TO_END


@dataclass
class LadderVerdict:
    headline: str
    lines: list[str] = field(default_factory=list)
    best: Rung | None = None  # fastest scheme within tolerance
    reference: Rung | None = None  # fastest unquantized rung
    speedup: float | None = None  # reference median / best median

    def markdown(self) -> str:
        return "\n".join([f"**{self.headline}**", "", *(f"- {line}" for line in self.lines)])


def within_tolerance(rung: Rung, tolerance_rel_l2: float, min_top1: float | None = None) -> bool:
    if (
        rung.rel_l2 is None
        or not math.isfinite(rung.rel_l2)
        or rung.rel_l2 > tolerance_rel_l2
        or rung.conversion_problem
    ):
        return False
    return min_top1 is None or rung.top1_agreement is None or rung.top1_agreement >= min_top1


def verdict(
    rungs: Sequence[Rung],
    *,
    tolerance_rel_l2: float = DEFAULT_TOLERANCE_REL_L2,
    min_top1: float | None = None,
    where: str = "",
) -> LadderVerdict:
    """Fastest scheme within the accuracy tolerance against the fastest unquantized rung, on the ladder's judged
    figure (``LadderFigure``: CUDA-graph replay, else GPU busy time, else end-to-end latency, saying why).

    ``where`` names the GPU and flavour (or CPU) for the text, e.g. "NVIDIA H200, TensorRT-RTX";
    by default the rungs' own, when they all agree.
    """
    plain = [r for r in rungs if not r.quantized]
    if not plain:
        raise ConfigError("ladder", "the ladder has no fp32 or fp16 run to compare the schemes with")
    fig = LadderFigure.of(rungs)
    reference = min(plain, key=fig.ms)
    places = {r.where for r in rungs}
    where = where or (places.pop() if len(places) == 1 else "")
    on = f" on {where}" if where else ""
    by = f" on {fig.name}" if fig.metric != END_TO_END else ""
    tol = f"rel. L2 ≤ {tolerance_rel_l2:g}" + (f", top-1 agreement ≥ {min_top1:.0%}" if min_top1 is not None else "")
    lines = [*_plan_lines(rungs), _reference_line(reference, plain, fig)]
    quantized = sorted((r for r in rungs if r.quantized), key=fig.ms)
    for r in quantized:
        lines.append(_rung_line(r, reference, tolerance_rel_l2, min_top1, fig))
    if any(r.quantization is not None and not r.quantization.calibration_meaningful for r in quantized):
        lines.append("Calibrated on random tensors: accuracy figures are not meaningful for real data.")
    if fig.reason:
        lines.append(f"Judged on {fig.name}: {fig.reason}.")
    if not quantized:
        return LadderVerdict(
            f"No quantization scheme was measured{on}; {reference.label} is the fastest build.", lines, None, reference
        )
    if any(r.reference_degenerate for r in rungs):
        # NaN/inf or a flagged conversion is wrong whatever the reference: only the others compete on latency
        sound = [r for r in quantized if not r.conversion_problem and (r.rel_l2 is None or math.isfinite(r.rel_l2))]
        if not sound:
            return LadderVerdict(
                f"Accuracy cannot be judged for this ladder{on} (the reference output is ~0), and "
                f"every scheme's engine output is broken: keep {reference.label} "
                f"({fig.short(reference)}).",
                lines,
                None,
                reference,
            )
        fastest = min(sound, key=fig.ms)
        ratio = fig.ms(reference) / fig.ms(fastest)
        lines.append(
            "Accuracy cannot be judged: the eager fp32 reference output is ~0 (random weights; "
            "torchvision's ViT, for one, starts its classification head at zero), so every rel. L2 and "
            "top-1 figure here is meaningless. Use pretrained weights or your own model file."
        )
        pace = f"{ratio:.2f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"
        return LadderVerdict(
            f"Accuracy cannot be judged for this ladder{on} (the reference output is ~0); by "
            f"latency alone (schemes with sound output) {fastest.label} takes "
            f"{fig.short(fastest)} against {reference.label} {fig.short(reference)} "
            f"({pace}{by}).",
            lines,
            None,
            reference,
        )
    ok = [r for r in quantized if within_tolerance(r, tolerance_rel_l2, min_top1)]
    if not ok:
        return LadderVerdict(
            f"No scheme stays within the accuracy tolerance ({tol}){on}: keep "
            f"{reference.label} ({fig.short(reference)}).",
            lines,
            None,
            reference,
        )
    best = ok[0]
    speedup = fig.ms(reference) / fig.ms(best)
    if fig.ms(best) < fig.ms(reference):
        if fig.metric != END_TO_END or (best.plan is not None and best.plan == reference.plan):
            noise = fig.within_noise(best, reference)
            band = f" ({noise})" if noise else ""
        else:
            band = "" if best.p90_ms < reference.p10_ms else " (the p10-p90 bands overlap: within noise)"
        headline = (
            f"{best.label} is the fastest within tolerance ({tol}){on}: {fig.short(best)} against "
            f"{reference.label} {fig.short(reference)}, {speedup:.2f}× faster{by}{band}."
        )
        return LadderVerdict(headline, lines, best, reference, speedup)
    headline = (
        f"No scheme beats {reference.label}{on}: the fastest within tolerance, {best.label}, takes "
        f"{fig.short(best)} against {fig.short(reference)} ({1 / speedup:.2f}× slower{by})."
    )
    why = [w for w in dict.fromkeys(why_not_faster(r, reference) for r in ok) if w]
    return LadderVerdict(headline, [*lines, *(f"Why: {w}" for w in why)], best, reference, speedup)


def _plan_lines(rungs: Sequence[Rung]) -> list[str]:
    """Rungs that built the same engine plan, said before any figure: the same kernels, whatever the scheme."""
    groups: list[list[Rung]] = []
    for r in rungs:
        if r.plan is None:
            continue
        for g in groups:
            if g[0].plan == r.plan and g[0].where == r.where:
                g.append(r)
                break
        else:
            groups.append([r])
    return [
        f"{' and '.join(r.label for r in g)} built the same engine plan: the same kernels, so any latency gap "
        "between them is noise (the quantization changed nothing TensorRT runs)."
        for g in groups
        if len(g) > 1
    ]


def why_not_faster(rung: Rung, reference: Rung | None = None) -> str:
    """The likely reason a quantized rung is no faster than the unquantized one, from what it was."""
    spec = SCHEMES[rung.scheme]
    if reference is not None and rung.plan is not None and rung.plan == reference.plan:
        return (
            f"{rung.label} built the same engine plan as {reference.label}: TensorRT ran the same kernels, so "
            "the quantization bought nothing here."
        )
    if rung.runtime != "tensorrt":
        return (
            "the quantized model ran in PyTorch: ModelOpt's fake quantization simulates "
            f"{spec.weights.upper()} with extra quantize/dequantize ops in {rung.precision} arithmetic, so it "
            "measures the quantization error, never the speed. Compile it with TensorRT on a GPU."
        )
    if spec.weight_only and rung.precision == "fp32":
        return (
            f"{spec.label} over fp32 activations: the arithmetic still runs in fp32, only the weights "
            "shrink; compare it over fp16, or with a scheme that quantizes activations."
        )
    if spec.weight_only:
        return (
            f"{spec.label} keeps {rung.precision} arithmetic: it pays off where reading weights dominates "
            "(large Linear layers at small batch), not in convolutions or at large batch."
        )
    return (
        f"{spec.label} ran slower than the unquantized build: layers the flavour does not quantize run "
        "between Q/DQ pairs with reformatting around them. The Layers page shows each layer's precision."
    )


def _reference_line(reference: Rung, plain: Sequence[Rung], fig: LadderFigure | None = None) -> str:
    fig = fig or LadderFigure(END_TO_END)
    others = [r for r in plain if r is not reference]
    text = f"Reference: {reference.label}, the fastest unquantized build, {fig.text(reference)}"
    if reference.kernels is not None:
        text += f", {reference.kernels:.0f} kernels"
    if others:
        o = min(others, key=fig.ms)
        text += f" ({fig.ms(o) / fig.ms(reference):.2f}× faster than {o.label})"
    return text + "."


def _rung_line(
    r: Rung, reference: Rung, tolerance: float, min_top1: float | None, fig: LadderFigure | None = None
) -> str:
    fig = fig or LadderFigure(END_TO_END)
    ratio = fig.ms(reference) / fig.ms(r) if fig.has(r) else reference.median_ms / r.median_ms
    speed = f"{ratio:.2f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"
    speed += "" if fig.has(r) else " end to end"
    acc = _accuracy_text(r)
    if r.top1_agreement is not None:
        acc += f", top-1 {r.top1_agreement:.0%}"
    extras = []
    if r.calibration_s is not None:
        extras.append(f"calibration {r.calibration_s:.1f} s")
    if r.build_s is not None:
        extras.append(f"build {r.build_s:.1f} s")
    if r.engine_bytes:
        extras.append(f"engine {r.engine_bytes / 2**20:.1f} MiB")
    status = "within tolerance" if within_tolerance(r, tolerance, min_top1) else "outside tolerance"
    noise = fig.within_noise(r, reference)
    text = f"{r.label}: {fig.text(r)} ({speed} than {reference.label}{'; ' + noise if noise else ''}), {acc}, {status}"
    text += f" ({', '.join(extras)})." if extras else "."
    if r.conversion_problem and r.quantization is not None:
        text += " " + conversion_problem_text(r.quantization)
    return text


def _accuracy_text(r: Rung) -> str:
    if r.rel_l2 is not None and math.isfinite(r.rel_l2):
        return f"rel. L2 {r.rel_l2:.3g}"
    q = r.quantization
    if r.rel_l2 is not None or (q is not None and (q.engine_vs_eager or q.fake_quant_vs_eager) is not None):
        # measured, but not a number (a stored NaN / inf reads back as None: JSON has neither)
        return "rel. L2 not finite (the output holds NaN or inf)"
    return "accuracy not measured"
