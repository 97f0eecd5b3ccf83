"""Performance Hub API against a real workload: top SQL, history, trends, ASH activity,
object I/O, EXPLAIN, target status, live sessions, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ops_core import api
from ops_core.errors import InvalidInput, NotFound, UnknownTarget

from .app_workload import TOP_SQL, fresh_repository, run_workload
from .helpers import running_statement, wait_until


@pytest.fixture(scope="module")
def wl(pg, opscore_env):
    fresh_repository()
    dsn = pg.create_database("perf")
    try:
        yield run_workload(dsn, target="perf")
    finally:
        pg.drop_database(dsn)


def test_top_statements_per_call_figures(wl):
    top = api.top_statements(wl.target, wl.begin_id, wl.end_id)
    first = top.iloc[0]
    assert first["queryid"] == wl.top_queryid
    assert first["calls"] == 80
    # 80 calls of pg_sleep(0.05): at least 4 s in total, at least 50 ms per call
    assert first["total_ms"] >= 4000 and first["mean_ms"] >= 50
    assert first["mean_ms"] == pytest.approx(first["total_ms"] / 80)
    assert first["rows_per_call"] == pytest.approx(1.0)
    assert 0 < first["pct_db_time"] <= 100
    assert top["pct_db_time"].sum() <= 100.01
    by_calls = api.top_statements(wl.target, wl.begin_id, wl.end_id, order_by="calls", limit=3)
    assert len(by_calls) <= 3 and list(by_calls["calls"]) == sorted(by_calls["calls"], reverse=True)
    with pytest.raises(InvalidInput):
        api.top_statements(wl.target, wl.begin_id, wl.end_id, order_by="nope")
    with pytest.raises(InvalidInput):
        api.top_statements(wl.target, wl.end_id, wl.begin_id)


def test_history_trends_bounds(wl):
    hist = api.statement_history(wl.target, wl.top_queryid)
    assert list(hist["snapshot_id"]) == [wl.end_id]
    assert hist.iloc[0]["calls"] == 80 and hist.iloc[0]["calls_per_s"] > 0
    tr = api.load_trends(wl.target, wl.begin_id, wl.end_id)
    assert list(tr["snapshot_id"]) == [wl.end_id]
    assert tr.iloc[0]["calls_per_s"] > 0 and tr.iloc[0]["sql_time_s_per_s"] > 0
    b, e = api.snapshot_bounds(wl.target, datetime.now(UTC) - timedelta(hours=1))
    assert (b, e) == (wl.begin_id, wl.end_id)
    with pytest.raises(NotFound):
        api.snapshot_bounds(wl.target, "2001-01-01", "2001-01-02")
    lp = api.load_profile(wl.target, wl.begin_id, wl.end_id)
    assert lp.set_index("metric").loc["executions", "total"] >= 90


def test_ash_activity_and_status(wl):
    now = datetime.now(UTC)
    act = api.ash_activity_grid(wl.target, now - timedelta(hours=1), now)
    assert wl.ash_rows > 0
    assert "Timeout" in set(act["wait_class"])  # pg_sleep waits are class Timeout (PgSleep)
    assert act.attrs["bucket"] == "minute"
    # one row per minute of the hour (zeros included) and class; AAS x 60 s = ASH DB time
    assert len(act[act["wait_class"] == "Timeout"]) in (60, 61)
    dbt = api.ash_db_time(wl.target, now - timedelta(hours=1), now, by=[])["db_time_s"].sum()
    assert act["aas"].sum() * 60 == pytest.approx(dbt)
    st = api.target_status(wl.target)
    assert st.reachable and st.version and st.last_snapshot_id == wl.end_id
    assert st.last_ash_sample is not None and st.db_time_last_hour_s > 0
    assert [s.name for s in api.targets_status()] == [wl.target]
    with pytest.raises(UnknownTarget):
        api.target_status("no-such-target")


def test_object_io(wl, pg):
    io = api.object_io(wl.target, wl.begin_id, wl.end_id)
    assert "apptest_orders" in set(io["tables"]["relname"])
    if pg.version_num >= 160000:
        assert io["io"] is not None and not io["io"].empty
    else:
        assert io["io"] is None


def test_explain(wl, pg):
    from .addm_helpers import ensure_plan_role

    ensure_plan_role(pg)  # a superuser connection plans only under the least-privilege role
    plain = api.explain_statement(wl.target, wl.plain_queryid)
    assert plain.explainable and not plain.generic and "apptest_orders" in plain.plan
    top = api.explain_statement(wl.target, wl.top_queryid)  # has $1, $2
    # GENERIC_PLAN on 16+, PREPARE + force_generic_plan on 14-15
    assert top.explainable and top.generic and "Seq Scan" in top.plan
    with pytest.raises(NotFound):
        api.explain_statement(wl.target, 12345)
    # nothing ran: the table is unchanged and EXPLAIN never executed the statement
    with psycopg.connect(wl.dsn, autocommit=True) as c:
        calls = c.execute(
            "SELECT sum(calls) FROM pg_stat_statements WHERE queryid = %s AND dbid = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            (wl.top_queryid,),
        ).fetchone()[0]
    assert calls == 80


def test_explain_refuses_what_it_cannot_show():
    from ops_core.collectors.live import explain_mode

    assert explain_mode("VACUUM t", 180000)[1].startswith("VACUUM")
    assert "more than one" in explain_mode("SELECT 1; DROP TABLE t", 180000)[1]
    assert explain_mode("/* x */ SELECT $1", 180000) == (True, None)
    assert explain_mode("SELECT $1", 150000) == (True, None)  # PREPARE + generic plan on 14-15
    assert explain_mode("WITH a AS (SELECT 1) SELECT * FROM a", 150000) == (False, None)


def test_live_sessions_see_a_running_statement(wl):
    with running_statement(wl.dsn, TOP_SQL, (600, 1), application_name="apptest-live"):

        def seen():
            d = api.live_sessions(wl.target)
            return [d] if (d["application_name"] == "apptest-live").any() else None

        (df,) = wait_until(seen, what="the running statement in live_sessions")
        row = df[df["application_name"] == "apptest-live"].iloc[0]
        assert row["state"] == "active" and row["wait_event"] == "PgSleep"
        assert row["wait_class"] == "Timeout" and "apptest_orders" in row["query"]
        assert not (df["application_name"].fillna("").str.startswith("opscore")).any()
        s = api.live_summary(wl.target)
        assert s["active"] >= 1 and s["max_connections"] > 0
