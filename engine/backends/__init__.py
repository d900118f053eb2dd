"""Backends turn a validated request and a built model into a ``Measurement``.

``eager`` runs anywhere; ``tensorrt`` imports torch_tensorrt lazily, inside its functions.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
from typing import Any

from engine.backends.base import Measurement, ProgressFn, get_backend

__all__ = ["Measurement", "ProgressFn", "get_backend", "prewarm", "prewarm_gpu", "prewarm_imports"]

log = logging.getLogger(__name__)


def prewarm() -> None:
    """Pay a job's fixed costs before the job arrives: ``prewarm_imports`` then ``prewarm_gpu``."""
    prewarm_imports()
    prewarm_gpu()


def prewarm_imports() -> None:
    """The part of a job's fixed costs that touches no GPU: the model registry's imports, the first-call
    costs of torch on the CPU (thread pools, allocator) and, where a GPU is present, ``torch_tensorrt``
    (a plain resnet50 script spent 12 s in imports on the H200). A GPU worker runs this in its next job
    process while the current job runs (it takes a CPU core, no GPU), so only ``prewarm_gpu`` is left
    between two jobs. Nothing here may fail a job: a failing step is logged and skipped."""
    import torch  # noqa: PLC0415

    with contextlib.suppress(ImportError):  # registry models come from here
        import torchvision.models  # noqa: F401, PLC0415
    with torch.inference_mode():
        torch.nn.functional.conv2d(torch.randn(1, 3, 16, 16), torch.randn(4, 3, 3, 3)).sum().item()
    if not torch.cuda.is_available():
        return
    try:
        import engine.backends.tensorrt  # noqa: F401, PLC0415
        from engine.backends.tensorrt import internals  # noqa: PLC0415

        internals.features()  # imports torch_tensorrt
    except Exception:  # the job itself will report whatever is wrong, with its own message
        log.warning("prewarm import step failed", exc_info=True)


def prewarm_gpu() -> None:
    """The GPU part, run between jobs (never while one measures): the CUDA context, cuBLAS and cuDNN (a
    first matmul and convolution in fp16 and fp32), then a tiny build through ``torch.export`` +
    ``torch_tensorrt.dynamo.compile`` (a Linear and a ReLU): the export machinery, Torch-TensorRT's lowering
    passes and converter registry, and TensorRT's builder and libraries load here, not in the job (a plain
    resnet50 script spent 7 s compiling on the H200). No torch.profiler session runs here: a trace before
    end-to-end timing slows that timing (``engine.profiling.gpu_time``)."""
    import torch  # noqa: PLC0415

    if not torch.cuda.is_available():
        return
    try:
        with torch.inference_mode():
            for dtype in (torch.float16, torch.float32):
                x = torch.randn(1, 3, 32, 32, device="cuda", dtype=dtype)
                w = torch.randn(8, 3, 3, 3, device="cuda", dtype=dtype)
                torch.nn.functional.conv2d(x, w).sum().item()
                (x.flatten(1)[:, :64] @ torch.randn(64, 64, device="cuda", dtype=dtype)).sum().item()
        torch.cuda.synchronize()
        _tiny_build(torch)
    except Exception:  # the job itself will report whatever is wrong, with its own message
        log.warning("GPU prewarm step failed", exc_info=True)


def _tiny_build(torch: Any) -> None:
    import torch_tensorrt  # noqa: PLC0415

    tiny = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU()).cuda().half().eval()
    x = torch.randn(1, 16, device="cuda", dtype=torch.half)
    with contextlib.redirect_stdout(io.StringIO()):
        built = torch_tensorrt.dynamo.compile(torch.export.export(tiny, (x,)), arg_inputs=[x], min_block_size=1)
    with torch.inference_mode():
        built(x)
    torch.cuda.synchronize()
    del built, tiny
    gc.collect()
    with contextlib.suppress(Exception):
        torch._dynamo.reset()
    torch.cuda.empty_cache()
