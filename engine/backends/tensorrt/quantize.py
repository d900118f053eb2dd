"""Quantized runs: calibrate and fake-quantize a copy of the model with NVIDIA ModelOpt before compiling.

The hook lives in ``engine.quantization`` (CUDA extensions, calibration, eager fp32 and fake-quantized
reference outputs); this step builds ModelOpt's CUDA extensions first, as their own stage.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from engine.backends.base import ProgressFn
from engine.models.entry import BuiltModel
from engine.settings.request import RunRequest

log = logging.getLogger(__name__)


def quantize(request: RunRequest, model: BuiltModel, progress: ProgressFn, stages: dict[str, float]) -> Any:
    """Calibrate and fake-quantize a copy of the model on the GPU; ModelOpt's CUDA extensions are built
    first (about 45 s each on first use)."""
    from engine import quantization  # noqa: PLC0415

    scheme = quantization.SCHEMES[request.compile.quantization]
    quantization.import_modelopt(progress, stages)
    from modelopt.torch.quantization import extensions  # noqa: PLC0415

    builders = [extensions.get_cuda_ext] + ([extensions.get_cuda_ext_fp8] if scheme.weights == "fp8" else [])
    progress("cuda_extensions", None, "ModelOpt CUDA extensions (built on first use, about 45 s each)")
    t0 = time.perf_counter()
    for build in builders:
        try:
            build()
        except Exception:   # ModelOpt falls back to its PyTorch kernels; the run goes on
            log.exception("ModelOpt CUDA extension %s not built", build.__name__)
    stages["cuda_extensions_s"] = time.perf_counter() - t0
    return quantization.prepare_quantized(request, model, "cuda", progress, stages)
