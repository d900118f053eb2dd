"""One localisation as tables, for the page and the report: its steps in order (what each kept, passed and
measured; a failed job's error in a few words, its full text stays on the step) and the unfixed build, the
reference and the fix side by side. Read from a ``study.Localisation`` (its ``steps_table``/``comparison_table``
call these).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from engine.studies.localisation.reading import crash_label
from engine.studies.localisation.shipping import fix_label

if TYPE_CHECKING:
    from engine.studies.localisation.study import Localisation, Step

STEP_COLUMNS = [
    "step",
    "role",
    "kept",
    "kept_modules",
    "state",
    "passed",
    "crashed",
    "why",
    "rel_l2",
    "top1_agreement",
    "nonfinite",
    "e2e_ms",
    "gpu_ms",
    "build_s",
    "run_id",
    "cached",
]
COMPARISON_COLUMNS = [
    "build",
    "kept",
    "rel_l2",
    "top1_agreement",
    "nonfinite",
    "e2e_ms",
    "gpu_ms",
    "top1_vs_labels",
    "eager_top1_vs_labels",
    "fake_quant_top1_vs_labels",
    "passed",
    "run_id",
]


def _span(kept: list[str]) -> str:
    if not kept:
        return "none"
    if len(kept) <= 3:
        return ", ".join(kept)
    return f"{kept[0]} … {kept[-1]}"


def _why(step: Step) -> str:
    """Why it failed; a failed job's (often multi-line) error in a few words."""
    if step.crashed:
        return f"crashed: {crash_label(step.why)} — counted as not passing"
    return crash_label(step.why) if step.state == "failed" else step.why


def steps_table(study: Localisation) -> pd.DataFrame:
    """One row per step, in order: what was kept, whether it passed and what it measured."""
    rows = []
    for s in study.steps:
        f = s.figures
        rows.append(
            {
                "step": s.index + 1,
                "role": s.role,
                "kept": len(s.kept),
                "kept_modules": _span(s.kept),
                "state": s.state,
                "passed": s.passed,
                "crashed": s.crashed,
                "why": _why(s),
                "rel_l2": f.rel_l2 if f else None,
                "top1_agreement": f.top1_agreement if f else None,
                "nonfinite": f.nonfinite if f else None,
                "e2e_ms": f.e2e_ms if f else None,
                "gpu_ms": f.gpu_ms if f else None,
                "build_s": f.build_s if f else None,
                "run_id": s.run_id,
                "cached": s.cached,
            }
        )
    return pd.DataFrame(rows, columns=STEP_COLUMNS)


def comparison_table(study: Localisation) -> pd.DataFrame:
    """The unfixed build, the reference and the fix side by side (labelled top-1 where the folder had labels)."""
    rows = []
    named = [
        ("unfixed " + study.label, study.step("unfixed")),
        (f"{study.high_precision} reference", study.step("reference")),
        (fix_label(study), study.fix_step),
    ]
    for name, s in named:
        if s is None or s.figures is None:
            continue
        f = s.figures
        lab = f.labelled or {}
        rows.append(
            {
                "build": name,
                "kept": len(s.kept),
                "rel_l2": f.rel_l2,
                "top1_agreement": f.top1_agreement,
                "nonfinite": f.nonfinite,
                "e2e_ms": f.e2e_ms,
                "gpu_ms": f.gpu_ms,
                "top1_vs_labels": lab.get("engine_top1"),
                "eager_top1_vs_labels": lab.get("eager_top1"),
                "fake_quant_top1_vs_labels": lab.get("fake_quant_top1"),
                "passed": s.passed,
                "run_id": s.run_id,
            }
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
