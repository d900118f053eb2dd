"""Where the data lives and what may name a path in it: the data directory, run ids, artifact names."""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import UserError, shown

DATA_DIR_ENV = "TRTDASH_DATA_DIR"
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
SAMPLES_DIR = PROJECT_ROOT / "samples"

# the one shape of a run id, everywhere a run id meets the file system: YYYYMMDD-HHMMSS-<8 hex> (new_run_id)
RUN_ID_PATTERN = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}")
TMP_DIR_PATTERN = re.compile(r"\.tmp-(\d{8}-\d{6}-[0-9a-f]{8})-[0-9a-f]{6}")  # a run being written
ARTIFACT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}")  # a raw file kept with a run


class InvalidRunId(UserError, ValueError):
    """A run id that is not of the one shape run ids have; ``message`` names it."""

    def __init__(self, run_id: object):
        super().__init__(
            f"{shown(run_id, 60)} is not a run id: run ids look like 20260101-120000-0123abcd "
            "(date-time and 8 hex digits)"
        )


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def is_run_id(value: object) -> bool:
    return isinstance(value, str) and RUN_ID_PATTERN.fullmatch(value) is not None


def check_run_id(value: object) -> str:
    """``value`` when it is a run id; raises ``InvalidRunId`` otherwise."""
    if not is_run_id(value):
        raise InvalidRunId(value)
    return value  # type: ignore[return-value]


def artifact_name(name: str) -> str:
    """A raw file's name as it is stored: its last path part, other characters than letters, digits and ._+-
    replaced, never hidden, "." or "..": it names a file inside the run's ``raw/`` and nothing else."""
    base = re.sub(r"[^A-Za-z0-9_.+-]", "_", Path(str(name)).name)[:200]
    if not base or base.startswith("."):
        base = "_" + base
    if not ARTIFACT_NAME.fullmatch(base):
        raise ValueError(f"{name!r} cannot be a raw file name")
    return base
