"""Engine-plan identity: a stable hash of what the builder chose, so two runs can be called "the same engine".

Two sources, each a part of the fingerprint, prefixed by where it came from:

- ``layers:<hash>`` from the engines' layer information at DETAILED profiling verbosity (the build ran under
  the Debugger, i.e. ``measure.layer_profile`` was on): per engine in execution order, per layer its name,
  type, tactic and the dimensions and formats of its inputs and outputs. Tensor names and the free-text
  ``Metadata`` field are left out (they name graph nodes, not the plan). Without DETAILED information the
  inspector gives bare layer names only, too little to tell tactics apart: no ``layers:`` part then.
- ``kernels:<hash>`` from the GPU-time trace (``engine.profiling.gpu_time``): the kernel names of one
  inference in launch order (two builds that launch the same kernels in the same order ran the same plan),
  or, where inferences launched different sequences, the kernel names with their calls per inference.
  Every GPU run has this part, also without layer information.

The fingerprint is the parts joined by a space, ``layers:`` first: ``"layers:1a2b... kernels:3c4d..."``.
``same_plan`` compares the parts both fingerprints have: the same plan when all of them agree, not the same
when one differs, unknown (None) when they share none (e.g. a stored run from before fingerprints).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

PARTS = ("layers", "kernels")


def _digest(payload: object) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _tensors(items: object) -> list[list[object]]:
    if not isinstance(items, list):
        return []
    return [[t.get("Dimensions"), t.get("Format/Datatype")] for t in items if isinstance(t, dict)]


def layer_signature(layer_info_json: str) -> list[list[object]] | None:
    """One engine's plan from its inspector JSON; None when the layers are bare names (not DETAILED)."""
    data = json.loads(layer_info_json)
    layers = data.get("Layers") if isinstance(data, dict) else None
    if not isinstance(layers, list) or not layers or not all(isinstance(x, dict) for x in layers):
        return None
    return [
        [x.get("Name"), x.get("LayerType"), x.get("TacticName"), _tensors(x.get("Inputs")), _tensors(x.get("Outputs"))]
        for x in layers
    ]


def layers_part(layer_infos: Sequence[str]) -> str | None:
    """``layers:<hash>`` over the engines' layer information in execution order; None unless every engine has
    DETAILED information."""
    if not layer_infos:
        return None
    signatures = [layer_signature(text) for text in layer_infos]
    if any(s is None for s in signatures):
        return None
    return f"layers:{_digest(signatures)}"


def kernels_part(sequence: Sequence[str] | None, counts: Mapping[str, float] | None = None) -> str | None:
    """``kernels:<hash>`` of one inference's kernel sequence, or of the kernel counts where it varied."""
    if sequence:
        return f"kernels:{_digest(['sequence', list(sequence)])}"
    if counts:
        return f"kernels:{_digest(['counts', sorted((n, round(c, 3)) for n, c in counts.items())])}"
    return None


def plan_fingerprint(layers: str | None, kernels: str | None) -> str | None:
    parts = [p for p in (layers, kernels) if p]
    return " ".join(parts) if parts else None


def parts_of(fingerprint: str | None) -> dict[str, str]:
    """``{"layers": "layers:1a2b...", "kernels": ...}`` of a fingerprint (unknown prefixes ignored)."""
    out: dict[str, str] = {}
    for part in (fingerprint or "").split():
        source, _, digest = part.partition(":")
        if source in PARTS and digest:
            out[source] = part
    return out


def same_plan(a: str | None, b: str | None) -> bool | None:
    """True: the same plan by every source both runs have; False: a source differs; None: nothing to compare."""
    pa, pb = parts_of(a), parts_of(b)
    common = [k for k in PARTS if k in pa and k in pb]
    if not common:
        return None
    return all(pa[k] == pb[k] for k in common)
