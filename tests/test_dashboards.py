"""Dashboards on a real repository: the two built-in ones exist and evaluate over real
snapshots and ASH samples; user dashboards are saved, changed and deleted; bad panels are
refused before anything is stored."""

from __future__ import annotations

import threading

import psycopg
import pytest

from ops_core import api
from ops_core.errors import InvalidInput, NotFound


@pytest.fixture
def dash(repo, target_db):
    api.add_target("db1", target_db)
    api.take_snapshot("db1")
    stop = threading.Event()

    def busy():
        with psycopg.connect(target_db, autocommit=True, application_name="dash-load") as c:
            while not stop.is_set():
                c.execute("SELECT count(*) FROM generate_series(1, 200000)")

    th = threading.Thread(target=busy, daemon=True)
    th.start()
    try:
        api.run_ash("db1", duration_s=3, interval_s=0.2, flush_interval_s=1)
    finally:
        stop.set()
        th.join(30)
    api.take_snapshot("db1")
    return target_db


def test_builtin_dashboards_evaluate_over_real_data(dash):
    names = [d.name for d in api.list_dashboards()]
    assert {"fleet-overview", "target"} <= set(names)
    data = api.dashboard_data("target", target="db1", since="10m")
    by = {p.title: p for p in data.panels}
    wc = by["DB time by wait class"]
    assert len(wc.rows) and wc.x == "minute" and wc.rows["db_time_s"].sum() > 0
    assert len(by["Top SQL"].rows) >= 1
    trends = by["Transactions and calls per second"]
    assert len(trends.rows) >= 1 and trends.y == ["xacts_per_s", "calls_per_s"]
    fleet = api.dashboard_data("fleet-overview", since="10m")
    assert "db1" in set(fleet.panels[0].rows["name"])


def test_user_dashboard_crud_and_bad_input(dash):
    panels = [{"title": "Events", "kind": "bar", "source": "ash_top", "params": {"by": "event"}}]
    d = api.create_dashboard("mine", "My view", panels, target="db1")
    assert d.panels[0]["source"] == "ash_top" and not d.builtin and d.target == "db1"
    with pytest.raises(InvalidInput, match="exists"):
        api.create_dashboard("mine", "again", panels)
    with pytest.raises(InvalidInput, match="unknown source"):
        api.create_dashboard("bad", "x", [{"kind": "bar", "source": "cpu_magic"}])
    with pytest.raises(InvalidInput, match="unknown kind"):
        api.update_dashboard("mine", panels=[{"kind": "pie", "source": "alerts"}])
    up = api.update_dashboard("mine", title="Renamed")
    assert up.title == "Renamed" and up.panels == d.panels
    assert len(api.dashboard_data("mine", since="10m").panels[0].rows) >= 1
    with pytest.raises(InvalidInput, match="built in"):
        api.delete_dashboard("target")
    api.delete_dashboard("mine")
    with pytest.raises(NotFound):
        api.get_dashboard("mine")
