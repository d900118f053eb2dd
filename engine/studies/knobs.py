"""One record per request setting (``Knob``): what verdicts call it, what it changes (hence the figure that judges
it, engine/studies/judging.py) and, for the knobs a sweep can vary, how a sweep treats it: the values it covers,
how a value reads on an axis and in a verdict, the value the compiler actually uses, the order values sort in,
what the plan and the verdict say about it, and whether it only steers the build (once the engine plan is known,
the plan stands in for it). A new sweepable knob is one record.

What the setting itself is (its default, its allowed values, its widget) is the request's knob metadata
(engine/settings/request.py); this is what studies of runs know about it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError
from engine.result import Segmentation
from engine.settings.defaults import (
    FRONTENDS,
    MIN_BLOCK_SIZE,
    OPTIMIZATION_LEVELS,
    PRECISIONS,
    TRT_DEFAULT_OPTIMIZATION_LEVEL,
)
from engine.settings.request import CompileSettings
from engine.studies.statistics import END_TO_END, GPU_TIME

KERNELS = "kernels"  # the setting changes which kernels run
HOST = "host"  # it changes the host's work per call (launches, runtime), not the kernels
INCIDENTAL = "incidental"  # it changes neither (engine caching, iteration counts, seeds, repeats)

SWEEP_TAG = "sweep:"
KNOB_TAG = "knob:"

MIN_BLOCK_SIZE_KNOB = "compile.min_block_size"
OPTIMIZATION_LEVEL_KNOB = "compile.optimization_level"
PRECISION_KNOB = "compile.precision"
RUNTIME_KNOB = "compile.use_python_runtime"
FRONTEND_KNOB = "compile.frontend"
EXECUTED_OPS_KNOB = "compile.torch_executed_ops"
CUDAGRAPHS_KNOB = "compile.enable_cudagraphs"

Values = Callable[[Sequence[int], Sequence[Any]], list[Any]]  # (dryrun's recommended, user's values) -> values


def _text(value: Any) -> str:
    return str(value)


def _as_is(value: Any) -> Any:
    return value


def _by_text(value: Any) -> tuple:
    return (str(value),)


@dataclass(frozen=True)
class Knob:
    """One request setting as studies of runs see it."""

    setting: str  # dotted path in a request: "compile.optimization_level", "model.batch_size"
    name: str  # "optimization_level", "batch"
    changes: str  # KERNELS | HOST | INCIDENTAL
    # -- how a sweep treats it (``values`` is None for a setting no sweep varies) --
    values: Values | None = None  # the values a sweep covers unless the user lists others
    text: Callable[[Any], str] = _text  # a value on an axis and in a verdict
    marks_default: bool = True  # the label says "(default)" at the knob's default
    effective: Callable[[Any], Any] = _as_is  # the value the compiler actually uses
    order: Callable[[Any], tuple] = _by_text  # how values sort
    partitions: bool = False  # acts through the graph's partition: engine counts belong in a verdict
    dryrun_recommends: bool = False  # the dryrun recommends values of it
    plan_note: str = ""  # what a sweep plan of it says
    verdict_note: str = ""  # the last line of its verdict
    build_only: bool = False  # only steers the build: the engine plan's fingerprint stands in for it

    @property
    def judged_on(self) -> str:
        return END_TO_END if self.changes == HOST else GPU_TIME

    @property
    def matters(self) -> bool:
        """Worth naming as what differs between two runs."""
        return self.changes != INCIDENTAL

    @property
    def sweepable(self) -> bool:
        return self.values is not None


# -- the sweepable knobs' behaviour ------------------------------------------------------------------------------
def recommended_min_block_sizes(segmentation: Segmentation | None) -> list[int]:
    """The dryrun's recommended ``min_block_size`` values ("minimal" and "moderate" segmentation)."""
    if segmentation is None:
        return []
    return sorted({r.min_block_size for r in segmentation.recommendations if r.kind != "current"})


def min_block_size_values(
    recommendations: Segmentation | Iterable[int] | None = None, user_values: Iterable[int] = ()
) -> list[int]:
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


def _level(value: Any) -> Any:
    return TRT_DEFAULT_OPTIMIZATION_LEVEL if value is None else value


def _ops(value: Any) -> tuple:
    return tuple(value or ())


def _short_op(op: str) -> str:
    # torch.ops.aten.relu.default -> relu
    parts = op.split(".")
    return parts[3] if len(parts) >= 4 else op


def _op_sets(recommended: Sequence[int], user_values: Sequence[Any]) -> list[Any]:
    sets = [tuple(sorted(set(s))) for s in user_values]
    return [(), *[s for s in dict.fromkeys(sets) if s]]


def _index_in(choices: Sequence[str]) -> Callable[[Any], tuple]:
    return lambda value: (choices.index(value) if value in choices else 99, str(value))


def _off_on(recommended: Sequence[int], user_values: Sequence[Any]) -> list[Any]:
    return [False, True]


_LEVEL_NOTE = f"optimization_level unset means TensorRT's default, level {TRT_DEFAULT_OPTIMIZATION_LEVEL}."
_FRONTEND_NAMES = {"dynamo": "dynamo (AOT)", "torch_compile": "torch_compile (JIT)"}

# Sweepable knobs come first, in the order forms offer them.
KNOBS: tuple[Knob, ...] = (
    Knob(
        MIN_BLOCK_SIZE_KNOB,
        "min_block_size",
        KERNELS,
        values=lambda rec, user: min_block_size_values(rec, user),
        order=lambda v: (v, 0 if v is None else 1),
        partitions=True,
        dryrun_recommends=True,
        build_only=True,
    ),
    Knob(
        OPTIMIZATION_LEVEL_KNOB,
        "optimization_level",
        KERNELS,
        # unset and 3 build the same engine: measuring both gives the sweep a run-to-run noise figure
        values=lambda rec, user: list(user) or [None, *OPTIMIZATION_LEVELS],
        text=lambda v: f"default ({TRT_DEFAULT_OPTIMIZATION_LEVEL})" if v is None else str(v),
        marks_default=False,
        effective=_level,
        order=lambda v: (_level(v), 0 if v is None else 1),
        plan_note=_LEVEL_NOTE,
        verdict_note=f"optimization_level unset is TensorRT's default, level {TRT_DEFAULT_OPTIMIZATION_LEVEL}.",
        build_only=True,
    ),
    Knob(
        PRECISION_KNOB,
        "precision",
        KERNELS,
        values=lambda rec, user: list(user) or list(PRECISIONS),
        order=_index_in(PRECISIONS),
    ),
    Knob(
        RUNTIME_KNOB,
        "runtime",
        HOST,
        values=_off_on,
        text=lambda v: "Python" if v else "C++",
        order=lambda v: (bool(v),),
    ),
    Knob(
        FRONTEND_KNOB,
        "frontend",
        HOST,
        values=lambda rec, user: list(FRONTENDS),
        text=lambda v: _FRONTEND_NAMES.get(v, str(v)),
        order=_index_in(FRONTENDS),
    ),
    Knob(
        EXECUTED_OPS_KNOB,
        "torch_executed_ops",
        KERNELS,
        values=_op_sets,
        text=lambda v: ", ".join(_short_op(o) for o in _ops(v)) if _ops(v) else "none",
        effective=_ops,
        order=lambda v: (len(_ops(v)), _ops(v)),
        partitions=True,
        build_only=True,
    ),
    Knob(
        CUDAGRAPHS_KNOB,
        "cudagraphs",
        HOST,
        values=_off_on,
        text=lambda v: "on" if v else "off",
        order=lambda v: (bool(v),),
        plan_note="CUDA graphs change how the engine is launched, not how it is built: on and off are separate "
        "sweep points, never repeats of one measurement.",
    ),
    Knob("model.source", "model", KERNELS),
    Knob("model.batch_size", "batch", KERNELS),
    Knob("model.input_shape", "input shape", KERNELS),
    Knob("model.sequence_length", "sequence length", KERNELS),
    Knob("model.inputs", "inputs", KERNELS),
    Knob("model.pretrained", "pretrained", KERNELS),
    Knob("backend", "backend", HOST),
    Knob("env.device", "device", HOST),
    Knob("compile.quantization", "quantization", KERNELS),
    Knob("compile.quant_base_precision", "quant_base_precision", KERNELS),
    Knob("compile.calibration_data", "calibration_data", KERNELS),
    Knob("compile.calibration_batches", "calibration_batches", KERNELS),
    Knob("compile.require_full_compilation", "require_full_compilation", KERNELS, build_only=True),
    Knob("compile.workspace_size", "workspace_size", KERNELS, build_only=True),
    Knob("compile.use_fast_partitioner", "use_fast_partitioner", KERNELS, build_only=True),
    Knob("compile.cache_built_engines", "cache_built_engines", INCIDENTAL, build_only=True),
    Knob("compile.reuse_cached_engines", "reuse_cached_engines", INCIDENTAL, build_only=True),
    Knob("device", "device (requested)", INCIDENTAL),  # "auto" and "cuda" ran alike; env.device says where
    Knob("measure.seed", "seed", INCIDENTAL),
    Knob("measure.repeat", "repeat", INCIDENTAL),
)
KNOB_BY_SETTING = {k.setting: k for k in KNOBS}
# dotted knob -> the name verdicts and axes use, for every knob a sweep can vary, in the order forms offer them
SWEEPABLE_KNOBS: dict[str, str] = {k.setting: k.name for k in KNOBS if k.sweepable}


def knob(setting: str) -> Knob:
    """The table's record of a setting; one it lacks: how to measure (``measure.*``) changes nothing measured,
    anything else (a compile knob, the GPU, a version) is taken to change the kernels."""
    found = KNOB_BY_SETTING.get(setting)
    if found is not None:
        return found
    changes = INCIDENTAL if setting.startswith("measure.") else KERNELS
    return Knob(setting, setting.rsplit(".", 1)[-1], changes)


def kernel_knob(setting: str) -> bool:
    """The knob changes the kernels (judged on GPU time); a host knob changes how they are launched."""
    return knob(setting).changes == KERNELS


# -- reading a sweep's values ------------------------------------------------------------------------------------
def knob_default(setting: str) -> Any:
    """Torch-TensorRT's default for a swept knob (the field default in ``CompileSettings``)."""
    return CompileSettings.__dataclass_fields__[leaf(setting)].default


def default_values(
    setting: str, *, recommendations: Segmentation | Iterable[int] | None = None, user_values: Iterable[Any] = ()
) -> list[Any]:
    """The values a sweep of ``setting`` covers unless the user lists others (``Knob.values``): e.g.
    ``optimization_level`` covers 0-5 and unset, ``torch_executed_ops`` "none" plus each set the user lists."""
    record = KNOB_BY_SETTING.get(setting)
    if record is None or record.values is None:
        raise ConfigError("sweep.knob", f"{setting!r} cannot be swept; pick one of {', '.join(SWEEPABLE_KNOBS)}")
    if isinstance(recommendations, Segmentation) or recommendations is None:
        recommended = recommended_min_block_sizes(recommendations)
    else:
        recommended = list(recommendations)
    return record.values(recommended, list(user_values))


def value_label(setting: str, value: Any, recommended: Sequence[int] = ()) -> str:
    """How a knob value reads on a chart axis and in the verdict: its text, then "(default)" and
    "(recommended)" where they apply."""
    record = knob(setting)
    text = record.text(value)
    if not record.marks_default:
        return text
    notes = []
    if record.sweepable and hashable(value) == hashable(knob_default(setting)):
        notes.append("default")
    if record.dryrun_recommends and value in recommended:
        notes.append("recommended")
    return f"{text} ({', '.join(notes)})" if notes else text


def effective(setting: str, value: Any) -> Any:
    """The value the compiler actually uses (unset optimization_level is level 3)."""
    return knob(setting).effective(value)


def order_key(setting: str, value: Any) -> tuple:
    return knob(setting).order(value)


def leaf(setting: str) -> str:
    return setting.split(".")[-1]


def request_value(request: dict[str, Any], setting: str) -> Any:
    """A dotted knob's value in a stored request dict (lists come back as tuples)."""
    value: Any = request
    for part in setting.split("."):
        value = value[part]
    return tuple(value) if isinstance(value, list) else value


def hashable(v: Any) -> Any:
    return tuple(sorted(set(v))) if isinstance(v, (list, tuple, set)) else v
