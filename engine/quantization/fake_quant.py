"""Post-training quantization with NVIDIA ModelOpt: a copy of the model calibrated and fake-quantized, with the
reference outputs its three-way accuracy is measured against.

The path is the one Torch-TensorRT documents: ``modelopt.torch.quantization.quantize(model, CFG,
forward_loop=...)`` inserts quantize/dequantize (Q/DQ) nodes and calibrates their ranges; the TensorRT backend then
exports it under ``export_torch_mode()`` and compiles it (engine/backends/tensorrt/quantize.py). ModelOpt is a GPU
extra: it is imported only when a run quantizes::

    q = fake_quant.prepare_quantized(request, built, device, progress, stages)  # calibrate, fake-quantize
    ...                                                                        # export + compile (backend)
    measurement.quantization = q.report(engine_output=trt_module(*q.inputs))   # three-way accuracy

``stages`` (the measurement's ``stages_s``) receives ``modelopt_import_s`` and ``calibration_s``;
the run's warnings should carry ``q.calibration.warning`` when calibration used random tensors.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.backends.base import ProgressFn, no_progress
from engine.backends.keep_high_precision import disable_quantizers
from engine.errors import QuantizationError
from engine.models.entry import BuiltModel
from engine.profiling.accuracy import _first_tensor, detached_cpu
from engine.quantization.accuracy import three_way_report
from engine.quantization.calibration import CalibrationData, calibration_path, load_calibration
from engine.quantization.image_folders import load_labelled
from engine.quantization.schemes import INSTALL_COMMAND, SCHEMES
from engine.result import LabelledAccuracy, QuantizationReport
from engine.settings.request import RunRequest
from engine.store import data_dir

TORCH_EXTENSIONS_ENV = "TORCH_EXTENSIONS_DIR"


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
        raise QuantizationError(
            f"NVIDIA ModelOpt is not installed ({e}).", f"Install it with `{INSTALL_COMMAND}`."
        ) from None
    if stages is not None:
        stages["modelopt_import_s"] = time.perf_counter() - t0
    return mtq


def quantize(
    module: torch.nn.Module,
    scheme: str,
    calibration_batches: Sequence[Sequence[torch.Tensor]],
    progress: ProgressFn = no_progress,
    *,
    stages: dict[str, float] | None = None,
) -> torch.nn.Module:
    """``module`` with the scheme's Q/DQ nodes inserted and calibrated on ``calibration_batches``.

    Quantizes in place (copy first to keep the original). Floating batches are cast to the module's
    dtype and device. ``stages["calibration_s"]`` receives the time ModelOpt took.
    """
    spec = SCHEMES[scheme]
    if spec.modelopt_config is None:
        return module
    if not calibration_batches:
        raise QuantizationError(
            f"{spec.label} needs calibration data; none was given.", "Set calibration_batches to 1 or more."
        )
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    if device.type != "cuda" and not spec.calibrates_on_cpu:
        raise QuantizationError(
            f"{spec.label} calibration runs only on a CUDA GPU (ModelOpt's block quantization keeps its scales there).",
            "Run it on a GPU.",
        )
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


@dataclass
class LabelledReference:
    """A labelled image folder (``engine.quantization.image_folders``) with eager fp32's and the fake-quantized model's
    predictions on it; ``report(engine=...)`` adds the engine's."""

    images: Any  # engine.quantization.image_folders.LabelledImages
    eager_pred: torch.Tensor  # (N,) argmax of eager fp32
    fake_quant_pred: torch.Tensor

    def accuracy(self, engine_pred: torch.Tensor | None = None) -> LabelledAccuracy:
        labels = self.images.labels

        def share(a: torch.Tensor, b: torch.Tensor) -> float:
            return float((a == b).float().mean())

        return LabelledAccuracy(
            source=self.images.description,
            images=len(labels),
            classes=self.images.classes,
            eager_top1=share(self.eager_pred, labels),
            fake_quant_top1=share(self.fake_quant_pred, labels),
            engine_top1=None if engine_pred is None else share(engine_pred, labels),
            fake_quant_agreement=share(self.fake_quant_pred, self.eager_pred),
            engine_agreement=None if engine_pred is None else share(engine_pred, self.eager_pred),
        )


def predict(fn: Any, images: torch.Tensor, batch_size: int, device: Any, dtype: torch.dtype) -> torch.Tensor:
    """Top-1 class of every image through ``fn`` (a module or an engine built for ``batch_size``): full batches,
    the last one padded with zeros and the padding dropped."""
    preds = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            n = len(chunk)
            if n < batch_size:
                chunk = torch.cat([chunk, chunk.new_zeros((batch_size - n, *chunk.shape[1:]))])
            out = _first_tensor(fn(chunk.to(device=device, dtype=dtype)))
            preds.append(out.float().argmax(dim=1)[:n].cpu())
    return torch.cat(preds)


@dataclass
class QuantizedModel:
    """A calibrated, fake-quantized model ready for ``export_quantized``, with its reference outputs."""

    module: torch.nn.Module  # on the run's device, in the base precision, Q/DQ inserted
    inputs: tuple[torch.Tensor, ...]  # the inputs accuracy is measured on (device, base precision)
    scheme: str
    base_precision: str
    calibration: CalibrationData
    eager_output: torch.Tensor  # eager fp32 on the same inputs, on CPU
    fake_quant_output: torch.Tensor  # on CPU
    quantizers: int
    labelled: LabelledReference | None = None
    kept: tuple[str, ...] = ()  # compile.keep_high_precision: their quantizers are off

    def report(self, engine_output: Any = None, engine: Any = None) -> QuantizationReport:
        """The three-way report; ``engine`` (the compiled module) also runs the labelled images, when there are."""
        labelled = None
        if self.labelled is not None:
            engine_pred = None
            if engine is not None:
                x = self.inputs[0]
                engine_pred = predict(engine, self.labelled.images.images, x.shape[0], x.device, x.dtype)
            labelled = self.labelled.accuracy(engine_pred)
        return three_way_report(
            self.scheme,
            self.base_precision,
            self.calibration,
            self.eager_output,
            self.fake_quant_output,
            engine_output,
            quantizers=self.quantizers,
            labelled=labelled,
            kept=self.kept,
        )


BASE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def prepare_quantized(
    request: RunRequest,
    model: BuiltModel,
    device: str,
    progress: ProgressFn = no_progress,
    stages: dict[str, float] | None = None,
) -> QuantizedModel:
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
    calibration = load_calibration(
        c.calibration_data, model.example_inputs, c.calibration_batches, seed=request.measure.seed
    )
    labelled_images = _labelled_images(c.calibration_data, model.example_inputs)
    module = copy.deepcopy(model.module).to(device=device, dtype=dtype).eval()
    module = quantize(module, c.quantization, calibration.batches, progress, stages=stages)
    if c.keep_high_precision:
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
        labelled = LabelledReference(
            labelled_images, eager_pred, predict(module, labelled_images.images, batch, device, dtype)
        )
    return QuantizedModel(
        module,
        inputs,
        c.quantization,
        c.quant_base_precision,
        calibration,
        eager_output,
        fake_quant_output,
        enabled_quantizers(module),
        labelled,
        c.keep_high_precision,
    )


def _labelled_images(source: str, example_inputs: Sequence[torch.Tensor]) -> Any:
    """The labelled images of a ``dir:`` calibration folder in the ImageFolder layout, None otherwise."""
    path = calibration_path(source)
    if path is None or not path.is_dir() or len(example_inputs) != 1:
        return None
    return load_labelled(path, tuple(example_inputs[0].shape[1:]))
