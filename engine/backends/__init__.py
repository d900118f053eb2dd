"""Backends turn a validated request and a built model into a ``Measurement``.

``eager`` runs anywhere; ``tensorrt`` imports torch_tensorrt lazily, inside its functions.
"""

from __future__ import annotations

import contextlib
import logging

from engine.backends.base import Measurement, ProgressFn, get_backend

__all__ = ["Measurement", "ProgressFn", "get_backend", "prewarm"]

log = logging.getLogger(__name__)


def prewarm() -> None:
    """Pay a job's fixed costs before the job arrives (a job process calls this while it waits on standby).

    Everywhere: the model registry's imports and the first-call costs of torch (thread pools, allocator).
    Where a GPU is present: the CUDA context, cuBLAS and cuDNN (a first matmul and convolution in fp16 and
    fp32), ``torch.export``'s and dynamo's imports, and ``torch_tensorrt`` with the backend's modules (several
    seconds on a cold start). Nothing here may fail a job: a failing step is logged and skipped. No
    torch.profiler session runs here: a trace before end-to-end timing slows that timing
    (``engine.profiling.gpu_time``).
    """
    import torch  # noqa: PLC0415

    with contextlib.suppress(ImportError):   # registry models come from here
        import torchvision.models  # noqa: F401, PLC0415
    with torch.inference_mode():
        torch.nn.functional.conv2d(torch.randn(1, 3, 16, 16), torch.randn(4, 3, 3, 3)).sum().item()
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
        import torch.export  # noqa: F401, PLC0415
        import torch_tensorrt  # noqa: F401, PLC0415

        import engine.backends.tensorrt  # noqa: F401, PLC0415
        from engine.backends.tensorrt import internals  # noqa: PLC0415

        internals.features()
    except Exception:   # the job itself will report whatever is wrong, with its own message
        log.warning("GPU prewarm step failed", exc_info=True)
