"""Steady state before measuring: trace windows until two consecutive ones agree, or give up at a cap.

Two windows agree when every inference in both launched the same kernel sequence and their busy times per
inference are within ``TOLERANCE`` of each other. TensorRT-RTX specialises kernels for the shapes it meets at
run time, so a fixed number of warm-up calls is no steady state: on the H200 the trace windows of a dynamic
resnet50 engine differed by 25-60% after a second of warm-up calls. A run that never settles says so (its
``GpuTime.settled`` is False) instead of having its median judged.

``settle`` is pure over a callable returning a window, so it is tested on CPU with recorded or constructed
windows; ``engine.profiling.gpu_time.measure`` hands it a function that traces one profiler session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

TOLERANCE = 0.01  # busy time of two consecutive windows within 1%
MAX_WINDOWS = 12  # windows traced at most while settling (a window is 5-20 calls, about 20 ms of work)


class TracedWindow(Protocol):
    """What settling needs of a window (``engine.profiling.gpu_time.Window``)."""

    @property
    def inferences(self) -> int: ...

    @property
    def busy_ms_per_inference(self) -> float: ...

    @property
    def sequence(self) -> tuple[str, ...] | None: ...


@dataclass(frozen=True)
class Settling:
    """How the warm-up went."""

    settled: bool  # two consecutive windows agreed
    calls: int  # calls traced while settling
    windows: int  # windows traced while settling
    gap_pct: float | None  # busy difference between the last two windows, percent of the smaller; None: one window
    same_sequence: bool  # the last two windows launched the same kernel sequence


def gap_pct(a: TracedWindow, b: TracedWindow) -> float:
    """Busy-time difference of two windows in percent of the smaller (inf when one measured nothing)."""
    lo, hi = sorted((a.busy_ms_per_inference, b.busy_ms_per_inference))
    return 100.0 * (hi - lo) / lo if lo > 0 else float("inf")


def agree(a: TracedWindow, b: TracedWindow, tolerance: float = TOLERANCE) -> bool:
    """Same kernel sequence in every inference of both, busy time within ``tolerance``."""
    return a.sequence is not None and a.sequence == b.sequence and gap_pct(a, b) <= 100.0 * tolerance


def settle(
    next_window: Callable[[], TracedWindow], *, tolerance: float = TOLERANCE, max_windows: int = MAX_WINDOWS
) -> Settling:
    """Call ``next_window`` until two consecutive windows ``agree`` or ``max_windows`` were traced."""
    if max_windows < 2:
        raise ValueError(f"max_windows must be at least 2 (two windows to compare), got {max_windows}")
    previous = next_window()
    calls, count = previous.inferences, 1
    while True:
        current = next_window()
        calls, count = calls + current.inferences, count + 1
        same = current.sequence is not None and current.sequence == previous.sequence
        gap = gap_pct(previous, current)
        if agree(previous, current, tolerance) or count >= max_windows:
            return Settling(agree(previous, current, tolerance), calls, count, gap, same)
        previous = current


def not_steady_text(calls: int, gap: float | None) -> str:
    """ "not steady after 240 calls: 12.5% between windows" (the words verdicts and warnings use). A gap within
    the tolerance means the windows launched different kernel sequences."""
    if gap is None or gap == float("inf"):
        between = "windows differ"
    elif gap <= 100.0 * TOLERANCE:
        between = f"the kernel sequence changed between windows ({gap:.1f}% apart)"
    else:
        between = f"{gap:.1f}% between windows"
    return f"not steady after {calls} calls: {between}"
