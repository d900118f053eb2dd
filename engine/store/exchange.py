"""The exchange document of one run (``format: trt-dashboard-run``): what ``RunStore.export_run`` writes and
``RunStore.import_run`` reads, exports and the bundled sample runs alike.

A document is not trusted: decoding checks its format and that its run id is of the run-id pattern before anything
of it is used, so a document can never name a path.
"""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pandas as pd

from engine.result import RunResult
from engine.store.paths import check_run_id

FORMAT = "trt-dashboard-run"


def encode_run(result: RunResult, raw_files: dict[str, str]) -> bytes:
    """One self-contained JSON document of a run: result, layer table and raw files (as text)."""
    doc = {
        "format": FORMAT,
        "result": result.to_dict(),
        "layers": json.loads(result.layers.to_json(orient="split", index=False, double_precision=15)),
        "raw_files": raw_files,
    }
    return json.dumps(doc, indent=1).encode()


def decode_run(blob: bytes) -> tuple[RunResult, dict[str, Any]]:
    """The run and its raw files (name -> text, as the document holds them) of a plain or gzipped document.

    Raises ``ValueError`` for anything else than a run export, ``InvalidRunId`` for a run id not of the pattern."""
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    doc = json.loads(blob)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"not a run export (missing format: {FORMAT})")
    check_run_id((doc.get("result") or {}).get("run_id"))
    layers = pd.read_json(io.StringIO(json.dumps(doc["layers"])), orient="split")
    return RunResult.from_dict(doc["result"], layers), doc.get("raw_files", {})
