"""Eager fp32 reference outputs, computed once per model and kept in the data directory.

A sweep, a ladder or a batch sweep runs the same model many times, each run in a fresh job process; every
run compares its engine's outputs with the eager fp32 outputs of the same weights on the same inputs. Those
outputs depend only on the model identity (registry name + seed, or a file's content hash + seed), the
model settings (batch, shapes, sequence length, inputs), the device and the torch version: they are kept
under ``<data dir>/reference_cache/<key>.pt`` and read back instead of being recomputed.

Only outputs are kept, never timings: a baseline latency is a measurement and is taken in the run that
reports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

CACHE_DIR = "reference_cache"
FORMAT = 1   # bump when what is stored changes


def reference_key(model_identity: str, model_settings: dict[str, Any], device_name: str) -> str:
    payload = {"format": FORMAT, "model": model_identity, "settings": model_settings, "device": device_name,
               "torch": torch.__version__}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cached_outputs(directory: Path | None, key: str, compute: Callable[[], Any]) -> tuple[Any, bool]:
    """The stored outputs for ``key``, or ``compute()`` stored for next time. Returns (outputs, from_cache).
    ``directory`` None: no cache (compute every time). A damaged or unreadable file is recomputed."""
    if directory is None:
        return compute(), False
    path = directory / CACHE_DIR / f"{key}.pt"
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True), True
        except Exception:   # a partial or foreign file: compute it again
            log.warning("reference cache %s unreadable; recomputing", path, exc_info=True)
    out = compute()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            torch.save(out, tmp)
            os.replace(tmp, path)     # atomic: a concurrent reader sees the old file or the whole new one
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return out, False
