"""A study's points on the job queue (``engine.studies.group.SweepExecution``: sweeps, ladders, batch sweeps):
queue them all or none, one live progress fragment (a bar, one Cancel for all of them, what each point is doing)
used by every tab, and a stored study's missing points with one Resume."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import streamlit as st

from engine import jobs
from engine.store import RunStore
from engine.studies import record
from engine.studies.sweeps import FINISHED_STATES, SweepExecution
from ui.access import current_identity
from ui.errors import show_error
from ui.markdown import plain


def start_execution(execution: SweepExecution, what: str) -> bool:
    """Queue every point; if the queue refuses one, cancel those already queued (they would run to no
    sweep) and say why. True when all of it is queued."""
    try:
        jobs.ensure_workers()
        execution.start()
    except Exception as e:
        if any(ps.job_id for ps in execution.points):
            execution.cancel()
        show_error(e, f"The {what.lower()} could not be queued")
        return False
    return True


class Tracked(Protocol):
    """What the live progress follows: a study's execution (``SweepExecution``), or an auto-tune's search job."""

    @property
    def finished(self) -> bool: ...

    @property
    def fraction_finished(self) -> float: ...

    def status_text(self, what: str) -> str: ...

    def cancel(self) -> Any: ...


def execution_progress(execution: Tracked, what: str, key: str) -> None:
    """The progress bar with its status line and one Cancel for everything ``execution`` queued."""
    c1, c2 = st.columns([5, 1])
    c1.progress(execution.fraction_finished, text=execution.status_text(what))
    if not execution.finished and c2.button(f"Cancel {what.lower()}", icon=":material/cancel:", key=key):
        execution.cancel()


POLL_S = 1.0
Details = Callable[[Any], None]  # polls the execution, then says what its points are doing
OnFinish = Callable[[Any], None]  # what the tab keeps and opens when everything finished


def point_lines(execution: SweepExecution) -> None:
    """Poll, then each failed point's error and each unfinished point's state (with its job's progress)."""
    for p in execution.poll():
        if p.view.state == "failed":
            st.error(plain(f"{p.point.label}: {p.view.error}"), icon=":material/error:")
        elif p.view.state not in FINISHED_STATES:
            st.caption(plain(f"{p.point.label}: {p.view.state}" + (f" · {p.view.detail}" if p.view.detail else "")))


def live_progress(
    running_key: str, what: str, *, key: str, on_finish: OnFinish, details: Details = point_lines
) -> None:
    """The live state of the execution this session started or opened (``st.session_state[running_key]``: a
    ``SweepExecution``, or anything ``Tracked``), polled every second only while it runs: the progress bar with one
    Cancel, then ``details``; when everything finished the execution leaves the session state, ``on_finish`` runs
    and the page reruns (the tab opens the study)."""
    if st.session_state.get(running_key) is not None:
        _live_progress(running_key, what, key, on_finish, details)


@st.fragment(run_every=POLL_S)
def _live_progress(running_key: str, what: str, key: str, on_finish: OnFinish, details: Details) -> None:
    current_identity()  # its Cancel cancels as the signed-in user (a fragment's rerun may be a thread of its own)
    execution: Tracked | None = st.session_state.get(running_key)
    if execution is None:
        st.rerun()
        return
    bar = st.container()
    details(execution)
    with bar:
        execution_progress(execution, what, key=key)
    if execution.finished:
        del st.session_state[running_key]
        on_finish(execution)
        st.rerun()


def study_gaps(store: RunStore, study_id: str, key: str) -> None:
    """A stored study's state (brought up to date from the queue) and, when points are missing (failed, cancelled,
    never run), what is missing with one Resume button that queues them again. Nothing for a study known by its
    tags only (a bundled sample)."""
    if record.find_study(store, study_id) is None:
        return
    record.settle(store, study_id, jobs.get)
    study = record.load_study(store, study_id)
    if study.state == "running":
        st.caption(plain(study.status_text))
    if not study.missing:
        return
    c1, c2 = st.columns([5, 1])
    c1.warning(plain(study.missing_text), icon=":material/warning:")
    if c2.button("Resume", icon=":material/replay:", key=f"{key}:resume:{study_id}"):
        try:
            jobs.ensure_workers()
            st.success(plain(record.resumed_text(record.resume_study(store, study_id, jobs.submit))))
        except Exception as e:
            show_error(e, "The missing points could not be queued")
