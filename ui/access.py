"""Signing in, the admin unlock and the permission checks of destructive buttons (rules in engine/access.py)."""

from __future__ import annotations

import os
import time

import streamlit as st

from engine import access
from ui.markdown import plain

IDENTITY = "trtdash_identity"
WRONG_PASSWORD_DELAY_S = 1.0  # slows guessing down; the comparison itself is constant-time


def settings() -> access.AccessSettings:
    try:
        secrets = {
            k: st.secrets[k] for k in (access.TEAM_PASSWORD_SECRET, access.ADMIN_PASSWORD_SECRET) if k in st.secrets
        }
    except Exception:  # no secrets.toml at all
        secrets = {}
    return access.AccessSettings.from_sources(st.get_option("server.address"), secrets, os.environ)


def signed_in() -> access.Identity | None:
    """This session's identity; None until a team member signs in. Local mode signs in by itself."""
    identity = st.session_state.get(IDENTITY)
    if identity is None:
        config = settings()
        if config.refusal() is None and not config.team_mode:
            identity = st.session_state[IDENTITY] = access.local_identity(config)
    return identity


def current_identity() -> access.Identity | None:
    """``signed_in()``, and this session's job submissions and cancels made as theirs. Call it at the top of a
    fragment that submits or cancels too: a fragment's rerun may run in a thread of its own, where the identity
    set by the last whole script run is not set."""
    identity = signed_in()
    if identity is not None:
        # imported here: dashboard.py asks signed_in() before its navigation, which must come before anything slow
        from engine.jobs import set_submitter  # noqa: PLC0415

        set_submitter(identity.name, admin=identity.admin)
    return identity


def sign_in_page() -> None:
    """The only page of a session that has not signed in (team mode)."""
    config = settings()
    st.title("TensorRT profiler")
    refusal = config.refusal()
    if refusal:
        st.error(plain(refusal), icon=":material/lock:")
        return
    st.caption(
        "This dashboard is shared by a team: sign in with your name and the team password. Your name is "
        "recorded on every job and run you submit."
    )
    with st.form("sign_in", clear_on_submit=True):
        name = st.text_input("Your name", max_chars=40)
        team = st.text_input("Team password", type="password")
        admin = st.text_input(
            "Admin password (optional)",
            type="password",
            help="Needed to delete runs, cancel others' jobs or stop the workers.",
        )
        submitted = st.form_submit_button("Sign in", type="primary", icon=":material/login:")
    if submitted:
        try:
            st.session_state[IDENTITY] = access.sign_in(config, name, team, admin)
        except access.SignInError as e:
            time.sleep(WRONG_PASSWORD_DELAY_S)
            st.error(e.message, icon=":material/lock:")
        else:
            st.rerun()


def sidebar(identity: access.Identity) -> None:
    """Who is signed in; sign out and the admin unlock in team mode."""
    config = settings()
    with st.sidebar:
        st.caption(f"Signed in as **{plain(identity.name)}**" + (" · admin" if identity.admin else ""))
        if config.team_mode and st.button("Sign out", icon=":material/logout:", key="sign_out"):
            del st.session_state[IDENTITY]
            st.rerun()
        if not identity.admin:
            with st.expander("Admin"), st.form("unlock_admin", clear_on_submit=True):
                password = st.text_input("Admin password", type="password")
                if st.form_submit_button("Unlock admin"):
                    try:
                        st.session_state[IDENTITY] = access.unlock_admin(config, identity, password)
                    except access.SignInError as e:
                        time.sleep(WRONG_PASSWORD_DELAY_S)
                        st.error(e.message, icon=":material/lock:")
                    else:
                        st.rerun()


def refused(action: access.Action, owner: str | None = None) -> bool:
    """Show why the signed-in user may not do ``action`` and return True; False when they may."""
    identity = current_identity()
    reason = access.refusal(identity, action, owner) if identity else "Sign in first."
    if reason:
        st.error(reason, icon=":material/lock:")
        return True
    return False
