"""The precision ladder, front door: fp32, fp16 and each quantization scheme this GPU and flavour allow, for one
model and batch size, and the written verdict from the measured numbers.

    plan.py     the steps (schemes the capability matrix refuses are listed with the reason), run as a group
    rungs.py    a ladder read back from the store: one ``Rung`` per run, the table, the stored ladders
    verdict.py  the fastest scheme within the accuracy tolerance, or why none beats the unquantized build
    coverage.py every quantization scheme with what became of it: tried, failed, refused (by whom, why), left out

A ladder's runs are ordinary stored runs tagged ``ladder:<ladder_id>``; a ladder launched from the dashboard runs
each step as one job on the queue (``LadderExecution``, the group mechanics of engine/studies/group.py), so a
cancelled or half-failed ladder still shows what it measured.
"""

from engine.studies.ladder.coverage import (
    SchemeCoverage,
    coverage_summary,
    coverage_table,
    ladder_coverage,
    step_outcomes,
)
from engine.studies.ladder.figure import ladder_table
from engine.studies.ladder.plan import (
    DEFAULT_TOLERANCE_REL_L2,
    LADDER_MEASURE,
    LADDER_TAG,
    UNQUANTIZED,
    LadderExecution,
    LadderPlan,
    LadderStep,
    StepProgress,
    ladder_base,
    new_ladder_id,
    plan_ladder,
    plan_problem,
    step_label,
)
from engine.studies.ladder.rungs import Rung, list_ladders, load_ladder, rung_from_result
from engine.studies.ladder.verdict import LadderVerdict, verdict, why_not_faster, within_tolerance
from engine.studies.statistics import format_ms

__all__ = [
    "DEFAULT_TOLERANCE_REL_L2",
    "LADDER_MEASURE",
    "LADDER_TAG",
    "UNQUANTIZED",
    "LadderExecution",
    "LadderPlan",
    "LadderStep",
    "LadderVerdict",
    "Rung",
    "SchemeCoverage",
    "StepProgress",
    "coverage_summary",
    "coverage_table",
    "format_ms",
    "ladder_base",
    "ladder_table",
    "ladder_coverage",
    "list_ladders",
    "load_ladder",
    "new_ladder_id",
    "plan_ladder",
    "plan_problem",
    "rung_from_result",
    "step_label",
    "step_outcomes",
    "verdict",
    "why_not_faster",
    "within_tolerance",
]
