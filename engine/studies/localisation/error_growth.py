"""Error through the network, PyTorch side: where along the forward pass a lower precision departs from fp32.

Forward hooks on the eager fp32 model record every unit's output (a unit: a module that calls no child module,
``engine.backends.keep_high_precision``); the same hooks on the fake-quantized model (ModelOpt, as the engine gets it)
and on the model cast to fp16/bf16 compare each unit's output with fp32's, call site by call site (a module
called twice, such as torchvision's shared ``relu``, gives ``relu`` and ``relu#1``). Per row: relative L2
error against fp32, NaN/inf counts, and the largest activation against the largest value of the format it
is held in (fp16 65504, bf16 3.4e38; a quantized unit's input against FP8 E4M3's 448 or INT8's 127, the range
its calibrated scale maps the activation onto). The error is cumulative: a row holds everything upstream.

Runs on the CPU (every scheme but NVFP4) or the GPU; ``max_samples`` keeps the stored fp32 outputs small.
The table it returns, and how it reads (first crossing, worst units, range in words), is ``error_table``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from engine.backends import keep_high_precision
from engine.backends.base import ProgressFn, no_progress
from engine.errors import ConfigError
from engine.models import registry
from engine.quantization import fake_quant
from engine.quantization.schemes import SCHEMES
from engine.settings.request import RunRequest
from engine.studies.localisation.error_table import (
    COLUMNS,
    DEFAULT_MAX_SAMPLES,
    DEFAULT_TOLERANCE,
    FORMAT_MAX,
    UNSCALED,
    ErrorGrowth,
    with_float_columns,
)

if TYPE_CHECKING:
    from engine.models.entry import BuiltModel

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Variant:
    """One lower-precision version of the model compared with fp32."""

    label: str  # "fp8 fake-quant (fp16)", "fp16"
    kind: str  # "fake_quant" | "cast"
    precision: str  # what unquantized arithmetic runs in: "fp16" | "bf16" | "fp32"
    scheme: str = "none"


def variants_for(request: RunRequest) -> list[Variant]:
    """The fake-quantized model when the request quantizes, and the cast to its lower float precision."""
    c = request.compile
    out = []
    if c.quantization != "none":
        out.append(
            Variant(
                f"{c.quantization} fake-quant ({c.quant_base_precision})",
                "fake_quant",
                c.quant_base_precision,
                c.quantization,
            )
        )
        if c.quant_base_precision != "fp32":
            out.append(Variant(c.quant_base_precision, "cast", c.quant_base_precision))
    elif c.precision != "fp32":
        out.append(Variant(c.precision, "cast", c.precision))
    return out


# -- measuring ------------------------------------------------------------------------------------------------
def _first_floating(obj: Any) -> torch.Tensor | None:
    if isinstance(obj, torch.Tensor):
        return obj if obj.is_floating_point() else None
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        for o in obj:
            t = _first_floating(o)
            if t is not None:
                return t
    return None


def _record(
    module: torch.nn.Module,
    units: list[str],
    inputs: tuple[torch.Tensor, ...],
    on_output: Callable[[str, str, torch.Tensor], None],
    on_input: Callable[[str, torch.Tensor], None] | None = None,
) -> None:
    """Run ``module`` once with hooks on ``units``: ``on_output(call_site, path, output)`` per call."""
    calls: dict[str, int] = {}
    handles = []
    for path in units:
        sub = module.get_submodule(path)

        def post(_mod: Any, _args: Any, output: Any, path: str = path) -> None:
            k = calls.get(path, 0)
            calls[path] = k + 1
            t = _first_floating(output)
            if t is not None:
                on_output(path if k == 0 else f"{path}#{k}", path, t.detach())

        handles.append(sub.register_forward_hook(post))
        if on_input is not None:

            def pre(_mod: Any, args: Any, path: str = path) -> None:
                t = _first_floating(args)
                if t is not None:
                    on_input(f"{path}#{calls[path]}" if calls.get(path) else path, t.detach())

            handles.append(sub.register_forward_pre_hook(pre))
    try:
        with torch.inference_mode():
            module(*inputs)
    finally:
        for h in handles:
            h.remove()


def _max_abs(t: torch.Tensor) -> float:
    finite = t[torch.isfinite(t)]
    return float(finite.abs().max()) if finite.numel() else math.nan


def _activation_format(variant: Variant, quantized: bool) -> str:
    if variant.kind == "fake_quant" and quantized:
        spec = SCHEMES[variant.scheme]
        if spec.activations in FORMAT_MAX:
            return spec.activations
    return variant.precision


def _calibrated_amax(sub: torch.nn.Module) -> float | None:
    q = getattr(sub, "input_quantizer", None)
    amax = getattr(q, "amax", None) if q is not None and getattr(q, "is_enabled", False) else None
    if isinstance(amax, torch.Tensor) and amax.numel() == 1:
        return float(amax)
    return None


def measure(
    model: BuiltModel,
    variants: list[tuple[Variant, torch.nn.Module]],
    inputs: tuple[torch.Tensor, ...],
    device: str,
    tolerance: float,
    progress: ProgressFn = no_progress,
) -> pd.DataFrame:
    """The table for already built variant modules (fake-quantized or cast copies of ``model.module``)."""
    reference = copy.deepcopy(model.module).to(device=device, dtype=torch.float32).eval()
    ref_inputs = tuple(t.to(device=device, dtype=torch.float32 if t.is_floating_point() else t.dtype) for t in inputs)
    units = keep_high_precision.call_tree_leaves(reference, ref_inputs)
    types = {n: type(m).__name__ for n, m in reference.named_modules()}
    outputs: dict[str, torch.Tensor] = {}
    in_max: dict[str, float] = {}
    order: list[tuple[str, str]] = []
    progress("error_growth", 0.0, f"eager fp32: {len(units)} units")

    def keep_output(site: str, path: str, t: torch.Tensor) -> None:
        outputs[site] = t.float().clone()
        order.append((site, path))

    def keep_input(site: str, t: torch.Tensor) -> None:
        in_max[site] = _max_abs(t.float())

    _record(reference, units, ref_inputs, keep_output, keep_input)
    del reference
    rows: list[dict[str, Any]] = []
    for i, (variant, module) in enumerate(variants):
        progress("error_growth", (i + 1) / (len(variants) + 1), variant.label)
        owners = keep_high_precision.quantizer_owners(module) if variant.kind == "fake_quant" else {}
        dtype = DTYPES[variant.precision]
        v_inputs = tuple(t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype) for t in inputs)
        seen: dict[str, dict[str, Any]] = {}

        def compare(
            site: str,
            path: str,
            t: torch.Tensor,
            owners: dict = owners,
            variant: Variant = variant,
            module: torch.nn.Module = module,
            seen: dict = seen,
        ) -> None:
            ref = outputs.get(site)
            if ref is None or ref.shape != t.shape:
                return
            out = t.float()
            nan, inf = int(torch.isnan(out).sum()), int(torch.isinf(out).sum())
            denom = float(torch.linalg.vector_norm(ref))
            diff = float(torch.linalg.vector_norm(out - ref)) if nan + inf == 0 else math.inf
            rel = diff / denom if denom > 0 else (0.0 if diff == 0 else math.inf)
            quantized = "input_quantizer" in owners.get(path, [])
            fmt = _activation_format(variant, quantized)
            ref_max = _max_abs(ref)
            act = in_max.get(site, math.nan) if fmt not in UNSCALED else max(ref_max, _max_abs(out))
            seen[site] = {
                "unit": site,
                "module": path,
                "layer_type": types.get(path, ""),
                "variant": variant.label,
                "rel_err": rel,
                "ref_max_abs": ref_max,
                "max_abs": _max_abs(out),
                "in_max_abs": in_max.get(site),
                "act_max": act,
                "format": fmt,
                "format_max": FORMAT_MAX[fmt],
                "range_ratio": act / FORMAT_MAX[fmt],
                "calib_amax": _calibrated_amax(module.get_submodule(path)) if quantized else None,
                "nan": nan,
                "inf": inf,
                "quantized": bool(owners.get(path)),
            }

        _record(module, units, v_inputs, compare)
        for k, (site, _) in enumerate(order):
            if site in seen:
                rows.append({"order": k, **seen[site]})
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "crosses"])
    overflow = (table["range_ratio"] > 1) & table["format"].isin(UNSCALED)
    table["crosses"] = (table["nan"] + table["inf"] > 0) | (table["rel_err"] > tolerance) | overflow
    return with_float_columns(table)[COLUMNS]


def error_growth(
    request: RunRequest,
    *,
    device: str = "cpu",
    max_samples: int = DEFAULT_MAX_SAMPLES,
    tolerance: float = DEFAULT_TOLERANCE,
    model: BuiltModel | None = None,
    progress: ProgressFn = no_progress,
) -> ErrorGrowth:
    """Build the request's model (or take ``model``), make its fake-quantized and cast variants as the request's
    build would (``compile.keep_high_precision`` honoured), and measure every unit on the first ``max_samples``
    inputs. Raises ``ConfigError`` when the request has no lower precision to compare."""

    wanted = variants_for(request)
    if not wanted:
        raise ConfigError(
            "compile.precision",
            "an fp32 build without quantization has no lower precision to compare "
            "with fp32; pick fp16/bf16 or a quantization scheme",
        )
    if model is None:
        progress("build_model", None, request.model.source)
        model = registry.build(request.model, request.measure.seed)
    inputs = tuple(t[:max_samples] for t in model.example_inputs)
    kept = request.compile.keep_high_precision
    built: list[tuple[Variant, torch.nn.Module]] = []
    calibration = ""
    for variant in wanted:
        if variant.kind == "fake_quant":
            progress("calibrate", None, variant.label)
            q = fake_quant.prepare_quantized(request, model, device)
            calibration = q.calibration.description
            built.append((variant, q.module))
        else:
            module = copy.deepcopy(model.module).to(device=device, dtype=DTYPES[variant.precision]).eval()
            built.append((variant, keep_high_precision.keep_in_fp32(module, kept, DTYPES[variant.precision])))
    table = measure(model, built, inputs, device, tolerance, progress)
    return ErrorGrowth(
        table,
        request.model.source,
        [v.label for v, _ in built],
        tolerance,
        len(inputs[0]),
        device,
        list(kept),
        calibration,
    )
