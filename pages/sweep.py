"""Sweeps: what does min_block_size / optimization_level / precision buy? Run a sweep through the job queue, open a
recorded one (bundled GPU samples included), a precision ladder, a batch sweep, or auto-tune under constraints."""

import streamlit as st

from ui.navigation import through_dashboard

through_dashboard()

from engine import capabilities
from ui.store import get_store
from ui.studies import autotune, batch, ladder, sweep

st.title("Sweeps and auto-tune")
caps = capabilities.detect()
store = get_store()

TABS = ["Run a sweep", "Sweep results", "Precision ladder", "Batch sweep", "Auto-tune"]
TAB_KEY = "sweeps_tab"  # the open tab; only it is computed (all five took 11-23 s on every visit)
# a shared link to a ladder (?ladder=<id>), a batch sweep (?batch=<id>), a sweep (?sweep=<id>) or an auto-tune
# (?autotune=<id>) opens on its tab, and so does a link written later (a finished sweep opens its results); a tab
# writes its id to the link only when one is picked or opened, never its default
LINKED_TAB = {ladder.URL_KEY: "Precision ladder", batch.URL_KEY: "Batch sweep", sweep.URL_KEY: "Sweep results"}
LINKED_TAB[autotune.URL_KEY] = "Auto-tune"
link = next(((k, st.query_params[k]) for k in LINKED_TAB if st.query_params.get(k)), None)
if link is not None and st.session_state.get(f"{TAB_KEY}:link") != link:
    st.session_state[f"{TAB_KEY}:link"] = link
    st.session_state[TAB_KEY] = LINKED_TAB[link[0]]
tab_run, tab_results, tab_ladder, tab_batch, tab_tune = st.tabs(TABS, key=TAB_KEY, on_change="rerun")

if tab_ladder.open:
    with tab_ladder:
        ladder.render(store, caps)
if tab_batch.open:
    with tab_batch:
        batch.render(store, caps)
if tab_run.open:
    with tab_run:
        sweep.render_run(store, caps)
if tab_results.open:
    with tab_results:
        sweep.render_results(store)
if tab_tune.open:
    with tab_tune:
        autotune.render(store, caps)
