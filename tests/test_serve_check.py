"""Listening on the network without a team password starts nothing (issue 25, finding 7): ``./dev.sh run`` asks
``python -m engine serve-check`` first, because Streamlit's /_stcore/health and /_stcore/metrics would answer the
network even though every page refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine import access

ROOT = Path(__file__).resolve().parent.parent


def _root(tmp_path: Path, config: str = "", secrets: str = "") -> Path:
    (tmp_path / ".streamlit").mkdir()
    if config:
        (tmp_path / ".streamlit" / "config.toml").write_text(config)
    if secrets:
        (tmp_path / ".streamlit" / "secrets.toml").write_text(secrets)
    return tmp_path


def test_the_address_is_read_in_streamlits_order(tmp_path):
    config = _root(tmp_path, '[server]\naddress = "localhost"\n') / ".streamlit" / "config.toml"
    assert access.streamlit_address([], {}, config) == "localhost"
    assert access.streamlit_address([], {"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"}, config) == "0.0.0.0"
    assert access.streamlit_address(["--server.address", "10.1.2.3"], {}, config) == "10.1.2.3"
    assert access.streamlit_address(["--server.address=::"], {"STREAMLIT_SERVER_ADDRESS": "x"}, config) == "::"
    assert access.streamlit_address([], {}, tmp_path / "none.toml") is None  # every interface


@pytest.mark.parametrize(
    ("config", "secrets", "argv", "environ", "refused"),
    [
        ('[server]\naddress = "localhost"\n', "", [], {}, False),
        ('[server]\naddress = "0.0.0.0"\n', "", [], {}, True),
        ('[server]\naddress = "0.0.0.0"\n', 'team_password = "s3cret"\n', [], {}, False),
        ('[server]\naddress = "0.0.0.0"\n', "", [], {access.TEAM_PASSWORD_ENV: "s3cret"}, False),
        ('[server]\naddress = "localhost"\n', "", ["--server.address", "0.0.0.0"], {}, True),
        ("", "", [], {}, True),  # no address set: Streamlit listens on every interface
    ],
)
def test_a_server_reachable_from_the_network_needs_a_team_password(tmp_path, config, secrets, argv, environ, refused):
    why = access.serve_refusal(argv, environ, _root(tmp_path, config, secrets))
    assert (why is not None) == refused
    if refused:
        assert access.TEAM_PASSWORD_ENV in why and "localhost" in why


def test_the_cli_check_exits_2_with_the_reason_and_0_when_the_server_may_start(tmp_path):
    root = _root(tmp_path, '[server]\naddress = "0.0.0.0"\n')
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "engine", "serve-check"]
    refused = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "no team password is set" in refused.stderr
    allowed = subprocess.run(
        [*cmd, "--server.address", "localhost"], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    assert allowed.returncode == 0, allowed.stderr


def test_dev_sh_run_asks_the_check_before_it_starts_streamlit():
    script = (ROOT / "dev.sh").read_text()
    run = script[script.index("  run)") : script.index(";;", script.index("  run)"))]
    assert run.index("-m engine serve-check") < run.index('streamlit" run dashboard.py')
