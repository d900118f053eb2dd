"""Sweeps page, Precision ladder tab: fp32, fp16 and each quantization scheme of one model, with the verdict."""

import streamlit as st

from engine import ladder, sweep_charts
from engine.capabilities import Capabilities
from engine.store import RunStore


def render(store: RunStore, caps: Capabilities) -> None:
    ladder_ids = ladder.list_ladders(store)
    if not ladder_ids:
        st.info("No precision ladder stored yet: fp32, fp16 and each quantization scheme of one model, recorded "
                "with the TensorRT backend on a GPU.", icon=":material/info:")
    else:
        lid = st.selectbox("Ladder", ladder_ids, key="ladder_id")
        rungs = ladder.load_ladder(store, lid)
        tolerance = st.number_input("Accuracy tolerance (rel. L2 vs eager fp32)", value=ladder.DEFAULT_TOLERANCE_REL_L2,
                                    min_value=0.0, format="%.3f", key="ladder_tol")
        table = ladder.ladder_table(rungs)
        st.markdown(ladder.verdict(rungs, tolerance_rel_l2=tolerance).markdown())
        st.plotly_chart(sweep_charts.precision_ladder(table), width="stretch", key="chart_ladder")
        st.caption("Three-way accuracy: eager fp32 → fake-quantized PyTorch model (the quantization error) → "
                   "compiled engine (the conversion error).")
        st.dataframe(table.drop(columns=["run_id"]), hide_index=True)
