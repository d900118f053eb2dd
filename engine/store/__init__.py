"""The store: the only code that touches the data directory's results.

runs.py     runs: SQLite (WAL) metadata + a directory per run (tables, raw files), atomic writes
db.py       the runs' SQLite table (schema, listed columns) and the connection (one IMMEDIATE transaction a block)
exchange.py the exchange document of one run (exports, bundled samples): encode, and decode untrusted
studies.py  stored studies (groups of runs): kind, plan, tags, state, point -> job -> run, in the runs' SQLite
paths.py    the data directory, and what may name a path in it: the run-id pattern, raw files' names
"""

from engine.store.paths import (
    ARTIFACT_NAME,
    DATA_DIR_ENV,
    DEFAULT_DATA_DIR,
    PROJECT_ROOT,
    RUN_ID_PATTERN,
    SAMPLES_DIR,
    InvalidRunId,
    check_run_id,
    data_dir,
    is_run_id,
    new_run_id,
    utc_now_iso,
)
from engine.store.runs import ORPHAN_MIN_AGE_S, SUMMARY_COLUMNS, RunNotFound, RunStore, open_store

__all__ = [
    "ARTIFACT_NAME",
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "ORPHAN_MIN_AGE_S",
    "PROJECT_ROOT",
    "RUN_ID_PATTERN",
    "SAMPLES_DIR",
    "SUMMARY_COLUMNS",
    "InvalidRunId",
    "RunNotFound",
    "RunStore",
    "check_run_id",
    "data_dir",
    "is_run_id",
    "new_run_id",
    "open_store",
    "utc_now_iso",
]
