"""Entry point: `streamlit run dashboard.py`. Navigation, the capability banner, nothing else."""

import logging

import streamlit as st

from engine import capabilities

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
st.set_page_config(page_title="TensorRT profiler", page_icon=":material/speed:", layout="wide")

PAGES = [
    st.Page("pages/profile.py", title="Profile", icon=":material/play_circle:", url_path="profile", default=True),
    st.Page("pages/layers.py", title="Layers", icon=":material/bar_chart:", url_path="layers"),
    st.Page("pages/segmentation.py", title="Segmentation", icon=":material/account_tree:", url_path="segmentation"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("pages/sweep.py", title="Sweeps", icon=":material/tune:", url_path="sweep"),
    st.Page("pages/localise.py", title="Where it breaks", icon=":material/troubleshoot:", url_path="localise"),
    st.Page("pages/history.py", title="History", icon=":material/history:", url_path="history"),
]


@st.cache_resource
def _capabilities() -> capabilities.Capabilities:
    return capabilities.detect()


level, text = _capabilities().banner()
(st.warning if level == "warning" else st.caption)(text, icon=":material/memory:")
st.navigation(PAGES).run()
