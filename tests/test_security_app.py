"""The app's login: every write action needs it; a network bind needs it for every page and is
refused by `opscore app` without an operator-set token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ops_core import api
from ops_core.cli import app as cli_app

from .test_app import APP_TOKEN, _run, _text


@pytest.fixture
def app_target(repo, target_db):
    api.add_target("apps", target_db, verify=False)
    return "apps"


def test_write_action_needs_login(app_target):
    at = _run("workload.py", {"target": app_target}, login=False)
    at.button(key="wr_take").click().run()
    assert any("log in first" in w.value for w in at.warning)
    assert not any(b.key == "wr_take_pending_yes" for b in at.button)  # no way to confirm
    assert api.list_snapshots(app_target) == []

    at.text_input(key="login_token").input("wrong").run()
    at.button(key="login_go").click().run()
    assert any("Wrong token" in e.value for e in at.error)
    assert api.list_snapshots(app_target) == []

    at.text_input(key="login_token").input(APP_TOKEN).run()
    at.button(key="login_go").click().run()
    at.button(key="wr_take").click().run()
    at.button(key="wr_take_pending_yes").click().run()
    assert not at.exception
    assert len(api.list_snapshots(app_target)) == 1


def test_network_bind_shows_nothing_before_login(app_target, monkeypatch):
    monkeypatch.setenv(api.APP_BIND_ENV, "0.0.0.0")
    at = _run(None, {"target": app_target}, login=False)
    assert "listens on the network" in _text(at)
    assert not at.sidebar.selectbox  # no target picker, no page
    at.text_input(key="login_token").input(APP_TOKEN).run()
    at.button(key="login_go").click().run()
    assert not at.exception
    assert "listens on the network" not in _text(at)


def test_cli_refuses_network_bind_without_token(monkeypatch):
    monkeypatch.delenv(api.APP_TOKEN_ENV, raising=False)
    for host in ("0.0.0.0", "::", "10.1.2.3", "db.example.com"):
        res = CliRunner().invoke(cli_app, ["app", "--host", host])
        assert res.exit_code == 1, res.output
        assert "Refusing to serve the app" in res.output and api.APP_TOKEN_ENV in res.output
    res = CliRunner().invoke(cli_app, ["app", "--host", ""])
    assert res.exit_code == 2 and "--host" in res.output


def test_cli_warns_loudly_on_network_bind_with_token(monkeypatch):
    monkeypatch.setenv(api.APP_TOKEN_ENV, "operator-set")
    seen = {}

    def fake_exec(path, argv, env):  # stands in for the Streamlit process
        seen.update(argv=argv, env=env)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", fake_exec)
    res = CliRunner().invoke(cli_app, ["app", "--host", "0.0.0.0", "--port", "8999"])
    assert "WARNING" in res.output and "reachable from the network" in res.output
    assert seen["env"][api.APP_BIND_ENV] == "0.0.0.0"
    assert seen["argv"][seen["argv"].index("--server.address") + 1] == "0.0.0.0"


def test_cli_default_bind_is_loopback_with_a_generated_token(monkeypatch):
    monkeypatch.delenv(api.APP_TOKEN_ENV, raising=False)
    seen = {}

    def fake_exec(path, argv, env):
        seen.update(argv=argv, env=env)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", fake_exec)
    res = CliRunner().invoke(cli_app, ["app"])
    assert seen["argv"][seen["argv"].index("--server.address") + 1] == "127.0.0.1"
    token = seen["env"][api.APP_TOKEN_ENV]
    assert len(token) >= 20 and token in res.output  # the operator sees the login token


def test_real_process_refuses_network_bind(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != api.APP_TOKEN_ENV}
    r = subprocess.run(
        [sys.executable, "-m", "ops_core", "app", "--host", "0.0.0.0", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0
    assert "Refusing to serve the app" in r.stderr and "Traceback" not in r.stderr
    with socket.socket() as s:  # nothing listens there
        assert s.connect_ex(("127.0.0.1", port)) != 0
