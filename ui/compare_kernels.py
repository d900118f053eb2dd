"""Compare's kernel section: the kernel diff of a run against the baseline and every run's time split
(``engine.compare.kernels`` / ``time_split`` decide, ``kernel_words`` says, ``engine.charts.kernels`` draws; this only
places them)."""

from __future__ import annotations

import streamlit as st

from engine.charts import kernels as kernel_charts
from engine.compare import kernel_words, kernels, settings_table, time_split
from engine.result import RunResult
from engine.store import data_dir
from ui.markdown import plain
from ui.store import get_store, store_at


@st.cache_data(show_spinner=False, max_entries=32)
def _diff(root: str, base_id: str, other_id: str) -> kernels.KernelDiff | None:
    store = store_at(root)
    return kernels.diff_stored(store, store.get(base_id), store.get(other_id))


def kernel_section(runs: list[RunResult], baseline_id: str, labels: dict[str, str]) -> None:
    """``labels``: the picker's labels of the runs; charts use the short ones (what differs, and the id's tail)."""
    short = settings_table.short_labels(runs)
    st.subheader("Where the time goes: GPU busy, GPU idle")
    splits = [time_split.time_split(r, short[r.run_id]) for r in runs]
    st.plotly_chart(
        kernel_charts.time_split_bar(time_split.split_table(splits)), width="stretch", key="chart_time_split"
    )
    base_split = next(s for s in splits if s.run_id == baseline_id)
    for s in splits:
        if s.run_id != baseline_id and (line := kernel_words.split_delta_sentence(base_split, s)):
            st.markdown(f"**{plain(s.label)}** against the baseline: {plain(line)}")
    for note in dict.fromkeys(n for s in splits for n in s.notes):
        st.caption(plain(note))

    st.subheader("Kernel diff")
    others = [r.run_id for r in runs if r.run_id != baseline_id]
    other_id = (
        st.selectbox("Run compared with the baseline", others, format_func=labels.get, key="kernel_diff_run")
        if len(others) > 1
        else others[0]
    )
    found = _diff(str(data_dir()), baseline_id, other_id)
    if found is None:
        missing = kernels.missing_tables(get_store(), [r for r in runs if r.run_id in (baseline_id, other_id)])
        st.info(
            "No kernel diff: "
            + ", ".join(plain(labels[r.run_id]) for r in missing)
            + " stored no per-kernel table (GPU runs record one in their GPU-time pass; CPU runs and older runs "
            "have none).",
            icon=":material/info:",
        )
        return
    st.markdown(plain(kernel_words.headline(found)))
    for line in kernel_words.findings_lines(found)[1:]:
        st.markdown(f"- {plain(line)}")
    st.plotly_chart(
        kernel_charts.kernel_group_bar(found.groups(), short[baseline_id], short[other_id]),
        width="stretch",
        key="chart_kernel_diff",
    )
    st.dataframe(
        found.table,
        hide_index=True,
        key="kernel_diff_table",
        column_order=[c for c in kernels.DIFF_COLUMNS if c != "name"] + ["name"],
        column_config={
            "calls_base": st.column_config.NumberColumn("calls (baseline)", format="%.0f"),
            "calls_other": st.column_config.NumberColumn("calls (compared)", format="%.0f"),
            "calls_delta": st.column_config.NumberColumn("Δ calls", format="%+.0f"),
            "ms_base": st.column_config.NumberColumn("ms (baseline)", format="%.4f"),
            "ms_other": st.column_config.NumberColumn("ms (compared)", format="%.4f"),
            "ms_delta": st.column_config.NumberColumn("Δ ms", format="%+.4f"),
            "name": st.column_config.TextColumn("full kernel name", width="small"),
        },
    )
    st.caption("Per inference, from each run's GPU-time trace. Layer: the layer whose tactic is this kernel.")
