"""What every page shares: the store, runs by id, the run pickers bound to the URL
(``?run=<id>&run=<id>``, so a link opens the same view), exports, error display and submitting
a request."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

import streamlit as st

from engine import report
from engine.autotune import AutotuneReport
from engine.capabilities import Capabilities, check_request
from engine.compare import run_label, summary_labels
from engine.config import ConfigError, RunRequest, validate
from engine.result import RunResult
from engine.store import RunNotFound, RunStore, data_dir
from engine.sweeps import SweepExecution
from ui.access import require_identity
from ui.markdown import plain

log = logging.getLogger(__name__)
URL_KEY = "run"
AUTOTUNE_HTML = "autotune_report_html"     # (the AutotuneReport, its report bytes) of this session


def _leave_pages_directory_mode() -> None:
    """Route a shared link opened first on a fresh server through dashboard.py.

    Until dashboard.py has called ``st.navigation`` once, Streamlit treats a folder named
    ``pages/`` as an old-style multipage app: ``/compare?run=...`` would run this page alone,
    without the navigation and the banner, and list the helper modules as pages. Every page
    imports this module first: it switches that mode off for the server and reloads the browser
    tab, whose new session then goes through dashboard.py with the link (query string included)
    intact. A rerun instead would lose the query string on the way.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.html("<script>window.location.reload()</script>", unsafe_allow_javascript=True)
        st.caption("Opening the link…")
        st.stop()


_leave_pages_directory_mode()
require_identity()   # a page script run on its own is gated too (dashboard.py shows the sign-in page)


# -- store and runs ----------------------------------------------------------------------------

@st.cache_resource(show_spinner=False)
def _store_at(root: str) -> RunStore:
    store = RunStore(root)
    # idempotent: the bundled GPU recordings show up on a fresh data directory
    store.import_samples()   # TRTDASH_SAMPLES_DIR points elsewhere; an empty directory turns samples off
    return store


def get_store() -> RunStore:
    """The process-wide store of the configured data directory (``TRTDASH_DATA_DIR``)."""
    return _store_at(str(data_dir()))


@st.cache_data(show_spinner=False, max_entries=64)
def _load(root: str, run_id: str) -> RunResult:
    return _store_at(root).get(run_id)


def load_run(run_id: str) -> RunResult:
    """A stored run by id (cached); raises ``RunNotFound`` with a message for the user."""
    return _load(str(data_dir()), run_id)


def forget_runs() -> None:
    """Drop cached runs after a change to the store (delete)."""
    _load.clear()


# -- the URL -----------------------------------------------------------------------------------

def url_run_ids() -> list[str]:
    return [r for r in st.query_params.get_all(URL_KEY) if r]


def set_url_run_ids(run_ids: list[str]) -> None:
    if run_ids:
        st.query_params[URL_KEY] = list(run_ids)
    elif URL_KEY in st.query_params:
        del st.query_params[URL_KEY]


def page_url(page: str, run_ids: list[str]) -> str:
    """A link to ``page`` showing these runs; absolute when the browser told us where we are."""
    query = urlencode([(URL_KEY, r) for r in run_ids])
    here = urlsplit(st.context.url or "")
    # the app's root: the current URL without its page name (keeps a server.baseUrlPath prefix)
    base = f"{here.scheme}://{here.netloc}{here.path.rsplit('/', 1)[0]}" if here.scheme else ""
    return f"{base}/{page}?{query}" if query else f"{base}/{page}"


def link_to(page: str, label: str, run_ids: list[str], icon: str | None = None) -> None:
    """A link to another page with these runs selected."""
    try:
        st.page_link(f"pages/{page}.py", label=label, icon=icon, query_params={URL_KEY: run_ids})
    except Exception:   # the page is not registered (a page script run on its own, as in AppTest)
        st.markdown(f"[{plain(label)}]({page_url(page, run_ids)})")


def _sync_from_url(key: str, valid: Callable[[list[str]], object], fallback: object) -> list[str]:
    """Put the URL's run ids into the picker's state when the URL changed from outside
    (a shared link, a new run); returns the ids in the URL."""
    url = url_run_ids()
    # the widget's state is dropped when the user visits another page; coming back re-reads the URL
    if key not in st.session_state or st.session_state.get(f"{key}:url") != url:
        st.session_state[key] = valid(url) if url else fallback
        st.session_state[f"{key}:url"] = url
    return url


def _report_unknown(url_ids: list[str], known: set[str]) -> None:
    for run_id in url_ids:
        if run_id not in known:
            st.error(plain(RunNotFound(run_id).message), icon=":material/link_off:")


def pick_run(key: str = "run_picker") -> RunResult | None:
    """One run, chosen from all stored runs; the choice lives in the URL (``?run=<id>``)."""
    summary = get_store().list_runs()
    if summary.empty:
        st.info("No runs stored yet. Profile a model on the Profile page, or import a run export.",
                icon=":material/info:")
        return None
    options = list(summary["run_id"])
    labels = summary_labels(summary)
    url = _sync_from_url(key, lambda ids: ids[0] if ids[0] in labels else None, options[0])
    _report_unknown(url[:1], set(options))
    chosen = st.selectbox("Run", options, key=key, format_func=labels.get, placeholder="Pick a run",
                          help="Newest first. Sample runs were recorded on a real GPU and ship with the app.")
    if [chosen] != url and chosen is not None:
        set_url_run_ids([chosen])
        st.session_state[f"{key}:url"] = [chosen]
    if chosen is None:
        return None
    try:
        return load_run(chosen)
    except RunNotFound as e:
        st.error(plain(e.message), icon=":material/link_off:")
        return None


def pick_runs(max_runs: int, key: str = "runs_picker", label: str = "Runs") -> list[RunResult]:
    """Several runs (URL ``?run=a&run=b``), in the order picked."""
    summary = get_store().list_runs()
    if summary.empty:
        st.info("No runs stored yet. Profile a model on the Profile page first.", icon=":material/info:")
        return []
    options = list(summary["run_id"])
    labels = summary_labels(summary)
    url = _sync_from_url(key, lambda ids: [i for i in dict.fromkeys(ids) if i in labels][:max_runs], [])
    _report_unknown(url, set(options))
    if len([i for i in dict.fromkeys(url) if i in labels]) > max_runs:
        st.warning(f"The link names more than {max_runs} runs: the first {max_runs} are shown.",
                   icon=":material/filter_list:")
    chosen = st.multiselect(label, options, key=key, format_func=labels.get, max_selections=max_runs,
                            placeholder=f"Pick up to {max_runs} runs",
                            help="Newest first. The link in the address bar opens the same selection.")
    if chosen != url:
        set_url_run_ids(chosen)
        st.session_state[f"{key}:url"] = list(chosen)
    runs = []
    for run_id in chosen:
        try:
            runs.append(load_run(run_id))
        except RunNotFound as e:
            st.error(plain(e.message), icon=":material/link_off:")
    return runs


def run_header(run: RunResult) -> None:
    """Where and when the run was recorded, marked when it is a bundled sample."""
    where = f"{run.env.get('device_name', '?')} · {run.env.get('flavour', 'none')} · {run.created_at}"
    if run.is_sample:
        st.badge("sample run", icon=":material/inventory_2:", color="violet",
                 help="Recorded on a real GPU and bundled with the dashboard.")
    st.caption(f"{plain(run_label(run))} — recorded on {plain(where)} · submitted by "
               f"{plain(run.submitted_by or 'unknown')}")


# -- exports -----------------------------------------------------------------------------------

def export_buttons(run: RunResult) -> None:
    """Downloads of one run: layer table CSV, the full run as JSON, its raw profiler files, its HTML report and
    its per-layer timeline as a Chrome trace."""
    store = get_store()
    c1, c2, c3 = st.columns(3)
    c1.download_button("Layer table (CSV)", run.layers.to_csv(index=False).encode(), mime="text/csv",
                       file_name=f"{run.run_id}_layers.csv", disabled=run.layers.empty, on_click="ignore",
                       icon=":material/table:", key=f"csv:{run.run_id}")
    try:
        blob = get_store().export_run(run.run_id)
    except RunNotFound as e:
        c2.error(plain(e.message))
    else:
        c2.download_button("Full run (JSON)", blob, mime="application/json", file_name=f"{run.run_id}.json",
                           on_click="ignore", icon=":material/data_object:", key=f"json:{run.run_id}",
                           help="Result, layer table and raw files in one document; import it on another "
                                "machine.")
    c4, c5 = st.columns(2)
    with c4:
        report_button([run.run_id])
    c5.download_button("Layer timeline (Chrome trace)",
                       b"" if run.layers.empty else report.trace_json(store, [run.run_id]),
                       file_name=report.file_name(run_ids=[run.run_id], suffix=".json"), mime="application/json",
                       on_click="ignore", icon=":material/timeline:", key=f"trace:{run.run_id}",
                       disabled=run.layers.empty,
                       help="The per-layer profile as one inference's timeline, a track per engine or segment; opens "
                            "in https://ui.perfetto.dev. Same file as: python -m engine report "
                            f"{run.run_id} --trace FILE.json")
    with c3.popover("Raw profiler traces", icon=":material/timeline:", disabled=not run.artifacts):
        st.caption("Chrome-trace files open in https://ui.perfetto.dev")
        for name in run.artifacts:
            try:
                data = get_store().artifact_path(run.run_id, name).read_bytes()
            except FileNotFoundError:
                st.caption(f"{plain(name)}: missing")
                continue
            st.download_button(name, data, file_name=f"{run.run_id}_{name}", on_click="ignore",
                               key=f"raw:{run.run_id}:{name}")


@st.cache_data(show_spinner="Writing the report…", max_entries=16)
def _report_html(root: str, fingerprint: str, run_ids: tuple[str, ...], baseline_id: str | None, study: str,
                 tolerance_rel_l2: float | None) -> bytes:
    """Report bytes, written once per selection while the store holds the same runs (``fingerprint``)."""
    store = _store_at(root)
    if study:
        tolerance = {} if tolerance_rel_l2 is None else {"tolerance_rel_l2": tolerance_rel_l2}
        return report.study_html(store, study, **tolerance)
    return report.runs_html(store, list(run_ids), baseline_id=baseline_id)


def report_button(run_ids: list[str] | None = None, *, study_id: str = "", study_kind: str = "",
                  baseline_id: str | None = None, tolerance_rel_l2: float | None = None) -> None:
    """"Download report": the self-contained HTML file ``python -m engine report`` writes for the same runs
    (``run_ids``, compared against ``baseline_id``) or study (``study_kind`` ``sweep``/``ladder``/``batch``).

    The bytes are handed over when the page runs (cached), not built on click: a download built on click is
    dropped by the cleanup after each run of the pages' once-a-second fragments before the browser fetches it."""
    store, ids = get_store(), tuple(run_ids or ())
    study = f"{study_kind}:{study_id}" if study_kind and study_id else study_id
    try:
        data = _report_html(str(store.root), report.store_fingerprint(store), ids, baseline_id, study,
                            tolerance_rel_l2)
    except report.ReportError as e:
        st.caption(f"No report: {e.message}")
        return
    if study:
        cli = f"--study {study}" + (f" --tolerance {tolerance_rel_l2}" if tolerance_rel_l2 is not None else "")
    else:
        cli = ",".join(ids) + (f" --baseline {baseline_id}" if baseline_id not in (None, *ids[:1]) else "")
    st.download_button("Download report", data, file_name=report.file_name(run_ids=ids, study_id=study_id),
                       mime="text/html", on_click="ignore", icon=":material/download:",
                       key=f"report:{study or ','.join(ids)}",
                       help=f"One HTML file ({len(data) / 1e6:.1f} MB) that opens offline in any browser: the charts, "
                            "tables, verdicts, environment and requests shown here. Same file as: python -m engine "
                            f"report {cli} -o FILE.html")


def autotune_report_button(search: AutotuneReport) -> None:
    """"Download report" of the auto-tune search this session ran (written once per search)."""
    written = st.session_state.get(AUTOTUNE_HTML)
    if written is None or written[0] is not search:
        with st.spinner("Writing the report…"):
            written = (search, report.autotune_html(get_store(), search))
        st.session_state[AUTOTUNE_HTML] = written
    st.download_button("Download report", written[1], file_name="report_autotune.html", mime="text/html",
                       on_click="ignore", icon=":material/download:", key="report:autotune",
                       help="One HTML file that opens offline in any browser: the search's summary, trials and best "
                            "run. (A search is not stored yet, so no CLI line writes it.)")


# -- errors and submitting ---------------------------------------------------------------------

def show_error(exc: BaseException, what: str = "") -> None:
    """A user-facing message (what went wrong and what to do); the traceback only in an expander."""
    if isinstance(exc, ConfigError):
        text = f"**{exc.field}**: {plain(exc.message)}"
    else:
        text = plain(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
    hint = getattr(exc, "hint", "")
    st.error((f"{what}: " if what else "") + text + (f"\n\n{plain(hint)}" if hint else ""), icon=":material/error:")
    log.error("%s", what or "error", exc_info=exc)
    with st.expander("Technical details"):
        st.code("".join(traceback.format_exception(exc)), language="text")


def submit_request(request: RunRequest) -> str | None:
    """Queue a request on the job queue; returns the job id, None when it was refused.

    Progress shows in ``ui.job_panel.job_panel()``, which switches the page to the new run
    (``?run=<id>``) when the job is done; a request the store already answers switches at once.
    """
    from ui.job_panel import submit

    try:
        job = submit(request)
    except Exception as e:   # ConfigError / capability errors name the field and what to do
        show_error(e, "Nothing was submitted")
        return None
    if not job.cached:
        st.toast(f"Queued: {plain(request.model.source)} {request.backend} {request.compile.precision}",
                 icon=":material/schedule:")
    return job.job_id


# -- sweeps, ladders, batch sweeps on the job queue (engine.sweeps.SweepExecution) -----------------------
def start_execution(execution: SweepExecution, what: str) -> bool:
    """Queue every point; if the queue refuses one, cancel those already queued (they would run to no
    sweep) and say why. True when all of it is queued."""
    from engine import jobs  # noqa: PLC0415

    try:
        jobs.ensure_workers()
        execution.start()
    except Exception as e:
        if any(ps.job_id for ps in execution.points):
            execution.cancel()
        show_error(e, f"The {what.lower()} could not be queued")
        return False
    return True


def execution_progress(execution: SweepExecution, what: str, key: str) -> None:
    """The progress bar with its status line and one Cancel for everything ``execution`` queued."""
    c1, c2 = st.columns([5, 1])
    c1.progress(execution.fraction_finished, text=execution.status_text(what))
    if not execution.finished and c2.button(f"Cancel {what.lower()}", icon=":material/cancel:", key=key):
        execution.cancel()


def checked_request(raw: dict | RunRequest, caps: Capabilities) -> RunRequest | None:
    """``raw`` validated and checked against this machine; on a ConfigError the field and message are shown
    ("Nothing was submitted") and None is returned."""
    try:
        request = validate(raw if isinstance(raw, RunRequest) else RunRequest.from_dict(raw))
        check_request(request, caps)
    except ConfigError as e:
        st.error(f"**{e.field}**: {plain(e.message)}. Nothing was submitted.", icon=":material/error:")
        return None
    return request
