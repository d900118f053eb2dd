"""Whether a localisation's passing build is a fix worth shipping, and the short first sentence the page opens on.

A build that keeps modules in the higher precision is a fix only when it is worth shipping instead of simply building
the whole model in that precision: within the criterion and measurably faster than the higher-precision engine. The
resnet50 FP8 localisation recorded on the H200 passes by keeping 54 of its 56 modules in fp16 at 0.702 ms of GPU time
against fp16's 0.707 ms (0.7%): that is fp16 with extra steps, not a fix. ``SHIPPING_GAIN`` is the least gain that
counts; GPU time's trace windows on these engines spread well under 1% (the recorded runs), so 5% is a gain, not noise.

Findings are data (``FixVerdict``); ``headline`` words them, with the study's other outcomes, in one short sentence.
The full account stays ``Localisation.summary``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.studies.localisation.study import Localisation

SHIPPING_GAIN = 0.05  # the least share of the higher-precision engine's time a fix must save

SHIPS = "ships"  # within the criterion and at least SHIPPING_GAIN faster than the higher-precision engine
NOT_FASTER = "not_faster"  # passes, but no faster than building in the higher precision: no fix worth shipping
NOT_TIMED = "not_timed"  # passes, but the fix or the reference has no latency (the PyTorch-side search)


@dataclass(frozen=True)
class FixVerdict:
    kind: str  # SHIPS | NOT_FASTER | NOT_TIMED
    kept: int  # modules kept in the higher precision
    candidates: int
    fix_ms: float | None  # the judged figure of the passing build and of the higher-precision engine
    reference_ms: float | None
    figure: str  # "GPU time" | "end-to-end median"

    @property
    def gain(self) -> float | None:
        """The share of the reference's time the fix saves (negative: slower)."""
        if self.fix_ms is None or not self.reference_ms:
            return None
        return 1 - self.fix_ms / self.reference_ms


def fix_verdict(study: Localisation) -> FixVerdict | None:
    """The passing build judged as a fix; None when the search found no passing build."""
    fix = study.fix_step
    if fix is None or fix.figures is None:
        return None
    reference = study.step("reference")
    ref = reference.figures if reference is not None else None
    gpu = fix.figures.gpu_ms is not None and ref is not None and ref.gpu_ms is not None
    fix_ms = fix.figures.gpu_ms if gpu else fix.figures.e2e_ms
    ref_ms = (ref.gpu_ms if gpu else ref.e2e_ms) if ref is not None else None
    figure = "GPU time" if gpu else "end-to-end median"
    n, k = len(study.candidates), len(fix.kept)
    if fix_ms is None or ref_ms is None or fix.figures.measured_on != "engine":
        return FixVerdict(NOT_TIMED, k, n, fix_ms, ref_ms, figure)
    kind = SHIPS if fix_ms <= ref_ms * (1 - SHIPPING_GAIN) else NOT_FASTER
    return FixVerdict(kind, k, n, fix_ms, ref_ms, figure)


def fix_label(study: Localisation) -> str:
    """What the tables and charts call the passing build: "fix (6 kept)", or "passing build (54 kept)" when it is no
    fix worth shipping."""
    found = fix_verdict(study)
    kept = len(study.fix_step.kept) if study.fix_step else 0
    return f"fix ({kept} kept)" if found is None or found.kind != NOT_FASTER else f"passing build ({kept} kept)"
