"""Where localisations are kept: one JSON document per study in the data directory's ``localisations/``, and
the bundled samples recorded on a GPU (``samples/localisations/*.json.gz``: the study with its error growth and
the runs worth opening: the unfixed build, the reference and the fix).

The small interface (save, load, list, import_samples) that a store of studies beside the runs replaces later;
the runs themselves are in the run store, tagged ``localise:<id>``.
"""

from __future__ import annotations

import gzip
import json
import os
import uuid
from pathlib import Path

import pandas as pd

from engine.errors import UserError
from engine.store import SAMPLES_DIR, RunStore, data_dir
from engine.studies.localisation.study import Localisation

BUNDLE_FORMAT = "trt-dashboard-localisation"
SUBDIR = "localisations"
SAMPLES_ENV = "TRTDASH_SAMPLES_DIR"
LIST_COLUMNS = [
    "localisation_id",
    "created_at",
    "model",
    "batch_size",
    "label",
    "status",
    "outcome",
    "builds",
    "is_sample",
    "source",
]


class LocalisationNotFound(UserError, KeyError):
    def __init__(self, localisation_id: str):
        super().__init__(
            f"No localisation {localisation_id!r} is stored: it was deleted or the link is wrong. "
            "Pick one from the list."
        )
        self.args = (localisation_id,)
        self.localisation_id = localisation_id

    def __str__(self) -> str:
        return self.message


class LocalisationRecords:
    """Studies as JSON files under ``<data dir>/localisations/`` (written whole, renamed into place)."""

    def __init__(self, root: Path | str | None = None):
        self.dir = Path(root if root is not None else data_dir()) / SUBDIR
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, localisation_id: str) -> Path:
        if not localisation_id or "/" in localisation_id or localisation_id.startswith("."):
            raise LocalisationNotFound(localisation_id)
        return self.dir / f"{localisation_id}.json"

    def save(self, study: Localisation) -> None:
        path = self._path(study.localisation_id)
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
        tmp.write_text(json.dumps(study.to_dict(), separators=(",", ":")))
        os.replace(tmp, path)

    def exists(self, localisation_id: str) -> bool:
        try:
            return self._path(localisation_id).is_file()
        except LocalisationNotFound:
            return False

    def load(self, localisation_id: str) -> Localisation:
        path = self._path(localisation_id)
        try:
            return Localisation.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise LocalisationNotFound(localisation_id) from None

    def summaries(self) -> pd.DataFrame:
        """One row per stored localisation, newest first."""
        rows = []
        for p in self.dir.glob("*.json"):
            try:
                s = Localisation.from_dict(json.loads(p.read_text()))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # half-written or from another version: not listed
            rows.append(
                {
                    "localisation_id": s.localisation_id,
                    "created_at": s.created_at,
                    "model": s.base["model"]["source"],
                    "batch_size": s.base["model"]["batch_size"],
                    "label": s.label,
                    "status": s.status,
                    "outcome": s.outcome,
                    "builds": s.builds,
                    "is_sample": s.is_sample,
                    "source": s.source,
                }
            )
        df = pd.DataFrame(rows, columns=LIST_COLUMNS)
        return df.sort_values("created_at", ascending=False).reset_index(drop=True)

    def import_samples(self, store: RunStore | None = None, samples_dir: Path | str | None = None) -> list[str]:
        """Install the bundled localisations (and their runs, as sample runs, into ``store``) once; idempotent.
        ``TRTDASH_SAMPLES_DIR`` points elsewhere, as for the sample runs."""
        root = Path(samples_dir or os.environ.get(SAMPLES_ENV) or SAMPLES_DIR) / SUBDIR
        ids = []
        for p in sorted(root.glob("*.json.gz")):
            study, runs = read_bundle(p.read_bytes())
            if store is not None:
                for run in runs:
                    store.import_run(json.dumps(run).encode(), as_sample=True)
            if not self.exists(study.localisation_id):
                self.save(study)
            ids.append(study.localisation_id)
        return ids


def bundle(
    study: Localisation,
    store: RunStore | None = None,
    roles: tuple[str, ...] = ("unfixed", "reference"),
    with_fix: bool = True,
) -> bytes:
    """A gzipped document of the study (marked as a sample) and the runs of its ``roles`` and its fix, without their
    raw profiler files and, but for the fix, without their per-layer tables: what ``scripts/record_localisations.py``
    writes into ``samples/localisations/`` (a few tens of KB each)."""
    sample = Localisation.from_dict(study.to_dict())
    sample.is_sample = True
    runs = []
    if store is not None:
        fix = study.fix_step if with_fix else None
        wanted = [study.step(r) for r in roles] + [fix]
        for run_id in dict.fromkeys(s.run_id for s in wanted if s is not None and s.run_id):
            doc = json.loads(store.export_run(run_id))
            doc["raw_files"] = {}
            doc["result"]["artifacts"] = []
            if fix is None or run_id != fix.run_id:  # the fix keeps its per-layer table (precision per layer)
                doc["layers"] = {**doc["layers"], "data": []}
            runs.append(doc)
    doc = {"format": BUNDLE_FORMAT, "localisation": sample.to_dict(), "runs": runs}
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=9)


def read_bundle(blob: bytes) -> tuple[Localisation, list[dict]]:
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    doc = json.loads(blob)
    if doc.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"not a localisation bundle (format is not {BUNDLE_FORMAT})")
    return Localisation.from_dict(doc["localisation"]), list(doc.get("runs", []))
