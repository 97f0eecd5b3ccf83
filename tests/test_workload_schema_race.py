"""Issue 18 pt 8: a fault and a workload started at the same moment on a fresh database both
create the demo schema; neither may fail on the other's CREATE SCHEMA, and the schema is built
once (one load, not two)."""

from __future__ import annotations

import threading

import pytest

from ops_core import api
from ops_core.workload import schema
from ops_core.workload.sessions import workload_connect

from .workload_helpers import one


@pytest.fixture
def fresh_db(pg):
    dsn = pg.create_database("race")
    try:
        yield dsn
    finally:
        pg.drop_database(dsn)


def _at_once(*calls):
    """Run the calls in threads released together; return their results or exceptions."""
    gate = threading.Barrier(len(calls))
    out: list = [None] * len(calls)

    def run(i, call):
        gate.wait()
        try:
            out[i] = call()
        except Exception as exc:  # reported by the test, with the exception itself
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not any(t.is_alive() for t in threads), "a call did not finish within 600 s"
    return out


@pytest.mark.slow
def test_fault_and_workload_started_at_once_on_a_fresh_database(fresh_db):
    fault, load = _at_once(
        lambda: api.inject_fault("missing_index", dsn=fresh_db, duration_s=1),
        lambda: api.run_workload(dsn=fresh_db, duration_s=1, clients=1),
    )
    assert not isinstance(fault, Exception), repr(fault)
    assert not isinstance(load, Exception), repr(load)
    assert load.statements > 0 and not load.errors, load.error_samples
    # built once at scale 1: the rows of one load, not two
    assert one(fresh_db, "SELECT count(*) FROM demo.customers") == schema.CUSTOMERS_PER_SCALE
    assert one(fresh_db, "SELECT count(*) FROM demo.products") == schema.PRODUCTS_PER_SCALE


def test_schema_setups_racing_build_it_once(fresh_db):
    results = _at_once(*[lambda: schema.setup_shop_schema(fresh_db, 1) for _ in range(3)])
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    assert sorted(r.created for r in results) == [False, False, True]
    assert one(fresh_db, "SELECT count(*) FROM demo.customers") == schema.CUSTOMERS_PER_SCALE


def test_a_fault_table_and_the_shop_racing_for_the_schema(fresh_db):
    """A fault's own table in demo (Fault.own_table creates the schema) beside the shop build."""

    def own_table():
        with workload_connect(fresh_db) as conn:
            schema.create_schema(conn, "demo")
            conn.execute("CREATE TABLE demo.race_probe (id int)")
        return True

    results = _at_once(own_table, lambda: schema.setup_shop_schema(fresh_db, 1))
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    assert one(fresh_db, "SELECT to_regclass('demo.race_probe') IS NOT NULL")
    assert one(fresh_db, "SELECT count(*) FROM demo.customers") == schema.CUSTOMERS_PER_SCALE
