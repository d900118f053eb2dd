"""What sweeps need to know about each swept knob: its default, the values a sweep covers, how a value
reads on an axis and in a verdict, and the order values sort in.

The short names come from ``engine.judging.KNOBS`` (one record per setting, with the figure that judges
it); the per-knob behaviour below is the next thing to fold into those records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from engine.errors import ConfigError
from engine.judging import knob as knob_record
from engine.result import Segmentation
from engine.settings.defaults import FRONTENDS, MIN_BLOCK_SIZE, PRECISIONS, TRT_DEFAULT_OPTIMIZATION_LEVEL
from engine.settings.request import CompileSettings

SWEEP_TAG = "sweep:"
KNOB_TAG = "knob:"

MIN_BLOCK_SIZE_KNOB = "compile.min_block_size"
OPTIMIZATION_LEVEL_KNOB = "compile.optimization_level"
PRECISION_KNOB = "compile.precision"
RUNTIME_KNOB = "compile.use_python_runtime"
FRONTEND_KNOB = "compile.frontend"
EXECUTED_OPS_KNOB = "compile.torch_executed_ops"
CUDAGRAPHS_KNOB = "compile.enable_cudagraphs"

# dotted knob -> the name verdicts and axes use (engine.judging.KNOBS holds it with what the knob changes)
SWEEPABLE_KNOBS: dict[str, str] = {k: knob_record(k).name for k in (
    MIN_BLOCK_SIZE_KNOB, OPTIMIZATION_LEVEL_KNOB, PRECISION_KNOB, RUNTIME_KNOB, FRONTEND_KNOB, EXECUTED_OPS_KNOB,
    CUDAGRAPHS_KNOB)}
OPTIMIZATION_LEVELS = (0, 1, 2, 3, 4, 5)


def knob_default(knob: str) -> Any:
    """Torch-TensorRT's default for a swept knob (the field default in ``CompileSettings``)."""
    return CompileSettings.__dataclass_fields__[leaf(knob)].default


def recommended_min_block_sizes(segmentation: Segmentation | None) -> list[int]:
    """The dryrun's recommended ``min_block_size`` values ("minimal" and "moderate" segmentation)."""
    if segmentation is None:
        return []
    return sorted({r.min_block_size for r in segmentation.recommendations if r.kind != "current"})


def min_block_size_values(recommendations: Segmentation | Iterable[int] | None = None,
                          user_values: Iterable[int] = ()) -> list[int]:
    """Torch-TensorRT's default (5), the dryrun's recommended values and the user's list, sorted."""
    if isinstance(recommendations, Segmentation) or recommendations is None:
        recommended = recommended_min_block_sizes(recommendations)
    else:
        recommended = list(recommendations)
    values = {MIN_BLOCK_SIZE, *recommended, *user_values}
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(MIN_BLOCK_SIZE_KNOB, f"{v!r} is not a positive integer")
    return sorted(values)


def default_values(knob: str, *, recommendations: Segmentation | Iterable[int] | None = None,
                   user_values: Iterable[Any] = ()) -> list[Any]:
    """The values a sweep of ``knob`` covers unless the user lists others.

    ``optimization_level`` covers 0-5 and leaves out "unset": unset is TensorRT's level 3.
    ``torch_executed_ops`` covers "none" plus each set the user lists (tuples of op names).
    """
    if knob == MIN_BLOCK_SIZE_KNOB:
        return min_block_size_values(recommendations, user_values)
    if knob == OPTIMIZATION_LEVEL_KNOB:
        # unset and 3 build the same engine: measuring both gives the sweep a run-to-run noise figure
        return list(user_values) or [None, *OPTIMIZATION_LEVELS]
    if knob == PRECISION_KNOB:
        return list(user_values) or list(PRECISIONS)
    if knob in (RUNTIME_KNOB, CUDAGRAPHS_KNOB):
        return [False, True]
    if knob == FRONTEND_KNOB:
        return list(FRONTENDS)
    if knob == EXECUTED_OPS_KNOB:
        sets = [tuple(sorted(set(s))) for s in user_values]
        return [(), *[s for s in dict.fromkeys(sets) if s]]
    raise ConfigError("sweep.knob", f"{knob!r} cannot be swept; pick one of {', '.join(SWEEPABLE_KNOBS)}")


def value_label(knob: str, value: Any, recommended: Sequence[int] = ()) -> str:
    """How a knob value reads on a chart axis and in the verdict."""
    default = knob_default(knob) if knob in SWEEPABLE_KNOBS else object()
    if knob == OPTIMIZATION_LEVEL_KNOB:
        return f"default ({TRT_DEFAULT_OPTIMIZATION_LEVEL})" if value is None else str(value)
    if knob == RUNTIME_KNOB:
        text = "Python" if value else "C++"
    elif knob == CUDAGRAPHS_KNOB:
        text = "on" if value else "off"
    elif knob == FRONTEND_KNOB:
        text = {"dynamo": "dynamo (AOT)", "torch_compile": "torch_compile (JIT)"}.get(value, str(value))
    elif knob == EXECUTED_OPS_KNOB:
        ops = tuple(value or ())
        text = ", ".join(_short_op(o) for o in ops) if ops else "none"
    else:
        text = str(value)
    notes = []
    if hashable(value) == hashable(default):
        notes.append("default")
    if knob == MIN_BLOCK_SIZE_KNOB and value in recommended:
        notes.append("recommended")
    return f"{text} ({', '.join(notes)})" if notes else text


def _short_op(op: str) -> str:
    # torch.ops.aten.relu.default -> relu
    parts = op.split(".")
    return parts[3] if len(parts) >= 4 else op


def effective(knob: str, value: Any) -> Any:
    """The value the compiler actually uses (unset optimization_level is level 3)."""
    if knob == OPTIMIZATION_LEVEL_KNOB and value is None:
        return TRT_DEFAULT_OPTIMIZATION_LEVEL
    if knob == EXECUTED_OPS_KNOB:
        return tuple(value or ())
    return value


def order_key(knob: str, value: Any) -> tuple:
    if knob in (MIN_BLOCK_SIZE_KNOB, OPTIMIZATION_LEVEL_KNOB):
        return (effective(knob, value), 0 if value is None else 1)
    if knob == PRECISION_KNOB:
        return (PRECISIONS.index(value) if value in PRECISIONS else 99, str(value))
    if knob == FRONTEND_KNOB:
        return (FRONTENDS.index(value) if value in FRONTENDS else 99, str(value))
    if knob in (RUNTIME_KNOB, CUDAGRAPHS_KNOB):
        return (bool(value),)
    if knob == EXECUTED_OPS_KNOB:
        return (len(value or ()), tuple(value or ()))
    return (str(value),)


def leaf(knob: str) -> str:
    return knob.split(".")[-1]


def request_value(request: dict[str, Any], knob: str) -> Any:
    """A dotted knob's value in a stored request dict (lists come back as tuples)."""
    value: Any = request
    for part in knob.split("."):
        value = value[part]
    return tuple(value) if isinstance(value, list) else value


def hashable(v: Any) -> Any:
    return tuple(sorted(set(v))) if isinstance(v, (list, tuple, set)) else v
