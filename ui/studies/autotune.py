"""Sweeps page, Auto-tune tab: an Optuna search over the compile knobs under constraints (build time, accuracy,
allowed precisions), run as one job on the queue (engine/studies/autotune/job.py) with its study stored in the data
directory: a rerun or a closed tab does not stop it, Cancel stops it, Resume continues it, and a link
(``?autotune=<id>``) opens a stored search with its report."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.capabilities import Capabilities
from engine.charts import autotune as autotune_charts
from engine.settings.defaults import INDUCTOR_MODES
from engine.store import RunStore
from engine.studies import autotune, sweeps
from engine.studies.autotune.job import SearchStatus, cancel_autotune, resume_autotune, search_status, submit_autotune
from engine.studies.autotune.stored import AutotuneNotFound, list_plans, load_report, plan_autotune
from ui.errors import show_error
from ui.exports import autotune_report_button
from ui.job_panel import checked_request
from ui.studies.execution import live_progress
from ui.studies.picker import pick_study
from ui.studies.sweep import recommended_for, study_base

URL_KEY = "autotune"
PICK_KEY = "tune:chosen"
REPORTS = "autotune_reports"  # autotune id -> (what the report was read at, the AutotuneReport)
TRACKING = "tune:tracking"  # the search the live progress follows


def render(store: RunStore, caps: Capabilities) -> None:
    _search_form(store, caps)
    st.divider()
    # searches stored before they were study records are listed from their plan files
    planned = {p.autotune_id: f"{p.autotune_id} · {p.label()}" for p in list_plans(store.root)}
    chosen = pick_study(
        store,
        "autotune",
        url_key=URL_KEY,
        key=PICK_KEY,
        label="Auto-tune searches",
        tagged=planned,
        empty="No auto-tune stored yet: start a search above.",
        unknown=lambda i: f"No stored auto-tune {i!r}: pick one from the list, or start a search.",
    )
    if chosen is not None:
        _show_search(store, chosen)


def _search_form(store: RunStore, caps: Capabilities) -> None:
    raw = study_base("tune", caps)
    c1, c2, c3 = st.columns(3)
    max_build = c1.number_input("Max build time (s, 0 = no limit)", value=0.0, min_value=0.0, key="tune:build")
    max_err = c2.number_input(
        "Max rel. L2 error vs eager fp32 (0 = no limit)", value=0.0, min_value=0.0, format="%.4f", key="tune:err"
    )
    precisions = c3.multiselect(
        "Allowed precisions", ["fp32", "fp16", "bf16"], default=["fp32", "fp16"], key="tune:prec"
    )
    search = st.multiselect(
        "Knobs to search",
        list(autotune.SEARCHABLE_KNOBS),
        key="tune:knobs",
        default=list(autotune.SEARCHABLE_KNOBS) if raw["backend"] == "tensorrt" else [sweeps.PRECISION_KNOB],
        format_func=sweeps.SWEEPABLE_KNOBS.get,
    )
    c1, c2 = st.columns([3, 1])
    trials = c1.slider("Trials", 1, 60, 20, key="tune:trials")
    inductor = c2.selectbox(
        "Inductor baseline",
        INDUCTOR_MODES,
        key="tune:inductor",
        help="Also time torch.compile once, with the defaults run, its compile time recorded: "
        "default (quick) or max-autotune (can take many minutes).",
    )
    if st.button(
        "Search",
        type="primary",
        icon=":material/travel_explore:",
        help="Runs as one job on the queue: it goes on when this tab reloads or closes.",
    ) and (base := checked_request(raw, caps)):
        try:
            limits = autotune.Constraints(
                max_build_s=max_build or None, max_rel_l2=max_err or None, precisions=tuple(precisions)
            )
            space = {
                k: v for k, v in autotune.default_space(limits, recommended_for(store, base)).items() if k in search
            }
            plan = plan_autotune(
                base,
                space=space,
                constraints=limits,
                n_trials=trials,
                baselines=("eager", f"inductor_{inductor}") if inductor != "off" else ("eager",),
            )
            job = submit_autotune(plan)
        except Exception as e:
            show_error(e, "Nothing was submitted")
            return
        st.query_params[URL_KEY] = plan.autotune_id  # the picker below opens it, and the link names it
        st.toast(f"Auto-tune {plan.autotune_id} queued ({job.stage_text}).", icon=":material/schedule:")


def _show_search(store: RunStore, autotune_id: str) -> None:
    try:
        status = search_status(autotune_id)
    except AutotuneNotFound as e:
        show_error(e)
        return
    if status.active:
        _live_progress(store, autotune_id)
        return
    c1, c2 = st.columns([5, 1])
    c1.caption(status.text())
    if status.resumable and c2.button(
        "Resume",
        icon=":material/play_arrow:",
        key=f"tune:resume:{autotune_id}",
        help="Continue the same search: the trials done are kept and counted.",
    ):
        try:
            resume_autotune(autotune_id)
        except Exception as e:
            show_error(e, "Nothing was resumed")
        else:
            st.rerun()
    _report_view(store, status)


def _report_view(store: RunStore, status: SearchStatus) -> None:
    """The report of what the search has measured so far (all of it once it ended)."""
    autotune_id = status.plan.autotune_id
    report = _report(store, autotune_id, (status.progress.trials_done, status.job.state if status.job else ""))
    if report is None:
        return
    st.markdown(f"**{report.summary()}**")
    for note in report.notes:
        st.caption(note)
    st.plotly_chart(
        autotune_charts.autotune_trials(report.trials, report.objective),
        width="stretch",
        key=f"tune:chart:{autotune_id}",
    )
    st.dataframe(pd.DataFrame(report.trials), hide_index=True, key=f"tune:trials:{autotune_id}")
    if not status.active:
        autotune_report_button(report)


class SearchTracker:
    """A search's job as the live progress follows it (``ui.studies.execution.Tracked``): read again each poll."""

    def __init__(self, autotune_id: str):
        self.autotune_id = autotune_id
        self.status = search_status(autotune_id)

    def poll(self) -> SearchStatus:
        self.status = search_status(self.autotune_id)
        return self.status

    @property
    def finished(self) -> bool:
        return not self.status.active

    @property
    def fraction_finished(self) -> float:
        return self.status.fraction

    def status_text(self, what: str) -> str:
        return self.status.text()

    def cancel(self) -> None:
        """Stops after the trial running now (or within it); Resume continues the same search."""
        cancel_autotune(self.autotune_id)
        self.poll()


def _live_progress(store: RunStore, autotune_id: str) -> None:
    """The search's progress and its Cancel (the one live progress of the Sweeps tabs), polled only while its job
    is queued or running, with the report of what it measured so far; the whole page reruns when it ends."""
    st.session_state[TRACKING] = SearchTracker(autotune_id)

    def report_so_far(tracker: SearchTracker) -> None:
        _report_view(store, tracker.poll())

    live_progress(TRACKING, "Search", key=f"tune:cancel:{autotune_id}", details=report_so_far, on_finish=lambda t: None)


def _report(store: RunStore, autotune_id: str, read_at: tuple) -> autotune.AutotuneReport | None:
    """The stored search's report, read again only when a trial was added or its job changed state."""
    cached = st.session_state.setdefault(REPORTS, {}).get(autotune_id)
    if cached is not None and cached[0] == read_at:
        return cached[1]
    report = load_report(store.root, autotune_id, store)
    st.session_state[REPORTS][autotune_id] = (read_at, report)
    return report
