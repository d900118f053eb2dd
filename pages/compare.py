"""Compare: 2-6 runs side by side against a baseline run, and which settings differ."""

import streamlit as st

from ui.navigation import through_dashboard

through_dashboard()

from engine.charts import compare as compare_charts
from engine.compare import cards as compare_cards
from engine.compare import differences, history, metrics, settings_table
from ui.compare_kernels import kernel_section
from ui.exports import report_button
from ui.generative import runs_section
from ui.navigation import link_to
from ui.run_picker import pick_runs
from ui.store import get_store

st.title("Compare runs")
with st.expander("Compare generative runs (like with like)"):
    runs_section("gen_compare")
runs = pick_runs(metrics.MAX_COMPARED, label="Runs to compare")
if len(runs) < 2:
    st.info(
        f"Pick 2 to {metrics.MAX_COMPARED} runs to compare (History can select them for you).", icon=":material/info:"
    )
    st.stop()

labels = {r.run_id: settings_table.run_label(r) for r in runs}
marked = history.marked_baselines(get_store().list_runs())
baseline_id = st.selectbox(
    "Baseline",
    list(labels),
    index=history.baseline_index(list(labels), marked),
    format_func=labels.get,
    key="compare_baseline",
    help="Deltas and speedups are against this run. Above 1× = faster than the baseline.",
)

table = metrics.metric_table(runs, baseline_id)
for line in differences.comparison_header(runs):  # what differs, the same engine, the judged figure: before numbers
    st.markdown(line)
for column, card in zip(st.columns(len(table)), compare_cards.cards(runs, table), strict=True):
    column.metric(
        card.name,
        card.value,
        delta=card.delta,  # in words ("2688× slower"): its colour and arrow say the direction
        delta_color="off" if card.faster is None else "green" if card.faster else "red",
        delta_arrow="off" if card.faster is None else "down" if card.faster else "up",
        help=card.help,
    )
    if card.caption:
        column.caption(card.caption)
st.dataframe(
    table.drop(columns=["run_id"]),
    hide_index=True,
    key="metric_table",
    column_config={
        "baseline": st.column_config.CheckboxColumn("baseline"),
        "gpu": st.column_config.TextColumn("GPU", help="Which GPU measured the run (#index on its host)."),
        "batch_size": st.column_config.NumberColumn("batch"),
        "e2e_median_ms": st.column_config.NumberColumn("e2e median (ms)", format="%.4f"),
        "gpu_time_ms": st.column_config.NumberColumn(
            "GPU time (ms)", format="%.4f", help="Kernel time per inference (CUDA-activity trace)."
        ),
        "gpu_spread_pct": st.column_config.NumberColumn("GPU window spread (%)", format="%.2f"),
        "kernels": st.column_config.NumberColumn("kernels / inference", format="%.0f"),
        "graph_replay_ms": st.column_config.NumberColumn("CUDA-graph replay (ms)", format="%.4f"),
        "host_overhead_ms": st.column_config.NumberColumn(
            "host overhead (ms)", format="%.4f", help="End-to-end median minus GPU time."
        ),
        "same_plan": st.column_config.CheckboxColumn(
            "baseline's plan", help="Ran the baseline's engine plan: any gap is noise."
        ),
        "judged_on": st.column_config.TextColumn("Δ on", help="The figure the deltas and speedup are on."),
        "judged_ms": st.column_config.NumberColumn("judged (ms)", format="%.4f"),
        "e2e_p90_ms": st.column_config.NumberColumn("p90 (ms)", format="%.4f"),
        "e2e_p99_ms": st.column_config.NumberColumn("p99 (ms)", format="%.4f"),
        "throughput_per_s": st.column_config.NumberColumn("throughput (/s)", format="%.1f"),
        "compile_s": st.column_config.NumberColumn("compile (s)", format="%.2f"),
        "engine_count": st.column_config.NumberColumn("engines", format="%d"),
        "engine_mb": st.column_config.NumberColumn("engine (MiB)", format="%.1f"),
        "peak_memory_mb": st.column_config.NumberColumn("peak mem (MiB)", format="%.1f"),
        "accuracy_rel_l2": st.column_config.NumberColumn("rel. L2 vs fp32", format="%.2e"),
        "top1_agreement": st.column_config.NumberColumn("top-1 agree", format="percent"),
        "delta_ms": st.column_config.NumberColumn("Δ (ms)", format="%+.4f"),
        "delta_pct": st.column_config.NumberColumn("Δ (%)", format="%+.1f%%"),
        "speedup": st.column_config.NumberColumn("speedup vs baseline", format="%.2f×"),
    },
)
for note in metrics.hardware_notes(runs):  # other machines, other GPUs, one configuration on several GPUs
    st.caption(note)

st.plotly_chart(compare_charts.metric_bars(metrics.metric_long(runs)), width="stretch", key="chart_metrics")
st.plotly_chart(
    compare_charts.latency_distribution(metrics.latency_samples(runs)), width="stretch", key="chart_latency"
)
st.plotly_chart(
    compare_charts.layer_type_diff_bar(metrics.layer_type_time(runs, baseline_id)),
    width="stretch",
    key="chart_layer_types",
)
kernel_section(runs, baseline_id, labels)

st.subheader("Settings that differ")
differ = settings_table.differing_settings(runs)
if differ.empty:
    st.caption("All settings, versions and the GPU are the same: differences are run-to-run noise.")
else:
    st.markdown(
        "  \n".join(f"**{setting}**: " + " · ".join(f"`{v}`" for v in values) for setting, values in differ.iterrows())
    )
with st.expander("All settings (differences highlighted)"):
    everything = settings_table.settings_table(runs)
    st.dataframe(everything.style.apply(settings_table.highlight_differences, axis=1), key="settings_all")

report_button(list(labels), baseline_id=baseline_id)
c1, c2 = st.columns(2)
with c1:
    link_to("layers", "Layers of the baseline run", [baseline_id], icon=":material/bar_chart:")
with c2:
    link_to("history", "Back to History", list(labels), icon=":material/history:")
