"""What a TensorRT run compares with, computed once per model and kept in the data directory.

A sweep, a ladder or a batch sweep runs the same model many times, each run in a fresh job process; every
run compares its engine's outputs with the eager fp32 outputs of the same weights on the same inputs, and
its latency with the eager model at the run's precision. Both depend only on the model identity (registry
name + seed, or a file's content hash + seed), the model settings (batch, shapes, sequence length,
inputs), the device and the torch version (the baseline also on its precision and iteration counts), so
they are kept under ``<data dir>/reference_cache/`` and read back instead of being measured again:

- ``<key>.pt``: eager fp32 outputs (the same numbers every time: nothing to disclose);
- ``<key>.json``: an eager baseline latency with the time it was measured; a run that reuses it says so
  in its warnings (a measurement taken earlier, in another process).

Delete the folder to measure everything again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from engine.latency_stats import LatencyStats

log = logging.getLogger(__name__)

CACHE_DIR = "reference_cache"
FORMAT = 1  # bump when what is stored changes


def reference_key(model_identity: str, model_settings: dict[str, Any], device_name: str, **more: Any) -> str:
    """The cache key of a model's reference on a device; ``more`` adds what else it depends on."""
    payload = {
        "format": FORMAT,
        "model": model_identity,
        "settings": model_settings,
        "device": device_name,
        "torch": torch.__version__,
        **more,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cached_latency(
    directory: Path | None, key: str, measure: Callable[[], LatencyStats]
) -> tuple[LatencyStats, str | None]:
    """The stored baseline for ``key``, or ``measure()`` stored for next time. Returns (stats, measured_at):
    ``measured_at`` (ISO time) when the figure was reused, None when it was measured now."""
    if directory is None:
        return measure(), None
    path = directory / CACHE_DIR / f"{key}.json"
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
            return LatencyStats(**doc["latency"]), str(doc["measured_at"])
        except Exception:  # a partial or foreign file: measure again
            log.warning("baseline cache %s unreadable; measuring again", path, exc_info=True)
    stats = measure()
    doc = {"latency": dataclasses.asdict(stats), "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    _write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(doc)))
    return stats, None


def cached_outputs(directory: Path | None, key: str, compute: Callable[[], Any]) -> tuple[Any, bool]:
    """The stored outputs for ``key``, or ``compute()`` stored for next time. Returns (outputs, from_cache).
    ``directory`` None: no cache (compute every time). A damaged or unreadable file is recomputed."""
    if directory is None:
        return compute(), False
    path = directory / CACHE_DIR / f"{key}.pt"
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True), True
        except Exception:  # a partial or foreign file: compute it again
            log.warning("reference cache %s unreadable; recomputing", path, exc_info=True)
    out = compute()
    _write_atomic(path, lambda tmp: torch.save(out, tmp))
    return out, False


def _write_atomic(path: Path, write: Callable[[str], Any]) -> None:
    """Write through a temporary file and rename: a concurrent reader sees the old file or the whole new one.
    A cache that cannot be written (read-only data directory) is skipped."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
