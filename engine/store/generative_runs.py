"""Stored generative runs (engine/generative): one gzipped JSON document per run under ``<data>/generative/``, and
the bundled samples under ``samples/generative/`` (read-only, listed with the stored runs so a CPU user sees the
recorded GPU runs). Writes are atomic: a temporary file renamed into place."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from engine.store.paths import SAMPLES_DIR, check_run_id, data_dir
from engine.store.runs import RunNotFound

SUBDIR = "generative"
SAMPLES_ENV = "TRTDASH_SAMPLES_DIR"
SUFFIX = ".json.gz"


def runs_dir() -> Path:
    return data_dir() / SUBDIR


def samples_dir() -> Path:
    """``samples/generative``, or ``generative/`` under ``TRTDASH_SAMPLES_DIR`` when it points elsewhere (as for
    the sample runs: an empty directory turns samples off)."""
    return Path(os.environ.get(SAMPLES_ENV) or SAMPLES_DIR) / SUBDIR


def encode(doc: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), mtime=0)


def decode(raw: bytes) -> dict[str, Any]:
    return json.loads(gzip.decompress(raw))


def save(doc: dict[str, Any], directory: Path | None = None) -> Path:
    """Write one run's document (``GenerativeRun.to_dict()``) as ``<run_id>.json.gz``."""
    run_id = check_run_id(doc["run_id"])
    target = directory or runs_dir()
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{run_id}{SUFFIX}"
    fd, tmp = tempfile.mkstemp(dir=target, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(encode(doc))
    os.replace(tmp, path)
    return path


def _paths() -> list[Path]:
    found = []
    for d in (runs_dir(), samples_dir()):
        if d.is_dir():
            found += sorted(p for p in d.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))
    return found


def load_all() -> list[dict[str, Any]]:
    """Every stored run's document, then the bundled samples'; a file that does not read is skipped."""
    docs = []
    for p in _paths():
        try:
            docs.append(decode(p.read_bytes()))
        except (OSError, ValueError, EOFError):
            continue
    return docs


def get(run_id: str) -> dict[str, Any]:
    check_run_id(run_id)
    for doc in load_all():
        if doc.get("run_id") == run_id:
            return doc
    raise RunNotFound(run_id)
