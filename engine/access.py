"""Who may use the dashboard, and who may destroy what others made.

Two modes, chosen by one setting, Streamlit's ``server.address`` (``.streamlit/config.toml``):

* **local** (the default, ``address = "localhost"``): only this machine can connect; nobody signs in, and
  whoever runs the dashboard is its admin, unless an admin password is set.
* **team** (``address = "0.0.0.0"``, or any address other machines can reach): everyone signs in with their
  name and the team password. The dashboard refuses to serve the network without a team password. A team
  password that is set is asked for in local mode too (a reverse proxy on this host is a network).

Destructive actions (deleting runs, cancelling someone else's job, stopping the workers) need the admin
password, given at sign-in or later. Passwords come from Streamlit secrets (``team_password``,
``admin_password`` in ``.streamlit/secrets.toml``) or the environment (``TRTDASH_TEAM_PASSWORD``,
``TRTDASH_ADMIN_PASSWORD``); they are compared in constant time, never logged or stored, and left out of the
environment of the job processes that run model code (``without_secrets``).
"""

from __future__ import annotations

import getpass
import hmac
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from engine.errors import UserError

TEAM_PASSWORD_ENV = "TRTDASH_TEAM_PASSWORD"
ADMIN_PASSWORD_ENV = "TRTDASH_ADMIN_PASSWORD"
SECRET_ENVS = (TEAM_PASSWORD_ENV, ADMIN_PASSWORD_ENV)  # what no process that runs model code may inherit
TEAM_PASSWORD_SECRET = "team_password"
ADMIN_PASSWORD_SECRET = "admin_password"
LOOPBACK_ADDRESSES = ("localhost", "127.0.0.1", "::1", "[::1]", "ip6-localhost")
NAME_PATTERN = re.compile(r"[\w .@'-]{1,40}")  # letters (any script), digits, space and . @ ' - _


class Action(Enum):
    DELETE_RUNS = "delete runs"
    CANCEL_OTHERS_JOB = "cancel someone else's job"
    STOP_WORKERS = "stop the workers"


@dataclass(frozen=True)
class AccessSettings:
    """The access configuration of one server: where it listens and the two passwords (None: not set)."""

    address: str | None
    team_password: str | None = None
    admin_password: str | None = None

    @classmethod
    def from_sources(
        cls, address: str | None, secrets: Mapping[str, Any], environ: Mapping[str, str]
    ) -> AccessSettings:
        """Streamlit's ``server.address``, then each password from the secrets, else from the environment."""

        def password(secret: str, env: str) -> str | None:
            value = secrets.get(secret) or environ.get(env) or None
            return str(value) if value is not None else None

        return cls(
            address or None,
            password(TEAM_PASSWORD_SECRET, TEAM_PASSWORD_ENV),
            password(ADMIN_PASSWORD_SECRET, ADMIN_PASSWORD_ENV),
        )

    @property
    def listens_beyond_this_host(self) -> bool:
        """Streamlit listens on every interface when no address is set."""
        return self.address is None or self.address.strip().lower() not in LOOPBACK_ADDRESSES

    @property
    def team_mode(self) -> bool:
        return self.listens_beyond_this_host or self.team_password is not None

    def refusal(self) -> str | None:
        """Why this server must not serve anyone as configured, or None."""
        if self.listens_beyond_this_host and not self.team_password:
            where = "every network interface" if self.address is None else f"{self.address}"
            return (
                f"This dashboard listens on {where}, so others on the network can reach it, and no team "
                f"password is set. Set one ({TEAM_PASSWORD_ENV}, or {TEAM_PASSWORD_SECRET} in "
                ".streamlit/secrets.toml) and restart, or serve only this machine with server.address = "
                '"localhost" in .streamlit/config.toml.'
            )
        return None


def without_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the passwords: the environment of the job supervisor, its workers and their job
    processes, where model files run (an admin-placed ``.py`` could read its own environment)."""
    return {k: v for k, v in environ.items() if k not in SECRET_ENVS}


@dataclass(frozen=True)
class Identity:
    """Who is using this browser session."""

    name: str
    admin: bool = False


def password_matches(given: str, expected: str | None) -> bool:
    """Constant-time comparison; a password that is not set matches nothing."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class SignInError(UserError, ValueError):
    """A sign-in that is refused; ``message`` says why (never which part of a password was wrong)."""


def clean_name(name: str) -> str:
    name = " ".join(str(name).split())
    if not NAME_PATTERN.fullmatch(name):
        raise SignInError(
            "Give your name (1 to 40 letters, digits, spaces or . @ ' - _): it is recorded on every "
            "job and run you submit."
        )
    return name


def sign_in(settings: AccessSettings, name: str, team_password: str, admin_password: str = "") -> Identity:
    """The identity of a team member who gave these; raises ``SignInError``."""
    name = clean_name(name)
    team_ok = password_matches(team_password, settings.team_password)
    admin_ok = bool(admin_password) and password_matches(admin_password, settings.admin_password)
    if not team_ok:
        raise SignInError("Wrong team password.")
    if admin_password and not admin_ok:
        raise SignInError("Wrong admin password. Leave it empty to sign in without admin rights.")
    return Identity(name, admin=admin_ok)


def unlock_admin(settings: AccessSettings, identity: Identity, admin_password: str) -> Identity:
    if not password_matches(admin_password, settings.admin_password):
        raise SignInError(
            "Wrong admin password."
            if settings.admin_password
            else f"No admin password is set ({ADMIN_PASSWORD_ENV}, or {ADMIN_PASSWORD_SECRET} in "
            ".streamlit/secrets.toml): nobody can delete runs or stop the workers."
        )
    return Identity(identity.name, admin=True)


def local_identity(settings: AccessSettings) -> Identity:
    """The user of a dashboard only this machine can reach: its OS user, admin unless an admin password is set."""
    try:
        name = getpass.getuser()
    except Exception:  # no user name in the environment or the password database (a bare container)
        name = "local"
    return Identity(name, admin=not settings.admin_password)


def refusal(identity: Identity, action: Action, owner: str | None = None) -> str | None:
    """Why ``identity`` may not do ``action`` (on something ``owner`` submitted), or None when it may."""
    if identity.admin:
        return None
    if action is Action.CANCEL_OTHERS_JOB and owner is not None and owner == identity.name:
        return None
    return f"Only an admin may {action.value}: unlock admin with the admin password (sidebar)."


# -- before the server starts ------------------------------------------------------------------------------------
def streamlit_address(argv: list[str], environ: Mapping[str, str], config_toml: Path) -> str | None:
    """The ``server.address`` a ``streamlit run`` with ``argv`` would listen on, in Streamlit's order: the command
    line, then ``STREAMLIT_SERVER_ADDRESS``, then ``.streamlit/config.toml``; None where none is set (every
    interface)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--server.address="):
            return arg.split("=", 1)[1] or None
        if arg == "--server.address" and i + 1 < len(argv):
            return argv[i + 1] or None
    if environ.get("STREAMLIT_SERVER_ADDRESS"):
        return environ["STREAMLIT_SERVER_ADDRESS"]
    if config_toml.is_file():
        server = tomllib.loads(config_toml.read_text()).get("server", {})
        return str(server["address"]) if server.get("address") else None
    return None


def serve_refusal(argv: list[str], environ: Mapping[str, str], root: Path) -> str | None:
    """Why ``streamlit run dashboard.py <argv>`` from ``root`` must not start (None: it may). The page refuses
    every visitor of such a server, but Streamlit's own /_stcore/health and /_stcore/metrics cannot be switched
    off and would still answer the network, so ``./dev.sh run`` asks this first and starts nothing."""
    secrets_toml = root / ".streamlit" / "secrets.toml"
    secrets = tomllib.loads(secrets_toml.read_text()) if secrets_toml.is_file() else {}
    address = streamlit_address(argv, environ, root / ".streamlit" / "config.toml")
    return AccessSettings.from_sources(address, secrets, environ).refusal()


def serve_check_main(argv: list[str]) -> int:
    """``python -m engine serve-check [streamlit arguments]``: exit 2 with the reason when the dashboard must not
    start as configured, else 0."""
    try:
        why = serve_refusal(argv, os.environ, Path.cwd())
    except (OSError, tomllib.TOMLDecodeError) as e:
        why = f"The Streamlit configuration could not be read ({e}): fix .streamlit/config.toml or secrets.toml."
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    return 0
