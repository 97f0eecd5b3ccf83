"""Streamlit pages rendered headless with AppTest against a repository filled by a real
workload run (tests/app_workload.py): every page renders, shows the workload's own top
statement, and the write actions change the repository. Bad input: no targets, a target
down, the repository down."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ops_core import api
from ops_core.config import reset_settings_cache

from .app_workload import TOP_SQL, fresh_repository, run_workload
from .helpers import running_statement

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
PAGES = Path(MAIN).parent / "views"


APP_TOKEN = "apptest-login-token"


def _run(page: str | None = None, state: dict | None = None, login: bool = True) -> AppTest:
    """A page rendered headless; ``login``: as an operator who logged in (write actions need
    it; tests/test_security_app.py goes through the login form itself)."""
    import streamlit as st

    st.cache_data.clear()  # the cache lives in this process across AppTest runs
    os.environ[api.APP_TOKEN_ENV] = APP_TOKEN
    at = AppTest.from_file(MAIN, default_timeout=120)
    if login:
        at.session_state["_opscore_login"] = True
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.run()
    if page:
        at.switch_page(str(PAGES / page))
        at.run()
    assert not at.exception, at.exception
    return at


def _text(at: AppTest) -> str:
    """Everything a user reads: markdown, captions, alerts, metrics, tables, code."""
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "code", "title"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [df.value.to_string() for df in at.dataframe]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def wl(pg, opscore_env):
    fresh_repository()
    dsn = pg.create_database("appwl")
    try:
        yield run_workload(dsn, target="shop")
    finally:
        for b in api.list_baselines():
            api.delete_baseline(b.name)
        pg.drop_database(dsn)


def _tables(at: AppTest) -> str:
    return "\n".join(df.value.to_string() for df in at.dataframe)


def test_overview(wl):
    at = _run()
    text = _text(at)
    assert "shop" in text and "yes" in _tables(at)  # reachable
    assert at.metric[0].value == "1"
    assert "apptest_orders" in _tables(at)  # top SQL of the last hour, from ASH
    assert "No ADDM analysis yet" in text or "Latest analysis" in text


def test_performance_hub(wl, pg):
    from .addm_helpers import ensure_plan_role

    ensure_plan_role(pg)  # a superuser connection plans only under the least-privilege role
    at = _run("performance.py")  # Summary: the load profile of the range
    assert "executions" in _tables(at) and "Executions / s" in _text(at)
    at = _run("performance.py", {"hub": "Top SQL"})
    top = at.dataframe[0].value
    assert int(top.iloc[0]["queryid"]) == wl.top_queryid
    assert "apptest_orders" in top.iloc[0]["query"]
    assert "80" in " ".join(m.value for m in at.metric)  # drill-down: calls
    text = _text(at)
    assert "PgSleep" in text  # wait profile of the statement (ASH)
    assert str(wl.end_id) in _tables(at)  # its history across snapshots
    at.button(key="hub_explain").click().run()  # its plan
    assert not at.exception
    text = _text(at)
    assert "Seq Scan" in text or "GENERIC_PLAN" in text
    at.selectbox(key="hub_order").select("calls").run()
    assert not at.exception
    assert "PgSleep" in _tables(_run("performance.py", {"hub": "Wait events"}))
    assert "apptest-" in _tables(_run("performance.py", {"hub": "Top sessions"}))
    assert "apptest_orders" in _tables(_run("performance.py", {"hub": "I/O"}))
    at = _run("performance.py", {"hub": "Trends"})
    assert "Times in" in _text(at)


def test_ash_page(wl):
    at = _run("ash.py")
    assert "PgSleep" in _tables(at)
    at = _run("ash.py", {"ash_by": "sql"})
    assert "apptest_orders" in _tables(at)
    assert "No session was blocked" in _text(at)


def test_workload_repository_reads_and_writes(wl):
    at = _run("workload.py")
    assert str(wl.end_id) in _tables(at)
    compare = _run("workload.py", {"wr": "Compare"})
    assert "apptest_orders" in _tables(compare)  # compare: top SQL of the ranges
    at = _run("workload.py", {"wr": "Baselines"})
    before = len(api.list_snapshots("shop"))
    at.button(key="wr_take").click().run()
    assert any("Take a snapshot of shop" in w.value for w in at.warning)
    assert len(api.list_snapshots("shop")) == before  # nothing before confirming
    at.button(key="wr_take_pending_yes").click().run()
    assert not at.exception
    assert len(api.list_snapshots("shop")) == before + 1
    assert any("taken" in s.value for s in at.success)

    at.text_input(key="bl_name").input("app-peak").run()
    at.selectbox(key="bl_e").select(wl.end_id).run()
    at.button(key="bl_create").click().run()
    at.button(key="bl_create_pending_yes").click().run()
    assert not at.exception
    assert [b.name for b in api.list_baselines("shop")] == ["app-peak"]
    assert any("app-peak" in s.value for s in at.success)

    # the hub compares with it
    at2 = _run("performance.py", {"hub_baseline": "app-peak"})
    assert not at2.exception
    assert "per_second_2" in at2.dataframe[0].value.columns  # now vs the baseline

    at.selectbox(key="bl_del_name").select("app-peak").run()
    at.button(key="bl_delete").click().run()
    at.button(key="bl_delete_pending_no").click().run()  # cancel: still there
    assert [b.name for b in api.list_baselines("shop")] == ["app-peak"]
    at.button(key="bl_delete").click().run()
    at.button(key="bl_delete_pending_yes").click().run()
    assert not at.exception
    assert api.list_baselines("shop") == []


@pytest.mark.slow
def test_generate_report_from_the_app(wl, tmp_path, monkeypatch):
    from ops_core.config import reset_settings_cache

    monkeypatch.setenv("OPSCORE_REPORTS_DIR", str(tmp_path))
    reset_settings_cache()
    try:
        at = _run("workload.py", {"wr": "Reports"})
        at.selectbox(key="rep_kind").select("awr").run()
        at.selectbox(key="rep_b").select(wl.begin_id).run()
        at.selectbox(key="rep_e").select(wl.end_id).run()
        at.button(key="rep_go").click().run()
        assert not at.exception, at.exception
        html = tmp_path / "shop" / f"awr-{wl.begin_id}-{wl.end_id}.html"
        assert html.exists() and "apptest_orders" in html.read_text()
        assert "Report written" in _text(at)
    finally:
        monkeypatch.delenv("OPSCORE_REPORTS_DIR")
        reset_settings_cache()


def test_live_page_shows_running_statement(wl):
    # the statement runs from before the page renders until the checks are done
    with running_statement(wl.dsn, TOP_SQL, (600, 1), application_name="apptest-live"):
        at = _run("live.py")
        assert "apptest_orders" in _tables(at) and "PgSleep" in _tables(at)
        at.toggle(key="live_paused").set_value(True).run()
        assert not at.exception and "paused" in _text(at)


def test_addm_and_catalog_pages(wl, tmp_path, monkeypatch):
    from ops_core.config import reset_settings_cache

    reports = tmp_path / "reports"
    monkeypatch.setenv("OPSCORE_REPORTS_DIR", str(reports))
    reset_settings_cache()
    try:
        before = len(api.list_addm("shop"))
        at = _run("addm.py")
        at.selectbox(key="addm_b").select(wl.begin_id).run()
        at.selectbox(key="addm_e").select(wl.end_id).run()
        at.button[0].click().run()  # Run analysis
        assert not at.exception, at.exception
        assert len(api.list_addm("shop")) == before + 1  # stored in the repository
        text = _text(at)
        assert "Analysis" in text and "DB time" in text
        assert "apptest_orders" in text  # the workload's own top statement, in a finding
        shown = api.list_addm("shop")[0]
        at.button(key="addm_report").click().run()  # the ADDM report of the analysis shown
        assert not at.exception, at.exception
        html = next(reports.rglob(f"addm-*-analysis{shown.analysis_id}.html"))
        assert "Findings ranked by share of DB time" in html.read_text()
        assert "Report written" in _text(at)
    finally:
        monkeypatch.delenv("OPSCORE_REPORTS_DIR")
        reset_settings_cache()
    at = _run("catalog.py")
    assert at.metric[0].value == "163"
    assert int(at.metric[1].value) >= 10  # served by the app and the api


def test_target_down(wl, pg):
    api.add_target("down", "host=127.0.0.1 port=1 dbname=x user=x", verify=False)
    try:
        at = _run()
        assert "NO" in _tables(at)
        for page in ("performance.py", "ash.py", "live.py", "workload.py"):
            at = _run(page, {"target": "down"})
            assert not at.exception
        assert "not reachable" in _text(_run("live.py", {"target": "down"}))
        assert "No snapshots of down" in _text(_run("workload.py", {"target": "down"}))
    finally:
        api.remove_target("down")


def test_no_targets_then_repository_down(pg, opscore_env):
    fresh_repository()
    for page in (None, "performance.py", "ash.py", "live.py", "workload.py", "addm.py"):
        at = _run(page)
        assert "No target" in _text(at) or "No targets" in _text(at), page
    saved = os.environ.get("OPSCORE_REPOSITORY_DSN")
    os.environ["OPSCORE_REPOSITORY_DSN"] = "host=127.0.0.1 port=1 dbname=nope user=nope"
    reset_settings_cache()
    try:
        for page in (None, "performance.py", "workload.py", "catalog.py"):
            at = _run(page)
            assert not at.exception
        assert "unreachable" in _text(_run()).lower()
    finally:
        if saved is None:
            os.environ.pop("OPSCORE_REPOSITORY_DSN", None)
        else:
            os.environ["OPSCORE_REPOSITORY_DSN"] = saved
        reset_settings_cache()
