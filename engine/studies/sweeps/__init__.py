"""Knob sweeps, front door: pages and tests use ``sweeps.plan_sweep``, ``sweeps.load_sweep``, ``sweeps.verdict``.

    plan.py         the runs of one or two knobs over a base request, the default point repeated
    results.py      a sweep read back from the store: one table row per run, builds, drift, the Pareto front
    comparisons.py  each value against the knob's default, as numbers with their noise
    verdict.py      the written verdict
    same_plan.py    its first part: which values built the same engine plan

Each knob's values, labels and order are its record in engine/studies/knobs.py; the runs go to the job queue as a
group (engine/studies/group.py). Modules of the engine import the module that defines a name, not this package.
"""

from engine.studies.group import (
    FINISHED_STATES,
    CancelFn,
    JobView,
    StatusFn,
    SubmitFn,
    SweepExecution,
    evaluator_on_queue,
    job_view,
    tag_run,
)
from engine.studies.knobs import (
    CUDAGRAPHS_KNOB,
    EXECUTED_OPS_KNOB,
    FRONTEND_KNOB,
    KNOB_TAG,
    MIN_BLOCK_SIZE_KNOB,
    OPTIMIZATION_LEVEL_KNOB,
    PRECISION_KNOB,
    RUNTIME_KNOB,
    SWEEP_TAG,
    SWEEPABLE_KNOBS,
    default_values,
    effective,
    hashable,
    knob_default,
    leaf,
    min_block_size_values,
    order_key,
    recommended_min_block_sizes,
    request_value,
    value_label,
)
from engine.studies.statistics import BOOTSTRAP_RESAMPLES, NOISE_CONFIDENCE, Drift, format_ms, median_ci_ms
from engine.studies.sweeps.comparisons import Comparison, compare_with_default
from engine.studies.sweeps.plan import (
    DEFAULT_REPEATS,
    MAX_SWEEP_POINTS,
    REPEAT_KNOB,
    SweepPlan,
    SweepPoint,
    new_sweep_id,
    plan_sweep,
    sweep_tags,
)
from engine.studies.sweeps.results import (
    TABLE_COLUMNS,
    TABLE_SHOWN,
    Sweep,
    build_signature,
    list_sweeps,
    load_sweep,
    measure_drift,
    pareto_front,
    repeat_of,
    sweep_from_results,
    sweep_table,
    tagged_results,
)
from engine.studies.sweeps.verdict import Verdict, verdict

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "CUDAGRAPHS_KNOB",
    "DEFAULT_REPEATS",
    "EXECUTED_OPS_KNOB",
    "FINISHED_STATES",
    "FRONTEND_KNOB",
    "KNOB_TAG",
    "MAX_SWEEP_POINTS",
    "MIN_BLOCK_SIZE_KNOB",
    "NOISE_CONFIDENCE",
    "OPTIMIZATION_LEVEL_KNOB",
    "PRECISION_KNOB",
    "REPEAT_KNOB",
    "RUNTIME_KNOB",
    "SWEEPABLE_KNOBS",
    "SWEEP_TAG",
    "TABLE_COLUMNS",
    "TABLE_SHOWN",
    "CancelFn",
    "Comparison",
    "Drift",
    "JobView",
    "StatusFn",
    "SubmitFn",
    "Sweep",
    "SweepExecution",
    "SweepPlan",
    "SweepPoint",
    "Verdict",
    "build_signature",
    "compare_with_default",
    "default_values",
    "effective",
    "evaluator_on_queue",
    "format_ms",
    "hashable",
    "job_view",
    "knob_default",
    "leaf",
    "list_sweeps",
    "load_sweep",
    "measure_drift",
    "median_ci_ms",
    "min_block_size_values",
    "new_sweep_id",
    "order_key",
    "pareto_front",
    "plan_sweep",
    "recommended_min_block_sizes",
    "repeat_of",
    "request_value",
    "sweep_from_results",
    "sweep_table",
    "sweep_tags",
    "tag_run",
    "tagged_results",
    "value_label",
    "verdict",
]
