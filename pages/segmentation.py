"""Segmentation: how Torch-TensorRT partitioned one run's graph, and min_block_size to try next."""

import streamlit as st

from ui.navigation import through_dashboard

through_dashboard()

import pandas as pd

from engine import capabilities, run_figures, run_parts
from engine.charts import segmentation as segment_charts
from engine.errors import ConfigError
from engine.settings.request import RunRequest
from ui.errors import show_error
from ui.exports import export_buttons
from ui.figures import figure_row
from ui.job_panel import job_panel, submit_request
from ui.run_picker import pick_run, run_header

st.title("Graph segmentation")
run = pick_run(part=run_parts.SEGMENTATION)
if run is None:
    st.stop()
run_header(run)
seg = run.segmentation
if seg is None:
    st.info(
        f"This run has no segmentation: {run_parts.SEGMENTATION.absence(run)}. Pick a TensorRT run (the bundled "
        "samples have one).",
        icon=":material/info:",
    )
    st.stop()

figure_row(run_figures.segmentation_figures(run))
mbs = run.request["compile"]["min_block_size"]
st.plotly_chart(segment_charts.segment_strip(seg), width="stretch", key="chart_strip")
left, right = st.columns(2)
with left:
    st.plotly_chart(segment_charts.ops_per_engine_bar(seg, mbs), width="stretch", key="chart_ops_per_engine")
with right:
    st.plotly_chart(segment_charts.unsupported_ops_bar(seg), width="stretch", key="chart_unsupported")

st.subheader("Recommendations")
every = run_figures.recommendations(run)
recommendations = [r for r in every if r.rerun]  # one that builds this run's engine count again is none
if not every:
    st.caption("Torch-TensorRT gave no min_block_size recommendation for this graph.")
elif not recommendations:
    st.caption(
        f"Nothing to try: every min_block_size Torch-TensorRT suggests for this graph builds the same "
        f"{seg.engine_count} TensorRT engine{'s' if seg.engine_count != 1 else ''} as this run."
    )
cannot_rerun = capabilities.detect().disabled_reason("backend", run.request["backend"])
if cannot_rerun and recommendations:
    st.caption(
        f"Running again here is not possible: the tensorrt backend {cannot_rerun}. "
        "Open this page on a GPU machine to try a recommendation."
    )
for i, rec in enumerate(recommendations):
    cols = st.columns([3, 2])
    cols[0].markdown(rec.text)
    if cols[1].button(
        f"Run again with min_block_size = {rec.min_block_size}",
        key=f"rerun_{i}",
        icon=":material/replay:",
        disabled=bool(cannot_rerun),
        help=cannot_rerun,
    ):
        try:
            request = RunRequest.from_dict(run.request).with_changes(**{"compile.min_block_size": rec.min_block_size})
        except ConfigError as e:
            show_error(e, "This run's settings cannot be reused")
        else:
            submit_request(request)
job_panel()  # the re-run's progress; opens the new run here when it is done

with st.expander(f"Nodes run in PyTorch ({len(seg.pytorch_nodes)})", expanded=bool(seg.pytorch_nodes)):
    if seg.pytorch_nodes:
        st.dataframe(pd.DataFrame(seg.pytorch_nodes), hide_index=True, key="pytorch_nodes")
    else:
        st.caption("None: the whole graph runs in TensorRT.")
with st.expander(f"Segments ({len(seg.segments)})"):
    st.dataframe(segment_charts.segments_table(seg), hide_index=True, key="segments_table")

st.subheader("Export")
export_buttons(run)
