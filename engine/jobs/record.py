"""The job record: one submitted request and what became of it, as every job table stores it."""

from __future__ import annotations

import contextvars
import dataclasses
import getpass
import json
import time
from dataclasses import dataclass
from typing import Any

from engine.access import Identity
from engine.errors import UserError

STATES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("done", "failed", "cancelled")
UNKNOWN_SUBMITTER = "unknown"  # jobs and runs recorded before submitters were
RUN_KIND, AUTOTUNE_KIND = "run", "autotune"  # Job.kind

# Who the code running now acts for: the dashboard sets it to the signed-in identity at the top of every script
# run and of every fragment (each run may be a thread of its own, and each thread has its own context); a script
# or the CLI submits as its OS user, and cancels as that user, not as an admin.
_ACTING: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("trtdash_submitter", default=None)


def set_submitter(name: str, *, admin: bool = False) -> None:
    """Submit and cancel as ``name`` (an admin where ``admin``) from now on in this thread (the dashboard: the
    signed-in user of this session)."""
    _ACTING.set(Identity(name, admin=admin))


def current_submitter() -> str:
    """Who a job submitted now is recorded as: the name set in this thread, else the OS user."""
    return current_identity().name


def current_identity() -> Identity:
    """Who acts now: the identity set in this thread, else the OS user without admin rights."""
    acting = _ACTING.get()
    if acting is not None and acting.name:
        return acting
    try:
        return Identity(getpass.getuser())
    except Exception:  # no user name in the environment or the password database (a bare container)
        return Identity(UNKNOWN_SUBMITTER)


@dataclass
class Job:
    """One submitted request and what became of it. Timestamps are epoch seconds."""

    job_id: str
    request: dict[str, Any]
    key: str
    route: str  # huey queue: "cpu", "gpu", "gpu<i>", "gputype-<slug>"
    state: str = "queued"
    stage: str = ""
    fraction: float | None = None
    detail: str = ""
    run_id: str | None = None
    cached: bool = False  # answered from the store, nothing was run
    error: str = ""
    hint: str = ""
    traceback: str = ""
    worker_id: str = ""
    pid: int | None = None  # the job process while running
    gpu: str = ""  # what the submitter asked for ("", "0", "H100" ...)
    cancel_requested: bool = False
    created_ts: float = 0.0
    started_ts: float | None = None
    finished_ts: float | None = None
    updated_ts: float = 0.0
    submitted_by: str = ""  # who asked for it (login name, or the OS user of a script); "" = unknown
    requeues: int = 0  # times it was put back in the queue after its message was lost
    position: int | None = None  # 1 = next on its route; queued jobs only, computed on read
    joined: bool = False  # submit() found this identical job already queued/running
    cancel_refused: str = ""  # cancel() left it as it was, and why: it is someone else's (the asker only stops
    #                           following it)
    kind: str = RUN_KIND  # what the job process does: one run, or a whole auto-tune search (``key``
    #                                 is then "autotune:<id>" and ``request`` the search's base request)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def elapsed_s(self) -> float:
        end = self.finished_ts or time.time()
        return end - (self.started_ts or self.created_ts)

    @property
    def submitter(self) -> str:
        """Who submitted it, for display: ``unknown`` for jobs recorded before submitters were."""
        return self.submitted_by or UNKNOWN_SUBMITTER

    @property
    def progress(self) -> float:
        """How far it is, 0..1, for a progress bar (0 until the job reports a fraction)."""
        return min(max(self.fraction or 0.0, 0.0), 1.0)

    @property
    def stage_text(self) -> str:
        """Where it is, in words: "queued, position 2", "building · engine 1 of 3", "starting"."""
        if self.state == "queued":
            return f"queued, position {self.position}" if self.position else "queued"
        text = self.stage or "starting"
        return f"{text} · {self.detail}" if self.detail else text

    def overview_row(self) -> dict[str, Any]:
        """Its row in the queue overview: who asked for what, where it is and for how long."""
        model = self.request["model"]["source"] + (" (auto-tune)" if self.kind == AUTOTUNE_KIND else "")
        return {
            "job": self.job_id[:8],
            "submitted by": self.submitter,
            "model": model,
            "backend": self.request["backend"],
            "state": self.state,
            "position": self.position,
            "stage": self.stage_text,
            "route": self.route,
            "elapsed_s": round(self.elapsed_s, 1),
        }


# what a job table keeps of a Job (position, joined and cancel_refused are computed when read)
STORED = [f.name for f in dataclasses.fields(Job) if f.name not in ("position", "joined", "cancel_refused")]


def job_from_body(body: str) -> Job:
    d = json.loads(body)
    return Job(**{k: v for k, v in d.items() if k in STORED})


def job_body(job: Job) -> str:
    return json.dumps({k: getattr(job, k) for k in STORED}, sort_keys=True)


class JobError(UserError, LookupError):
    """A job operation the user asked for cannot be done; ``message`` says why and what to do."""
