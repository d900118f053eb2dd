"""This host's processes as the job system sees them: its name, whether a pid lives, a lock file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

HOST_ID_ENV = "TRTDASH_HOST_ID"
HEARTBEAT_S = 2.0
HEARTBEAT_TIMEOUT_S = 20.0  # a worker on another host silent this long is dead


def this_host() -> str:
    return os.environ.get(HOST_ID_ENV) or socket.gethostname()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; only its parent has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def runs(pid: int, marker: str) -> bool:
    """Whether process ``pid`` lives and its command line holds ``marker`` (a pid file's pid may have been reused
    by another program since); True where /proc cannot say."""
    if not pid_alive(pid):
        return False
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def read_pid(path: Path) -> int | None:
    """The pid a pid file holds, or None (no file, garbage)."""
    with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
        return int(path.read_text().split()[0])
    return None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across threads and processes of this host, held for the ``with`` block."""
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def lock_is_held(path: Path) -> bool:
    """Whether some process holds ``path`` locked (with ``hold_lock``). Cheap: one non-blocking try."""
    try:
        with open(path, "a+") as f:
            try:  # shared: two probes at once do not see each other as the holder
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
            return False
    except OSError:
        return False


def hold_lock(path: Path, patience_s: float = 1.0) -> int | None:
    """Take ``path``'s lock for the rest of this process's life; None when another process holds it.
    Returns the file descriptor (kept open: closing it releases the lock). Tries for ``patience_s``: a
    ``lock_is_held`` probe holds the lock for a moment, a real holder for good."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + patience_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.01)
