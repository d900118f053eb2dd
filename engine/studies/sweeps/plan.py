"""Knob sweeps: plan the runs of one or two compile knobs over a base request.

A sweep's runs are ordinary stored runs that carry two kinds of tags (the convention the sample recordings follow
too): ``sweep:<sweep_id>`` on every run, and ``knob:<dotted knob>`` for each swept knob, e.g.
``knob:compile.optimization_level``. The knob's value is read back from the run's request.

The default point is measured more than once (``DEFAULT_REPEATS`` extra runs, interleaved with the other points so
that they span the sweep's time): each repeat has its own ``measure.repeat``, so the cache and the queue never
answer it with the first run, and nothing it measures changes. Each knob's values, labels and order come from its
record in engine/studies/knobs.py; the runs go to the job queue as a group (engine/studies/group.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.errors import ConfigError
from engine.settings.request import RunRequest
from engine.studies.knobs import (
    KNOB_TAG,
    PRECISION_KNOB,
    SWEEP_TAG,
    SWEEPABLE_KNOBS,
    effective,
    hashable,
    knob_default,
    leaf,
    order_key,
    value_label,
)
from engine.studies.knobs import (
    knob as knob_record,
)
from engine.studies.record import new_study_id

MAX_SWEEP_POINTS = 64
DEFAULT_REPEATS = 2  # extra runs of the default point in every sweep
REPEAT_KNOB = "measure.repeat"


# -- planning ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: the request and the knob values that make it different from the base."""

    request: RunRequest
    values: tuple[tuple[str, Any], ...]  # ((dotted knob, value), ...) in axis order
    repeat: int = 0  # 1, 2, ...: a fresh-process repeat of the point with these values

    @property
    def label(self) -> str:
        text = ", ".join(f"{SWEEPABLE_KNOBS[k]}={value_label(k, v)}" for k, v in self.values)
        return f"{text} (repeat {self.repeat})" if self.repeat else text


@dataclass(frozen=True)
class SweepPlan:
    study_kind: ClassVar[str] = "sweep"  # its kind of stored study (engine/studies/record.py)
    sweep_id: str
    base: RunRequest
    knobs: tuple[str, ...]
    points: tuple[SweepPoint, ...]
    notes: tuple[str, ...] = ()

    @property
    def tags(self) -> list[str]:
        return sweep_tags(self.sweep_id, self.knobs)


def sweep_tags(sweep_id: str, knobs: Iterable[str]) -> list[str]:
    return [f"{SWEEP_TAG}{sweep_id}", *(f"{KNOB_TAG}{k}" for k in knobs)]


def new_sweep_id(base: RunRequest, knobs: Sequence[str]) -> str:
    knob_part = "+".join(SWEEPABLE_KNOBS.get(k, leaf(k)) for k in knobs)
    return new_study_id(base.model.source, f"{base.compile.precision}_{knob_part}")


def plan_sweep(
    base: RunRequest, axes: dict[str, Sequence[Any]], *, sweep_id: str | None = None, repeats: int = DEFAULT_REPEATS
) -> SweepPlan:
    """Every combination of one or two knobs' values applied to ``base``, validated, and ``repeats`` more
    runs of the default point (every swept knob at its default; the first point when the sweep has none)
    interleaved with the others.

    ``axes`` maps a dotted knob (``compile.min_block_size``) to its values, e.g. from
    ``default_values``. Raises ``ConfigError`` naming the knob and the bad value.
    """
    if not 1 <= len(axes) <= 2:
        raise ConfigError("sweep.knobs", f"pick one or two knobs to sweep, not {len(axes)}")
    for knob, values in axes.items():
        if knob not in SWEEPABLE_KNOBS:
            raise ConfigError("sweep.knobs", f"{knob!r} cannot be swept; pick one of {', '.join(SWEEPABLE_KNOBS)}")
        if not values:
            raise ConfigError(knob, "no values to sweep; list at least one")
    knobs = tuple(axes)
    ordered = [_sorted_values(k, axes[k]) for k in knobs]
    combos = list(itertools.product(*ordered))
    if len(combos) + repeats > MAX_SWEEP_POINTS:
        raise ConfigError(
            "sweep.knobs",
            f"{len(combos) + repeats} runs (with {repeats} repeats of the default) "
            f"is more than the {MAX_SWEEP_POINTS} a sweep may hold; list fewer values",
        )
    points = []
    for combo in combos:
        changes = dict(zip(knobs, combo, strict=True))
        try:
            request = base.with_changes(**changes)
        except ConfigError as e:
            raise ConfigError(e.field, f"in the sweep: {e.message}") from None
        points.append(SweepPoint(request, tuple(changes.items())))
    points = _with_repeats(points, _default_index(points), repeats)
    notes = [knob_record(k).plan_note for k in knobs if knob_record(k).plan_note]
    if repeats:
        notes.append(
            f"The default point runs {repeats + 1} times, spread over the sweep: the spread of its runs is "
            "the run-to-run noise a knob's effect must exceed."
        )
    if any(k not in knobs_for(base.backend) for k in knobs):
        notes.append("The eager backend ignores compile knobs other than precision: those runs coincide.")
    return SweepPlan(sweep_id or new_sweep_id(base, knobs), base, knobs, tuple(points), tuple(notes))


EAGER_KNOBS = (PRECISION_KNOB,)  # the only compile knob the eager backend honours


def knobs_for(backend: str) -> list[str]:
    """The knobs worth sweeping on ``backend``: on eager only precision (any other knob's runs coincide)."""
    return list(EAGER_KNOBS) if backend == "eager" else list(SWEEPABLE_KNOBS)


def _sorted_values(knob: str, values: Iterable[Any]) -> list[Any]:
    unique = list(dict.fromkeys(hashable(v) for v in values))
    return sorted(unique, key=lambda v: order_key(knob, v))


def _default_index(points: Sequence[SweepPoint]) -> int:
    """The point with every swept knob at its default (exactly, else as the compiler sees it), else the first."""
    for same in (
        lambda k, v: hashable(v) == hashable(knob_default(k)),
        lambda k, v: effective(k, v) == effective(k, knob_default(k)),
    ):
        for i, p in enumerate(points):
            if all(same(k, v) for k, v in p.values):
                return i
    return 0


def _with_repeats(points: list[SweepPoint], index: int, repeats: int) -> list[SweepPoint]:
    """The default point (``points[index]``) first, then ``repeats`` more runs of it (each its own
    ``measure.repeat``) spread evenly between the other points, the last at the end: runs of one point far
    apart in time show the drift between runs. Without repeats the points stay as they are."""
    if repeats < 0:
        raise ConfigError("sweep.repeats", f"{repeats} is below 0")
    if repeats == 0:
        return list(points)
    original = points[index]
    first = original.request.measure.repeat
    others = points[:index] + points[index + 1 :]
    out = [original]
    done = 0
    for i in range(1, repeats + 1):
        upto = round(i * len(others) / repeats)
        out += others[done:upto]
        done = upto
        out.append(SweepPoint(original.request.with_changes(**{REPEAT_KNOB: first + i}), original.values, first + i))
    return out
