"""The one study picker of the Sweeps tabs (knob sweep, ladder, batch sweep, auto-tune), bound to the tab's link
(``?sweep=``, ``?ladder=``, ``?batch=``, ``?autotune=``).

It lists the stored study records of the tab's kind (``record.list_studies``: any state, newest first, each labelled
with its kind, model, state and how many points are measured or missing), so a study still running, or one with
points missing, can be picked; then the studies known only by their runs' tags (the bundled samples, recorded
before records existed), with the labels the tab gives them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import streamlit as st

from engine.store import RunStore
from engine.studies import record
from ui.markdown import plain
from ui.url_picker import pick_from_url


def study_choices(store: RunStore, kind: str, tagged: Mapping[str, str]) -> dict[str, str]:
    """Study id -> label: the stored records of ``kind`` (newest first), then the ``tagged`` ones without a record
    (id -> the tab's label; a recorded study's runs carry tags too, it is listed once, from its record)."""
    choices = {}
    for study_id, *_ in record.list_studies(store, kind):
        study = record.find_study(store, study_id, kind)
        if study is not None:
            choices[study_id] = study.label
    for study_id, label in tagged.items():
        choices.setdefault(study_id, label)
    return choices


def pick_study(
    store: RunStore,
    kind: str,
    *,
    url_key: str,
    key: str,
    label: str,
    tagged: Mapping[str, str] | None = None,
    empty: str,
    unknown: Callable[[str], str] | None = None,
) -> str | None:
    """The study the link names, else the newest; None (with ``empty`` said) when the tab has none yet.
    ``unknown(id)`` says a link's id is not stored. Every Sweeps tab runs on each visit: only a pick writes the
    link, never the default."""
    what = record.KINDS.get(kind, "study")
    unknown = unknown or (lambda i: f"No {what} {plain(repr(i))} is stored: pick one below, or start a new one.")
    choices = study_choices(store, kind, tagged or {})
    if not choices:
        if wanted := st.query_params.get(url_key):
            st.error(unknown(wanted), icon=":material/link_off:")
        st.info(empty, icon=":material/info:")
        return None
    return pick_from_url(
        url_key,
        list(choices),
        choices,
        key=key,
        label=label,
        unknown=unknown,
        write_default=False,
        help=f"Newest first, running ones included. The link in the address bar (?{url_key}=<id>) opens the same one.",
    )
