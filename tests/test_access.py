"""Access (issue 15, defect 1): the server serves only this machine unless team mode is set, team mode needs the
team password, destructive actions need the admin password, and every job and run records who submitted it."""

from __future__ import annotations

import hmac
import logging
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import access
from engine.access import AccessSettings, Action, Identity

ROOT = Path(__file__).resolve().parent.parent
TEAM, ADMIN = "team-secret-4711", "admin-secret-0815"


def test_the_server_listens_on_localhost_by_default():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "localhost"
    settings = AccessSettings.from_sources(config["server"]["address"], {}, {})
    assert not settings.team_mode and settings.refusal() is None


def test_listening_beyond_this_host_without_a_team_password_is_refused():
    for address in (None, "0.0.0.0", "10.1.2.3", "::"):
        refusal = AccessSettings.from_sources(address, {}, {}).refusal()
        assert refusal and access.TEAM_PASSWORD_ENV in refusal and "localhost" in refusal
        assert AccessSettings.from_sources(address, {}, {access.TEAM_PASSWORD_ENV: TEAM}).refusal() is None
    # secrets first, then the environment
    assert (
        AccessSettings.from_sources("0.0.0.0", {"team_password": "a"}, {access.TEAM_PASSWORD_ENV: "b"}).team_password
        == "a"
    )
    # a team password that is set is asked for on localhost too (a reverse proxy on this host is a network)
    assert AccessSettings.from_sources("127.0.0.1", {}, {access.TEAM_PASSWORD_ENV: TEAM}).team_mode


def test_passwords_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((type(a), type(b)))
        return real(a, b)

    monkeypatch.setattr(access.hmac, "compare_digest", spy)
    settings = AccessSettings("0.0.0.0", TEAM, ADMIN)
    with pytest.raises(access.SignInError, match="Wrong team password"):
        access.sign_in(settings, "mallory", "guess")
    with pytest.raises(access.SignInError, match="Wrong admin password"):
        access.sign_in(settings, "mallory", TEAM, "guess")
    assert access.sign_in(settings, "alice", TEAM) == Identity("alice", admin=False)
    assert access.sign_in(settings, "  bob  ", TEAM, ADMIN) == Identity("bob", admin=True)
    assert calls and all(t == (bytes, bytes) for t in calls)
    assert not access.password_matches("", None) and not access.password_matches("x", "")
    with pytest.raises(access.SignInError, match="Give your name"):
        access.sign_in(settings, "<script>", TEAM)


def test_destructive_actions_need_admin_and_anyone_may_cancel_their_own_job():
    alice, admin = Identity("alice"), Identity("root", admin=True)
    for action in Action:
        assert access.refusal(admin, action) is None
        assert "Only an admin may" in access.refusal(alice, action, owner="bob")
    assert access.refusal(alice, Action.CANCEL_OTHERS_JOB, owner="alice") is None
    assert access.refusal(alice, Action.DELETE_RUNS, owner="alice")  # deleting history is admin's
    local = access.local_identity(AccessSettings("localhost"))
    assert local.admin and local.name  # one user on their own machine
    assert not access.local_identity(AccessSettings("localhost", admin_password=ADMIN)).admin


@pytest.fixture
def team_app(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRTDASH_SAMPLES_DIR", str(tmp_path / "no-samples"))
    monkeypatch.setenv(access.TEAM_PASSWORD_ENV, TEAM)
    monkeypatch.setenv(access.ADMIN_PASSWORD_ENV, ADMIN)
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=600)
    yield at
    from engine import jobs

    jobs.stop_workers()


def test_team_mode_shows_only_the_sign_in_page_and_never_logs_a_password(team_app, caplog):
    caplog.set_level(logging.DEBUG)
    at = team_app.run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Your name", "Team password", "Admin password (optional)"]
    assert not any("Profile a model" in t.value for t in at.title)
    at.text_input[0].input("mallory")
    at.text_input[1].input("wrong")
    at.button[0].click().run()
    assert any("Wrong team password" in e.value for e in at.error)
    assert "trtdash_identity" not in at.session_state
    at.text_input[0].input("alice")
    at.text_input[1].input(TEAM)
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["trtdash_identity"] == Identity("alice", admin=False)
    assert any("Profile a model" in t.value for t in at.title)
    assert TEAM not in caplog.text and ADMIN not in caplog.text


def test_the_queue_shows_who_submitted_each_job_and_refuses_to_cancel_others_jobs(tmp_path, monkeypatch):
    from engine import jobs
    from engine.settings.request import RunRequest

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(jobs.AUTOSTART_ENV, "0")  # nothing runs: the jobs stay queued
    request = RunRequest.from_dict({"device": "cpu", "model": {"input_shape": [3, 32, 32]}})
    job = jobs.submit(request, submitted_by="bob")
    assert jobs.get(job.job_id).submitted_by == "bob"

    def overview():
        import streamlit as st

        from engine.access import Identity
        from ui.job_panel import queue_overview

        st.session_state["trtdash_identity"] = Identity("alice")
        queue_overview()

    at = AppTest.from_function(overview, default_timeout=600).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table["submitted by"].tolist() == ["bob"]
    at.selectbox(key="queue_cancel_pick").select(job.job_id).run()
    at.button(key="queue_cancel").click().run()
    assert any("Only an admin may cancel someone else's job" in e.value for e in at.error)
    assert jobs.get(job.job_id).state == "queued"
    at.button(key="stop_workers").click().run()
    assert any("Only an admin may stop the workers" in e.value for e in at.error)
