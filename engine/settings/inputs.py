"""Model inputs: name, shape, dtype, value range and dynamic (min / opt / max) range of each.

An ``InputSpec`` describes one positional input of a model the way ``torch_tensorrt.Input`` does:
``shape`` is the optimisation ("opt") shape, batch dimension included, and ``min_shape`` /
``max_shape`` bound a dynamic engine (absent: a static engine at ``shape``). Integer inputs
(token ids, attention masks) carry the range their random values are drawn from.

Dimensions may be named (``dim_names``): one name used by several inputs is one symbolic
dimension, as a ``torch.export.Dim`` shared between inputs is (``input_ids`` and
``attention_mask`` share "batch" and "sequence"). Two names have a meaning for measurement:
a dimension named ``batch`` is measured at ``ModelSpec.batch_size`` and one named ``sequence``
at ``ModelSpec.sequence_length`` when that is set; every other dimension at its opt value.

This module holds the rules that need no model (``check_specs``: min ≤ opt ≤ max, known dtype,
shared dims agree) and imports no torch. The rule that needs the model (``check_model_accepts``: the
model runs at each dynamic dimension's min and max) and the example tensors are in
engine/models/input_tensors.py; the compilers' view of dynamic shapes (``torch_tensorrt.Input``,
``torch.export`` with refined dimensions) in engine/backends/tensorrt/dynamic_shapes.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from engine.errors import ConfigError, shown
from engine.settings.defaults import MAX_DIM

# the dtypes an input may have, by their torch names (``torch.<name>``)
INPUT_DTYPES = ("float32", "float16", "int64", "int32", "bool")
INTEGER_DTYPES = ("int64", "int32", "bool")
# [low, high) a value_range may span per dtype: values are drawn as int64 (torch.randint's high is exclusive and at
# most 2**63 - 1) and then cast, so a wider range would fail in the worker or wrap around silently
VALUE_LIMITS = {"int64": (-(2**63), 2**63 - 1), "int32": (-(2**31), 2**31), "bool": (0, 2)}
MAX_RANK = 8
DIM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")  # a torch.export.Dim name
BATCH_DIM = "batch"
SEQUENCE_DIM = "sequence"
MAX_INPUTS = 16
FIELD = "model.inputs"


@dataclass(frozen=True)
class InputSpec:
    """One model input. Shapes include the batch dimension."""

    name: str
    shape: tuple[int, ...]  # opt shape: the engine is tuned for it
    dtype: str = "float32"
    min_shape: tuple[int, ...] | None = None  # None: static at ``shape``
    max_shape: tuple[int, ...] | None = None
    value_range: tuple[int, int] | None = None  # integer inputs: values drawn from [low, high)
    dim_names: tuple[str, ...] = ()  # "batch", "sequence", ...; "" for an unnamed dimension

    @property
    def is_dynamic(self) -> bool:
        return self.lower != self.upper

    @property
    def lower(self) -> tuple[int, ...]:
        return self.min_shape or self.shape

    @property
    def upper(self) -> tuple[int, ...]:
        return self.max_shape or self.shape

    def dim_name(self, d: int) -> str:
        """The dimension's symbol: its given name, else ``batch`` for dim 0, else ``<input>.<d>``."""
        if d < len(self.dim_names) and self.dim_names[d]:
            return self.dim_names[d]
        return BATCH_DIM if d == 0 else f"{self.name}.{d}"

    def describe_dim(self, d: int) -> str:
        name = self.dim_name(d)
        return f"dimension {d} ({name})" if not name.startswith(f"{self.name}.") else f"dimension {d}"

    def dynamic_dims(self) -> list[int]:
        return [d for d, (lo, hi) in enumerate(zip(self.lower, self.upper, strict=True)) if lo != hi]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def torch_dtype(self) -> Any:
        """``torch.<dtype>`` (torch is imported only here: the specs are parsed and checked without it)."""
        import torch  # noqa: PLC0415

        return getattr(torch, self.dtype)


@dataclass(frozen=True)
class DimRange:
    """The range of one symbolic dimension across all inputs that use it."""

    symbol: str
    min: int
    opt: int
    max: int


# -- parsing and the rules that need no model -----------------------------------------------------
def parse_inputs(raw: Any, field: str = FIELD) -> tuple[InputSpec, ...]:
    """Input specs from plain data (a list of mappings, e.g. JSON), checked with ``check_specs``."""
    if isinstance(raw, str):  # JSON from the command line or a text box
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ConfigError(
                field,
                f"not valid JSON ({e.msg} at character {e.pos}); expected a list like "
                '[{"name": "input_ids", "shape": [1, 128], "dtype": "int64"}]',
            ) from None
        except (ValueError, RecursionError) as e:  # a number too long to convert, nesting too deep
            what = "nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]
            raise ConfigError(
                field,
                f"not usable JSON ({what}); expected a list like "
                '[{"name": "input_ids", "shape": [1, 128], "dtype": "int64"}]',
            ) from None
    if isinstance(raw, InputSpec):
        raw = [raw]
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ConfigError(field, "expected a non-empty list of inputs, each with a name, shape and dtype")
    specs = []
    for i, item in enumerate(raw):
        if isinstance(item, InputSpec):
            specs.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(f"{field}[{i}]", f"expected a mapping, got {type(item).__name__}")
        known = set(InputSpec.__dataclass_fields__)
        unknown = set(item) - known
        if unknown:
            raise ConfigError(f"{field}[{i}]", f"unknown keys {sorted(unknown)}; known: {', '.join(sorted(known))}")
        name = item.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
            raise ConfigError(f"{field}[{i}].name", f"{shown(name)} is not a valid input name like input_ids")
        where = f"{field}.{name}"
        dtype = item.get("dtype", "float32")
        if not isinstance(dtype, str):
            raise ConfigError(f"{where}.dtype", f"{shown(dtype)} is not one of {', '.join(INPUT_DTYPES)}")
        specs.append(
            InputSpec(
                name=name,
                shape=_shape(item.get("shape"), f"{where}.shape"),
                dtype=dtype,
                min_shape=_shape(item["min_shape"], f"{where}.min_shape")
                if item.get("min_shape") is not None
                else None,
                max_shape=_shape(item["max_shape"], f"{where}.max_shape")
                if item.get("max_shape") is not None
                else None,
                value_range=_pair(item.get("value_range"), f"{where}.value_range"),
                dim_names=_dim_names(item.get("dim_names"), f"{where}.dim_names"),
            )
        )
    return check_specs(tuple(specs), field)


def _shape(value: Any, field: str) -> tuple[int, ...]:
    if isinstance(value, str):
        parts = [v.strip() for v in value.replace("x", ",").split(",") if v.strip()]
        if not all(re.fullmatch(r"-?[0-9]{1,30}", v) for v in parts):
            raise ConfigError(field, f"{shown(value)} is not a list of integers, e.g. 1,128")
        value = [int(v) for v in parts]
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ConfigError(field, f"{shown(value)} is not a list of integers, e.g. 1,128")
    if len(value) > MAX_RANK:
        raise ConfigError(field, f"{len(value)} dimensions; at most {MAX_RANK} are allowed")
    if not all(-(2**63) <= v < 2**63 for v in value):  # check_specs names the dimension of any size out of range
        raise ConfigError(field, f"{shown(value)}: every size must lie in 1..{MAX_DIM}")
    return tuple(int(v) for v in value)


def _pair(value: Any, field: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ConfigError(field, f"{shown(value)} is not a [low, high) pair of integers, e.g. [0, 30522]")
    if not all(-(2**63) <= v <= 2**63 for v in value):
        raise ConfigError(field, f"{shown(value)}: values must lie in [{-(2**63)}, {2**63 - 1}) (int64)")
    return int(value[0]), int(value[1])


def _dim_names(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(n, str) and (n == "" or DIM_NAME.fullmatch(n)) for n in value
    ):
        raise ConfigError(
            field,
            f"{shown(value)} is not a list of dimension names (one per dimension, each a "
            'name like "batch" or "sequence", or "" for an unnamed one)',
        )
    if len(value) > MAX_RANK:
        raise ConfigError(field, f"{len(value)} names; inputs have at most {MAX_RANK} dimensions")
    return tuple(value)


def check_specs(specs: Sequence[InputSpec], field: str = FIELD) -> tuple[InputSpec, ...]:
    """The rules that need no model. Raises ``ConfigError`` naming the input, the dimension and the rule."""
    if len(specs) > MAX_INPUTS:
        raise ConfigError(field, f"{len(specs)} inputs; at most {MAX_INPUTS} are allowed")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(field, f"input names must be unique, got {names}")
    for s in specs:
        where = f"{field}.{s.name}"
        if not 1 <= len(s.shape) <= MAX_RANK:
            raise ConfigError(f"{where}.shape", f"{len(s.shape)} dimensions; allowed 1 to {MAX_RANK}")
        if s.dtype not in INPUT_DTYPES:
            raise ConfigError(f"{where}.dtype", f"{s.dtype!r} is not one of {', '.join(INPUT_DTYPES)}")
        if s.dim_names and len(s.dim_names) != len(s.shape):
            raise ConfigError(
                f"{where}.dim_names",
                f"{len(s.dim_names)} names for {len(s.shape)} dimensions of shape {s.shape}; give one per dimension",
            )
        for label, shape in (("min_shape", s.min_shape), ("max_shape", s.max_shape)):
            if shape is not None and len(shape) != len(s.shape):
                raise ConfigError(
                    f"{where}.{label}",
                    f"{shape} has {len(shape)} dimensions but shape {s.shape} "
                    f"has {len(s.shape)}; give min/opt/max of equal rank",
                )
        if (s.min_shape is None) != (s.max_shape is None):
            raise ConfigError(where, "give both min_shape and max_shape for a dynamic input, or neither")
        for d, (lo, opt, hi) in enumerate(zip(s.lower, s.shape, s.upper, strict=True)):
            dim = s.describe_dim(d)
            if not 1 <= lo <= MAX_DIM or not 1 <= hi <= MAX_DIM or not 1 <= opt <= MAX_DIM:
                raise ConfigError(where, f"{dim}: sizes must lie in 1..{MAX_DIM}, got min {lo} / opt {opt} / max {hi}")
            if not lo <= opt <= hi:
                raise ConfigError(where, f"{dim}: min {lo} / opt {opt} / max {hi} breaks the rule min ≤ opt ≤ max")
        if s.value_range is not None:
            if s.dtype not in INTEGER_DTYPES:
                raise ConfigError(
                    f"{where}.value_range", f"only integer or bool inputs take a value range, this one is {s.dtype}"
                )
            low, high = s.value_range
            if not low < high:
                raise ConfigError(f"{where}.value_range", f"[{shown(low)}, {shown(high)}) is empty; need low < high")
            lo_limit, hi_limit = VALUE_LIMITS[s.dtype]
            if low < lo_limit or high > hi_limit:
                raise ConfigError(
                    f"{where}.value_range",
                    f"[{shown(low)}, {shown(high)}) does not fit {s.dtype}: "
                    f"values must lie in [{lo_limit}, {hi_limit})",
                )
    dim_ranges(specs, field)
    return tuple(specs)


def dim_ranges(specs: Sequence[InputSpec], field: str = FIELD) -> dict[str, DimRange]:
    """Every symbolic dimension with its min/opt/max; inputs sharing a name must agree on them."""
    ranges: dict[str, DimRange] = {}
    owner: dict[str, str] = {}
    for s in specs:
        for d, (lo, opt, hi) in enumerate(zip(s.lower, s.shape, s.upper, strict=True)):
            sym = s.dim_name(d)
            r = DimRange(sym, lo, opt, hi)
            seen = ranges.setdefault(sym, r)
            if seen != r:
                raise ConfigError(
                    f"{field}.{s.name}",
                    f"{s.describe_dim(d)} is {lo}/{opt}/{hi} (min/opt/max) but "
                    f"input {owner[sym]!r} gives the same dimension "
                    f"{seen.min}/{seen.opt}/{seen.max}; shared dimensions "
                    "must have equal ranges",
                )
            owner.setdefault(sym, s.name)
    return ranges


# -- shapes and tensors ---------------------------------------------------------------------------
def shapes_at(specs: Sequence[InputSpec], point: str | Mapping[str, int] = "opt") -> dict[str, tuple[int, ...]]:
    """Each input's shape with every dimension at ``point`` ("min", "opt", "max"), or at opt with
    the symbolic dimensions in the mapping set to the given sizes."""
    out = {}
    for s in specs:
        if point in ("min", "opt", "max"):
            out[s.name] = {"min": s.lower, "opt": s.shape, "max": s.upper}[point]
        else:
            sizes = dict(point)  # type: ignore[arg-type]
            out[s.name] = tuple(sizes.get(s.dim_name(d), v) for d, v in enumerate(s.shape))
    return out


def measured_shapes(
    specs: Sequence[InputSpec], batch_size: int, sequence_length: int | None = None, field: str = FIELD
) -> dict[str, tuple[int, ...]]:
    """The shapes a run measures at: batch dims at ``batch_size``, sequence dims at ``sequence_length``.

    Raises ``ConfigError`` when that point is outside an input's dynamic range (or differs from a
    static input's size).
    """
    sizes = {BATCH_DIM: batch_size}
    if sequence_length is not None:
        sizes[SEQUENCE_DIM] = sequence_length
    knob = {BATCH_DIM: "model.batch_size", SEQUENCE_DIM: "model.sequence_length"}
    ranges = dim_ranges(specs, field)
    for sym, value in sizes.items():
        r = ranges.get(sym)
        if r is None or r.min <= value <= r.max:
            continue
        if r.min == r.max:
            msg = (
                f"{value} differs from the {sym} size {r.opt} fixed in {field}; make that dimension dynamic "
                f"(min ≤ {value} ≤ max) or set {knob[sym]} to {r.opt}"
            )
        else:
            msg = f"{value} is outside the dynamic {sym} range {r.min}..{r.max} of {field}"
        raise ConfigError(knob[sym], msg)
    return shapes_at(specs, sizes)


def with_batch_range(
    specs: Sequence[InputSpec], min_batch: int, opt_batch: int, max_batch: int
) -> tuple[InputSpec, ...]:
    """The same inputs with their batch dimension made dynamic (min/opt/max); other dims unchanged."""
    out = []
    for s in specs:
        lo, hi, opt = list(s.lower), list(s.upper), list(s.shape)
        for d in range(len(s.shape)):
            if s.dim_name(d) == BATCH_DIM:
                lo[d], opt[d], hi[d] = min_batch, opt_batch, max_batch
        out.append(replace(s, shape=tuple(opt), min_shape=tuple(lo), max_shape=tuple(hi)))
    return check_specs(tuple(out))
