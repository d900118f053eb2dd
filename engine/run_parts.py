"""The parts of a stored run that a page shows on its own (the per-layer profile on Layers, the graph segmentation
on Segmentation): whether a run holds one, why it does not, and which run such a page opens on when no run is named.

A page opens on the newest run that holds its part, not on the newest run: a sweep's points are stored without a
layer profile, an eager run has no segmentation, and "Layers profiled 0" answers nothing. When the newest run lacks
the part, the opening says which run was opened instead and why the newest has none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from engine.result import RunResult


@dataclass(frozen=True)
class Part:
    name: str  # "layer profile", as in "the newest run with a layer profile"
    holds: Callable[[RunResult], bool]
    absence: Callable[[RunResult], str]  # why a run that does not hold it has none


def _layer_profile_absence(run: RunResult) -> str:
    if not run.latency.timed:
        return "an analyze run partitions the graph and times nothing"
    if not (run.request.get("measure") or {}).get("layer_profile", True):
        return "it was recorded with per-layer profiling off"
    return "no per-layer table was stored with it"


def _segmentation_absence(run: RunResult) -> str:
    if run.request.get("backend") == "eager":
        return "eager runs execute the whole model in PyTorch"
    return "the TensorRT backend recorded none for it"


LAYER_PROFILE = Part("layer profile", lambda run: not run.layers.empty, _layer_profile_absence)
SEGMENTATION = Part("segmentation", lambda run: run.segmentation is not None, _segmentation_absence)
PARTS = {p.name: p for p in (LAYER_PROFILE, SEGMENTATION)}


@dataclass(frozen=True)
class Opening:
    run_id: str
    note: str  # "" when the newest run holds the part; else which run was opened, and why not the newest


def opening(runs: Iterable[RunResult], part: Part) -> Opening | None:
    """The run a page showing ``part`` opens on, from ``runs`` newest first (read lazily: the scan stops at the
    first run that holds it): that run, with a note when it is not the newest; the newest run when none holds it;
    None when there is no run."""
    newest: RunResult | None = None
    for run in runs:
        newest = newest or run
        if part.holds(run):
            if run is newest:
                return Opening(run.run_id, "")
            return Opening(
                run.run_id,
                f"Opened the newest run with a {part.name}, {run.label}. The newest run, "
                f"{newest.label}, has none: {part.absence(newest)}.",
            )
    if newest is None:
        return None
    return Opening(newest.run_id, f"No stored run has a {part.name}: opened the newest run.")
