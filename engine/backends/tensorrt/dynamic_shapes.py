"""Dynamic shapes for the compilers: ``torch_tensorrt.Input`` objects with min/opt/max, ``torch.export.Dim`` per
symbolic dimension, and ``export_dynamic``, the backend's ``torch.export`` of a dynamic model: when the model's
guards need more than a range (a sequence that must be a multiple of 8), it applies torch.export's suggested fixes
once, checks the requested and measured sizes against the refined rule (``DimConstraint``) and says in user terms
what was refined. ``torch_tensorrt`` is imported only inside ``to_torch_tensorrt_inputs``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from engine.errors import ConfigError
from engine.models.input_tensors import example_tensors
from engine.settings.inputs import BATCH_DIM, FIELD, SEQUENCE_DIM, InputSpec, dim_ranges, shapes_at


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

    program: Any  # torch.export.ExportedProgram
    constraints: tuple[DimConstraint, ...] = ()
    fixes: tuple[str, ...] = ()  # torch.export's suggested fixes, as it printed them

    def warning(self) -> str:
        """The refinement in user terms, for the run's warnings ("" when export took the ranges as given)."""
        if not self.constraints and not self.fixes:
            return ""
        rules = "; ".join(c.describe() for c in self.constraints) or "; ".join(self.fixes)
        return (
            f"torch.export found shape rules in the model that the requested ranges did not state: {rules}. "
            f"The engine was exported with them (torch.export's suggested fix: {'; '.join(self.fixes)}); "
            "every requested min/opt/max and the measured shapes follow them."
        )


def export_dynamic(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    specs: Sequence[InputSpec],
    *,
    measured: Mapping[str, tuple[int, ...]] | None = None,
    field: str = FIELD,
) -> ConstrainedExport:
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
            break  # the block ends at the first blank line; torch's advice about draft_export follows
        lines.append(line.strip())
    return tuple(lines)


def refine_dynamic_shapes(
    specs: Sequence[InputSpec],
    dynamic_shapes: tuple[dict[int, Any] | None, ...],
    fixes: Sequence[str],
    field: str = FIELD,
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
        refined = refine_dynamic_shapes_from_suggested_fixes(
            "Suggested fixes:\n" + "\n".join(fixes), list(dynamic_shapes)
        )
    except Exception as e:  # a fix this torch cannot parse: say what it suggested
        raise ConfigError(
            field,
            f"torch.export suggests {'; '.join(fixes)} for the dynamic dimensions, which "
            f"could not be applied ({type(e).__name__}: {e}); change the ranges to follow it",
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
                    raise ConfigError(
                        f"{field}.{s.name}",
                        f"{s.describe_dim(d)}: torch.export needs {sym} to be "
                        f"{_linear(step, offset)} (its fix: {'; '.join(fixes)}) "
                        f"but no size in {r.min}..{r.max} is; widen the range",
                    )
                constraints.setdefault(
                    sym, DimConstraint(sym, step * lo_k + offset, step * hi_k + offset, step, offset % step)
                )
                if hi_k > lo_k:  # a one-size root is no Dim; the check below refuses that range anyway
                    root = roots.setdefault(dim.root.__name__, torch.export.Dim(dim.root.__name__, min=lo_k, max=hi_k))
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
    except Exception:  # torch's int_oo for an unbounded side does not convert
        return default


def _linear(step: int, offset: int) -> str:
    return f"a multiple of {step}" + (f" plus {offset % step}" if offset % step else "")


def check_constraints(
    specs: Sequence[InputSpec],
    constraints: Sequence[DimConstraint],
    measured: Mapping[str, tuple[int, ...]] | None = None,
    field: str = FIELD,
) -> None:
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
                raise ConfigError(
                    f"{field}.{s.name}",
                    f"{', '.join(bad)}: not allowed by a rule of the model "
                    f"that torch.export found: {c.describe()}. Valid sizes: "
                    f"{c.sizes()}; set min/opt/max to those",
                )
    for s in specs:
        for d, size in enumerate((measured or {}).get(s.name, ())):
            c = by_symbol.get(s.dim_name(d))
            if c is not None and not c.allows(size):
                raise ConfigError(
                    knob.get(c.symbol, f"{field}.{s.name}"),
                    f"{size} is not a size the model accepts for {s.describe_dim(d)} of input "
                    f"{s.name!r}: {c.describe()} (found by torch.export). Valid sizes: {c.sizes()}",
                )
