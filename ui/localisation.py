"""Starting and following localisations, shared by the Where-it-breaks page and the ladder tab of Sweeps."""

from __future__ import annotations

import streamlit as st

from engine import jobs
from engine.capabilities import Capabilities
from engine.settings.request import RunRequest
from engine.store import RunStore, data_dir
from engine.studies.localisation import driver
from engine.studies.localisation.figures import Criterion
from engine.studies.localisation.records import LocalisationRecords
from engine.studies.localisation.study import broken_rungs
from ui.errors import show_error
from ui.job_panel import checked_request
from ui.navigation import switch_to
from ui.store import get_store

URL_KEY = "localise"
FOLLOWED = "localise_followed"  # ids of the studies this session advances


@st.cache_resource(show_spinner=False)
def _records_at(root: str) -> LocalisationRecords:
    records = LocalisationRecords(root)
    records.import_samples(get_store())  # bundled localisations and their runs (as sample runs), once
    return records


def get_records() -> LocalisationRecords:
    return _records_at(str(data_dir()))


def queue_runner(store: RunStore) -> driver.QueueRunner:
    return driver.QueueRunner(store, lambda r: jobs.submit(r), jobs.get, jobs.cancel)


def follow(localisation_id: str) -> None:
    followed = st.session_state.setdefault(FOLLOWED, [])
    if localisation_id not in followed:
        followed.append(localisation_id)


def open_localisation(localisation_id: str) -> None:
    """Go to the Where-it-breaks page showing it (a plain link when the page is not registered, as in AppTest)."""
    st.query_params[URL_KEY] = localisation_id
    switch_to(
        "localise",
        {URL_KEY: localisation_id},
        otherwise=f"Localisation **{localisation_id}** started: open it on the [Where it breaks page]"
        f"(localise?{URL_KEY}={localisation_id}).",
    )


def start(
    base: RunRequest,
    criterion: Criterion,
    caps: Capabilities,
    source: str,
    max_builds: int | None = None,
    open_page: bool = True,
) -> str | None:
    """Plan a localisation of ``base`` (the candidate modules, on this machine's CPU), save it, submit its first
    builds and follow it in this session. None when the request is refused (the reason is shown)."""
    if checked_request(base, caps) is None:
        return None
    store = get_store()
    try:
        with st.status("Listing the modules the search may keep (builds the model on this CPU)…") as status:
            study = driver.plan(
                base,
                criterion=criterion,
                max_builds=max_builds,
                source=source,
                analyse=False,
                progress=lambda stage, fraction=None, detail="": status.update(label=f"{stage}: {detail}"),
            )
            status.update(label=f"{len(study.candidates)} candidate modules", state="complete")
        jobs.ensure_workers()
        driver.advance(study, queue_runner(store))
    except Exception as e:
        show_error(e, "The localisation could not start")
        return None
    get_records().save(study)
    follow(study.localisation_id)
    if open_page:
        open_localisation(study.localisation_id)
    return study.localisation_id


def offer_from_ladder(rungs: list, tolerance: float, caps: Capabilities, ladder_id: str) -> None:
    """Under a ladder: one "Find where it breaks" per broken or imprecise step."""
    broken = broken_rungs(rungs, tolerance)
    if not broken:
        return
    st.markdown(
        "**Where does it break?** A localisation rebuilds the step with modules kept in higher precision, "
        "bisecting over the network, until it is within the tolerance, and measures the fix."
    )
    reason = None if caps.can_compile else (caps.disabled_reason("backend", "tensorrt") or "needs a GPU")
    store = get_store()
    for i, (rung, why) in enumerate(broken):
        if st.button(
            f"Find where it breaks: {rung.label}",
            key=f"localise:{ladder_id}:{rung.run_id}",
            icon=":material/troubleshoot:",
            disabled=reason is not None,
            help=f"{why}. "
            + (
                f"Unavailable here: the search builds TensorRT engines ({reason})."
                if reason
                else "Each step is one engine build on the job queue."
            ),
        ):
            start(
                RunRequest.from_dict(store.get(rung.run_id).request),
                Criterion(tolerance),
                caps,
                f"ladder {ladder_id}, {rung.label}",
            )
        if i == len(broken) - 1 and reason:
            st.caption(
                f"Finding where it breaks builds TensorRT engines, which this machine cannot do ({reason}); "
                "recorded localisations are on the Where it breaks page."
            )
