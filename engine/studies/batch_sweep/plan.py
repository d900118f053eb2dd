"""Batch sweeps: latency and throughput against batch size, and where batching stops paying.

Two ways to serve many batch sizes with TensorRT, planned side by side:

- ``static``: one engine per batch size, each built for exactly that shape;
- ``dynamic``: one engine whose inputs have a batch range (min = smallest, max = largest batch,
  opt = the upper median by default), measured at every batch size inside it. Its points share
  ``model.inputs``, and the plan turns the engine cache on, so the engine is built once.

The runs are ordinary stored runs tagged like any sweep (``sweep:<id>``, ``knob:model.batch_size``);
a plan has the ``sweep_id`` / ``tags`` / ``points[].request`` that ``sweeps.SweepExecution`` runs.
Which strategy a run belongs to is read back from its request (a dynamic batch range or not).

The knee is read from measured points only: the smallest batch after which no larger batch
gains ``KNEE_GAIN_PER_DOUBLING`` (10 %) or more throughput per doubling of the batch. The batch changes
the kernels, so the knee and the dynamic range's cost are judged on GPU time (batch / GPU time per
call) when every run has it, and on end-to-end latency otherwise, the verdict saying why.

Stored batch sweeps are found by their ``knob:model.batch_size`` tag (``list_batch_sweeps``,
``load_batch_sweep``); ``verdict`` writes what they measured: the knee of each strategy, what the
dynamic range costs at each batch measured both ways, and the peak-memory line with the largest
batch it puts inside a given GPU memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.errors import ConfigError, ModelError
from engine.settings.defaults import MAX_BATCH_SIZE
from engine.settings.inputs import InputSpec, with_batch_range
from engine.settings.request import RunRequest
from engine.studies.record import new_study_id
from engine.studies.sweeps.plan import sweep_tags

STRATEGIES = ("static", "dynamic")
BATCH_KNOB = "model.batch_size"
DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
MAX_BATCH_POINTS = 32
FIELD = "batch_sweep"


# -- planning ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchPoint:
    request: RunRequest
    batch_size: int
    strategy: str

    @property
    def label(self) -> str:
        return f"batch {self.batch_size} ({self.strategy})"


@dataclass(frozen=True)
class BatchSweepPlan:
    study_kind: ClassVar[str] = "batch_sweep"  # its kind of stored study (engine/studies/record.py)
    sweep_id: str
    base: RunRequest
    batch_sizes: tuple[int, ...]
    strategies: tuple[str, ...]
    points: tuple[BatchPoint, ...]
    dynamic_inputs: tuple[InputSpec, ...] | None = None  # the one dynamic engine's inputs
    notes: tuple[str, ...] = ()

    @property
    def tags(self) -> list[str]:
        return sweep_tags(self.sweep_id, (BATCH_KNOB,))


def plan_batch_sweep(
    base: RunRequest,
    batch_sizes: Iterable[int] = DEFAULT_BATCH_SIZES,
    strategies: Sequence[str] = ("static",),
    *,
    opt_batch: int | None = None,
    model_inputs: Sequence[InputSpec] | None = None,
    sweep_id: str | None = None,
) -> BatchSweepPlan:
    """One run per batch size and strategy, validated.

    ``model_inputs`` are the model's inputs at any batch (needed for ``dynamic`` when
    ``base.model.inputs`` is empty; ``registry.input_specs`` gives a registry model's). Raises
    ``ConfigError`` naming the setting and the rule.
    """
    sizes = sorted(set(batch_sizes))
    if not sizes:
        raise ConfigError(f"{FIELD}.batch_sizes", "no batch sizes; list at least one, e.g. 1,8,32")
    bad = [b for b in sizes if not isinstance(b, int) or isinstance(b, bool) or not 1 <= b <= MAX_BATCH_SIZE]
    if bad:
        raise ConfigError(f"{FIELD}.batch_sizes", f"{bad} outside 1..{MAX_BATCH_SIZE}")
    strategies = tuple(dict.fromkeys(strategies))
    unknown = [s for s in strategies if s not in STRATEGIES]
    if not strategies or unknown:
        raise ConfigError(f"{FIELD}.strategies", f"{unknown or 'none'}: pick from {', '.join(STRATEGIES)}")
    if len(sizes) * len(strategies) > MAX_BATCH_POINTS:
        raise ConfigError(
            f"{FIELD}.batch_sizes",
            f"{len(sizes) * len(strategies)} runs is more than the "
            f"{MAX_BATCH_POINTS} a batch sweep may hold; list fewer sizes",
        )
    if "dynamic" in strategies and base.backend != "tensorrt":
        raise ConfigError(
            f"{FIELD}.strategies",
            "a dynamic engine needs the tensorrt backend; the eager backend runs every batch the same way (use static)",
        )
    specs = tuple(base.model.inputs or model_inputs or ())
    points: list[BatchPoint] = []
    notes: list[str] = []
    dynamic_specs = None
    if "static" in strategies:
        for b in sizes:
            points.append(BatchPoint(_at(base, b, _static(specs, b) if base.model.inputs else None), b, "static"))
    if "dynamic" in strategies:
        if not specs:
            raise ConfigError(
                f"{FIELD}.strategies",
                "a dynamic engine needs the model's inputs: set model.inputs or pass the registry model's own",
            )
        opt = opt_batch if opt_batch is not None else sizes[len(sizes) // 2]
        if not sizes[0] <= opt <= sizes[-1]:
            raise ConfigError(
                f"{FIELD}.opt_batch", f"{opt} is outside the swept range {sizes[0]}..{sizes[-1]}; need min ≤ opt ≤ max"
            )
        dynamic_specs = with_batch_range(specs, sizes[0], opt, sizes[-1])
        for b in sizes:
            request = _at(
                base, b, dynamic_specs, {"compile.cache_built_engines": True, "compile.reuse_cached_engines": True}
            )
            points.append(BatchPoint(request, b, "dynamic"))
        notes.append(
            f"One dynamic engine for batch {sizes[0]}..{sizes[-1]}, tuned for batch {opt}; it is built "
            "once and reused from the engine cache for the other batch sizes."
        )
    if base.device == "cpu" or base.backend == "eager":
        notes.append("GPU memory per batch is recorded on CUDA devices only.")
    return BatchSweepPlan(
        sweep_id or new_batch_sweep_id(base), base, tuple(sizes), strategies, tuple(points), dynamic_specs, tuple(notes)
    )


def new_batch_sweep_id(base: RunRequest) -> str:
    return new_study_id(base.model.source, f"{base.compile.precision}_batch")


def _static(specs: Sequence[InputSpec], b: int) -> tuple[InputSpec, ...]:
    return with_batch_range(specs, b, b, b)


def _at(
    base: RunRequest, b: int, specs: tuple[InputSpec, ...] | None, extra: dict[str, Any] | None = None
) -> RunRequest:
    changes: dict[str, Any] = {BATCH_KNOB: b, **(extra or {})}
    if specs is not None:
        changes["model.inputs"] = [s.to_dict() for s in specs]
    try:
        return base.with_changes(**changes)
    except ConfigError as e:
        raise ConfigError(e.field, f"at batch {b}: {e.message}") from None


# -- the batch sizes as typed ----------------------------------------------------------------------
def parse_batch_sizes(text: str) -> list[int]:
    """Batch sizes from text such as ``1, 8, 32`` (commas or spaces); raises ``ConfigError`` naming the bad values."""
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    if not parts:
        raise ConfigError(f"{FIELD}.batch_sizes", "no batch sizes; list at least one, e.g. 1,8,32")
    bad = [p for p in parts if not re.fullmatch(r"\+?\d+", p)]
    if bad:
        listed = ", ".join(repr(p) for p in bad)
        what = "is not a whole number" if len(bad) == 1 else "are not whole numbers"
        raise ConfigError(
            f"{FIELD}.batch_sizes",
            f"{listed} {what}; list batch sizes 1..{MAX_BATCH_SIZE} separated by commas, e.g. 1,8,32",
        )
    return [int(p) for p in parts]


def registry_inputs(base: RunRequest) -> tuple[InputSpec, ...] | None:
    """A registry model's own inputs for ``base`` (what a dynamic engine's range is built on); None for
    a custom model file, whose inputs are known only once it is built: give it ``model.inputs`` instead."""
    from engine.models import registry  # noqa: PLC0415 - torch only when a plan needs a model's inputs

    entry = registry.REGISTRY.get(base.model.source)
    if entry is None:
        return None
    try:
        return registry.input_specs(entry, base.model)
    except ModelError as e:
        raise ConfigError("model", f"{e.message} {e.hint}".strip()) from None
