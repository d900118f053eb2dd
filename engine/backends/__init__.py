"""Backends turn a validated request and a built model into a ``Measurement``.

``eager`` runs anywhere; ``tensorrt`` imports torch_tensorrt lazily, inside its functions.
"""

from __future__ import annotations

from engine.backends.base import Measurement, ProgressFn, get_backend

__all__ = ["Measurement", "ProgressFn", "get_backend"]
