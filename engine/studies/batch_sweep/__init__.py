"""Batch sweeps, front door: latency and throughput against batch size, static engines against one dynamic
engine, and where batching stops paying.

    plan.py     one run per batch size and strategy (static: an engine per batch; dynamic: one engine with a range)
    results.py  the table per (strategy, batch), the knee, the dynamic range's cost, the memory line, stored sweeps
    verdict.py  the written verdict

The runs are ordinary stored runs tagged like any sweep (``sweep:<id>``, ``knob:model.batch_size``).
"""

from engine.studies.batch_sweep.plan import (
    BATCH_KNOB,
    DEFAULT_BATCH_SIZES,
    MAX_BATCH_POINTS,
    STRATEGIES,
    BatchPoint,
    BatchSweepPlan,
    new_batch_sweep_id,
    parse_batch_sizes,
    plan_batch_sweep,
    registry_inputs,
)
from engine.studies.batch_sweep.results import (
    KNEE_GAIN_PER_DOUBLING,
    TABLE_COLUMNS,
    BatchSweep,
    Judged,
    Knee,
    MemoryFit,
    batch_sweep_from_results,
    batch_table,
    dynamic_cost,
    find_knee,
    fit_memory,
    gain_per_doubling,
    gpu_capacity_bytes,
    judged,
    list_batch_sweeps,
    load_batch_sweep,
    memory_fit,
    strategy_of,
)
from engine.studies.batch_sweep.verdict import BatchVerdict, strategy_name, verdict

__all__ = [
    "BATCH_KNOB",
    "DEFAULT_BATCH_SIZES",
    "KNEE_GAIN_PER_DOUBLING",
    "MAX_BATCH_POINTS",
    "STRATEGIES",
    "TABLE_COLUMNS",
    "BatchPoint",
    "BatchSweep",
    "BatchSweepPlan",
    "BatchVerdict",
    "Judged",
    "Knee",
    "MemoryFit",
    "batch_sweep_from_results",
    "batch_table",
    "dynamic_cost",
    "find_knee",
    "fit_memory",
    "gain_per_doubling",
    "gpu_capacity_bytes",
    "judged",
    "list_batch_sweeps",
    "load_batch_sweep",
    "memory_fit",
    "new_batch_sweep_id",
    "parse_batch_sizes",
    "plan_batch_sweep",
    "registry_inputs",
    "strategy_name",
    "strategy_of",
    "verdict",
]
