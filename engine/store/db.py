"""The runs' SQLite table: its schema, the columns a run listing shows, and the connection every store uses
(WAL, autocommit; a ``with`` block is one IMMEDIATE transaction)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    model TEXT NOT NULL,
    backend TEXT NOT NULL,
    precision TEXT NOT NULL,
    batch_size INTEGER NOT NULL,
    device_name TEXT NOT NULL,
    flavour TEXT NOT NULL,
    e2e_median_ms REAL NOT NULL,
    engine_count INTEGER NOT NULL,
    is_sample INTEGER NOT NULL DEFAULT 0,
    is_baseline INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '',
    result_json TEXT NOT NULL,
    submitted_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_key ON runs(key);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at);
"""

SUMMARY_COLUMNS = [
    "run_id",
    "created_at",
    "model",
    "backend",
    "precision",
    "batch_size",
    "device_name",
    "flavour",
    "e2e_median_ms",
    "engine_count",
    "is_sample",
    "is_baseline",
    "tags",
    "key",
    "submitted_by",
]


def connect(db_path: Path) -> Tx:
    """A connection to the store's SQLite file for one thread: WAL, rows readable by column name."""
    conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.row_factory = sqlite3.Row
    return Tx(conn)


class Tx:
    """A sqlite3 connection whose ``with`` block is one IMMEDIATE transaction."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def execute(self, *args: Any) -> sqlite3.Cursor:
        return self.conn.execute(*args)

    def executescript(self, script: str) -> None:
        self.conn.executescript(script)
