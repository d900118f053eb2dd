"""The store as pages read it: one process-wide store of the configured data directory, runs by id (cached: a stored
run never changes its figures), and which run a page opens on."""

from __future__ import annotations

import streamlit as st

from engine import run_parts
from engine.result import RunResult
from engine.store import RunStore, data_dir
from engine.studies.samples import open_with_samples


@st.cache_resource(show_spinner=False)
def store_at(root: str) -> RunStore:
    # every bundled GPU recording (localisations' runs too) shows up on a fresh data directory, as in
    # `python -m engine runs`
    return open_with_samples(root)  # TRTDASH_SAMPLES_DIR points elsewhere; an empty directory turns samples off


def get_store() -> RunStore:
    """The process-wide store of the configured data directory (``TRTDASH_DATA_DIR``)."""
    return store_at(str(data_dir()))


@st.cache_data(show_spinner=False, max_entries=64)
def _load(root: str, run_id: str) -> RunResult:
    return store_at(root).get(run_id)


def load_run(run_id: str) -> RunResult:
    """A stored run by id (cached); raises ``RunNotFound`` with a message for the user."""
    return _load(str(data_dir()), run_id)


def forget_runs() -> None:
    """Drop cached runs after a change to the store (delete)."""
    _load.clear()
    _opening.clear()


@st.cache_data(show_spinner=False, max_entries=32)
def _opening(root: str, run_ids: tuple[str, ...], part: str) -> run_parts.Opening | None:
    store = store_at(root)
    return run_parts.opening((store.get(i) for i in run_ids), run_parts.PARTS[part])


def opening(run_ids: list[str], part: run_parts.Part) -> run_parts.Opening | None:
    """The run of ``run_ids`` (newest first) a page showing ``part`` opens on (``engine.run_parts.opening``), read
    once per set of stored runs."""
    return _opening(str(data_dir()), tuple(run_ids), part.name)
