"""Query profiling data over the demo's workload (the shop mix `opscore demo` runs): each of
the top 20 statements by time gets its pg_stat_statements deltas, the ASH waits sampled while
it ran, and a plan or a stated reason — never a blank, never an exception."""

from __future__ import annotations

import threading

import psycopg
import pytest

from ops_core import api
from ops_core.errors import InvalidInput
from ops_core.workload.driver import run_shop
from ops_core.workload.schema import setup_shop_schema
from tests.addm_helpers import ensure_plan_role
from tests.helpers import WAIT_S, run_cli

REPORT = (  # the shop's slow report, held long enough for the sampler to see it
    "SELECT c.city, count(*) AS orders, sum(o.total) AS revenue, pg_sleep(0.8) IS NULL AS s "
    "FROM demo.orders o JOIN demo.customers c ON c.id = o.customer_id "
    "WHERE o.customer_id = 1 GROUP BY c.city"
)


@pytest.fixture(scope="module")
def shop(pg):
    """The demo's shop schema in one database, built once for the module."""
    ensure_plan_role(pg)
    dsn = pg.create_database("qprof")
    setup_shop_schema(dsn, 1)
    yield dsn
    pg.drop_database(dsn)


@pytest.mark.slow
def test_demo_top20_each_has_a_plan_or_a_reason(shop, repo):
    dsn = shop
    api.add_target("qprof", dsn)
    begin = api.take_snapshot("qprof")
    stop = threading.Event()
    sampler = threading.Thread(
        target=api.run_ash,
        kwargs={"target": "qprof", "interval_s": 0.2, "stop": stop, "flush_interval_s": 0.5},
        daemon=True,
    )
    sampler.start()
    try:
        run_shop(dsn, clients=2, duration_s=60, operations_per_client=150, seed=7)
        with psycopg.connect(dsn, autocommit=True, application_name="qprof-report") as c:
            c.execute(REPORT)
    finally:
        stop.set()
        sampler.join(WAIT_S)
    end = api.take_snapshot("qprof")
    res = api.query_profiles("qprof", begin.snapshot_id, end.snapshot_id, limit=20)
    assert res.statements >= 10 and len(res.profiles) == min(20, res.statements)
    for p in res.profiles:
        print(p.queryid, p.calls, round(p.total_ms, 1), p.plan_method, p.plan_reason or "",
              " ".join((p.query or "").split())[:70])  # fmt: skip
        assert (p.plan is None) != (p.plan_reason is None), p
        assert (p.plan or p.plan_reason).strip(), p
        assert p.calls > 0 and p.total_ms >= 0
    planned = [p for p in res.profiles if p.plan]
    # the shop's statements (reads and writes on demo.*) are all planned: generic plans for
    # their placeholders, the typed interval literal rewritten, UPDATE/INSERT never executed
    # (a write as the SELECT that finds its rows: the plan role only reads); an INSERT ...
    # VALUES finds no rows: its reason says so
    shop = [p for p in res.profiles if p.query and "demo." in p.query]
    values = [p for p in shop if p.query.startswith("INSERT") and "VALUES" in p.query]
    assert len(shop) >= 8 and values
    assert all(p.plan for p in shop if p not in values), [(p.query, p.plan_reason) for p in shop]
    assert all("INSERT ... VALUES" in p.plan_reason for p in values)
    update = next(p for p in shop if p.query.startswith("UPDATE demo.products"))
    assert update.plan_method.startswith("rows_only_") and "products" in update.plan
    assert {p.plan_method for p in planned} >= {"generic_plan" if pg_major(dsn) >= 16
                                                else "prepare_generic"}  # fmt: skip
    # ASH attributes the report's sampled time to it, with its waits by class
    report = next(p for p in res.profiles if p.query and "pg_sleep" in p.query)
    assert report.samples >= 2 and report.waits and report.waits[0].pct > 0
    assert "Sort" in report.plan or "Aggregate" in report.plan
    # one statement by queryid; bad input is refused
    one = api.query_profiles("qprof", begin.snapshot_id, end.snapshot_id, queryid=report.queryid)
    assert [p.queryid for p in one.profiles] == [report.queryid]
    with pytest.raises(InvalidInput):
        api.query_profiles("qprof", order_by="nonsense")
    with pytest.raises(InvalidInput):
        api.query_profiles("qprof", begin.snapshot_id)
    r = run_cli("sql", "queries", "--target", "qprof", "--queryid", str(report.queryid))
    assert r.returncode == 0, r.stderr
    assert str(report.queryid) in r.stdout and "pg_sleep" in r.stdout
    from tests.test_app import _run  # the Tuning page's query profiles

    at = _run("tuning.py", {"target": "qprof", "tune_qprof": True})
    assert not at.exception, at.exception
    shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert str(report.queryid) in shown


def pg_major(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        return c.info.server_version // 10000
