"""Post-training quantization with NVIDIA ModelOpt: the schemes, which of them this machine accepts,
calibration data, the fake-quantized model and its three-way accuracy.

The path is the one Torch-TensorRT documents: ``modelopt.torch.quantization.quantize(model, CFG,
forward_loop=...)`` inserts quantize/dequantize (Q/DQ) nodes and calibrates their ranges, then the
model is exported under ``export_torch_mode()`` and compiled by ``torch_tensorrt.dynamo.compile``
(full TensorRT: ``enabled_precisions`` gains the scheme's dtype; TensorRT-RTX is strongly typed and
the Q/DQ nodes alone decide). ModelOpt is a GPU extra: it is imported only when a run quantizes.

Hook for the Torch-TensorRT backend (``engine/backends/tensorrt/``), in order::

    q = quantization.prepare_quantized(request, built, device, progress, stages)  # calibrate, fake-quant
    with quantization.export_mode():
        program = quantization.export_quantized(q.module, q.inputs)              # torch.export, Q/DQ kept
        try:
            trt_module = torch_tensorrt.dynamo.compile(
                program, inputs=list(q.inputs),
                **quantization.compile_kwargs(q.scheme, q.base_precision, caps.flavour), ...)
        except Exception as e:
            raise quantization.explain_compile_error(e, q.scheme, caps.flavour) or e
    measurement.quantization = q.report(engine_output=trt_module(*q.inputs))     # three-way accuracy

``stages`` (the measurement's ``stages_s``) receives ``modelopt_import_s`` and ``calibration_s``;
the run's warnings should carry ``q.calibration.warning`` when calibration used random tensors.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import math
import os
import pickle
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.backends.base import ProgressFn, no_progress
from engine.errors import CalibrationDataError, ConfigError, QuantizationError
from engine.profiling.accuracy import _first_tensor, compare_outputs, detached_cpu
from engine.result import Accuracy, LabelledAccuracy, QuantizationReport
from engine.settings.defaults import QUANT_SCHEMES
from engine.settings.request import RunRequest
from engine.store import data_dir

if TYPE_CHECKING:
    from engine.capabilities import Capabilities
    from engine.models.entry import BuiltModel

INSTALL_COMMAND = "pip install nvidia-modelopt"
CALIBRATION_DIR_ENV = "TRTDASH_CALIBRATION_DIR"
TORCH_EXTENSIONS_ENV = "TORCH_EXTENSIONS_DIR"
RANDOM_CALIBRATION = "random tensors (accuracy not meaningful for real data)"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# torchvision's ImageNet preprocessing: resize the short side to 256/224 of the crop, centre crop, normalise
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_RATIO = 256 / 224

# The conversion-problem rule: the engine departs from the fake-quantized model more than
# CONVERSION_RATIO times as far as that model departs from eager fp32, and by more than
# CONVERSION_FLOOR_REL_L2 (so that an fp16 engine over a near-lossless scheme is not flagged),
# or loses more than CONVERSION_TOP1_DROP of the top-1 agreement the fake-quantized model kept.
# Seen on the H200 with TensorRT-RTX 1.4: FP8 resnet50, fake-quant 0.075, engine 2.88, top-1 agreement 0.
CONVERSION_RATIO = 4.0
CONVERSION_FLOOR_REL_L2 = 0.05
CONVERSION_TOP1_DROP = 0.5

RTX_INT8_ACTIVATIONS = ("TensorRT-RTX does not support int8 activation quantization, only int8 weight "
                        "quantization; use int8_weight_only or fp8, or the full TensorRT flavour")


# -- schemes and the capability matrix ----------------------------------------------------------
@dataclass(frozen=True)
class Scheme:
    name: str                                  # value of compile.quantization
    label: str
    modelopt_config: str | None                # attribute of modelopt.torch.quantization
    weights: str                               # what the weights become
    activations: str                           # "" for weight-only: activations stay in the base precision
    trt_precisions: tuple[str, ...] = ()       # torch dtypes added to enabled_precisions on full TensorRT
    min_compute_capability: tuple[int, int] | None = None
    architecture: str = ""                     # the GPU generation min_compute_capability stands for
    rtx_refusal: str = ""                      # why TensorRT-RTX refuses it, "" when it compiles there
    calibrates_on_cpu: bool = True             # ModelOpt's fake quantization runs on CPU tensors
    converter_refusal: str = ""                # why Torch-TensorRT itself cannot convert it (both flavours)

    @property
    def weight_only(self) -> bool:
        return bool(self.weights) and not self.activations


# Measured on the H200 (torch_tensorrt 2.11 / TensorRT-RTX 1.4, resnet18 and vit_b_16): ModelOpt calibrates
# INT4 AWQ, then the engine build fails in Torch-TensorRT's quantize converter, which takes 8-bit Q/DQ only.
TORCH_TRT_INT4 = ("Torch-TensorRT's quantize converter takes 8-bit (INT8/FP8) Q/DQ nodes only, so INT4 weights "
                  "fail at engine build ('num_bits=4'; seen with torch_tensorrt 2.11 on the H200); use "
                  "int8_weight_only for weight-only quantization")

# GPU generations from ModelOpt's support matrix (nvidia.github.io/Model-Optimizer, "Support Matrix"):
# FP8 Ada and later, FP4 Blackwell and later, INT8 SmoothQuant and INT4 AWQ Ampere and later.
SCHEMES: dict[str, Scheme] = {s.name: s for s in (
    Scheme("none", "no quantization", None, "", ""),
    Scheme("int8", "INT8 (W8A8)", "INT8_DEFAULT_CFG", "int8", "int8", ("int8",),
           rtx_refusal=RTX_INT8_ACTIVATIONS),
    Scheme("int8_smoothquant", "INT8 SmoothQuant (W8A8)", "INT8_SMOOTHQUANT_CFG", "int8", "int8", ("int8",),
           (8, 0), "Ampere", rtx_refusal=RTX_INT8_ACTIVATIONS),
    Scheme("int8_weight_only", "INT8 weight-only", "INT8_WEIGHT_ONLY_CFG", "int8", "", ("int8",)),
    Scheme("fp8", "FP8 (E4M3)", "FP8_DEFAULT_CFG", "fp8", "fp8", ("float8_e4m3fn",), (8, 9), "Ada"),
    Scheme("int4_awq", "INT4 AWQ (weight-only)", "INT4_AWQ_CFG", "int4", "", (), (8, 0), "Ampere",
           converter_refusal=TORCH_TRT_INT4),
    Scheme("nvfp4", "NVFP4", "NVFP4_DEFAULT_CFG", "fp4", "fp4", ("float4_e2m1fn_x2",), (10, 0), "Blackwell",
           calibrates_on_cpu=False),
)}
assert tuple(SCHEMES) == QUANT_SCHEMES, "engine.settings.request.QUANT_SCHEMES and SCHEMES must list the same schemes"

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


def scheme_unavailable_reason(scheme: str, *, flavour: str, compute_capability: str | None,
                              modelopt: bool | None = None) -> str | None:
    """Why ``scheme`` cannot run with this Torch-TensorRT flavour on a GPU of this compute capability,
    or None when it can. An unknown compute capability (no GPU seen) skips the GPU-generation check."""
    spec = SCHEMES.get(scheme)
    if spec is None:
        return f"unknown scheme; known: {', '.join(SCHEMES)}"
    if spec.modelopt_config is None:
        return None
    if not (modelopt_installed() if modelopt is None else modelopt):
        return f"NVIDIA ModelOpt is not installed; install it with `{INSTALL_COMMAND}`"
    if spec.converter_refusal:
        return spec.converter_refusal
    if flavour == "tensorrt_rtx" and spec.rtx_refusal:
        return spec.rtx_refusal
    have = _cc_tuple(compute_capability)
    need = spec.min_compute_capability
    if have is not None and need is not None and have < need:
        return (f"{spec.label} needs compute capability {need[0]}.{need[1]} or newer ({spec.architecture} "
                f"and later); this GPU has {compute_capability}")
    return None


def scheme_options(caps: Capabilities, gpu_index: int = 0) -> dict[str, str | None]:
    """Every scheme with the reason it is unavailable on this machine (None: available)."""
    cc = caps.gpus[min(gpu_index, len(caps.gpus) - 1)].compute_capability if caps.gpus else None
    installed = modelopt_installed()
    return {s: scheme_unavailable_reason(s, flavour=caps.flavour, compute_capability=cc, modelopt=installed)
            for s in SCHEMES}


def check_request(request: RunRequest, caps: Capabilities, gpu_index: int = 0) -> None:
    """The quantization part of ``capabilities.check_request``: raises ConfigError naming the field."""
    c = request.compile
    if c.quantization == "none":
        return
    if request.backend != "tensorrt":
        raise ConfigError("compile.quantization",
                          f"{c.quantization!r} needs the tensorrt backend: the quantized model is compiled into "
                          "TensorRT engines. Choose the tensorrt backend, or set quantization to none")
    reason = scheme_options(caps, gpu_index)[c.quantization]
    if reason:
        raise ConfigError("compile.quantization", f"{c.quantization!r} is not available: {reason}")
    path = calibration_path(c.calibration_data)
    if path is not None and path.is_dir():   # a bad folder layout is named before anything is queued
        from engine.image_folders import inspect_folder  # noqa: PLC0415

        try:
            inspect_folder(path)
        except CalibrationDataError as e:
            raise ConfigError("compile.calibration_data", f"{e.message} {e.hint}".strip()) from None


# -- calibration data -----------------------------------------------------------------------------
def calibration_dir() -> Path:
    """The admin-configured folder calibration files and image folders are read from."""
    return Path(os.environ.get(CALIBRATION_DIR_ENV) or data_dir() / "calibration")


def calibration_path(source: str, directory: Path | None = None) -> Path | None:
    """The file or folder a ``compile.calibration_data`` value names (None for random tensors).

    Raises ConfigError when the value is malformed, leaves the calibration directory or names
    something that is not there.
    """
    field_name = "compile.calibration_data"
    source = source.strip()
    if source == "random":
        return None
    kind, sep, name = source.partition(":")
    if not sep or kind not in ("file", "dir") or not name.strip():
        raise ConfigError(field_name, f"{source!r} is not random, file:<name>.pt or dir:<folder>")
    root = (directory or calibration_dir()).resolve()
    rel = Path(name.strip())
    if rel.is_absolute() or ".." in rel.parts:
        raise ConfigError(field_name, f"{name!r} must be a name inside the calibration data directory {root}")
    path = root / rel
    if path.resolve() != path or not path.resolve().is_relative_to(root):   # a symlink leading out of it
        raise ConfigError(field_name, f"{name!r} must be a name inside the calibration data directory {root} "
                                      "(it is a link that leads elsewhere)")
    if kind == "file":
        if path.suffix != ".pt":
            raise ConfigError(field_name, f"{name!r} is not a .pt tensor file (saved with torch.save)")
        if not path.is_file():
            raise ConfigError(field_name, f"no file {name!r} in the calibration data directory {root}; "
                                          "an administrator places calibration files there")
    elif not path.is_dir():
        raise ConfigError(field_name, f"no folder {name!r} in the calibration data directory {root}; "
                                      "an administrator places image folders there")
    return path


@dataclass
class CalibrationData:
    batches: list[tuple[torch.Tensor, ...]]
    description: str          # what the data was, e.g. "file imagenet_val.pt (64 samples)"
    meaningful: bool          # False for random tensors: accuracy figures say nothing about real data

    @property
    def warning(self) -> str:
        return "" if self.meaningful else (
            "Calibrated on random tensors: the accuracy figures are not meaningful for real data. "
            "Calibrate on a tensor file or an image folder for accuracy you can trust.")


def load_calibration(source: str, example_inputs: Sequence[torch.Tensor], batches: int, *, seed: int = 0,
                     directory: Path | None = None) -> CalibrationData:
    """``batches`` calibration batches shaped like ``example_inputs`` (their first dimension is the batch).

    ``source`` is a ``compile.calibration_data`` value. Tensor files are loaded with
    ``weights_only=True``: a file holding anything but tensors is refused, never executed.
    """
    path = calibration_path(source, directory)
    if path is None:
        g = torch.Generator().manual_seed(seed)
        data = [tuple(_random_like(t, g) for t in example_inputs) for _ in range(batches)]
        return CalibrationData(data, RANDOM_CALIBRATION, meaningful=False)
    if len(example_inputs) != 1 or not example_inputs[0].is_floating_point():
        raise CalibrationDataError(
            f"{path.name}: calibration files and image folders feed models with one floating-point input; "
            f"this model takes {len(example_inputs)} input(s).", "Use random calibration data for it.")
    example = example_inputs[0]
    if path.is_dir():
        samples = _load_images(path, tuple(example.shape[1:]), batches * example.shape[0])
        what = f"images in {path.name}/"
    else:
        samples = _load_tensor_file(path, tuple(example.shape[1:]))
        what = f"file {path.name}"
    split = list(torch.split(samples.to(example.dtype), example.shape[0]))[:batches]
    return CalibrationData([(b,) for b in split], f"{what} ({sum(len(b) for b in split)} samples)",
                           meaningful=True)


def _random_like(t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    if t.is_floating_point():
        return torch.randn(t.shape, generator=g).to(t.dtype)
    high = max(int(t.max().item()) + 1, 2) if t.numel() else 2   # token ids: stay inside the example's range
    return torch.randint(0, high, t.shape, generator=g, dtype=t.dtype)


def _load_tensor_file(path: Path, sample_shape: tuple[int, ...]) -> torch.Tensor:
    expected = f"a tensor of shape (N, {', '.join(map(str, sample_shape))}) saved with torch.save, or a list of such"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:
        raise CalibrationDataError(
            f"{path.name} could not be read as a tensor file ({type(e).__name__}: {str(e).splitlines()[0][:200]}).",
            f"Expected {expected}; files are loaded with weights_only=True, so pickled Python objects are refused."
        ) from None
    parts = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    if not parts or not all(isinstance(p, torch.Tensor) for p in parts):
        kinds = sorted({type(p).__name__ for p in parts}) or ["an empty list"]
        raise CalibrationDataError(f"{path.name} holds {', '.join(kinds)}, not tensors.", f"Expected {expected}.")
    for p in parts:
        if tuple(p.shape[1:]) != sample_shape or p.dim() != len(sample_shape) + 1:
            raise CalibrationDataError(f"{path.name} holds a tensor of shape {tuple(p.shape)}; the model's "
                                       f"input samples are {sample_shape}.", f"Expected {expected}.")
        if not p.is_floating_point():
            raise CalibrationDataError(f"{path.name} holds {p.dtype} values; the model takes floating point.",
                                       f"Expected {expected}, as float32 or float16.")
    samples = torch.cat([p.float() for p in parts])
    if len(samples) == 0:
        raise CalibrationDataError(f"{path.name} holds no samples.", f"Expected {expected}.")
    return samples


def _load_images(folder: Path, sample_shape: tuple[int, ...], limit: int) -> torch.Tensor:
    """The first ``limit`` images of a flat folder, or of a labelled one taking every class in turn."""
    from engine.image_folders import decode, inspect_folder  # noqa: PLC0415 - it imports this module

    if len(sample_shape) != 3 or sample_shape[0] != 3:
        raise CalibrationDataError(f"{folder.name}/: image folders feed models whose input is one RGB image "
                                   f"(3, H, W); this model takes {sample_shape}.",
                                   "Use a tensor file or random calibration data.")
    return decode(inspect_folder(folder).files[:limit], folder, sample_shape)


# -- quantizing -------------------------------------------------------------------------------------
def import_modelopt(progress: ProgressFn = no_progress, stages: dict[str, float] | None = None) -> Any:
    """``modelopt.torch.quantization``, imported on first use.

    ModelOpt compiles CUDA extensions on first GPU use (about 45 s each on the H200): they are kept in
    ``TORCH_EXTENSIONS_DIR``, which is pointed into the data directory unless already set.
    """
    ext_dir = os.environ.setdefault(TORCH_EXTENSIONS_ENV, str(data_dir() / "torch_extensions"))
    Path(ext_dir).mkdir(parents=True, exist_ok=True)
    progress("modelopt_import", None, "loading NVIDIA ModelOpt")
    t0 = time.perf_counter()
    try:
        import modelopt.torch.quantization as mtq
    except ImportError as e:
        raise QuantizationError(f"NVIDIA ModelOpt is not installed ({e}).",
                                f"Install it with `{INSTALL_COMMAND}`.") from None
    if stages is not None:
        stages["modelopt_import_s"] = time.perf_counter() - t0
    return mtq


def quantize(module: torch.nn.Module, scheme: str, calibration_batches: Sequence[Sequence[torch.Tensor]],
             progress: ProgressFn = no_progress, *, stages: dict[str, float] | None = None) -> torch.nn.Module:
    """``module`` with the scheme's Q/DQ nodes inserted and calibrated on ``calibration_batches``.

    Quantizes in place (copy first to keep the original). Floating batches are cast to the module's
    dtype and device. ``stages["calibration_s"]`` receives the time ModelOpt took.
    """
    spec = SCHEMES[scheme]
    if spec.modelopt_config is None:
        return module
    if not calibration_batches:
        raise QuantizationError(f"{spec.label} needs calibration data; none was given.",
                                "Set calibration_batches to 1 or more.")
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    if device.type != "cuda" and not spec.calibrates_on_cpu:
        raise QuantizationError(f"{spec.label} calibration runs only on a CUDA GPU (ModelOpt's block "
                                "quantization keeps its scales there).", "Run it on a GPU.")
    mtq = import_modelopt(progress, stages)
    config = copy.deepcopy(getattr(mtq, spec.modelopt_config))
    total = len(calibration_batches)

    def forward_loop(model: torch.nn.Module) -> None:
        with torch.no_grad():
            for i, batch in enumerate(calibration_batches):
                progress("calibrate", i / total, f"batch {i + 1}/{total}")
                model(*(t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype) for t in batch))

    # the first quantize on a GPU also builds ModelOpt's CUDA extensions
    progress("calibrate", 0.0, f"{spec.label}: inserting Q/DQ nodes (first GPU use builds CUDA extensions)")
    t0 = time.perf_counter()
    quantized = mtq.quantize(module, config, forward_loop=forward_loop)
    if stages is not None:
        stages["calibration_s"] = time.perf_counter() - t0
    progress("calibrate", 1.0, f"{total} batches")
    return quantized


def enabled_quantizers(module: torch.nn.Module) -> int:
    """How many of ModelOpt's quantizers in ``module`` are switched on (0 when none were inserted)."""
    count = 0
    for m in module.modules():
        if type(m).__name__ == "TensorQuantizer" and getattr(m, "is_enabled", False):
            count += 1
    return count


# -- three-way accuracy ---------------------------------------------------------------------------
def is_conversion_problem(fake_quant_vs_eager: Accuracy, engine_vs_fake_quant: Accuracy) -> bool:
    """The engine departs from the fake-quantized model far more than that model departs from eager.
    An engine output holding NaN or inf (rel. L2 not finite) is always one (seen: FP8 resnet50 on the H200)."""
    if not _finite(engine_vs_fake_quant.rel_l2):
        return True
    rel_limit = max(CONVERSION_RATIO * fake_quant_vs_eager.rel_l2, CONVERSION_FLOOR_REL_L2)
    if engine_vs_fake_quant.rel_l2 > rel_limit:
        return True
    a, b = fake_quant_vs_eager.top1_agreement, engine_vs_fake_quant.top1_agreement
    return a is not None and b is not None and a - b > CONVERSION_TOP1_DROP


def nonfinite_count(output: Any) -> int:
    """NaN and inf values in a model output (its first tensor, the one accuracy compares)."""
    t = _first_tensor(output)
    return int((~torch.isfinite(t)).sum()) if t.is_floating_point() else 0


def three_way_report(scheme: str, base_precision: str, calibration: CalibrationData, eager_output: Any,
                     fake_quant_output: Any, engine_output: Any = None, *, quantizers: int = 0,
                     labelled: LabelledAccuracy | None = None, kept: Sequence[str] = ()) -> QuantizationReport:
    """eager fp32 -> fake-quantized model -> compiled engine, each pair compared on the same inputs."""
    fq = replace(compare_outputs(fake_quant_output, eager_output, "eager fp32"),
                 nonfinite=nonfinite_count(fake_quant_output))
    engine_fq = engine_eager = None
    problem = False
    if engine_output is not None:
        count = nonfinite_count(engine_output)
        engine_fq = replace(compare_outputs(engine_output, fake_quant_output, "fake-quantized PyTorch model"),
                            nonfinite=count)
        engine_eager = replace(compare_outputs(engine_output, eager_output, "eager fp32"), nonfinite=count)
        problem = is_conversion_problem(fq, engine_fq)
    return QuantizationReport(
        scheme=scheme, base_precision=base_precision, calibration=calibration.description,
        calibration_batches=len(calibration.batches), calibration_meaningful=calibration.meaningful,
        quantizers=quantizers, fake_quant_vs_eager=fq, engine_vs_fake_quant=engine_fq,
        engine_vs_eager=engine_eager, conversion_problem=problem, labelled=labelled, kept=list(kept))


def _finite(value: float | None) -> bool:
    """A stored NaN comes back from JSON as None."""
    return value is not None and math.isfinite(value)


def conversion_problem_text(report: QuantizationReport) -> str:
    """The red flag's wording, from the report's numbers; "" when there is no problem."""
    if not report.conversion_problem or report.fake_quant_vs_eager is None or report.engine_vs_fake_quant is None:
        return ""
    fq, eng = report.fake_quant_vs_eager, report.engine_vs_fake_quant
    top1 = (f", top-1 agreement {eng.top1_agreement:.0%}" if eng.top1_agreement is not None else "")
    departs = (f"by rel. L2 {eng.rel_l2:.3g}" if _finite(eng.rel_l2)
               else "completely: its output holds NaN or inf values")
    return (f"Conversion problem, not a quantization one: the compiled engine departs from the fake-quantized "
            f"PyTorch model {departs}{top1}, while the fake-quantized model departs from "
            f"eager fp32 by only {fq.rel_l2:.3g}. The {SCHEMES[report.scheme].label} scales are fine; "
            "TensorRT's conversion of them is not. Do not ship this engine.")


# -- the GPU hook -----------------------------------------------------------------------------------
@dataclass
class LabelledReference:
    """A labelled image folder (``engine.image_folders``) with eager fp32's and the fake-quantized model's
    predictions on it; ``report(engine=...)`` adds the engine's."""

    images: Any                             # engine.image_folders.LabelledImages
    eager_pred: torch.Tensor                # (N,) argmax of eager fp32
    fake_quant_pred: torch.Tensor

    def accuracy(self, engine_pred: torch.Tensor | None = None) -> LabelledAccuracy:
        labels = self.images.labels

        def share(a: torch.Tensor, b: torch.Tensor) -> float:
            return float((a == b).float().mean())

        return LabelledAccuracy(
            source=self.images.description, images=len(labels), classes=self.images.classes,
            eager_top1=share(self.eager_pred, labels), fake_quant_top1=share(self.fake_quant_pred, labels),
            engine_top1=None if engine_pred is None else share(engine_pred, labels),
            fake_quant_agreement=share(self.fake_quant_pred, self.eager_pred),
            engine_agreement=None if engine_pred is None else share(engine_pred, self.eager_pred))


def predict(fn: Any, images: torch.Tensor, batch_size: int, device: Any, dtype: torch.dtype) -> torch.Tensor:
    """Top-1 class of every image through ``fn`` (a module or an engine built for ``batch_size``): full batches,
    the last one padded with zeros and the padding dropped."""
    preds = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            n = len(chunk)
            if n < batch_size:
                chunk = torch.cat([chunk, chunk.new_zeros((batch_size - n, *chunk.shape[1:]))])
            out = _first_tensor(fn(chunk.to(device=device, dtype=dtype)))
            preds.append(out.float().argmax(dim=1)[:n].cpu())
    return torch.cat(preds)


@dataclass
class QuantizedModel:
    """A calibrated, fake-quantized model ready for ``export_quantized``, with its reference outputs."""

    module: torch.nn.Module                 # on the run's device, in the base precision, Q/DQ inserted
    inputs: tuple[torch.Tensor, ...]        # the inputs accuracy is measured on (device, base precision)
    scheme: str
    base_precision: str
    calibration: CalibrationData
    eager_output: torch.Tensor              # eager fp32 on the same inputs, on CPU
    fake_quant_output: torch.Tensor         # on CPU
    quantizers: int
    labelled: LabelledReference | None = None
    kept: tuple[str, ...] = ()              # compile.keep_high_precision: their quantizers are off

    def report(self, engine_output: Any = None, engine: Any = None) -> QuantizationReport:
        """The three-way report; ``engine`` (the compiled module) also runs the labelled images, when there are."""
        labelled = None
        if self.labelled is not None:
            engine_pred = None
            if engine is not None:
                x = self.inputs[0]
                engine_pred = predict(engine, self.labelled.images.images, x.shape[0], x.device, x.dtype)
            labelled = self.labelled.accuracy(engine_pred)
        return three_way_report(self.scheme, self.base_precision, self.calibration, self.eager_output,
                                self.fake_quant_output, engine_output, quantizers=self.quantizers,
                                labelled=labelled, kept=self.kept)


BASE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def prepare_quantized(request: RunRequest, model: BuiltModel, device: str, progress: ProgressFn = no_progress,
                      stages: dict[str, float] | None = None) -> QuantizedModel:
    """Eager fp32 reference, then a copy of the model cast to the base precision, calibrated and
    fake-quantized on ``device``. ``model.module`` is left untouched."""
    c = request.compile
    dtype = BASE_DTYPES[c.quant_base_precision]

    def cast(ts: Sequence[torch.Tensor], dt: torch.dtype) -> tuple[torch.Tensor, ...]:
        return tuple(t.to(device=device, dtype=dt if t.is_floating_point() else t.dtype) for t in ts)

    progress("reference", None, "eager fp32 output for the three-way accuracy")
    reference = copy.deepcopy(model.module).to(device=device, dtype=torch.float32).eval()
    with torch.no_grad():
        eager_output = detached_cpu(reference(*cast(model.example_inputs, torch.float32)))
    del reference
    calibration = load_calibration(c.calibration_data, model.example_inputs, c.calibration_batches,
                                   seed=request.measure.seed)
    labelled_images = _labelled_images(c.calibration_data, model.example_inputs)
    module = copy.deepcopy(model.module).to(device=device, dtype=dtype).eval()
    module = quantize(module, c.quantization, calibration.batches, progress, stages=stages)
    if c.keep_high_precision:
        from engine.localisation.keep import disable_quantizers  # noqa: PLC0415

        progress("calibrate", 1.0, f"quantizers off in {len(c.keep_high_precision)} kept module(s)")
        disable_quantizers(module, c.keep_high_precision)
    inputs = cast(model.example_inputs, dtype)
    with torch.no_grad():
        fake_quant_output = detached_cpu(module(*inputs))
    labelled = None
    if labelled_images is not None:
        progress("accuracy", None, f"top-1 against the labels of {labelled_images.description}")
        batch = model.example_inputs[0].shape[0]
        reference = copy.deepcopy(model.module).to(device=device, dtype=torch.float32).eval()
        eager_pred = predict(reference, labelled_images.images, batch, device, torch.float32)
        del reference
        labelled_images.check_outputs(int(_first_tensor(eager_output).shape[-1]))
        labelled = LabelledReference(labelled_images, eager_pred,
                                     predict(module, labelled_images.images, batch, device, dtype))
    return QuantizedModel(module, inputs, c.quantization, c.quant_base_precision, calibration, eager_output,
                          fake_quant_output, enabled_quantizers(module), labelled, c.keep_high_precision)


def _labelled_images(source: str, example_inputs: Sequence[torch.Tensor]) -> Any:
    """The labelled images of a ``dir:`` calibration folder in the ImageFolder layout, None otherwise."""
    path = calibration_path(source)
    if path is None or not path.is_dir() or len(example_inputs) != 1:
        return None
    from engine.image_folders import load_labelled  # noqa: PLC0415 - it imports this module

    return load_labelled(path, tuple(example_inputs[0].shape[1:]))


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


def compile_kwargs(scheme: str, base_precision: str, flavour: str) -> dict[str, Any]:
    """The ``torch_tensorrt.dynamo.compile`` arguments a quantized build needs.

    Full TensorRT builds weakly typed: ``enabled_precisions`` holds the base precision and the
    scheme's dtypes. TensorRT-RTX is strongly typed and rejects ``enabled_precisions``: the model
    was cast to the base precision and the Q/DQ nodes decide the rest.
    """
    if flavour == "tensorrt_rtx":
        return {}
    precisions = {BASE_DTYPES[base_precision]}
    for name in SCHEMES[scheme].trt_precisions:
        dt = getattr(torch, name, None)
        if dt is not None:
            precisions.add(dt)
    return {"enabled_precisions": precisions}


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
        return QuantizationError(f"{flav} refused {spec.label}: {RTX_INT8_ACTIVATIONS}.",
                                 "Pick int8_weight_only or fp8.")
    keywords = ("quantiz", "int8", "fp8", "float8", "int4", "fp4", "q/dq", "scale")
    if any(k in text.lower() for k in keywords):
        return QuantizationError(f"{flav} could not compile the {spec.label} model: {first}",
                                 "Try another scheme in the precision ladder, or the fp16 build without "
                                 "quantization.")
    return None
