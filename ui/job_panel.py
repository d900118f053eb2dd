"""Submitting work to the job queue and following it live, shared by the pages that start runs: a request checked
against this machine, queued, its progress polled only while a job of this session is active."""

from __future__ import annotations

import streamlit as st

from engine import jobs
from engine.access import Action
from engine.capabilities import Capabilities
from engine.errors import ConfigError
from engine.runner import check_request
from engine.settings.request import RunRequest, validate
from ui.errors import field_error, show_error
from ui.markdown import plain

SESSION_JOBS = "my_jobs"
SESSION_NOTES = "my_job_notes"  # what became of this session's jobs that failed or were cancelled
POLL_S = 1.0


@st.cache_resource(show_spinner=False)
def _workers_started() -> bool:
    """Start this host's workers once per server process (idempotent across processes too)."""
    jobs.ensure_workers()
    return True


def submit(request: RunRequest, gpu: int | str | None = None) -> jobs.Job:
    """Queue a request (or get its stored run at once) and follow it in this session."""
    _workers_started()
    job = jobs.submit(request, gpu=gpu)
    st.session_state[SESSION_NOTES] = []
    if job.state == "done" and job.cached:
        st.toast("Answered from a stored run with the same settings: nothing was run.", icon=":material/bolt:")
        st.query_params["run"] = job.run_id
        return job
    mine = st.session_state.setdefault(SESSION_JOBS, [])
    if job.job_id not in mine:
        mine.append(job.job_id)
    if job.joined:
        st.toast(
            "The same request is already queued or running: following that job instead of running it twice.",
            icon=":material/merge:",
        )
    return job


def submit_request(request: RunRequest) -> str | None:
    """Queue a request on the job queue; returns the job id, None when it was refused.

    Progress shows in ``job_panel()``, which switches the page to the new run (``?run=<id>``) when the job is
    done; a request the store already answers switches at once.
    """
    try:
        job = submit(request)
    except Exception as e:  # ConfigError / capability errors name the field and what to do
        show_error(e, "Nothing was submitted")
        return None
    if not job.cached:
        st.toast(
            f"Queued: {plain(request.model.source)} {request.backend} {request.compile.precision}",
            icon=":material/schedule:",
        )
    return job.job_id


def checked_request(raw: dict | RunRequest, caps: Capabilities) -> RunRequest | None:
    """``raw`` validated and checked against this machine; on a ConfigError the field and message are shown
    ("Nothing was submitted") and None is returned."""
    try:
        request = validate(raw if isinstance(raw, RunRequest) else RunRequest.from_dict(raw))
        check_request(request, caps)
    except ConfigError as e:
        field_error(e, "Nothing was submitted.")
        return None
    return request


def gpu_picker() -> int | str | None:
    """A GPU choice when this box (or the Redis queue) has several; None = any."""
    choices = jobs.gpu_choices()
    if len(choices) <= 1:
        return None
    labels = [label for label, _ in choices]
    picked = st.selectbox(
        "GPU",
        labels,
        help="Each GPU has its own worker: one job at a time per GPU, so timings are never disturbed by another job.",
        key="gpu_choice",
    )
    return dict(choices)[picked]


def _label(job: jobs.Job) -> str:
    """The job as markdown: its model (escaped: a name from a request), backend and precision."""
    return plain(job.request["model"]["source"]) + f" · {job.request['backend']} {job.request['compile']['precision']}"


def job_panel() -> None:
    """This session's jobs with live progress, and a cancel button for each active one; when a job of this
    session finishes, the page switches to its run. What failed or was cancelled stays said until the next
    submit.

    The live part is a fragment rerun every ``POLL_S`` only while this session has a job: a page with nothing
    to follow does no work (an idle tab costs the server nothing, so it disturbs no measurement)."""
    for note in st.session_state.get(SESSION_NOTES, []):
        _show_note(note)
    if st.session_state.get(SESSION_JOBS):
        _live_job_panel()


def _show_note(note: dict) -> None:
    if note["state"] == "failed":
        st.error(
            f"**{note['label']}** failed: {plain(note['error'])}"
            + (f"\n\n{plain(note['hint'])}" if note["hint"] else ""),
            icon=":material/error:",
        )
        if note["traceback"]:
            with st.expander("Technical details"):
                st.code(note["traceback"], language="text")
    elif note["state"] == "detached":
        st.info(
            f"You stopped following **{note['label']}**: it is {plain(note['owner'])}'s job and goes on running. "
            + plain(note["error"]),
            icon=":material/visibility_off:",
        )
    else:
        st.info(f"**{note['label']}** was cancelled.", icon=":material/cancel:")


@st.fragment(run_every=POLL_S)
def _live_job_panel() -> None:
    from ui.access import current_identity  # noqa: PLC0415 - the job panel runs without a sign-in in tests

    identity = current_identity()  # a fragment's rerun acts as the signed-in user too
    mine = st.session_state.get(SESSION_JOBS, [])
    jobs.ensure_workers()  # a worker killed while this page waits is replaced (a few ms when all are up)
    finished_now = None
    for job_id in list(mine):
        try:
            job = jobs.get(job_id)
        except jobs.JobError:
            mine.remove(job_id)
            continue
        label = _label(job)
        if job.active:
            with st.container(border=True):
                c1, c2 = st.columns([5, 1])
                c1.progress(job.progress, text=f"**{label}** — {plain(job.stage_text)} ({job.elapsed_s:.0f} s)")
                if c2.button("Cancel", key=f"cancel:{job_id}", icon=":material/cancel:"):
                    job = jobs.cancel(job_id, by=identity)
                    if job.cancel_refused:  # someone else's job this session joined: stop following it only
                        mine.remove(job_id)
                        _note(job, "detached", job.cancel_refused)
                        st.rerun()
                    st.rerun(scope="fragment")
            continue
        mine.remove(job_id)
        if job.state == "done":
            finished_now = job.run_id
        else:
            _note(job, job.state, job.error)
    if finished_now:
        st.query_params["run"] = finished_now
    if finished_now or not mine:
        st.rerun()  # the whole page: the new run, the notes, and no polling left behind


def _note(job: jobs.Job, state: str, error: str) -> None:
    """Keep what became of a job this session no longer follows, said until the next submit."""
    st.session_state.setdefault(SESSION_NOTES, []).append(
        {
            "label": _label(job),
            "state": state,
            "error": error,
            "hint": job.hint,
            "traceback": job.traceback,
            "owner": job.submitter,
        }
    )


def queue_overview() -> None:
    """What the shared box is doing: active jobs of every user, by route, with who submitted each. Anyone may
    cancel their own job; cancelling someone else's, or stopping the workers, needs admin."""
    from ui.access import current_identity, refused  # noqa: PLC0415 - the job panel runs without a sign-in in tests

    active = jobs.list_jobs(states=jobs.ACTIVE_STATES, limit=50)
    if not active:
        st.caption("The queue is empty.")
    else:
        rows = [j.overview_row() for j in active]
        st.dataframe(rows, hide_index=True, key="queue_table")
        by_id = {j.job_id: j for j in active}
        c1, c2 = st.columns([4, 1])
        picked = c1.selectbox(
            "Cancel a job",
            list(by_id),
            index=None,
            placeholder="pick a job",
            key="queue_cancel_pick",
            format_func=lambda i: f"{i[:8]} · {by_id[i].submitter} · {by_id[i].request['model']['source']}",
        )
        if (
            c2.button("Cancel job", icon=":material/cancel:", key="queue_cancel", disabled=picked is None)
            and picked is not None
        ):
            job = jobs.cancel(picked, by=current_identity())  # the job system decides who may (its submitter, admin)
            if job.cancel_refused:
                st.error(job.cancel_refused, icon=":material/lock:")
            else:
                st.rerun()
    if st.button(
        "Stop the workers",
        icon=":material/power_settings_new:",
        key="stop_workers",
        help="Stops this host's supervisor and workers; running jobs go back to the queue and run again "
        "when the workers are started (the next submission starts them).",
    ) and not refused(Action.STOP_WORKERS):
        stopped = jobs.stop_workers()
        st.toast(f"Stopped {stopped} worker(s).", icon=":material/power_settings_new:")
