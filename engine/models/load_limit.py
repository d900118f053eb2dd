"""A time limit around loading an admin's ``.pt2`` file (the safety check and torch's deserialisation).

``engine/models/pt2_exprs.py`` refuses the expressions known to make torch compute for ever; this limit bounds
whatever else a crafted file may find. Two ways, one alarm (``SIGALRM`` after ``limit_s()`` seconds):

* in a process that exists for one job (the job process, the CLI's child: ``end_process_on_overrun()``), the
  alarm keeps its default action: the kernel ends the process at the limit even while C code holds the
  interpreter (a huge integer power never returns to Python to let a handler run). Its parent reads the signal
  in the exit code and says why (``overrun_reason``); a worker then takes its next job;
* elsewhere (tests, an in-process caller), a handler raises ``ModelError`` at the limit: it stops Python-level
  work only, and never ends a process that serves more than one job.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from engine.errors import ModelError

LIMIT_ENV = "TRTDASH_PT2_LOAD_LIMIT_S"
DEFAULT_LIMIT_S = 60.0
HINT = (
    "A .pt2 file torch.export.save wrote for a plain model loads in seconds: re-export it, or provide the model "
    f"as a .py file. The administrator can raise the limit with {LIMIT_ENV}."
)

_end_process = False


def end_process_on_overrun() -> None:
    """This process runs one job: an overrun ends it (by the kernel, whatever holds the interpreter)."""
    global _end_process
    _end_process = True


def limit_s() -> float:
    """The limit in seconds: ``TRTDASH_PT2_LOAD_LIMIT_S`` when it is a positive finite number, else 60."""
    try:
        value = float(os.environ.get(LIMIT_ENV, ""))
    except ValueError:
        return DEFAULT_LIMIT_S
    return value if math.isfinite(value) and value > 0 else DEFAULT_LIMIT_S


def overrun_reason(what: str = "a .pt2 model file") -> tuple[str, str]:
    """(message, hint) for a load stopped at the limit."""
    return (
        f"Loading {what} (safety check and deserialisation) took longer than its {limit_s():g} s limit; "
        "the process loading it was stopped.",
        HINT,
    )


@contextlib.contextmanager
def bounded(what: str) -> Iterator[None]:
    """Run the block under the load limit (the main thread only: elsewhere a signal cannot be armed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def overrun(signum: int, frame: Any) -> None:
        raise ModelError(*overrun_reason(what))

    previous = signal.signal(signal.SIGALRM, signal.SIG_DFL if _end_process else overrun)
    signal.setitimer(signal.ITIMER_REAL, limit_s())
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
