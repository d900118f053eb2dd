"""How a localisation's builds read beyond the bisection's answer, as sentences for its summary: builds that crashed
(counted as not passing), modules that break the engine alone, whether the unfixed engine's error is the
quantization's own, what the low precision costs against the reference, and what a study that stopped early had
measured. Pure functions over a ``study.Localisation``'s steps and error growth (its ``summary`` calls them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.studies.localisation.error_table import range_text

if TYPE_CHECKING:
    from engine.studies.localisation.study import Localisation, Step

SEARCH_ROLES = ("search", "confirm")
# a job's error text (often a multi-line CUDA message) -> the few words a sentence names it by
CRASH_LABELS = (
    (re.compile(r"illegal memory access", re.I), "CUDA illegal memory access"),
    (re.compile(r"out of memory|OutOfMemory", re.I), "out of GPU memory"),
    (re.compile(r"misaligned address", re.I), "CUDA misaligned address"),
)
# the unfixed engine's rel. L2 reads as the quantization's own when within this fraction of the fake-quantized one
SAME_ERROR_FRACTION = 0.1
# an unfixed engine agreeing with eager on at least this share of top-1 classes is imprecise, not broken
NOT_BROKEN_TOP1 = 0.99


def crash_label(error: str) -> str:
    """A job's error in a few words: "CUDA illegal memory access", "out of GPU memory", else its first line."""
    for pattern, label in CRASH_LABELS:
        if pattern.search(error):
            return label
    first = next((line.strip() for line in error.splitlines() if line.strip()), "") or "the job failed"
    return first if len(first) <= 160 else first[:157] + "…"


def crash_text(step: Step) -> str:
    """E.g. "step 4 (12 kept) crashed: CUDA illegal memory access — counted as not passing"."""
    return f"step {step.index + 1} ({len(step.kept)} kept) crashed: {crash_label(step.why)} — counted as not passing"


def crashed_sentence(study: Localisation) -> str:
    """Every crashed search build named, as one sentence ("" when none crashed)."""
    crashed = [s for s in study.steps if s.crashed]
    if not crashed:
        return ""
    text = "; ".join(crash_text(s) for s in crashed)
    return text[0].upper() + text[1:] + "."


# -- modules that break the engine alone ---------------------------------------------------------------------------
@dataclass(frozen=True)
class AloneBreak:
    """A failed build whose low-precision modules are ``module`` plus ``beside``, where ``beside`` were all in low
    precision in a build that passed (``passing``; None when ``beside`` is empty): by the search's monotonicity, the
    build with ``beside`` alone in low precision passes, so ``module`` alone turns it into a failing one."""

    module: str
    failed: Step
    beside: tuple[str, ...]
    passing: Step | None


def alone_breaks(study: Localisation) -> list[AloneBreak]:
    """Modules the measured builds show breaking the engine on their own, in the order the builds showed them."""
    measured = [
        s
        for s in study.steps
        if s.role in SEARCH_ROLES and s.state == "done" and s.figures is not None and not s.crashed
    ]
    passing = [s for s in measured if s.passed]
    found: dict[str, AloneBreak] = {}
    for failed in (s for s in measured if s.passed is False):
        kept = set(failed.kept)
        low = [c for c in study.candidates if c not in kept]
        for module in low:
            if module in found:
                continue
            beside = tuple(c for c in low if c != module)
            witness = next(
                (p for p in passing if module in p.kept and not set(beside) & set(p.kept)),
                None,
            )
            if beside and witness is None:
                continue
            found[module] = AloneBreak(module, failed, beside, witness)
    return list(found.values())


def _how_it_fails(step: Step) -> str:
    f = step.figures
    if f is not None and not f.finite:
        return f"the output still holds {f.nonfinite} NaN/inf values" if f.nonfinite else "the output is not finite"
    return f"it still fails ({step.why})"


def _range(study: Localisation, module: str) -> tuple[str, bool] | None:
    """The module's activation against its format on the PyTorch side, and whether it stays within."""
    growth = study.error_growth
    row = growth.unit(module) if growth is not None else None
    if row is None:
        return None
    return range_text(row), bool(row["act_max"] <= row["format_max"])


def alone_reading(study: Localisation) -> str:
    """What the single-module builds say, e.g. "FP8 breaks the engine in every module the search tried alone (2):
    with only layer4.2.conv3 in FP8 (beside avgpool, fc, which pass in FP8) the output still holds 4000 NaN/inf
    values, and with only layer4.2.conv2 too — not one layer's range: ...; FP8 on this stack costs 1.06 ms vs fp16
    0.707 ms (GPU kernel time)". "" when no build isolates one module."""
    breaks = alone_breaks(study)
    if not breaks:
        return ""
    low = study.low_name

    def only(b: AloneBreak) -> str:
        beside = f" (beside {', '.join(b.beside)}, which pass in {low})" if b.beside else ""
        return f"with only {b.module} in {low}{beside}"

    first = breaks[0]
    if len(breaks) == 1:
        text = f"{first.module} breaks the engine alone: {only(first)} {_how_it_fails(first.failed)}"
    else:
        rest = [
            f"with only {b.module} too ({_how_it_fails(b.failed).replace('the output still holds ', '')})"
            for b in breaks[1:]
        ]
        text = (
            f"{low} breaks the engine in every module the search tried alone ({len(breaks)}), not at one place: "
            f"{only(first)} {_how_it_fails(first.failed)}, and " + ", and ".join(rest)
        )
    ranges = [(b.module, r) for b in breaks if (r := _range(study, b.module)) is not None]
    if ranges:
        listed = ", ".join(f"{m} {text_}" for m, (text_, _) in ranges)
        within = any(ok for _, (_, ok) in ranges)
        lead = " — not one layer's range: on the PyTorch side " if len(breaks) > 1 and within else " (PyTorch side: "
        text += lead + listed + ("" if lead.startswith(" —") else ")")
    cost = cost_text(study)
    return text + (f"; {cost}" if cost else "")


# -- the unfixed build against the reference and the fake-quantized model ------------------------------------------
def _ms_pair(study: Localisation) -> tuple[float, float, str] | None:
    unfixed, reference = study.step("unfixed"), study.step("reference")
    if unfixed is None or reference is None or unfixed.figures is None or reference.figures is None:
        return None
    u, r = unfixed.figures, reference.figures
    if u.gpu_ms is not None and r.gpu_ms is not None:
        return u.gpu_ms, r.gpu_ms, "GPU kernel time"
    if u.e2e_ms is not None and r.e2e_ms is not None:
        return u.e2e_ms, r.e2e_ms, "end-to-end medians"
    return None


def cost_text(study: Localisation) -> str:
    """E.g. "FP8 on this stack costs 1.06 ms vs fp16 0.707 ms (GPU kernel time)" when the unfixed build is slower
    than its reference, "FP8 takes 1.39 ms vs fp16 1.57 ms (...)" otherwise; "" when either was not timed."""
    pair = _ms_pair(study)
    if pair is None:
        return ""
    u, r, source = pair
    verb = "on this stack costs" if u > r else "takes"
    return f"{study.low_name} {verb} {u:.3g} ms vs {study.high_precision} {r:.3g} ms ({source})"


def quantization_error_text(study: Localisation) -> str:
    """Said when the unfixed engine is finite and departs from eager as far as the fake-quantized model does: its
    error is the quantization's own, not a fault of the conversion."""
    unfixed = study.step("unfixed")
    f = unfixed.figures if unfixed is not None else None
    if f is None or not f.finite or f.fake_quant_rel_l2 is None or f.rel_l2 is None:
        return ""
    if abs(f.rel_l2 - f.fake_quant_rel_l2) > SAME_ERROR_FRACTION * f.fake_quant_rel_l2:
        return ""
    return (
        f"the fake-quantized model's own rel. L2 is {f.fake_quant_rel_l2:.3g}: the unfixed engine's error is "
        "quantization error, not a conversion fault"
    )


def quantization_lead(study: Localisation) -> str:
    """The answer's opening when the unfixed engine is not broken (finite, every top-1 class agrees with eager) and
    departs from eager as far as its fake-quantized model does, only beyond the tolerance: then no module "breaks"
    it, the kept modules undo quantization error. "" otherwise (an engine that is broken reads "breaks at ...")."""
    same = quantization_error_text(study)
    unfixed = study.step("unfixed")
    f = unfixed.figures if unfixed is not None else None
    if not same or f is None or f.top1_agreement is None or f.top1_agreement < NOT_BROKEN_TOP1:
        return ""
    return (
        f"The unfixed {study.label} engine is sound: it gives {f.accuracy_text()}; {same}, only beyond the "
        f"tolerance {study.criterion.tolerance_rel_l2:g}."
    )


def top1_drop_text(study: Localisation, fix: Step) -> str:
    """Said when the fix agrees with eager on top-1 less often than the unfixed build while the criterion does not
    ask for top-1: its rel. L2 is lower, yet classes changed ("" otherwise)."""
    unfixed = study.step("unfixed")
    u = unfixed.figures if unfixed is not None else None
    f = fix.figures
    if study.criterion.min_top1 is not None or u is None or f is None:
        return ""
    if u.top1_agreement is None or f.top1_agreement is None or f.top1_agreement >= u.top1_agreement:
        return ""
    n = int(study.base["model"]["batch_size"])
    return (
        f"Its top-1 agreement fell from {u.top1_agreement:.0%} to {f.top1_agreement:.0%} while its rel. L2 fell: the "
        f"criterion asks for rel. L2 only (one changed class of the {n} inputs moves top-1 by {1 / n:.1%}); a least "
        "top-1 agreement in the criterion makes the search hold it."
    )


# -- a study that stopped ----------------------------------------------------------------------------------------------
def measured_text(study: Localisation) -> str:
    """What the builds that finished measured: the unfixed one (and whether its error is the quantization's),
    its cost against the reference, the smallest passing keep set."""
    parts = []
    unfixed = study.step("unfixed")
    if unfixed is not None and unfixed.figures is not None:
        text = f"the unfixed {study.label} engine gives {unfixed.figures.accuracy_text()}"
        same = quantization_error_text(study)
        parts.append(text + (f" — {same}" if same else ""))
    cost = cost_text(study)
    if cost:
        parts.append(cost)
    passed = [s for s in study.steps if s.role in SEARCH_ROLES and s.passed and s.figures is not None]
    if passed:
        best = min(passed, key=lambda s: len(s.kept))
        assert best.figures is not None
        parts.append(
            f"keeping {len(best.kept)} of {len(study.candidates)} modules in {study.high_precision} passed "
            f"(step {best.index + 1}: {best.figures.accuracy_text()})"
        )
    return "; ".join(parts)


def stopped_text(study: Localisation) -> str:
    """Why a failed study stopped, and what it had measured."""
    failed = next((s for s in study.steps if s.state == "failed" and not s.crashed), None)
    if failed is None:
        return "The localisation stopped."
    if failed.role in SEARCH_ROLES and failed.job_id is not None:
        # a search build that crashed before crashes counted as not passing (recordings from before that)
        text = (
            f"The localisation stopped at step {failed.index + 1} ({failed.role}, {len(failed.kept)} kept): its build "
            f"crashed ({crash_label(failed.why)}) and the search ended there (recorded before a crashed build "
            "counted as not passing)."
        )
    else:
        text = f"The localisation stopped: step {failed.index + 1} ({failed.role}) failed: {crash_label(failed.why)}."
    measured = measured_text(study)
    return text + (f" Measured before it: {measured}." if measured else "")
