"""Quantized runs on TensorRT: calibrate and fake-quantize a copy of the model with NVIDIA ModelOpt
(engine/quantization/fake_quant.py: calibration, eager fp32 and fake-quantized reference outputs) after building
ModelOpt's CUDA extensions as their own stage, then export it with its Q/DQ nodes kept and compile it with the
arguments the scheme needs on this flavour::

    q = quantize(request, built, progress, stages)                             # calibrate, fake-quantize
    with export_mode():
        program = export_quantized(q.module, q.inputs)                         # torch.export, Q/DQ kept
        try:
            trt_module = torch_tensorrt.dynamo.compile(
                program, arg_inputs=list(q.inputs), **compile_kwargs(q.scheme, q.base_precision, strongly_typed), ...)
        except Exception as e:
            raise explain_compile_error(e, q.scheme, caps.flavour) or e

Weakly typed full TensorRT (Torch-TensorRT before 2.13) gets ``enabled_precisions`` with the scheme's dtype;
strongly typed builds (TensorRT-RTX, full TensorRT from 2.13) take no precision keyword: the model is cast to the
base precision and the Q/DQ nodes alone decide.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from engine.backends.base import ProgressFn
from engine.errors import QuantizationError
from engine.models.entry import BuiltModel
from engine.quantization import fake_quant
from engine.quantization.fake_quant import BASE_DTYPES
from engine.quantization.schemes import FLAVOUR_NAMES, RTX_INT8_ACTIVATIONS, SCHEMES
from engine.settings.request import RunRequest

log = logging.getLogger(__name__)


def quantize(request: RunRequest, model: BuiltModel, progress: ProgressFn, stages: dict[str, float]) -> Any:
    """Calibrate and fake-quantize a copy of the model on the GPU; ModelOpt's CUDA extensions are built
    first (about 45 s each on first use)."""
    scheme = SCHEMES[request.compile.quantization]
    fake_quant.import_modelopt(progress, stages)
    from modelopt.torch.quantization import extensions  # noqa: PLC0415

    builders = [extensions.get_cuda_ext] + ([extensions.get_cuda_ext_fp8] if scheme.weights == "fp8" else [])
    progress("cuda_extensions", None, "ModelOpt CUDA extensions (built on first use, about 45 s each)")
    t0 = time.perf_counter()
    for build in builders:
        try:
            build()
        except Exception:  # ModelOpt falls back to its PyTorch kernels; the run goes on
            log.exception("ModelOpt CUDA extension %s not built", build.__name__)
    stages["cuda_extensions_s"] = time.perf_counter() - t0
    return fake_quant.prepare_quantized(request, model, "cuda", progress, stages)


@contextlib.contextmanager
def export_mode() -> Iterator[None]:
    """ModelOpt's ``export_torch_mode()`` under ``torch.no_grad()``: export and compile run inside it,
    as Torch-TensorRT's own ModelOpt example (``vgg16_ptq``) does."""
    from modelopt.torch.quantization.utils import export_torch_mode

    with torch.no_grad(), export_torch_mode():
        yield


def export_quantized(module: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> Any:
    """``torch.export`` of a fake-quantized model with its Q/DQ nodes kept as exportable ops.

    Needs the GPU: on CUDA tensors ModelOpt quantizes through a registered op that exports as one
    node; on CPU it takes a pure-PyTorch path whose data-dependent check stops ``torch.export``.
    """
    with export_mode():
        return torch.export.export(module, tuple(inputs), strict=False)


def compile_kwargs(scheme: str, base_precision: str, strongly_typed: bool) -> dict[str, Any]:
    """The ``torch_tensorrt.dynamo.compile`` arguments a quantized build needs.

    Weakly typed full TensorRT (Torch-TensorRT before 2.13): ``enabled_precisions`` holds the base precision
    and the scheme's dtypes, with ``use_explicit_typing`` off. Strongly typed builds (TensorRT-RTX; full
    TensorRT from 2.13, whose ``dynamo.compile`` has no ``enabled_precisions``): none, the model was cast to
    the base precision and the Q/DQ nodes decide the rest.
    """
    if strongly_typed:
        return {}
    precisions = {BASE_DTYPES[base_precision]}
    for name in SCHEMES[scheme].trt_precisions:
        dt = getattr(torch, name, None)
        if dt is not None:
            precisions.add(dt)
    # 2.11's default use_explicit_typing=True refuses an enabled_precisions beyond fp32
    return {"enabled_precisions": precisions, "use_explicit_typing": False}


def explain_compile_error(error: BaseException, scheme: str, flavour: str) -> QuantizationError | None:
    """A user-facing error for a quantized build that failed where the matrix could not know; None when
    the failure has nothing to do with quantization."""
    if scheme == "none":
        return None
    spec = SCHEMES[scheme]
    text = str(error)
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)[:300]
    flav = FLAVOUR_NAMES.get(flavour, flavour)
    if "int8 activation" in text.lower():
        return QuantizationError(
            f"{flav} refused {spec.label}: {RTX_INT8_ACTIVATIONS}.", "Pick int8_weight_only or fp8."
        )
    keywords = ("quantiz", "int8", "fp8", "float8", "int4", "fp4", "q/dq", "scale")
    if any(k in text.lower() for k in keywords):
        return QuantizationError(
            f"{flav} could not compile the {spec.label} model: {first}",
            "Try another scheme in the precision ladder, or the fp16 build without quantization.",
        )
    return None
