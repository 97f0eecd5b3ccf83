"""The workload driver against a real server: pgbench and the seeded shop mix, with counts
cross-checked against pg_stat_statements and the tables themselves."""

from __future__ import annotations

import threading

import psycopg
import pytest

from ops_core.errors import InvalidInput
from ops_core.workload import driver, schema
from ops_core.workload.schema import SHOP_STATEMENTS

from .helpers import invoke_cli, run_cli
from .workload_helpers import eventually, one, pgss


@pytest.fixture(scope="module")
def shop_db(pg):
    dsn = pg.create_database("shop")
    info = schema.setup_shop_schema(dsn, 1)
    assert info.created and info.orders == schema.ORDERS_PER_SCALE
    try:
        yield dsn
    finally:
        pg.drop_database(dsn)


def test_shop_schema_has_skew_and_is_idempotent(shop_db):
    again = schema.setup_shop_schema(shop_db, 1)
    assert not again.created and again.customers == schema.CUSTOMERS_PER_SCALE
    # the hottest 1 % of customers own far more than 1 % of the orders
    share = one(
        shop_db,
        "SELECT count(*) FILTER (WHERE customer_id <= 50)::float / count(*) FROM demo.orders",
    )
    assert share > 0.15


def _pattern(kind: str) -> str:
    # pg_stat_statements shows $1 for bound values and constants: match on a prefix
    return SHOP_STATEMENTS[kind].split("%s")[0][:60] + "%"


def test_shop_counts_are_real_and_seeded(shop_db):
    orders_before = one(shop_db, "SELECT count(*) FROM demo.orders")
    kinds = ["customer_lookup", "order_by_reference", "update_stock", "report_top_products"]
    calls_before = {k: pgss(shop_db, _pattern(k)) for k in kinds}
    r1 = driver.run_shop(shop_db, clients=2, duration_s=120, seed=7, operations_per_client=150)
    assert r1.errors == {} and r1.total_operations == 300
    assert set(r1.operations) == set(driver.SHOP_MIX)
    assert r1.orders_created == r1.operations["new_order"] > 0
    assert one(shop_db, "SELECT count(*) FROM demo.orders") - orders_before == r1.orders_created
    for k in kinds:
        assert pgss(shop_db, _pattern(k)) - calls_before[k] == r1.operations[k], k
    r2 = driver.run_shop(shop_db, clients=2, duration_s=120, seed=7, operations_per_client=150)
    assert r2.operations == r1.operations
    r3 = driver.run_shop(shop_db, clients=2, duration_s=120, seed=8, operations_per_client=150)
    assert r3.operations != r1.operations


def test_shop_runs_for_a_duration_with_progress_under_an_app_name(shop_db):
    seen: list = []
    names: set = set()

    def watch() -> None:
        def found() -> bool:
            with psycopg.connect(shop_db, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT application_name FROM pg_stat_activity "
                    "WHERE datname = current_database()"
                ).fetchall()
            names.update(r[0] for r in rows)
            return "demo-app" in names

        eventually(found, timeout=2)

    t = threading.Thread(target=watch)
    t.start()
    res = driver.run_shop(shop_db, clients=2, duration_s=2, on_progress=seen.append)
    t.join()
    assert "demo-app" in names
    assert res.total_operations > 0 and res.errors == {}
    assert seen and seen[-1].operations <= res.total_operations
    assert res.statements >= res.total_operations


def test_pgbench_standard_and_custom_scripts(target_db):
    driver.pgbench_init(target_db, 1)
    assert one(target_db, "SELECT count(*) FROM pgbench_accounts") == 100_000
    before = pgss(target_db, "UPDATE pgbench_accounts SET abalance = abalance + %")
    progress: list = []
    res = driver.run_pgbench(
        target_db, duration_s=3, clients=2, threads=2, on_progress=progress.append
    )
    assert res.transactions > 0 and res.tps > 0 and res.latency_avg_ms
    assert res.failed in (0, None)
    assert len(progress) >= 2 and all(p.tps >= 0 for p in progress)
    # every tpcb-like transaction updates pgbench_accounts once; in-flight ones at the end may
    # have run the update without being counted
    calls = pgss(target_db, "UPDATE pgbench_accounts SET abalance = abalance + %") - before
    assert res.transactions <= calls <= res.transactions + res.clients
    custom = (
        "\\set aid random(1, 100000)\n"
        "SELECT abalance, filler FROM pgbench_accounts WHERE aid = :aid;\n"
    )
    before = pgss(target_db, "SELECT abalance, filler FROM pgbench_accounts WHERE aid = %")
    res2 = driver.run_pgbench(target_db, duration_s=2, clients=2, builtin=None, scripts=[custom])
    calls = pgss(target_db, "SELECT abalance, filler FROM pgbench_accounts WHERE aid = %") - before
    assert res2.transactions > 0 and res2.scripts == ["custom0@1"]
    assert res2.transactions <= calls <= res2.transactions + res2.clients


def test_driver_bad_input(target_db):
    with pytest.raises(InvalidInput):
        driver.run_pgbench(target_db, duration_s=0)
    with pytest.raises(InvalidInput):
        driver.run_pgbench(target_db, builtin=None)
    with pytest.raises(InvalidInput, match="opscore"):
        driver.run_shop(target_db, application_name="opscore-x")
    with pytest.raises(InvalidInput):
        schema.setup_shop_schema(target_db, 0)
    assert driver.parse_progress("garbage") is None
    p = driver.parse_progress(
        "progress: 2.0 s, 99.5 tps, lat 1.5 ms stddev 0.2, 0 failed, lag 0.1 ms"
    )
    assert p is not None and p.tps == 99.5 and p.failed == 0 and p.lag_ms == 0.1


def test_cli_workload_run_and_errors(shop_db, opscore_env):
    res = run_cli(
        "workload", "run", "--dsn", shop_db, "--kind", "shop", "--duration", "2", "--json",
        env=opscore_env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    import json

    data = json.loads(res.stdout)
    assert data["total_operations"] > 0 and data["errors"] == {}
    # one real `opscore` process (above), the errors in this process
    bad = invoke_cli("workload", "run", "--dsn", shop_db, "--kind", "nope")
    assert bad.returncode != 0 and "Unknown workload kind" in bad.stderr
    none = invoke_cli("workload", "run")
    assert none.returncode != 0 and "--target" in none.stderr


def test_background_shop_runs_until_the_block_ends(shop_db):
    import time

    with driver.BackgroundShop(shop_db, clients=2, seed=3) as bg:
        assert eventually(
            lambda: (
                one(
                    shop_db,
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'demo-app'",
                )
                == 2
            ),
            timeout=5,
        )
        time.sleep(1)
    assert bg.result is not None and bg.result.total_operations > 0 and bg.result.errors == {}
    # a closed session's backend leaves pg_stat_activity a moment after the client is gone
    pids = bg.result.pids
    assert eventually(
        lambda: (
            one(shop_db, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)) == 0
        ),
        timeout=10,
    )
