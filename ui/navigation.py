"""Moving between pages: every page script runs inside dashboard.py's navigation, links to a page carry the runs it
shows (``?run=<id>``), and a page can switch to another.

Why a page script starts with ``through_dashboard()``: a folder named ``pages/`` beside the entry script is also
Streamlit's legacy automatic page list. On a fresh server, until some session has called ``st.navigation``, the
first script run lists that folder's files in the sidebar and runs a linked page (``/compare?run=...``) on its own:
without dashboard.py's sign-in gate, sidebar and banner. dashboard.py calls ``st.navigation`` before anything slow,
so ``/`` shows its pages at once; a page run on its own runs dashboard.py instead, whose navigation routes the same
URL (query string included) back to the page, inside the frame, in the same script run: no reload.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from ui.markdown import plain

ENTRY = Path(__file__).resolve().parent.parent / "dashboard.py"
RUN_KEY = "run"


def through_dashboard() -> None:
    """The first line of every page script: run this page inside dashboard.py's navigation (see the module
    docstring). A no-op once any session has called ``st.navigation``, and in AppTest's runs of one page."""
    if not PagesManager.uses_pages_directory:
        return
    # dashboard.py's st.navigation switches the legacy mode off for the server and runs this page again, nested
    runpy.run_path(str(ENTRY), run_name="__main__")
    st.stop()  # this outer run of the page has been drawn by the nested one


def page_url(page: str, run_ids: list[str]) -> str:
    """A link to ``page`` showing these runs; absolute when the browser told us where we are."""
    query = urlencode([(RUN_KEY, r) for r in run_ids])
    here = urlsplit(st.context.url or "")
    # the app's root: the current URL without its page name (keeps a server.baseUrlPath prefix)
    base = f"{here.scheme}://{here.netloc}{here.path.rsplit('/', 1)[0]}" if here.scheme else ""
    return f"{base}/{page}?{query}" if query else f"{base}/{page}"


def link_to(page: str, label: str, run_ids: list[str], icon: str | None = None) -> None:
    """A link to another page with these runs selected."""
    try:
        st.page_link(f"pages/{page}.py", label=label, icon=icon, query_params={RUN_KEY: run_ids})
    except Exception:  # the page is not registered (a page script run on its own, as in AppTest)
        st.markdown(f"[{plain(label)}]({page_url(page, run_ids)})")


def switch_to(page: str, query: dict[str, str] | None = None, *, otherwise: str = "") -> None:
    """Go to ``page`` (``pages/<page>.py``) with ``query`` in its link; where the page is not registered (a page
    script run on its own, as in AppTest) ``otherwise`` is shown instead."""
    try:
        st.switch_page(f"pages/{page}.py", query_params=query)
    except st.errors.StreamlitAPIException:
        if otherwise:
            st.markdown(otherwise)
