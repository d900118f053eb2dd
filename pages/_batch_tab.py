"""Sweeps page, Batch sweep tab: latency and throughput against batch size, static engines vs one dynamic engine."""

import streamlit as st

from engine import batch_sweep
from engine.capabilities import Capabilities
from engine.store import RunStore


def render(store: RunStore, caps: Capabilities) -> None:
    st.info("Batch sweeps are recorded with scripts/record_samples.py --only batch for now; "
            f"{len(batch_sweep.STRATEGIES)} strategies: {', '.join(batch_sweep.STRATEGIES)}.", icon=":material/info:")
