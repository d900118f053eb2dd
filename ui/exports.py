"""Downloads of what a page shows: one run's tables, JSON and traces, and the self-contained HTML report that
``python -m engine report`` writes for the same runs or study."""

from __future__ import annotations

import streamlit as st

from engine import report
from engine.result import RunResult
from engine.store import RunNotFound
from engine.studies.autotune import AutotuneReport
from ui.markdown import plain
from ui.store import get_store, store_at

AUTOTUNE_HTML = "autotune_report_html"  # (the AutotuneReport, its report bytes) of this session


def export_buttons(run: RunResult) -> None:
    """Downloads of one run: layer table CSV, the full run as JSON, its raw profiler files, its HTML report and
    its per-layer timeline as a Chrome trace."""
    store = get_store()
    c1, c2, c3 = st.columns(3)
    c1.download_button(
        "Layer table (CSV)",
        run.layers.to_csv(index=False).encode(),
        mime="text/csv",
        file_name=f"{run.run_id}_layers.csv",
        disabled=run.layers.empty,
        on_click="ignore",
        icon=":material/table:",
        key=f"csv:{run.run_id}",
    )
    try:
        blob = get_store().export_run(run.run_id)
    except RunNotFound as e:
        c2.error(plain(e.message))
    else:
        c2.download_button(
            "Full run (JSON)",
            blob,
            mime="application/json",
            file_name=f"{run.run_id}.json",
            on_click="ignore",
            icon=":material/data_object:",
            key=f"json:{run.run_id}",
            help="Result, layer table and raw files in one document; import it on another machine.",
        )
    c4, c5 = st.columns(2)
    with c4:
        report_button([run.run_id])
    c5.download_button(
        "Layer timeline (Chrome trace)",
        b"" if run.layers.empty else report.trace_json(store, [run.run_id]),
        file_name=report.file_name(run_ids=[run.run_id], suffix=".json"),
        mime="application/json",
        on_click="ignore",
        icon=":material/timeline:",
        key=f"trace:{run.run_id}",
        disabled=run.layers.empty,
        help="The per-layer profile as one inference's timeline, a track per engine or segment; opens "
        "in https://ui.perfetto.dev. Same file as: python -m engine report "
        f"{run.run_id} --trace FILE.json",
    )
    with c3.popover("Raw profiler traces", icon=":material/timeline:", disabled=not run.artifacts):
        st.caption("Chrome-trace files open in https://ui.perfetto.dev")
        for name in run.artifacts:
            try:
                data = get_store().artifact_path(run.run_id, name).read_bytes()
            except FileNotFoundError:
                st.caption(f"{plain(name)}: missing")
                continue
            st.download_button(
                name, data, file_name=f"{run.run_id}_{name}", on_click="ignore", key=f"raw:{run.run_id}:{name}"
            )


@st.cache_data(show_spinner="Writing the report…", max_entries=16)
def _report_html(
    root: str,
    fingerprint: str,
    run_ids: tuple[str, ...],
    baseline_id: str | None,
    study: str,
    tolerance_rel_l2: float | None,
) -> bytes:
    """Report bytes, written once per selection while the store holds the same runs (``fingerprint``)."""
    store = store_at(root)
    if study:
        tolerance = {} if tolerance_rel_l2 is None else {"tolerance_rel_l2": tolerance_rel_l2}
        return report.study_html(store, study, **tolerance)
    return report.runs_html(store, list(run_ids), baseline_id=baseline_id)


def report_button(
    run_ids: list[str] | None = None,
    *,
    study_id: str = "",
    study_kind: str = "",
    baseline_id: str | None = None,
    tolerance_rel_l2: float | None = None,
) -> None:
    """ "Download report": the self-contained HTML file ``python -m engine report`` writes for the same runs
    (``run_ids``, compared against ``baseline_id``) or study (``study_kind`` ``sweep``/``ladder``/``batch``).

    The bytes are handed over when the page runs (cached), not built on click: a download built on click is
    dropped by the cleanup after each run of the pages' once-a-second fragments before the browser fetches it."""
    store, ids = get_store(), tuple(run_ids or ())
    study = f"{study_kind}:{study_id}" if study_kind and study_id else study_id
    try:
        data = _report_html(str(store.root), report.store_fingerprint(store), ids, baseline_id, study, tolerance_rel_l2)
    except report.ReportError as e:
        st.caption(f"No report: {e.message}")
        return
    if study:
        cli = f"--study {study}" + (f" --tolerance {tolerance_rel_l2}" if tolerance_rel_l2 is not None else "")
    else:
        cli = ",".join(ids) + (f" --baseline {baseline_id}" if baseline_id not in (None, *ids[:1]) else "")
    st.download_button(
        "Download report",
        data,
        file_name=report.file_name(run_ids=ids, study_id=study_id),
        mime="text/html",
        on_click="ignore",
        icon=":material/download:",
        key=f"report:{study or ','.join(ids)}",
        help=f"One HTML file ({len(data) / 1e6:.1f} MB) that opens offline in any browser: the charts, "
        "tables, verdicts, environment and requests shown here. Same file as: python -m engine "
        f"report {cli} -o FILE.html",
    )


def autotune_report_button(search: AutotuneReport) -> None:
    """ "Download report" of the auto-tune search this session ran (written once per search)."""
    written = st.session_state.get(AUTOTUNE_HTML)
    if written is None or written[0] is not search:
        with st.spinner("Writing the report…"):
            written = (search, report.autotune_html(get_store(), search))
        st.session_state[AUTOTUNE_HTML] = written
    st.download_button(
        "Download report",
        written[1],
        file_name="report_autotune.html",
        mime="text/html",
        on_click="ignore",
        icon=":material/download:",
        key="report:autotune",
        help="One HTML file that opens offline in any browser: the search's summary, trials and best run.",
    )
