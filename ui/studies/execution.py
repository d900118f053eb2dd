"""A study's points on the job queue (``engine.studies.group.SweepExecution``: sweeps, ladders, batch sweeps):
queue them all or none, one progress bar with one Cancel for all of them, and a stored study's missing points with
one Resume."""

from __future__ import annotations

import streamlit as st

from engine import jobs
from engine.store import RunStore
from engine.studies import record
from engine.studies.sweeps import SweepExecution
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


def execution_progress(execution: SweepExecution, what: str, key: str) -> None:
    """The progress bar with its status line and one Cancel for everything ``execution`` queued."""
    c1, c2 = st.columns([5, 1])
    c1.progress(execution.fraction_finished, text=execution.status_text(what))
    if not execution.finished and c2.button(f"Cancel {what.lower()}", icon=":material/cancel:", key=key):
        execution.cancel()


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
