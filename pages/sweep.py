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

# a shared link to a ladder (?ladder=<id>), a batch sweep (?batch=<id>), a sweep (?sweep=<id>) or an auto-tune
# (?autotune=<id>) opens on it (a tab writes its id to the link only when one is picked or opened, never its default)
tab_run, tab_results, tab_ladder, tab_batch, tab_tune = st.tabs(
    ["Run a sweep", "Sweep results", "Precision ladder", "Batch sweep", "Auto-tune"],
    default="Precision ladder"
    if st.query_params.get(ladder.URL_KEY)
    else "Batch sweep"
    if st.query_params.get(batch.URL_KEY)
    else "Sweep results"
    if st.query_params.get(sweep.URL_KEY)
    else "Auto-tune"
    if st.query_params.get(autotune.URL_KEY)
    else None,
)

with tab_ladder:
    ladder.render(store, caps)
with tab_batch:
    batch.render(store, caps)
with tab_run:
    sweep.render_run(store, caps)
with tab_results:
    sweep.render_results(store)
with tab_tune:
    autotune.render(store, caps)
