"""The quantization schemes and the capability matrix: which scheme this Torch-TensorRT flavour, this GPU
generation and this install can run, and why not (``capabilities.scheme_options`` asks it for this machine).
Imports neither torch nor ModelOpt, so pages and submit-time checks read it at no cost.

Schemes are NVIDIA ModelOpt's post-training quantization configurations; engine/quantization/fake_quant.py
applies them, engine/backends/tensorrt/quantize.py compiles the result.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from engine.settings.defaults import QUANT_SCHEMES

INSTALL_COMMAND = "pip install nvidia-modelopt"

RTX_INT8_ACTIVATIONS = (
    "TensorRT-RTX does not support int8 activation quantization, only int8 weight "
    "quantization; use int8_weight_only or fp8, or the full TensorRT flavour"
)


@dataclass(frozen=True)
class Scheme:
    name: str  # value of compile.quantization
    label: str
    modelopt_config: str | None  # attribute of modelopt.torch.quantization
    weights: str  # what the weights become
    activations: str  # "" for weight-only: activations stay in the base precision
    trt_precisions: tuple[str, ...] = ()  # torch dtypes added to enabled_precisions on full TensorRT
    min_compute_capability: tuple[int, int] | None = None
    architecture: str = ""  # the GPU generation min_compute_capability stands for
    rtx_refusal: str = ""  # why TensorRT-RTX refuses it, "" when it compiles there
    calibrates_on_cpu: bool = True  # ModelOpt's fake quantization runs on CPU tensors
    converter_refusal: str = ""  # why Torch-TensorRT itself cannot convert it (both flavours)

    @property
    def weight_only(self) -> bool:
        return bool(self.weights) and not self.activations


# Measured on the H200 (torch_tensorrt 2.11 / TensorRT-RTX 1.4, resnet18 and vit_b_16): ModelOpt calibrates
# INT4 AWQ, then the engine build fails in Torch-TensorRT's quantize converter, which takes 8-bit Q/DQ only.
TORCH_TRT_INT4 = (
    "Torch-TensorRT's quantize converter takes 8-bit (INT8/FP8) Q/DQ nodes only, so INT4 weights "
    "fail at engine build ('num_bits=4'; seen with torch_tensorrt 2.11 on the H200); use "
    "int8_weight_only for weight-only quantization"
)

# GPU generations from ModelOpt's support matrix (nvidia.github.io/Model-Optimizer, "Support Matrix"):
# FP8 Ada and later, FP4 Blackwell and later, INT8 SmoothQuant and INT4 AWQ Ampere and later.
SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("none", "no quantization", None, "", ""),
        Scheme("int8", "INT8 (W8A8)", "INT8_DEFAULT_CFG", "int8", "int8", ("int8",), rtx_refusal=RTX_INT8_ACTIVATIONS),
        Scheme(
            "int8_smoothquant",
            "INT8 SmoothQuant (W8A8)",
            "INT8_SMOOTHQUANT_CFG",
            "int8",
            "int8",
            ("int8",),
            (8, 0),
            "Ampere",
            rtx_refusal=RTX_INT8_ACTIVATIONS,
        ),
        Scheme("int8_weight_only", "INT8 weight-only", "INT8_WEIGHT_ONLY_CFG", "int8", "", ("int8",)),
        Scheme("fp8", "FP8 (E4M3)", "FP8_DEFAULT_CFG", "fp8", "fp8", ("float8_e4m3fn",), (8, 9), "Ada"),
        Scheme(
            "int4_awq",
            "INT4 AWQ (weight-only)",
            "INT4_AWQ_CFG",
            "int4",
            "",
            (),
            (8, 0),
            "Ampere",
            converter_refusal=TORCH_TRT_INT4,
        ),
        Scheme(
            "nvfp4",
            "NVFP4",
            "NVFP4_DEFAULT_CFG",
            "fp4",
            "fp4",
            ("float4_e2m1fn_x2",),
            (10, 0),
            "Blackwell",
            calibrates_on_cpu=False,
        ),
    )
}
assert tuple(SCHEMES) == QUANT_SCHEMES, "engine.settings.defaults.QUANT_SCHEMES and SCHEMES must list the same schemes"

FLAVOUR_NAMES = {"tensorrt": "TensorRT", "tensorrt_rtx": "TensorRT-RTX", "none": "no Torch-TensorRT"}


def modelopt_installed() -> bool:
    """Whether ``modelopt`` can be imported, without importing it (the import takes seconds)."""
    return importlib.util.find_spec("modelopt") is not None


def _cc_tuple(cc: str | None) -> tuple[int, int] | None:
    if not cc:
        return None
    major, _, minor = cc.partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return None


# who refuses a scheme (``Refusal.by``)
BY_SCHEME = "scheme"  # not a scheme at all
BY_INSTALL = "install"  # ModelOpt is not installed
BY_TORCH_TENSORRT = "torch_tensorrt"  # Torch-TensorRT cannot convert it, on either flavour
BY_FLAVOUR = "flavour"  # this TensorRT flavour (TensorRT-RTX) refuses it
BY_GPU = "gpu"  # the GPU generation is too old


@dataclass(frozen=True)
class Refusal:
    by: str  # one of the BY_* names
    reason: str


def scheme_refusal(
    scheme: str, *, flavour: str, compute_capability: str | None, modelopt: bool | None = None
) -> Refusal | None:
    """Who refuses ``scheme`` with this Torch-TensorRT flavour on a GPU of this compute capability, and why; None
    when it can run. An unknown compute capability (no GPU seen) skips the GPU-generation check."""
    spec = SCHEMES.get(scheme)
    if spec is None:
        return Refusal(BY_SCHEME, f"unknown scheme; known: {', '.join(SCHEMES)}")
    if spec.modelopt_config is None:
        return None
    if not (modelopt_installed() if modelopt is None else modelopt):
        return Refusal(BY_INSTALL, f"NVIDIA ModelOpt is not installed; install it with `{INSTALL_COMMAND}`")
    if spec.converter_refusal:
        return Refusal(BY_TORCH_TENSORRT, spec.converter_refusal)
    if flavour == "tensorrt_rtx" and spec.rtx_refusal:
        return Refusal(BY_FLAVOUR, spec.rtx_refusal)
    have = _cc_tuple(compute_capability)
    need = spec.min_compute_capability
    if have is not None and need is not None and have < need:
        return Refusal(
            BY_GPU,
            f"{spec.label} needs compute capability {need[0]}.{need[1]} or newer ({spec.architecture} "
            f"and later); this GPU has {compute_capability}",
        )
    return None


def scheme_unavailable_reason(
    scheme: str, *, flavour: str, compute_capability: str | None, modelopt: bool | None = None
) -> str | None:
    """Why ``scheme`` cannot run here (``scheme_refusal``'s reason), or None when it can."""
    refusal = scheme_refusal(scheme, flavour=flavour, compute_capability=compute_capability, modelopt=modelopt)
    return refusal.reason if refusal else None
