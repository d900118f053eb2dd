"""The one run picker of every page: stored runs newest first, labelled alike
(``engine.compare.history.summary_labels``: model, batch, backend, precision, device, date, median, sample,
baseline), bound to the link so it opens the same view: ``?run=<id>``, several runs ``?run=a&run=b`` (``?runs=a,b``
is read too). A page that shows one part of a run (the layer profile, the segmentation) opens on the newest run that
holds it and says so when that is not the newest.
"""

from __future__ import annotations

import streamlit as st

from engine.compare.history import summary_labels
from engine.compare.settings_table import run_label
from engine.result import RunResult
from engine.run_parts import Part
from engine.store import RunNotFound
from ui.markdown import plain
from ui.store import get_store, load_run, opening
from ui.url_picker import pick_from_url

URL_KEY = "run"
URL_LIST_KEY = "runs"  # ?runs=a,b: read, and rewritten as ?run=a&run=b


def url_run_ids() -> list[str]:
    """The run ids the link names, in its order."""
    ids = [r for r in st.query_params.get_all(URL_KEY) if r]
    for value in st.query_params.get_all(URL_LIST_KEY):
        ids += [r.strip() for r in value.split(",") if r.strip()]
    return ids


def set_url_run_ids(run_ids: list[str]) -> None:
    if URL_LIST_KEY in st.query_params:
        del st.query_params[URL_LIST_KEY]
    if run_ids:
        st.query_params[URL_KEY] = list(run_ids)
    elif URL_KEY in st.query_params:
        del st.query_params[URL_KEY]


def _unknown(run_id: str) -> str:
    return plain(RunNotFound(run_id).message)


def _no_runs() -> None:
    st.info("No runs stored yet. Profile a model on the Profile page, or import a run export.", icon=":material/info:")


def _load(run_id: str) -> RunResult | None:
    try:
        return load_run(run_id)
    except RunNotFound as e:  # deleted since the list was read
        st.error(plain(e.message), icon=":material/link_off:")
        return None


def pick_run(key: str = "run_picker", *, part: Part | None = None) -> RunResult | None:
    """One run (``?run=<id>``). Without a run in the link: the newest run, or with ``part`` the newest run that holds
    it, with a caption naming it and why when the newest run lacks it. An unknown id in the link is named and
    nothing is shown until a run is picked."""
    runs = get_store().list_runs()
    if runs.empty:
        _no_runs()
        return None
    options = list(runs["run_id"])
    default = opening(options, part) if part is not None else None
    url = url_run_ids()
    chosen = pick_from_url(
        URL_KEY,
        options,
        summary_labels(runs),
        key=key,
        label="Run",
        unknown=_unknown,
        wanted=url[0] if url else "",
        default=default.run_id if default else options[0],
        unknown_opens_default=False,
        placeholder="Pick a run",
        on_pick=lambda run_id: set_url_run_ids([run_id]),
        help="Newest first. Sample runs were recorded on a real GPU and ship with the app. The "
        "link in the address bar opens the same run.",
    )
    if chosen is None:
        return None
    if URL_LIST_KEY in st.query_params:  # a ?runs= link: written back the one way links are written
        set_url_run_ids([chosen])
    if default is not None and default.note and chosen == default.run_id:
        st.caption(plain(default.note))
    return _load(chosen)


def pick_runs(max_runs: int, key: str = "runs_picker", label: str = "Runs") -> list[RunResult]:
    """Several runs (``?run=a&run=b``), in the order picked; ids the link names that are not stored are named, and
    past ``max_runs`` the first ``max_runs`` are kept."""
    runs = get_store().list_runs()
    if runs.empty:
        _no_runs()
        return []
    options = list(runs["run_id"])
    labels = summary_labels(runs)
    url = url_run_ids()
    for run_id in url:
        if run_id not in labels:
            st.error(_unknown(run_id), icon=":material/link_off:")
    known = [i for i in dict.fromkeys(url) if i in labels]
    # the widget's state is dropped when the user visits another page; coming back re-reads the URL
    if key not in st.session_state or st.session_state.get(f"{key}:url") != url:
        st.session_state[key] = known[:max_runs]
        st.session_state[f"{key}:url"] = url
    if len(known) > max_runs:
        st.warning(
            f"The link names more than {max_runs} runs: the first {max_runs} are shown.", icon=":material/filter_list:"
        )
    chosen = st.multiselect(
        label,
        options,
        key=key,
        format_func=labels.get,
        max_selections=max_runs,
        placeholder=f"Pick up to {max_runs} runs",
        help="Newest first. The link in the address bar opens the same selection.",
    )
    if chosen != url or URL_LIST_KEY in st.query_params:
        set_url_run_ids(chosen)
        st.session_state[f"{key}:url"] = list(chosen)
    return [run for run in map(_load, chosen) if run is not None]


def forget_selection(key: str) -> None:
    """Empty a run picker and its link (the runs it held were deleted)."""
    set_url_run_ids([])
    st.session_state[f"{key}:url"] = None  # the picker re-reads the (now empty) URL


def run_header(run: RunResult) -> None:
    """Where and when the run was recorded and who asked for it, marked when it is a bundled sample."""
    where = f"{run.env.get('device_name', '?')} · {run.env.get('flavour', 'none')} · {run.created_at}"
    if run.is_sample:
        st.badge(
            "sample run",
            icon=":material/inventory_2:",
            color="violet",
            help="Recorded on a real GPU and bundled with the dashboard.",
        )
    st.caption(
        f"{plain(run_label(run))} — recorded on {plain(where)} · submitted by {plain(run.submitted_by or 'unknown')}"
    )


def linked_run() -> RunResult | None:
    """The first run the link names (``?run=<id>``), None when it names none; an id not stored is said as info."""
    url = url_run_ids()
    if not url:
        return None
    try:
        return load_run(url[0])
    except RunNotFound as e:
        st.info(plain(e.message), icon=":material/link_off:")
        return None
