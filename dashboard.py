"""Entry point: `streamlit run dashboard.py`. The sign-in gate, the navigation over pages/, the sidebar and the
capability banner, nothing else.

The navigation is set up before anything slow: on a fresh server Streamlit shows its legacy pages/-folder list until
``st.navigation`` runs (ui/navigation.py says why, and how a linked page gets here).
"""

import logging

import streamlit as st

from engine import capabilities
from ui import access

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
st.set_page_config(page_title="TensorRT profiler", page_icon=":material/speed:", layout="wide")


def pages() -> list[st.Page]:
    return [
        st.Page("pages/profile.py", title="Profile", icon=":material/play_circle:", url_path="profile"),
        st.Page("pages/layers.py", title="Layers", icon=":material/bar_chart:", url_path="layers"),
        st.Page("pages/engine_view.py", title="Engine", icon=":material/hub:", url_path="engine"),
        st.Page("pages/segmentation.py", title="Segmentation", icon=":material/account_tree:", url_path="segmentation"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
        st.Page("pages/sweep.py", title="Sweeps", icon=":material/tune:", url_path="sweep"),
        st.Page("pages/localise.py", title="Where it breaks", icon=":material/troubleshoot:", url_path="localise"),
        st.Page("pages/history.py", title="History", icon=":material/history:", url_path="history"),
    ]


def _to_profile() -> None:
    """The root URL opens Profile at its own address (``/profile``, the link's query kept): Streamlit serves its
    default page at ``/`` only, so a default Profile made ``/profile`` a "Page not found"."""
    st.switch_page(
        "pages/profile.py", query_params=[(k, v) for k in st.query_params for v in st.query_params.get_all(k)]
    )


@st.cache_resource(show_spinner="Looking at this machine: GPUs, PyTorch, Torch-TensorRT…")
def _capabilities() -> capabilities.Capabilities:
    """Once per server process (it imports torch: seconds on a cold server, so the page says what it waits for)."""
    return capabilities.detect()


@st.cache_resource(show_spinner=False)
def _supervisor() -> bool:
    """This host's job supervisor, started once per server process: it keeps the workers running (and replaces
    a dead one) whether or not a page is open, and outlives this server."""
    from engine import jobs  # noqa: PLC0415 - after the navigation (importing the job system takes a while)

    jobs.ensure_workers()
    return True


identity = access.signed_in()
if identity is None:  # team mode: nothing but the sign-in form until the team password is given; the pages are
    # known (a link to one is no "page not found") and the linked one opens once signed in
    sign_in = st.Page(access.sign_in_page, title="Sign in", icon=":material/login:", url_path="sign-in", default=True)
    linked = st.navigation([sign_in, *pages()], position="hidden")
    if linked.url_path == sign_in.url_path:
        linked.run()
    else:  # a link to a page: the form shows in its place, the page after signing in
        access.sign_in_page()
else:
    root = st.Page(_to_profile, title="Profile", url_path="start", default=True, visibility="hidden")
    page = st.navigation([root, *pages()])
    if page is root:  # before the banner and the sidebar: this run only switches to Profile
        page.run()
    level, text = _capabilities().banner()  # first: on a cold server its spinner fills the page while torch loads
    access.current_identity()  # this session's jobs are recorded as theirs
    access.sidebar(identity)
    _supervisor()
    (st.warning if level == "warning" else st.caption)(text, icon=":material/memory:")
    page.run()
