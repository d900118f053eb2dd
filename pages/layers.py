"""Layers: where one run's time goes, layer by layer (needs a per-layer profile)."""

import streamlit as st

from engine import charts, compare
from ui.common import export_buttons, link_to, pick_run, run_header
from ui.timing import timing_row

LAYER_TABLE_ORDER = ["order", "name", "layer_type", "avg_ms", "share", "precision", "module_path", "segment",
                     "runtime", "tactic", "input_shapes", "output_shapes"]

st.title("Per-layer latency")
run = pick_run()
if run is None:
    st.stop()
run_header(run)

overhead = compare.profiling_overhead(run)
timing_row(run, throughput=False)
c = st.columns(4)
c[0].metric("Layers profiled", f"{len(run.layers):,}")
if overhead["profiled_sum_ms"] is not None:
    c[1].metric("Sum of per-layer averages", f"{overhead['profiled_sum_ms']:.3f} ms",
                help="Profiling synchronises after every layer, so this sum is neither the e2e time nor the GPU time.")
if overhead["ratio"] is not None:
    c[2].metric("Profiled / e2e", f"{overhead['ratio']:.2f}×",
                help="Above 1: the profiler's own overhead; use layer times to rank layers, not to add them up.")
if overhead.get("gpu_ratio") is not None:
    c[3].metric("Profiled / GPU time", f"{overhead['gpu_ratio']:.2f}×",
                help="The per-layer sum against the kernel time measured with profiling off.")

if run.layers.empty:
    st.info("This run has no per-layer profile: it was recorded with per-layer profiling off "
            "(or in analyze mode). Run it again with **Per-layer profile** on, on the Profile page.",
            icon=":material/info:")
else:
    top, by_type, precision, timeline, modules, table = st.tabs(
        ["Slowest layers", "By layer type", "By precision", "Timeline", "Module tree", "Table"])
    with top:
        n = st.slider("Layers shown", 5, 100, 20, key="layers_top_n")
        st.plotly_chart(charts.top_layers_bar(run.layers, n), width="stretch", key="chart_top")
    with by_type:
        st.plotly_chart(charts.layer_type_treemap(run.layers), width="stretch", key="chart_treemap")
        st.dataframe(charts.time_by(run.layers, "layer_type"), hide_index=True,
                     column_config={"total_ms": st.column_config.NumberColumn("time (ms)", format="%.4f"),
                                    "share": st.column_config.ProgressColumn("share", format="percent")})
    with precision:
        st.plotly_chart(charts.precision_share_bar(run.layers), width="stretch", key="chart_precision")
    with timeline:
        st.plotly_chart(charts.execution_timeline(run.layers), width="stretch", key="chart_timeline")
    with modules:
        st.plotly_chart(charts.module_tree(run.layers), width="stretch", key="chart_modules")
    with table:
        query = st.text_input("Search layers", placeholder="name, type, module path, precision, tactic",
                              key="layers_query")
        found = charts.search_layers(run.layers, query)
        st.caption(f"{len(found):,} of {len(run.layers):,} layers · click a column header to sort")
        st.dataframe(found, hide_index=True, key="layers_table", column_order=LAYER_TABLE_ORDER,
                     column_config={"avg_ms": st.column_config.NumberColumn("avg (ms)", format="%.4f"),
                                    "share": st.column_config.ProgressColumn("share", format="percent")})
    st.plotly_chart(charts.profiling_overhead_bar(overhead["e2e_median_ms"], overhead["profiled_sum_ms"]),
                    width="stretch", key="chart_overhead")

st.subheader("Export")
export_buttons(run)
c1, c2 = st.columns(2)
with c1:
    link_to("segmentation", "Segmentation of this run", [run.run_id], icon=":material/account_tree:")
with c2:
    link_to("compare", "Compare with other runs", [run.run_id], icon=":material/compare_arrows:")
