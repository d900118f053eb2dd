"""Errors as the user reads them: what went wrong and what to do, the traceback only in an expander."""

from __future__ import annotations

import logging
import traceback

import streamlit as st

from engine.errors import ConfigError, UserError
from ui.markdown import plain

log = logging.getLogger(__name__)


def show_error(exc: BaseException, what: str = "") -> None:
    """A user-facing message (what went wrong and what to do); the traceback only in an expander."""
    if isinstance(exc, ConfigError):
        text = f"**{exc.field}**: {plain(exc.message)}"
    else:
        text = plain((exc.message if isinstance(exc, UserError) else str(exc)) or type(exc).__name__)
    hint = exc.hint if isinstance(exc, UserError) else ""
    st.error((f"{what}: " if what else "") + text + (f"\n\n{plain(hint)}" if hint else ""), icon=":material/error:")
    log.error("%s", what or "error", exc_info=exc)
    with st.expander("Technical details"):
        st.code("".join(traceback.format_exception(exc)), language="text")


def field_error(exc: ConfigError, then: str = "") -> None:
    """A request field that is wrong, named with what is wrong (``then``: what follows, e.g. "Nothing was
    submitted.")."""
    st.error(f"**{exc.field}**: {plain(exc.message)}" + (f". {then}" if then else ""), icon=":material/error:")
