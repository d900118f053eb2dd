"""A run's stage timings (``RunResult.stages_s``) summed into the two totals every page and study reads: build
time (the model to a compiled module) and setup time (the request to a module ready to time), each stage counted
once even where one is timed inside another.
"""

from __future__ import annotations

# Stage timings (``RunResult.stages_s``), as the backends name them. The TensorRT backend times the compile call as
# ``compile_s``, which holds partitioning, lowering and the engine builds (``partition_s``, ``lowering_s`` and the
# ``build_s`` stage, timed inside it): those are never added to it again.
NESTED_IN_COMPILE = ("lowering_s", "partition_s", "build_s")
# what makes up build time when a backend records no compile_s
BUILD_STAGES = ("export_s", "partition_s", "build_s")


def build_time_s(stages_s: dict[str, float]) -> float | None:
    """Seconds from the model to a compiled module: torch.export plus the compile call (which holds partitioning
    and the engine builds; for torch_compile, the first call that traces and builds). None for a run that compiled
    nothing (eager). ``RunResult.build_s`` is this for a run: what sweeps, ladders, auto-tune and localisations
    call build time."""
    if "compile_s" in stages_s:
        return float(stages_s.get("export_s", 0.0) + stages_s["compile_s"])
    parts = [stages_s[s] for s in BUILD_STAGES if s in stages_s]
    return float(sum(parts)) if parts else None


def setup_total_s(stages_s: dict[str, float]) -> float | None:
    """Seconds from request to a module ready to time: every top-level stage once (build, calibration, reference
    outputs, the first inference ...), what Compare calls "Compile + prepare time" and the stage bar stacks."""
    if not stages_s:
        return None
    nested = NESTED_IN_COMPILE if "compile_s" in stages_s else ()
    return float(sum(v for k, v in stages_s.items() if k not in nested and v is not None))
