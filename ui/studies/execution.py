"""A study's points on the job queue (``engine.studies.group.SweepExecution``: sweeps, ladders, batch sweeps):
queue them all or none, and one progress bar with one Cancel for all of them."""

from __future__ import annotations

import streamlit as st

from engine import jobs
from engine.studies.sweeps import SweepExecution
from ui.errors import show_error


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
