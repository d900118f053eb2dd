"""A request's identity: the part of it that changes a measurement, and the cache key of a result.

What belongs in the key is read from each knob's ``KnobInfo`` (engine/settings/knobs.py): a knob ``added`` after
runs were first stored leaves the key while at its default, the eager backend keeps only the compile knobs it
honours (``eager``), the calibration knobs count only with a quantization scheme (``with_quantization``), and a
value ``renamed`` since keeps its old spelling. Keys of stored runs never change (tests/test_config.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from engine.settings.knobs import knob_fields, knob_info
from engine.settings.request import PARTS, RunRequest


def settings_that_matter(request: RunRequest) -> dict[str, Any]:
    """The part of a request that changes the measurement (compile knobs don't for eager)."""
    d = request.to_dict()
    for part, cls in PARTS:
        for f in knob_fields(cls):
            info = knob_info(f)
            if info.added and d[part].get(f.name) == f.default:
                d[part].pop(f.name)
            for stored, today in info.renamed:  # old values keep their keys
                if f.name in d[part] and d[part][f.name] == today:
                    d[part][f.name] = stored
    compile_fields = knob_fields(type(request.compile))
    if request.backend == "eager":
        d["compile"] = {f.name: getattr(request.compile, f.name) for f in compile_fields if knob_info(f).eager}
    elif request.compile.quantization == "none":
        # calibration knobs change nothing without a scheme (and keys from before they existed stay valid)
        for f in compile_fields:
            if knob_info(f).with_quantization:
                d["compile"].pop(f.name)
    # per-layer profiling is a separate pass; it does not change e2e numbers but does change what
    # the result holds, so it stays in the key
    return d


def cache_key(request: RunRequest, environment: dict[str, Any], model_identity: str) -> str:
    """Stable content hash of what determines a result.

    ``environment`` holds versions, flavour and device name (``capabilities.fingerprint``),
    ``model_identity`` names the weights (registry name + seed, or a file's content hash).
    """
    payload = {"request": settings_that_matter(request), "env": environment, "model": model_identity}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
