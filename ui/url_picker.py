"""One choice bound to the link: a selectbox whose value lives in the URL (``?run=``, ``?sweep=``, ``?ladder=``,
``?batch=``, ``?localise=``), so a shared link opens the same view. The run picker and every study picker use it.

A link, or a page that writes the URL when work finishes, changes the URL from outside: that wins over the last
pick. A pick writes the URL; so does opening the default when the link names nothing, unless the picker sits in
a tab of a page whose other tabs have pickers too (every tab runs: each would write its own link on every visit).
The widget's state is dropped when the user visits another page; coming back re-reads
the URL. An id the options lack is named; the default is shown instead, or nothing until the user picks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import streamlit as st


def pick_from_url(
    param: str,
    options: Sequence[str],
    labels: Mapping[str, str],
    *,
    key: str,
    label: str,
    unknown: Callable[[str], str],
    default: str | None = None,
    wanted: str | None = None,
    unknown_opens_default: bool = True,
    write_default: bool = True,
    placeholder: str = "Pick one",
    help: str | None = None,
    on_pick: Callable[[str], None] | None = None,
) -> str | None:
    """The picked option (``options`` must not be empty), None while nothing is picked. ``wanted`` is the id the
    link names (default: the URL's ``?{param}=``); ``unknown(id)`` is the error shown for an id ``options`` lack,
    after which ``default`` is shown (default: the first option), or nothing without ``unknown_opens_default``;
    ``default`` is also what a link naming nothing opens, and is written to the link only with ``write_default``;
    ``on_pick(id)`` writes a pick to the URL (default: ``?{param}=<id>``)."""
    if wanted is None:
        wanted = st.query_params.get(param)
    if wanted and wanted not in options:
        st.error(unknown(wanted), icon=":material/link_off:")
    seen = f"{key}:url"
    if st.session_state.get(seen) != wanted or st.session_state.get(key) not in options:
        if wanted in options:
            st.session_state[key] = wanted
        elif wanted and not unknown_opens_default:
            st.session_state[key] = None
        else:
            st.session_state[key] = default if default in options else options[0]
        st.session_state[seen] = wanted
    write = on_pick or (lambda picked: st.query_params.__setitem__(param, picked))

    def picked_by_the_user() -> None:
        if st.session_state[key] is not None:
            write(st.session_state[key])
            st.session_state[seen] = st.session_state[key]

    chosen = st.selectbox(
        label,
        list(options),
        key=key,
        format_func=lambda i: labels.get(i, i),
        placeholder=placeholder,
        help=help,
        on_change=picked_by_the_user,
    )
    if chosen is not None and chosen != wanted and (wanted or write_default):
        write(chosen)
        st.session_state[seen] = chosen
    return chosen
