"""Figures as a row of metrics (``engine.run_figures`` computes them; this only places them)."""

from __future__ import annotations

import streamlit as st

from engine import run_figures
from engine.result import RunResult


def figure_row(figures: list[run_figures.Figure]) -> None:
    """One metric per figure, its detail in the help."""
    for column, f in zip(st.columns(len(figures)), figures, strict=True):
        column.metric(f.label, f.value, help=f.detail or None)


def timing_row(run: RunResult, *, throughput: bool = True) -> None:
    """End-to-end median, GPU time, CUDA-graph replay, host overhead (and throughput), each with its noise and
    how it was measured in the help; a figure that was not measured shows why ("needs an NVIDIA GPU")."""
    figures = run_figures.timing_figures(run)
    if not throughput:
        figures = [f for f in figures if f.label != run_figures.THROUGHPUT]
    for column, f in zip(st.columns(len(figures)), figures, strict=True):
        if not f.measured:  # why, in words that wrap (a metric would cut "not measured (recorded ...)" short)
            column.caption(f.label, help=f.detail or None)
            column.markdown(f"**{f.value}**")
            continue
        column.metric(f.label, f.value, help=f.detail or None)
        if f.label != run_figures.THROUGHPUT:
            column.caption(_short(f))
    noisy = run_figures.noise_warning(run)
    if noisy is not None:
        st.warning(noisy.text(), icon=":material/ssid_chart:")


def _short(f: run_figures.Figure) -> str:
    """The first part of the detail under the number (the noise): "p10–p90 0.59–0.72 ms"."""
    return f.detail.split(" · ")[0]
