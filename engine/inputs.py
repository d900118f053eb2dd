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

Validation has two halves. ``check_specs`` applies the rules that need no model
(min ≤ opt ≤ max, known dtype, shared dims agree); ``check_model_accepts`` runs the model at
each dynamic dimension's min and max, one dimension at a time, and names the dimensions the
model cannot vary. ``torch_tensorrt`` is imported only inside ``to_torch_tensorrt_inputs``.

``export_dynamic`` is the backend's ``torch.export`` of a dynamic model: when the model's guards
need more than a range (a sequence that must be a multiple of 8), it applies torch.export's
suggested fixes once, checks the requested and measured sizes against the refined rule
(``DimConstraint``) and says in user terms what was refined.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from engine.config import MAX_DIM
from engine.errors import ConfigError, shown

INPUT_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float16": torch.float16, "int64": torch.int64, "int32": torch.int32,
    "bool": torch.bool,
}
INTEGER_DTYPES = ("int64", "int32", "bool")
# [low, high) a value_range may span per dtype: values are drawn as int64 (torch.randint's high is exclusive and at
# most 2**63 - 1) and then cast, so a wider range would fail in the worker or wrap around silently
VALUE_LIMITS = {"int64": (-2**63, 2**63 - 1), "int32": (-2**31, 2**31), "bool": (0, 2)}
MAX_RANK = 8
DIM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")   # a torch.export.Dim name
BATCH_DIM = "batch"
SEQUENCE_DIM = "sequence"
MAX_INPUTS = 16
FIELD = "model.inputs"


@dataclass(frozen=True)
class InputSpec:
    """One model input. Shapes include the batch dimension."""

    name: str
    shape: tuple[int, ...]                       # opt shape: the engine is tuned for it
    dtype: str = "float32"
    min_shape: tuple[int, ...] | None = None     # None: static at ``shape``
    max_shape: tuple[int, ...] | None = None
    value_range: tuple[int, int] | None = None   # integer inputs: values drawn from [low, high)
    dim_names: tuple[str, ...] = ()              # "batch", "sequence", ...; "" for an unnamed dimension

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
    def torch_dtype(self) -> torch.dtype:
        return INPUT_DTYPES[self.dtype]


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
    if isinstance(raw, str):   # JSON from the command line or a text box
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ConfigError(field, f"not valid JSON ({e.msg} at character {e.pos}); expected a list like "
                                     '[{"name": "input_ids", "shape": [1, 128], "dtype": "int64"}]') from None
        except (ValueError, RecursionError) as e:   # a number too long to convert, nesting too deep
            what = "nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]
            raise ConfigError(field, f"not usable JSON ({what}); expected a list like "
                                     '[{"name": "input_ids", "shape": [1, 128], "dtype": "int64"}]') from None
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
        specs.append(InputSpec(
            name=name,
            shape=_shape(item.get("shape"), f"{where}.shape"),
            dtype=dtype,
            min_shape=_shape(item["min_shape"], f"{where}.min_shape") if item.get("min_shape") is not None else None,
            max_shape=_shape(item["max_shape"], f"{where}.max_shape") if item.get("max_shape") is not None else None,
            value_range=_pair(item.get("value_range"), f"{where}.value_range"),
            dim_names=_dim_names(item.get("dim_names"), f"{where}.dim_names"),
        ))
    return check_specs(tuple(specs), field)


def _shape(value: Any, field: str) -> tuple[int, ...]:
    if isinstance(value, str):
        parts = [v.strip() for v in value.replace("x", ",").split(",") if v.strip()]
        if not all(re.fullmatch(r"-?[0-9]{1,30}", v) for v in parts):
            raise ConfigError(field, f"{shown(value)} is not a list of integers, e.g. 1,128")
        value = [int(v) for v in parts]
    if not isinstance(value, (list, tuple)) or not value or \
            not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(field, f"{shown(value)} is not a list of integers, e.g. 1,128")
    if len(value) > MAX_RANK:
        raise ConfigError(field, f"{len(value)} dimensions; at most {MAX_RANK} are allowed")
    if not all(-2**63 <= v < 2**63 for v in value):   # check_specs names the dimension of any size out of range
        raise ConfigError(field, f"{shown(value)}: every size must lie in 1..{MAX_DIM}")
    return tuple(int(v) for v in value)


def _pair(value: Any, field: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2 or \
            not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(field, f"{shown(value)} is not a [low, high) pair of integers, e.g. [0, 30522]")
    if not all(-2**63 <= v <= 2**63 for v in value):
        raise ConfigError(field, f"{shown(value)}: values must lie in [{-2**63}, {2**63 - 1}) (int64)")
    return int(value[0]), int(value[1])


def _dim_names(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or \
            not all(isinstance(n, str) and (n == "" or DIM_NAME.fullmatch(n)) for n in value):
        raise ConfigError(field, f"{shown(value)} is not a list of dimension names (one per dimension, each a "
                                 'name like "batch" or "sequence", or "" for an unnamed one)')
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
            raise ConfigError(f"{where}.dim_names", f"{len(s.dim_names)} names for {len(s.shape)} dimensions "
                                                     f"of shape {s.shape}; give one per dimension")
        for label, shape in (("min_shape", s.min_shape), ("max_shape", s.max_shape)):
            if shape is not None and len(shape) != len(s.shape):
                raise ConfigError(f"{where}.{label}", f"{shape} has {len(shape)} dimensions but shape {s.shape} "
                                                      f"has {len(s.shape)}; give min/opt/max of equal rank")
        if (s.min_shape is None) != (s.max_shape is None):
            raise ConfigError(where, "give both min_shape and max_shape for a dynamic input, or neither")
        for d, (lo, opt, hi) in enumerate(zip(s.lower, s.shape, s.upper, strict=True)):
            dim = s.describe_dim(d)
            if not 1 <= lo <= MAX_DIM or not 1 <= hi <= MAX_DIM or not 1 <= opt <= MAX_DIM:
                raise ConfigError(where, f"{dim}: sizes must lie in 1..{MAX_DIM}, got min {lo} / opt {opt} / max {hi}")
            if not lo <= opt <= hi:
                raise ConfigError(where, f"{dim}: min {lo} / opt {opt} / max {hi} breaks the rule "
                                         "min ≤ opt ≤ max")
        if s.value_range is not None:
            if s.dtype not in INTEGER_DTYPES:
                raise ConfigError(f"{where}.value_range", f"only integer or bool inputs take a value range, "
                                                          f"this one is {s.dtype}")
            low, high = s.value_range
            if not low < high:
                raise ConfigError(f"{where}.value_range", f"[{shown(low)}, {shown(high)}) is empty; need low < high")
            lo_limit, hi_limit = VALUE_LIMITS[s.dtype]
            if low < lo_limit or high > hi_limit:
                raise ConfigError(f"{where}.value_range", f"[{shown(low)}, {shown(high)}) does not fit {s.dtype}: "
                                                          f"values must lie in [{lo_limit}, {hi_limit})")
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
                raise ConfigError(f"{field}.{s.name}", f"{s.describe_dim(d)} is {lo}/{opt}/{hi} (min/opt/max) but "
                                                       f"input {owner[sym]!r} gives the same dimension "
                                                       f"{seen.min}/{seen.opt}/{seen.max}; shared dimensions "
                                                       "must have equal ranges")
            owner.setdefault(sym, s.name)
    return ranges


# -- shapes and tensors ---------------------------------------------------------------------------
def shapes_at(specs: Sequence[InputSpec], point: str | Mapping[str, int] = "opt") -> dict[str, tuple[int, ...]]:
    """Each input's shape with every dimension at ``point`` ("min", "opt", "max"), or at opt with
    the symbolic dimensions in the mapping set to the given sizes."""
    out = {}
    for s in specs:
        if point in ("min", "opt", "max"):
            out[s.name] = {"min": s.lower, "opt": s.shape, "max": s.upper}[point]  # type: ignore[index]
        else:
            sizes = dict(point)  # type: ignore[arg-type]
            out[s.name] = tuple(sizes.get(s.dim_name(d), v) for d, v in enumerate(s.shape))
    return out


def measured_shapes(specs: Sequence[InputSpec], batch_size: int, sequence_length: int | None = None,
                    field: str = FIELD) -> dict[str, tuple[int, ...]]:
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
            msg = (f"{value} differs from the {sym} size {r.opt} fixed in {field}; make that dimension dynamic "
                   f"(min ≤ {value} ≤ max) or set {knob[sym]} to {r.opt}")
        else:
            msg = f"{value} is outside the dynamic {sym} range {r.min}..{r.max} of {field}"
        raise ConfigError(knob[sym], msg)
    return shapes_at(specs, sizes)


def example_tensors(specs: Sequence[InputSpec], shapes: Mapping[str, tuple[int, ...]] | None = None,
                    seed: int = 0, device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
    """Random inputs, one per spec, at ``shapes`` (default: opt). Floats are standard normal;
    integers uniform in ``value_range`` (default [0, 2)); the same seed gives the same tensors."""
    gen = torch.Generator().manual_seed(seed)
    shapes = shapes or shapes_at(specs, "opt")
    out = []
    for s in specs:
        shape = shapes[s.name]
        if s.dtype in INTEGER_DTYPES:
            low, high = s.value_range or (0, 2)
            t = torch.randint(low, high, shape, generator=gen, dtype=torch.int64).to(s.torch_dtype)
        else:
            t = torch.randn(shape, generator=gen).to(s.torch_dtype)
        out.append(t.to(device))
    return tuple(out)


def specs_from_tensors(tensors: Sequence[torch.Tensor], names: Sequence[str] = ()) -> tuple[InputSpec, ...]:
    """Static specs describing example tensors (a file model's own inputs); names default to x0, x1, ..."""
    by_dtype = {v: k for k, v in INPUT_DTYPES.items()}
    out = []
    for i, t in enumerate(tensors):
        dtype = by_dtype.get(t.dtype)
        if dtype is None:
            raise ConfigError(FIELD, f"input {i} has dtype {t.dtype}; supported: {', '.join(INPUT_DTYPES)}")
        out.append(InputSpec(names[i] if i < len(names) else f"x{i}", tuple(t.shape), dtype))
    return tuple(out)


def with_batch_range(specs: Sequence[InputSpec], min_batch: int, opt_batch: int,
                     max_batch: int) -> tuple[InputSpec, ...]:
    """The same inputs with their batch dimension made dynamic (min/opt/max); other dims unchanged."""
    out = []
    for s in specs:
        lo, hi, opt = list(s.lower), list(s.upper), list(s.shape)
        for d in range(len(s.shape)):
            if s.dim_name(d) == BATCH_DIM:
                lo[d], opt[d], hi[d] = min_batch, opt_batch, max_batch
        out.append(replace(s, shape=tuple(opt), min_shape=tuple(lo), max_shape=tuple(hi)))
    return check_specs(tuple(out))


# -- the rule that needs the model ----------------------------------------------------------------
@dataclass(frozen=True)
class DimFailure:
    symbol: str
    bound: str          # "min" | "max"
    size: int
    shapes: dict[str, tuple[int, ...]]
    error: str


def check_model_accepts(module: torch.nn.Module, specs: Sequence[InputSpec], *, device: str = "cpu",
                        seed: int = 0, field: str = FIELD) -> None:
    """Run the model at the opt shapes, then move each dynamic dimension to its min and its max,
    one at a time, and raise one ``ConfigError`` naming every dimension the model cannot vary.

    The dimensions that stay put sit at their min when the model runs there (cheap: a BERT-base
    range of batch 1..32 is tried at 32 × the shortest sequence, not 32 × opt), else at opt. A
    failure is pinned on the one dimension that moved; corners where several dimensions are at
    their extremes together are not tried (the TensorRT build checks those).
    """
    check_specs(specs, field)
    error = _try_run(module, specs, shapes_at(specs, "opt"), device, seed)
    if error:
        opt = ", ".join(f"{k} {v}" for k, v in shapes_at(specs, "opt").items())
        raise ConfigError(field, f"the model fails at the opt shapes ({opt}): {error}")
    ranges = [r for r in dim_ranges(specs, field).values() if r.min != r.max]
    lowest = {r.symbol: r.min for r in ranges}
    base = lowest if not _try_run(module, specs, shapes_at(specs, lowest), device, seed) else \
        {r.symbol: r.opt for r in ranges}
    failures = []
    for r in ranges:
        for bound, size in (("min", r.min), ("max", r.max)):
            if size == base[r.symbol]:
                continue
            shapes = shapes_at(specs, {**base, r.symbol: size})
            error = _try_run(module, specs, shapes, device, seed)
            if error:
                failures.append(DimFailure(r.symbol, bound, size, shapes, error))
    if failures:
        raise ConfigError(f"{field}.{_first_input_with(specs, failures[0].symbol)}",
                          "the model cannot vary " + "; ".join(_describe(specs, f) for f in failures) +
                          ". Narrow the range to sizes the model accepts, or make the dimension static "
                          "(min = opt = max)")


def _try_run(module: torch.nn.Module, specs: Sequence[InputSpec], shapes: Mapping[str, tuple[int, ...]],
             device: str, seed: int) -> str:
    try:
        with torch.inference_mode():
            module(*example_tensors(specs, shapes, seed, device))
    except Exception as e:  # any failure of the user's model is the answer we are looking for
        first = (str(e).strip().splitlines() or [""])[0][:200]
        return f"{type(e).__name__}: {first}"
    return ""


def _first_input_with(specs: Sequence[InputSpec], symbol: str) -> str:
    return next(s.name for s in specs for d in range(len(s.shape)) if s.dim_name(d) == symbol)


def _describe(specs: Sequence[InputSpec], f: DimFailure) -> str:
    users = [(s, d) for s in specs for d in range(len(s.shape)) if s.dim_name(d) == f.symbol]
    where = ", ".join(f"input {s.name!r} {s.describe_dim(d)}" for s, d in users)
    shapes = ", ".join(f"{k} {v}" for k, v in f.shapes.items())
    return f"{where} to its {f.bound} {f.size} (fails at {shapes}: {f.error})"


# -- conversions for the compilers ----------------------------------------------------------------
def to_torch_tensorrt_inputs(specs: Sequence[InputSpec], *, device: str = "cuda", seed: int = 0) -> list[Any]:
    """``torch_tensorrt.Input`` objects: static ``shape=`` or ``min_shape/opt_shape/max_shape``.

    Each carries an example tensor at its opt shape drawn from ``example_tensors``: Torch-TensorRT's
    own example for an integer input spans the whole int64 range, which no embedding table takes.
    Imports torch_tensorrt, so call it only on a GPU code path.
    """
    import torch_tensorrt

    examples = example_tensors(specs, shapes_at(specs, "opt"), seed, device)
    out = []
    for s, example in zip(specs, examples, strict=True):
        extra: dict[str, Any] = {"dtype": s.torch_dtype, "name": s.name, "torch_tensor": example}
        if s.value_range is not None:
            extra["tensor_domain"] = s.value_range
        if s.is_dynamic:
            out.append(torch_tensorrt.Input(min_shape=s.lower, opt_shape=s.shape, max_shape=s.upper, **extra))
        else:
            out.append(torch_tensorrt.Input(shape=s.shape, **extra))
    return out


def torch_export_dynamic_shapes(specs: Sequence[InputSpec]) -> tuple[dict[int, Any] | None, ...]:
    """``dynamic_shapes`` for ``torch.export.export(module, args, dynamic_shapes=...)``: one
    ``torch.export.Dim`` per symbolic dimension, shared by every input that names it."""
    dims: dict[str, Any] = {}
    out: list[dict[int, Any] | None] = []
    for s in specs:
        per_input = {}
        for d in s.dynamic_dims():
            sym = s.dim_name(d)
            if sym not in dims:
                dims[sym] = torch.export.Dim(sym.replace(".", "_"), min=s.lower[d], max=s.upper[d])
            per_input[d] = dims[sym]
        out.append(per_input or None)
    return tuple(out)


# -- torch.export with the model's own shape rules ------------------------------------------------
@dataclass(frozen=True)
class DimConstraint:
    """A rule torch.export found a dynamic dimension must follow, inside the requested range:
    sizes ``multiple_of * k + offset`` from ``min`` to ``max`` (``min == max``: one size only)."""

    symbol: str
    min: int
    max: int
    multiple_of: int = 1
    offset: int = 0

    def allows(self, size: int) -> bool:
        return self.min <= size <= self.max and (size - self.offset) % self.multiple_of == 0

    def sizes(self, shown: int = 6) -> str:
        """The allowed sizes as a short list: ``16, 24, 32, ..., 128``."""
        every = range(self.min, self.max + 1, self.multiple_of)
        if len(every) <= shown:
            return ", ".join(str(v) for v in every)
        return ", ".join(str(v) for v in every[:3]) + f", ..., {every[-1]}"

    def describe(self) -> str:
        if self.min == self.max:
            return f"{self.symbol} must be {self.min}"
        span = f"in [{self.min}, {self.max}]"
        if self.multiple_of == 1:
            return f"{self.symbol} must lie {span}"
        if self.offset == 0:
            return f"{self.symbol} must be a multiple of {self.multiple_of} {span}"
        return f"{self.symbol} must be a multiple of {self.multiple_of} plus {self.offset} {span}"


@dataclass(frozen=True)
class ConstrainedExport:
    """An exported program and the rules its dynamic dimensions were refined to (empty: none needed)."""

    program: Any                            # torch.export.ExportedProgram
    constraints: tuple[DimConstraint, ...] = ()
    fixes: tuple[str, ...] = ()             # torch.export's suggested fixes, as it printed them

    def warning(self) -> str:
        """The refinement in user terms, for the run's warnings ("" when export took the ranges as given)."""
        if not self.constraints and not self.fixes:
            return ""
        rules = "; ".join(c.describe() for c in self.constraints) or "; ".join(self.fixes)
        return (f"torch.export found shape rules in the model that the requested ranges did not state: {rules}. "
                f"The engine was exported with them (torch.export's suggested fix: {'; '.join(self.fixes)}); "
                "every requested min/opt/max and the measured shapes follow them.")


def export_dynamic(module: torch.nn.Module, args: tuple[torch.Tensor, ...], specs: Sequence[InputSpec], *,
                   measured: Mapping[str, tuple[int, ...]] | None = None, field: str = FIELD) -> ConstrainedExport:
    """``torch.export.export`` with one ``Dim`` per symbolic dimension (``torch_export_dynamic_shapes``).

    When the model's guards need more than a range (BERT's attention on some torch/transformers
    versions wants the sequence to be a multiple of 8), export fails with a constraint violation
    that carries suggested fixes. Those are applied and export is retried once, after checking that
    every requested min/opt/max and the ``measured`` shapes follow the refined rules: a
    ``ConfigError`` names the input, the dimension and the valid sizes when one does not.
    Any other export failure, or a second one, is raised as is.
    """
    dynamic_shapes = torch_export_dynamic_shapes(specs)
    try:
        return ConstrainedExport(torch.export.export(module, args, dynamic_shapes=dynamic_shapes))
    except Exception as e:  # torch._dynamo.exc.UserError on a constraint violation; others re-raised below
        fixes = suggested_fixes(e)
        if not fixes:
            raise
    refined, constraints = refine_dynamic_shapes(specs, dynamic_shapes, fixes, field)
    check_constraints(specs, constraints, measured, field)
    program = torch.export.export(module, args, dynamic_shapes=refined)
    return ConstrainedExport(program, constraints, fixes)


def suggested_fixes(error: BaseException) -> tuple[str, ...]:
    """The lines under "Suggested fixes:" in a torch.export constraint violation (empty if none)."""
    text = str(getattr(error, "msg", None) or error)
    if "Suggested fixes:" not in text:
        return ()
    lines = []
    for line in text.split("Suggested fixes:", 1)[1].strip("\n").splitlines():
        if not line.strip():
            break   # the block ends at the first blank line; torch's advice about draft_export follows
        lines.append(line.strip())
    return tuple(lines)


def refine_dynamic_shapes(specs: Sequence[InputSpec], dynamic_shapes: tuple[dict[int, Any] | None, ...],
                          fixes: Sequence[str], field: str = FIELD
                          ) -> tuple[tuple[dict[int, Any] | None, ...], tuple[DimConstraint, ...]]:
    """``dynamic_shapes`` with torch.export's suggested ``fixes`` applied, and the rule each refined
    symbolic dimension follows within its requested range.

    Torch's own ``refine_dynamic_shapes_from_suggested_fixes`` applies the fixes; a new root it
    introduces for a derived dimension (``sequence = 8*_sequence`` with ``_sequence <= 16``) starts
    at 0, so the root's range is narrowed back to the requested range: the exported program then
    accepts exactly the sizes the engine is built for.
    """
    from torch.export.dynamic_shapes import _DerivedDim, refine_dynamic_shapes_from_suggested_fixes

    try:
        refined = refine_dynamic_shapes_from_suggested_fixes("Suggested fixes:\n" + "\n".join(fixes),
                                                             list(dynamic_shapes))
    except Exception as e:  # a fix this torch cannot parse: say what it suggested
        raise ConfigError(field, f"torch.export suggests {'; '.join(fixes)} for the dynamic dimensions, which "
                                 f"could not be applied ({type(e).__name__}: {e}); change the ranges to follow it"
                          ) from None
    ranges = dim_ranges(specs, field)
    by_dim_name = {sym.replace(".", "_"): sym for sym in ranges}
    constraints: dict[str, DimConstraint] = {}
    roots: dict[str, Any] = {}
    out: list[dict[int, Any] | None] = []
    for s, per_input in zip(specs, refined, strict=True):
        if per_input is None:
            out.append(None)
            continue
        new: dict[int, Any] = {}
        for d, dim in per_input.items():
            sym = s.dim_name(d)
            r = ranges[sym]
            if isinstance(dim, int):
                constraints.setdefault(sym, DimConstraint(sym, dim, dim))
            elif isinstance(dim, _DerivedDim) and dim.root.__name__ not in by_dim_name:
                offset = int(dim.fn(0))
                step = int(dim.fn(1)) - offset
                lo_k = max(_finite(dim.root.min, 0), -(-(r.min - offset) // step))
                hi_k = min(_finite(dim.root.max, r.max), (r.max - offset) // step)
                if hi_k < lo_k:
                    raise ConfigError(f"{field}.{s.name}", f"{s.describe_dim(d)}: torch.export needs {sym} to be "
                                                           f"{_linear(step, offset)} (its fix: {'; '.join(fixes)}) "
                                                           f"but no size in {r.min}..{r.max} is; widen the range")
                constraints.setdefault(sym, DimConstraint(sym, step * lo_k + offset, step * hi_k + offset,
                                                          step, offset % step))
                if hi_k > lo_k:   # a one-size root is no Dim; the check below refuses that range anyway
                    root = roots.setdefault(dim.root.__name__,
                                            torch.export.Dim(dim.root.__name__, min=lo_k, max=hi_k))
                    dim = root * step if step != 1 else root
                    dim = dim + offset if offset else dim
            elif not isinstance(dim, _DerivedDim):
                lo, hi = max(r.min, _finite(dim.min, r.min)), min(r.max, _finite(dim.max, r.max))
                if (lo, hi) != (r.min, r.max):
                    constraints.setdefault(sym, DimConstraint(sym, lo, hi))
            new[d] = dim
        out.append(new)
    return tuple(out), tuple(constraints.values())


def _finite(value: Any, default: int) -> int:
    try:
        return int(value)
    except Exception:   # torch's int_oo for an unbounded side does not convert
        return default


def _linear(step: int, offset: int) -> str:
    return f"a multiple of {step}" + (f" plus {offset % step}" if offset % step else "")


def check_constraints(specs: Sequence[InputSpec], constraints: Sequence[DimConstraint],
                      measured: Mapping[str, tuple[int, ...]] | None = None, field: str = FIELD) -> None:
    """Every requested min/opt/max, and the measured shapes, must follow the refined rules. Raises
    ``ConfigError`` naming the input, the dimension, the size that breaks the rule and the valid sizes."""
    by_symbol = {c.symbol: c for c in constraints}
    knob = {BATCH_DIM: "model.batch_size", SEQUENCE_DIM: "model.sequence_length"}
    for s in specs:
        bad = []
        for d in range(len(s.shape)):
            c = by_symbol.get(s.dim_name(d))
            if c is None:
                continue
            for bound, size in (("min", s.lower[d]), ("opt", s.shape[d]), ("max", s.upper[d])):
                if not c.allows(size):
                    bad.append(f"{s.describe_dim(d)} {bound} {size}")
            if bad:
                raise ConfigError(f"{field}.{s.name}", f"{', '.join(bad)}: not allowed by a rule of the model "
                                                       f"that torch.export found: {c.describe()}. Valid sizes: "
                                                       f"{c.sizes()}; set min/opt/max to those")
    for s in specs:
        for d, size in enumerate((measured or {}).get(s.name, ())):
            c = by_symbol.get(s.dim_name(d))
            if c is not None and not c.allows(size):
                raise ConfigError(knob.get(c.symbol, f"{field}.{s.name}"),
                                  f"{size} is not a size the model accepts for {s.describe_dim(d)} of input "
                                  f"{s.name!r}: {c.describe()} (found by torch.export). Valid sizes: {c.sizes()}")
