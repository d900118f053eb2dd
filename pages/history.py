"""History: every stored run, filtered; select runs to compare, delete or mark as a baseline."""

import streamlit as st

from ui.navigation import through_dashboard

through_dashboard()

from engine import run_figures
from engine.access import Action
from engine.compare import history, metrics
from engine.store import RunNotFound
from ui.access import refused
from ui.errors import show_error
from ui.generative import runs_section
from ui.navigation import link_to, page_url
from ui.run_picker import forget_selection, pick_runs
from ui.store import forget_runs, get_store

MAX_SELECTED = 50


@st.cache_data(show_spinner=False, max_entries=20_000)
def _gpu_time(root: str, run_id: str) -> str:
    """A stored run's GPU-time cell; a run never changes its figures, so one read per run and server."""
    try:
        return run_figures.gpu_time_cell(get_store().get(run_id))
    except RunNotFound:
        return "deleted"


st.title("Run history")
with st.expander("Generative runs (prefill and decode apart)"):
    runs_section("gen_history")
store = get_store()
summary = store.list_runs()
if summary.empty:
    st.info("No runs stored yet. Profile a model on the Profile page.", icon=":material/info:")
    st.stop()

options = history.history_filter_options(summary)
names = {
    "model": "Model",
    "device_name": "GPU / device",
    "flavour": "Flavour",
    "precision": "Precision",
    "backend": "Backend",
}
cols = st.columns(len(names) + 1)
chosen = {
    col: cols[i].multiselect(label, options[col], key=f"filter_{col}", placeholder="all")
    for i, (col, label) in enumerate(names.items())
}
dates = cols[-1].date_input("Recorded between", value=(), key="filter_dates", help="UTC dates, inclusive.")
since = dates[0] if len(dates) >= 1 else None
until = dates[1] if len(dates) == 2 else None
shown = history.filter_history(summary, since=since, until=until, **chosen)

st.caption(f"{len(shown):,} of {len(summary):,} runs · ★ baseline · samples were recorded on a real GPU")
st.dataframe(
    history.history_table(shown, {run_id: _gpu_time(str(store.root), run_id) for run_id in shown["run_id"]}),
    hide_index=True,
    key="history_table",
    column_config={
        "run_id": st.column_config.TextColumn("run id"),
        "created": st.column_config.DatetimeColumn("recorded (UTC)", format="YYYY-MM-DD HH:mm"),
        "batch_size": st.column_config.NumberColumn("batch"),
        "device_name": st.column_config.TextColumn("device"),
        "e2e_median_ms": st.column_config.NumberColumn("e2e median (ms)", format="%.4f"),
        "gpu_time": st.column_config.TextColumn(
            "GPU time", width="large", help="Kernel time per inference (CUDA-activity trace), or why the run has none."
        ),
        "engine_count": st.column_config.NumberColumn("engines"),
        "is_sample": st.column_config.CheckboxColumn("sample"),
        "is_baseline": st.column_config.CheckboxColumn("★ baseline"),
    },
)

st.subheader("Selected runs")
selected = [r.run_id for r in pick_runs(MAX_SELECTED, key="history_selection", label="Select runs")]
if not selected:
    st.caption("Select runs to compare, open, delete or mark them as a baseline.")
    st.stop()

st.markdown("Shareable link to this selection:")
st.code(page_url("history", selected), language="text")
c = st.columns(3)
with c[0]:
    if 2 <= len(selected) <= metrics.MAX_COMPARED:
        link_to("compare", f"Compare these {len(selected)} runs", selected, icon=":material/compare_arrows:")
    else:
        st.caption(f"Compare takes 2 to {metrics.MAX_COMPARED} runs.")
with c[1]:
    link_to("layers", "Layers of the first run", selected[:1], icon=":material/bar_chart:")
with c[2]:
    link_to("segmentation", "Segmentation of the first run", selected[:1], icon=":material/account_tree:")

marked = set(history.marked_baselines(summary))
b1, b2, b3 = st.columns([1, 1, 2])
if b1.button("Mark as baseline", icon=":material/star:", key="mark_baseline"):
    for run_id in selected:
        store.set_baseline(run_id, True)
    st.rerun()
if b2.button(
    "Unmark baseline", icon=":material/star_border:", key="unmark_baseline", disabled=not marked.intersection(selected)
):
    for run_id in selected:
        store.set_baseline(run_id, False)
    st.rerun()
with b3:
    confirm = st.checkbox(f"Yes, delete {len(selected)} run(s) and their files", key="confirm_delete")
    if st.button(
        "Delete selected",
        icon=":material/delete:",
        type="primary",
        disabled=not confirm,
        key="delete_runs",
        help="Needs admin rights (the admin password).",
    ) and not refused(Action.DELETE_RUNS):
        try:
            for run_id in selected:
                store.delete(run_id)
        except RunNotFound as e:
            show_error(e, "Nothing more was deleted")
        forget_runs()
        forget_selection("history_selection")
        st.rerun()
