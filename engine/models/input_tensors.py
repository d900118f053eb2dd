"""Input tensors for a model: random examples from input specs, specs from a file model's own tensors, and the
check that the model accepts each dynamic dimension across its range (the rule on ``model.inputs`` that needs the
model; engine/settings/inputs.py holds the ones that do not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from engine.errors import ConfigError
from engine.settings.inputs import (
    FIELD,
    INPUT_DTYPES,
    INTEGER_DTYPES,
    InputSpec,
    check_specs,
    dim_ranges,
    shapes_at,
)


def example_tensors(
    specs: Sequence[InputSpec],
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, ...]:
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
    by_dtype = {getattr(torch, name): name for name in INPUT_DTYPES}
    out = []
    for i, t in enumerate(tensors):
        dtype = by_dtype.get(t.dtype)
        if dtype is None:
            raise ConfigError(FIELD, f"input {i} has dtype {t.dtype}; supported: {', '.join(INPUT_DTYPES)}")
        out.append(InputSpec(names[i] if i < len(names) else f"x{i}", tuple(t.shape), dtype))
    return tuple(out)


# -- the rule that needs the model ----------------------------------------------------------------
@dataclass(frozen=True)
class DimFailure:
    symbol: str
    bound: str  # "min" | "max"
    size: int
    shapes: dict[str, tuple[int, ...]]
    error: str


def check_model_accepts(
    module: torch.nn.Module, specs: Sequence[InputSpec], *, device: str = "cpu", seed: int = 0, field: str = FIELD
) -> None:
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
    base = (
        lowest
        if not _try_run(module, specs, shapes_at(specs, lowest), device, seed)
        else {r.symbol: r.opt for r in ranges}
    )
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
        raise ConfigError(
            f"{field}.{_first_input_with(specs, failures[0].symbol)}",
            "the model cannot vary "
            + "; ".join(_describe(specs, f) for f in failures)
            + ". Narrow the range to sizes the model accepts, or make the dimension static "
            "(min = opt = max)",
        )


def _try_run(
    module: torch.nn.Module, specs: Sequence[InputSpec], shapes: Mapping[str, tuple[int, ...]], device: str, seed: int
) -> str:
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
