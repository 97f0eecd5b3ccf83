"""The fleet overview: every target's collector state, freshness, DB time, top wait class and
open alerts in one repository read, worst first, and the app's Fleet page showing it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from ops_core import api

from .helpers import cancel_backends

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")


@pytest.fixture
def fleet_state(repo, target_db):
    """``busy`` sampled with an active session, a snapshot and a firing critical alert;
    ``calm`` sampled too; ``down`` failing (nothing listens); ``new`` never sampled."""
    for n in ("busy", "calm", "new"):
        api.add_target(n, target_db)
    with psycopg.connect(target_db) as c:
        port = c.info.port
    api.add_target("down", f"host=127.0.0.1 port={port + 7} dbname=nope", verify=False)
    api.tag_target("busy", {"env": "prod"})
    sleeper = psycopg.connect(target_db, autocommit=True, application_name="fleet-overview-t")
    pid = sleeper.info.backend_pid
    t = threading.Thread(target=_sleep, args=(sleeper,), daemon=True)
    t.start()
    try:
        api.run_ash_fleet(
            ["busy", "calm", "down"], duration_s=3, interval_s=1.0, flush_interval_s=1.0
        )
    finally:
        cancel_backends(target_db, [pid])
        t.join(30)
    api.take_snapshot("busy")
    api.create_alert_rule(
        "fleet-ov", "idle_in_transaction_s", 0.0, op=">=", target="busy", severity="critical"
    )
    api.evaluate_alerts("busy")
    return target_db


def _sleep(conn: psycopg.Connection) -> None:
    try:
        conn.execute("SELECT pg_sleep(600)")
    except psycopg.Error:
        pass
    finally:
        conn.close()


@pytest.mark.slow
def test_overview_every_target_worst_first(fleet_state):
    rows = api.fleet_overview(window_minutes=5)
    by = {r.target: r for r in rows}
    assert set(by) == {"busy", "calm", "down", "new"}
    # worst first: the failing collector, the never-sampled target, then the sampling ones,
    # the one with a critical alert before the calm one
    assert [r.target for r in rows] == ["down", "new", "busy", "calm"]
    down = by["down"]
    assert down.collector == "failing" and down.sampler_errors >= 1
    assert down.last_error and down.last_sample_age_s is None
    assert by["new"].collector == "not sampled" and by["new"].last_error is None
    busy = by["busy"]
    assert busy.collector == "sampling" and busy.last_sample_age_s is not None
    assert busy.last_snapshot_status in ("ok", "partial") and busy.last_snapshot_age_s is not None
    assert by["calm"].last_snapshot_age_s is None
    # the sleeping session was sampled: DB time in the window, its wait class on top
    assert busy.db_time_rate > 0 and busy.top_wait_class == "Timeout"
    assert 0 < busy.top_wait_class_pct <= 100
    assert (busy.open_alerts, busy.critical_alerts) == (1, 1)
    assert (by["calm"].open_alerts, by["down"].db_time_rate) == (0, 0)
    assert busy.tags == {"env": "prod"}
    # the app's Fleet page shows the same, in the same order
    _page_shows_the_fleet()


def test_overview_refuses_a_bad_window(repo):
    from ops_core.errors import InvalidInput

    for bad in (0, -5, 5000):
        with pytest.raises(InvalidInput, match="window"):
            api.fleet_overview(bad)


def _page_shows_the_fleet() -> None:
    import streamlit as st

    st.cache_data.clear()
    os.environ[api.APP_TOKEN_ENV] = "apptest-login-token"
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.session_state["_opscore_login"] = True
    at.run()
    at.switch_page(str(Path(MAIN).parent / "views" / "fleet.py"))
    at.run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Targets"] == "4" and metrics["Failing"] == "1"
    assert metrics["Open alerts"] == "1"
    table = at.dataframe[0].value
    assert list(table["target"]) == ["down", "new", "busy", "calm"]
    assert table.loc[table["target"] == "busy", "top_wait_class"].item() == "Timeout"
