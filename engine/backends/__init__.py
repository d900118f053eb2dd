"""Backends turn a validated request and a built model into a ``Measurement``.

``eager`` runs anywhere; ``tensorrt`` imports torch_tensorrt lazily, inside its functions.
"""

from __future__ import annotations

import contextlib

from engine.backends.base import Measurement, ProgressFn, get_backend

__all__ = ["Measurement", "ProgressFn", "get_backend", "prewarm"]


def prewarm() -> None:
    """Pay a job's fixed costs before the job arrives (a job process calls this while it waits on standby):
    the model registry's imports and the first-call costs of torch (thread pools, allocator)."""
    import torch  # noqa: PLC0415

    with contextlib.suppress(ImportError):   # registry models come from here
        import torchvision.models  # noqa: F401, PLC0415
    with torch.inference_mode():
        torch.nn.functional.conv2d(torch.randn(1, 3, 16, 16), torch.randn(4, 3, 3, 3)).sum().item()
