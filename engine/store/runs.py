"""Runs: SQLite (WAL) for run metadata, a directory per run for its tables and raw files.

Writes are atomic: a run's directory is written under a temporary name and renamed into place,
and only then is its row committed. A crash at any point leaves either the whole run or nothing
visible (orphans are swept on open). Every run id that reaches the file system (save, import,
delete, export, the orphan sweep) matches ``RUN_ID_PATTERN``: a document can never name a path.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import UserError
from engine.result import RunResult, normalise_layers
from engine.store.db import SCHEMA, SUMMARY_COLUMNS, Tx, connect
from engine.store.exchange import decode_run, encode_run
from engine.store.paths import (
    ARTIFACT_NAME,
    SAMPLES_DIR,
    TMP_DIR_PATTERN,
    artifact_name,
    check_run_id,
    data_dir,
    is_run_id,
)

ORPHAN_MIN_AGE_S = 600.0  # a half-written run younger than this may still be in progress in another process


class RunNotFound(UserError, KeyError):
    def __init__(self, run_id: str):
        super().__init__(
            f"Run {run_id!r} does not exist: it was deleted or the link is wrong. Pick a run from History."
        )
        self.args = (run_id,)
        self.run_id = run_id

    def __str__(self) -> str:
        return self.message


class RunStore:
    """Runs on one machine: a SQLite file plus ``runs/<run_id>/`` directories.

    Safe to use from several threads and processes (WAL, one connection per thread).
    """

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else data_dir()
        self.runs_dir = self.root / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "runs.sqlite"
        self._local = threading.local()
        self._conn().executescript(SCHEMA)
        self._add_missing_columns()
        self._sweep_orphans()

    def _add_missing_columns(self) -> None:
        """A store written before a column existed gets it (old rows read its default)."""
        have = {r["name"] for r in self._conn().execute("PRAGMA table_info(runs)")}
        if "submitted_by" not in have:
            try:
                self._conn().execute("ALTER TABLE runs ADD COLUMN submitted_by TEXT NOT NULL DEFAULT ''")
            except sqlite3.OperationalError as e:  # another process added it a moment ago
                if "duplicate column" not in str(e):
                    raise

    # -- connection ---------------------------------------------------------------------------
    def _conn(self) -> Tx:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.db_path)
        return conn

    def _sweep_orphans(self, min_age_s: float = ORPHAN_MIN_AGE_S) -> None:
        """Remove temp dirs of interrupted writes (``.tmp-<run id>-<6 hex>``) and run dirs whose row never
        committed. Nothing else in ``runs/`` is touched, and never a run that is stored.

        Only entries older than ``min_age_s``: another process (a job on another GPU) may be
        between writing its directory and committing its row right now."""
        known = {r["run_id"] for r in self._conn().execute("SELECT run_id FROM runs")}
        now = time.time()
        for p in self.runs_dir.iterdir():
            is_tmp = TMP_DIR_PATTERN.fullmatch(p.name) is not None
            if not (is_tmp or (is_run_id(p.name) and p.is_dir() and p.name not in known)):
                continue
            try:
                if now - p.stat().st_mtime < min_age_s:
                    continue
            except FileNotFoundError:
                continue
            # re-check: the row may have been committed since we listed the known runs
            if not is_tmp and self.exists(p.name):
                continue
            shutil.rmtree(p, ignore_errors=True)

    # -- write ---------------------------------------------------------------------------------
    def save(self, result: RunResult, raw_files: dict[str, Path | bytes] | None = None) -> str:
        """Store a run with its layer table and raw files; returns its run_id. All or nothing.

        Raises ``InvalidRunId`` for a run id not of the run-id pattern (nothing is written)."""
        raw_files = raw_files or {}
        final = self.runs_dir / check_run_id(result.run_id)
        if final.exists():
            raise FileExistsError(f"run {result.run_id} already stored")
        tmp = self.runs_dir / f".tmp-{result.run_id}-{uuid.uuid4().hex[:6]}"
        tmp.mkdir()
        try:
            raw_dir = tmp / "raw"
            names = []
            for name, src in raw_files.items():
                safe = artifact_name(name)
                raw_dir.mkdir(exist_ok=True)
                if isinstance(src, bytes):
                    (raw_dir / safe).write_bytes(src)
                else:
                    shutil.copyfile(src, raw_dir / safe)
                names.append(safe)
            # names listed by an imported document but not stored with it are dropped (they would name no file)
            result.artifacts = sorted(
                {
                    a
                    for a in result.artifacts
                    if isinstance(a, str) and ARTIFACT_NAME.fullmatch(a) and (raw_dir / a).is_file()
                }
                | set(names)
            )
            _write_layers(tmp / "layers.json", result.layers)
            body = json.dumps(result.to_dict(), sort_keys=True)
            (tmp / "result.json").write_text(body)
            _fsync_dir(tmp)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            self._insert(result, body)
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
        return result.run_id

    def _insert(self, result: RunResult, body: str) -> None:
        r = result.request
        with self._conn() as c:
            c.execute(
                "INSERT INTO runs (run_id, key, created_at, model, backend, precision, batch_size, device_name,"
                " flavour, e2e_median_ms, engine_count, is_sample, tags, result_json, submitted_by)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    result.run_id,
                    result.key,
                    result.created_at,
                    r["model"]["source"],
                    r["backend"],
                    r["compile"]["precision"],
                    r["model"]["batch_size"],
                    result.env.get("device_name", "?"),
                    result.env.get("flavour", "none"),
                    result.latency.median_ms,
                    result.engine_count,
                    int(result.is_sample),
                    ",".join(sorted(set(result.tags))),
                    body,
                    result.submitted_by,
                ),
            )

    def delete(self, run_id: str) -> None:
        if not is_run_id(run_id):
            raise RunNotFound(run_id)
        with self._conn() as c:
            cur = c.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            if cur.rowcount == 0:
                raise RunNotFound(run_id)
        shutil.rmtree(self.runs_dir / run_id, ignore_errors=True)

    def set_baseline(self, run_id: str, on: bool = True) -> None:
        if not is_run_id(run_id):
            raise RunNotFound(run_id)
        with self._conn() as c:
            if c.execute("UPDATE runs SET is_baseline = ? WHERE run_id = ?", (int(on), run_id)).rowcount == 0:
                raise RunNotFound(run_id)

    def set_tags(self, run_id: str, tags: Iterable[str]) -> None:
        """Replace a run's tags (kept in the row and in its stored result, so exports carry them)."""
        result = self.get(run_id)
        result.tags = sorted({t.strip() for t in tags if t.strip()})
        body = json.dumps(result.to_dict(), sort_keys=True)
        with self._conn() as c:
            c.execute(
                "UPDATE runs SET tags = ?, result_json = ? WHERE run_id = ?", (",".join(result.tags), body, run_id)
            )

    def add_tags(self, run_id: str, tags: Iterable[str]) -> None:
        """Add tags to a run, keeping the ones it has (a cached run can belong to several studies)."""
        current = set(self.get(run_id).tags)
        if not set(tags) <= current:
            self.set_tags(run_id, current | set(tags))

    def runs_with_tag(self, tag: str) -> list[str]:
        """Runs carrying exactly ``tag``, oldest first. A substring test on the comma-joined column, not LIKE: ``_``
        and ``%`` in a study id are plain characters, and case counts."""
        rows = self._conn().execute(
            "SELECT run_id FROM runs WHERE instr(',' || tags || ',', ?) > 0 ORDER BY created_at", (f",{tag},",)
        )
        return [r["run_id"] for r in rows]

    # -- read ----------------------------------------------------------------------------------
    def get(self, run_id: str) -> RunResult:
        if not is_run_id(run_id):  # never a path: a link's text reaches here
            raise RunNotFound(run_id)
        row = self._conn().execute("SELECT result_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        layers = _read_layers(self.runs_dir / run_id / "layers.json")
        return RunResult.from_dict(json.loads(row["result_json"]), layers)

    def exists(self, run_id: str) -> bool:
        if not is_run_id(run_id):
            return False
        return self._conn().execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None

    def find_by_key(self, key: str) -> RunResult | None:
        """The newest non-sample run with this cache key, or None."""
        row = (
            self._conn()
            .execute("SELECT run_id FROM runs WHERE key = ? AND is_sample = 0 ORDER BY created_at DESC LIMIT 1", (key,))
            .fetchone()
        )
        return self.get(row["run_id"]) if row else None

    def list_runs(self, **filters: Any) -> pd.DataFrame:
        """Summary rows, newest first. Filters: model, backend, precision, device_name, flavour
        (each a value or a list of values), is_sample (bool), since (ISO date)."""
        where, args = [], []
        for col in ("model", "backend", "precision", "device_name", "flavour"):
            v = filters.get(col)
            if v is None or v == []:
                continue
            vals = [v] if isinstance(v, str) else list(v)
            where.append(f"{col} IN ({','.join('?' * len(vals))})")
            args += vals
        if filters.get("is_sample") is not None:
            where.append("is_sample = ?")
            args.append(int(bool(filters["is_sample"])))
        if filters.get("since"):
            where.append("created_at >= ?")
            args.append(str(filters["since"]))
        sql = f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, run_id DESC"
        rows = [dict(r) for r in self._conn().execute(sql, args)]
        df = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
        df["is_sample"] = df["is_sample"].astype(bool)
        df["is_baseline"] = df["is_baseline"].astype(bool)
        return df

    def artifact_path(self, run_id: str, name: str) -> Path:
        if not is_run_id(run_id) or not ARTIFACT_NAME.fullmatch(name):
            raise FileNotFoundError(f"run {run_id!r} has no artifact {name!r}")
        p = self.runs_dir / run_id / "raw" / name
        if not p.is_file():
            raise FileNotFoundError(f"run {run_id} has no artifact {name!r}")
        return p

    # -- exchange (exports, bundled samples) -----------------------------------------------------
    def export_run(self, run_id: str) -> bytes:
        """One self-contained JSON document of the run: result, layer table and raw files (``exchange``)."""
        result = self.get(run_id)
        raw = {}
        for name in result.artifacts:
            try:
                raw[name] = self.artifact_path(run_id, name).read_text(errors="replace")
            except FileNotFoundError:
                continue
        return encode_run(result, raw)

    def import_run(self, blob: bytes, *, as_sample: bool = False) -> str:
        """Store an exported run (plain or gzipped JSON). Returns its run_id; an existing id is kept.

        The document is not trusted: its run id must be of the run-id pattern (``InvalidRunId`` otherwise) and its
        raw files' names become plain file names, so nothing is ever written outside this store's ``runs/``."""
        result, raw_texts = decode_run(blob)
        if as_sample:
            result.is_sample = True
        if self.exists(result.run_id):
            return result.run_id
        raw = {name: text.encode() for name, text in raw_texts.items()}
        return self.save(result, raw)

    def import_samples(self, samples_dir: Path | None = None) -> list[str]:
        """Load the bundled sample runs (recorded on a real GPU) once; idempotent.

        ``TRTDASH_SAMPLES_DIR`` points elsewhere (an empty directory turns samples off)."""
        ids = []
        samples_dir = samples_dir or Path(os.environ.get("TRTDASH_SAMPLES_DIR") or SAMPLES_DIR)
        for p in sorted(Path(samples_dir).glob("*.json.gz")):
            ids.append(self.import_run(p.read_bytes(), as_sample=True))
        return ids


def open_store(root: str | Path | None = None) -> RunStore:
    """The store as the dashboard and the CLI read it: the data directory's runs with the bundled sample runs
    imported (once; idempotent), so both list the same runs on a fresh data directory."""
    store = RunStore(root)
    store.import_samples()
    return store


def _write_layers(path: Path, layers: pd.DataFrame) -> None:
    path.write_text(normalise_layers(layers).to_json(orient="split", index=False, double_precision=15))


def _read_layers(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    return pd.read_json(io.StringIO(path.read_text()), orient="split", dtype=False)


def _fsync_dir(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
