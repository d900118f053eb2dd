"""Layers: where one run's time goes, layer by layer (needs a per-layer profile)."""

import streamlit as st

from ui.navigation import through_dashboard

through_dashboard()

from engine import run_figures, run_parts
from engine.charts import layer_tables
from engine.charts import layers as layer_charts
from engine.compare import metrics
from ui.exports import export_buttons
from ui.figures import figure_row, timing_row
from ui.navigation import link_to
from ui.run_picker import pick_run, run_header

LAYER_TABLE_ORDER = [
    "order",
    "name",
    "layer_type",
    "avg_ms",
    "share",
    "precision",
    "module_path",
    "segment",
    "runtime",
    "tactic",
    "input_shapes",
    "output_shapes",
]

st.title("Per-layer latency")
run = pick_run(part=run_parts.LAYER_PROFILE)
if run is None:
    st.stop()
run_header(run)

timing_row(run, throughput=False)
figure_row(run_figures.layer_profile_figures(run))

if run.layers.empty:
    st.info(
        f"This run has no per-layer profile: {run_parts.LAYER_PROFILE.absence(run)}. Run it again with "
        "**Per-layer profile** on, on the Profile page.",
        icon=":material/info:",
    )
else:
    top, by_type, precision, timeline, modules, table = st.tabs(
        ["Slowest layers", "By layer type", "By precision", "Timeline", "Module tree", "Table"]
    )
    with top:
        n = st.slider("Layers shown", 5, 100, 20, key="layers_top_n")
        st.plotly_chart(layer_charts.top_layers_bar(run.layers, n), width="stretch", key="chart_top")
    with by_type:
        st.plotly_chart(layer_charts.layer_type_treemap(run.layers), width="stretch", key="chart_treemap")
        st.dataframe(
            layer_tables.time_by(run.layers, "layer_type"),
            hide_index=True,
            column_config={
                "total_ms": st.column_config.NumberColumn("time (ms)", format="%.4f"),
                "share": st.column_config.ProgressColumn("share", format="percent"),
            },
        )
    with precision:
        st.plotly_chart(layer_charts.precision_share_bar(run.layers), width="stretch", key="chart_precision")
    with timeline:
        st.plotly_chart(layer_charts.execution_timeline(run.layers), width="stretch", key="chart_timeline")
    with modules:
        st.plotly_chart(layer_charts.module_tree(run.layers), width="stretch", key="chart_modules")
    with table:
        query = st.text_input(
            "Search layers", placeholder="name, type, module path, precision, tactic", key="layers_query"
        )
        found = layer_tables.search_layers(run.layers, query)
        st.caption(f"{len(found):,} of {len(run.layers):,} layers · click a column header to sort")
        st.dataframe(
            found,
            hide_index=True,
            key="layers_table",
            column_order=LAYER_TABLE_ORDER,
            column_config={
                "avg_ms": st.column_config.NumberColumn("avg (ms)", format="%.4f"),
                "share": st.column_config.ProgressColumn("share", format="percent"),
            },
        )
    overhead = metrics.profiling_overhead(run)
    st.plotly_chart(
        layer_charts.profiling_overhead_bar(overhead["e2e_median_ms"], overhead["profiled_sum_ms"]),
        width="stretch",
        key="chart_overhead",
    )

st.subheader("Export")
export_buttons(run)
c1, c2 = st.columns(2)
with c1:
    link_to("segmentation", "Segmentation of this run", [run.run_id], icon=":material/account_tree:")
with c2:
    link_to("compare", "Compare with other runs", [run.run_id], icon=":material/compare_arrows:")
