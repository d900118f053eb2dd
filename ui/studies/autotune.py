"""Sweeps page, Auto-tune tab: an Optuna search over the compile knobs under constraints (build time, accuracy,
allowed precisions), each trial a run on the job queue, the best configuration in words."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import jobs
from engine.capabilities import Capabilities
from engine.charts import autotune as autotune_charts
from engine.settings.defaults import INDUCTOR_MODES
from engine.store import RunStore
from engine.studies import autotune, sweeps
from ui.errors import show_error
from ui.exports import autotune_report_button
from ui.job_panel import checked_request
from ui.studies.sweep import recommended_for, study_base

TUNE_REPORT = "autotune_report"     # the AutotuneReport of the search this session ran


def render(store: RunStore, caps: Capabilities) -> None:
    raw = study_base("tune", caps)
    c1, c2, c3 = st.columns(3)
    max_build = c1.number_input("Max build time (s, 0 = no limit)", value=0.0, min_value=0.0, key="tune:build")
    max_err = c2.number_input("Max rel. L2 error vs eager fp32 (0 = no limit)", value=0.0, min_value=0.0,
                              format="%.4f", key="tune:err")
    precisions = c3.multiselect("Allowed precisions", ["fp32", "fp16", "bf16"], default=["fp32", "fp16"],
                                key="tune:prec")
    search = st.multiselect("Knobs to search", list(autotune.SEARCHABLE_KNOBS), key="tune:knobs",
                            default=list(autotune.SEARCHABLE_KNOBS) if raw["backend"] == "tensorrt"
                            else [sweeps.PRECISION_KNOB], format_func=sweeps.SWEEPABLE_KNOBS.get)
    c1, c2 = st.columns([3, 1])
    trials = c1.slider("Trials", 1, 60, 20, key="tune:trials")
    inductor = c2.selectbox("Inductor baseline", INDUCTOR_MODES, key="tune:inductor",
                            help="Also time torch.compile once, with the defaults run, its compile time recorded: "
                                 "default (quick) or max-autotune (can take many minutes).")
    if st.button("Search", type="primary", icon=":material/travel_explore:") and (base := checked_request(raw, caps)):
        try:
            limits = autotune.Constraints(max_build_s=max_build or None, max_rel_l2=max_err or None,
                                          precisions=tuple(precisions))
            space = {k: v for k, v in autotune.default_space(limits, recommended_for(store, base)).items()
                     if k in search}
            jobs.ensure_workers()
            status = st.status("Searching…", expanded=True)
            bar = status.progress(0.0)

            def on_trial(t: autotune.TrialRecord) -> None:
                fraction, text = t.progress(trials)
                bar.progress(fraction, text=text)

            evaluate = sweeps.evaluator_on_queue(store, jobs.submit, jobs.get)
            st.session_state[TUNE_REPORT] = autotune.autotune(base, evaluate, space=space, constraints=limits,
                                                              n_trials=trials, on_trial=on_trial,
                                                              baselines=("eager", f"inductor_{inductor}")
                                                              if inductor != "off" else ("eager",))
            status.update(label="Search finished", state="complete", expanded=False)
        except Exception as e:
            show_error(e, "The search failed")
    report: autotune.AutotuneReport | None = st.session_state.get(TUNE_REPORT)
    if report is not None:
        st.markdown(f"**{report.summary()}**")
        for note in report.notes:
            st.caption(note)
        st.plotly_chart(autotune_charts.autotune_trials(report.trials, report.objective), width="stretch")
        st.dataframe(pd.DataFrame(report.trials), hide_index=True)
        autotune_report_button(report)
