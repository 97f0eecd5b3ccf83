"""Live sessions: the wait class of a running, a lock-waiting and an idle-in-transaction session
seen together is right for each (pandas 3 turns the running session's None wait type into NaN
when another row has one), and no live duration is negative."""

from __future__ import annotations

import threading
import time

import pandas as pd
import psycopg
import pytest

from ops_core import api
from ops_core.analysis.waits import event_name, wait_class


def test_wait_class_treats_nan_as_no_wait():
    assert wait_class("active", float("nan")) == "CPU"
    assert wait_class("idle in transaction", float("nan")) == "Client"
    assert wait_class("active", "Lock") == "Lock"
    assert event_name("active", float("nan"), float("nan")) == "CPU"


def _quiet(conn: psycopg.Connection, q: str) -> None:
    try:
        conn.execute(q)
    except psycopg.errors.QueryCanceled:
        pass  # cancelled at the end of the test


def _app(dsn: str, name: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True, application_name=name)


def test_live_wait_class_running_waiting_idle_at_once(target_db, opscore_env):
    dsn = target_db
    api.add_target("livewaits", dsn)
    with _app(dsn, "setup") as c:
        c.execute("CREATE TABLE live_hot (id int PRIMARY KEY, v int)")
        c.execute("INSERT INTO live_hot VALUES (1, 0)")
    holder, waiter, runner = _app(dsn, "holder"), _app(dsn, "waiter"), _app(dsn, "runner")
    threads = []
    try:
        holder.execute("BEGIN")
        holder.execute("UPDATE live_hot SET v = v + 1 WHERE id = 1")  # then idle in transaction
        threads.append(
            threading.Thread(
                target=lambda: _quiet(waiter, "UPDATE live_hot SET v = v + 1 WHERE id = 1"),
                daemon=True,
            )
        )
        # a pure CPU loop: no wait event while it runs
        threads.append(
            threading.Thread(
                target=lambda: _quiet(
                    runner, "SELECT count(*) FROM generate_series(1, 400000000) g WHERE g % 7 = 3"
                ),
                daemon=True,
            )
        )
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        seen: dict[str, str] = {}
        while time.monotonic() < deadline:
            df = api.live_sessions("livewaits")
            rows = {r.application_name: r for r in df.itertuples(index=False)}
            if {"holder", "waiter", "runner"} <= rows.keys():
                r = rows["runner"]
                if r.state == "active" and pd.isna(r.wait_event_type):
                    seen = {k: rows[k].wait_class for k in ("holder", "waiter", "runner")}
                    durations = df[["query_s", "xact_s", "state_s"]].stack()
                    assert (durations >= 0).all(), df[["query_s", "xact_s", "state_s"]]
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the three sessions were not seen together")
        assert seen == {"holder": "Client", "waiter": "Lock", "runner": "CPU"}
    finally:
        for c in (runner, waiter):
            c.cancel_safe()
        holder.execute("ROLLBACK")
        for t in threads:
            t.join(timeout=30)
        for c in (holder, waiter, runner):
            c.close()
        api.remove_target("livewaits")
