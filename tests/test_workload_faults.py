"""Each fault injector makes its problem observable from the server's own views, and undoes
everything at exit, also when the body raises. Session-level faults run in a throw-away
database of the test server; see test_workload_server_faults.py for server-wide ones."""

from __future__ import annotations

import time

import psycopg
import pytest

from ops_core.errors import InvalidInput
from ops_core.workload import faults, schema
from ops_core.workload.fault_base import ServerChangesNotAllowed

from .helpers import run_cli
from .workload_helpers import alive, eventually, one, pgss


@pytest.fixture(scope="module")
def shop_db(pg):
    dsn = pg.create_database("faults")
    schema.setup_shop_schema(dsn, 1)
    try:
        yield dsn
    finally:
        pg.drop_database(dsn)


def _activity(dsn: str, pids: list[int]) -> dict[int, dict]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(
            "SELECT pid, state, wait_event_type, wait_event, pg_blocking_pids(pid), "
            "application_name, backend_xmin IS NOT NULL FROM pg_stat_activity "
            "WHERE pid = ANY(%s)",
            (pids,),
        )
        return {
            r[0]: dict(state=r[1], wtype=r[2], wevent=r[3], blockers=r[4], app=r[5], xmin=r[6])
            for r in cur.fetchall()
        }


def test_missing_index_forces_full_scans_then_index_is_back(shop_db):
    stmt = "SELECT id, status, total FROM demo.orders WHERE reference = %"
    calls0, blks0 = pgss(shop_db, stmt), pgss(shop_db, stmt, "shared_blks_hit + shared_blks_read")
    pages = one(shop_db, "SELECT relpages FROM pg_class WHERE oid = 'demo.orders'::regclass")
    with faults.MissingIndex(shop_db) as f:
        assert one(shop_db, "SELECT to_regclass('demo.orders_reference_idx')") is None
        assert eventually(lambda: pgss(shop_db, stmt) - calls0 >= 20)
        plan = one(shop_db, "EXPLAIN SELECT * FROM demo.orders WHERE reference = 'ORD-000000001'")
        assert "Seq Scan on orders" in plan
    calls = pgss(shop_db, stmt) - calls0
    blocks = pgss(shop_db, stmt, "shared_blks_hit + shared_blks_read") - blks0
    assert blocks / calls > 0.5 * pages  # every lookup of one row read the whole table
    assert f.info.statements == [schema.SHOP_STATEMENTS["order_by_reference"]]
    assert "demo.orders" in f.info.objects and f.column == "reference"
    assert len(f.info.roles["worker"]) == 2 and alive(shop_db, f.info.pids) == 0
    plan = one(shop_db, "EXPLAIN SELECT * FROM demo.orders WHERE reference = 'ORD-000000001'")
    assert "orders_reference_idx" in plan


def test_lock_contention_on_hot_rows(shop_db):
    with faults.LockContention(shop_db, sessions=4) as f:
        pids = f.info.pids

        def lock_waits() -> bool:
            act = _activity(shop_db, pids)
            return any(
                a["wtype"] == "Lock" and a["blockers"] and set(a["blockers"]) <= set(pids)
                for a in act.values()
            )

        assert eventually(lock_waits, timeout=5)
        time.sleep(1)  # hold it: transactions queue and complete one after another
        assert all(a["app"] == "demo-app" for a in _activity(shop_db, pids).values())
    assert f.info.objects[0] == "demo.products" and f.hot_ids == [1, 2]
    assert f.info.counts["worker"] > 0 and alive(shop_db, pids) == 0


def test_idle_in_transaction_blocker_cleans_up_when_the_body_raises(shop_db):
    with pytest.raises(RuntimeError, match="boom"):
        with faults.IdleInTransactionBlocker(shop_db, waiters=3) as f:
            act = _activity(shop_db, f.info.pids)
            assert act[f.holder_pid]["state"] == "idle in transaction"
            assert len(f.waiter_pids) == 3
            for pid in f.waiter_pids:
                assert act[pid]["wtype"] == "Lock" and act[pid]["blockers"] == [f.holder_pid]
            raise RuntimeError("boom")
    assert f.info.roles["holder"] == [f.holder_pid]
    assert alive(shop_db, f.info.pids) == 0
    # the rows are free again
    with psycopg.connect(shop_db, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '2s'")
        conn.execute("UPDATE demo.customers SET city = city WHERE id = ANY(%s)", (f.row_ids,))


def test_temp_spill_with_session_work_mem(shop_db):
    server_work_mem = one(shop_db, "SHOW work_mem")
    temp0 = one(
        shop_db, "SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()"
    )
    spill = "SELECT max(rn) FROM (SELECT row_number() OVER (ORDER BY total DESC, created_at)%"
    temp_db = "SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()"
    with faults.TempSpill(shop_db) as f:
        assert eventually(lambda: one(shop_db, temp_db) > temp0, timeout=10)
        # the sort statement itself wrote temp blocks (fresh database: none before)
        assert eventually(lambda: pgss(shop_db, spill, "temp_blks_written") > 0)
        assert one(shop_db, "SHOW work_mem") == server_work_mem  # not server-wide
    assert f.info.settings["work_mem"] == {
        "scope": "session",
        "value": "64kB",
        "previous": server_work_mem,
    }
    assert alive(shop_db, f.info.pids) == 0


def test_stale_statistics_estimate_far_off(shop_db):
    with faults.StaleStatistics(shop_db) as f:
        opts = one(
            shop_db, "SELECT reloptions FROM pg_class WHERE oid = 'demo.order_events'::regclass"
        )
        assert "autovacuum_enabled=false" in opts
        with psycopg.connect(shop_db, autocommit=True) as conn:
            plan = conn.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + f.statement, (f.loaded_kind,)
            ).fetchone()[0][0]["Plan"]

        def scan(node: dict) -> dict | None:
            if node.get("Relation Name") == "order_events":
                return node
            for child in node.get("Plans", []):
                if (hit := scan(child)) is not None:
                    return hit
            return None

        node = scan(plan)
        actual = node["Actual Rows"] * node["Actual Loops"]
        assert actual >= 10 * node["Plan Rows"] and actual >= f.bulk_rows * 0.9
        assert f.estimate["actual_rows"] >= 10 * f.estimate["plan_rows"]
    assert f.info.created == ["demo.order_events"]
    assert one(shop_db, "SELECT to_regclass('demo.order_events')") is None
    assert alive(shop_db, f.info.pids) == 0


def test_vacuum_blocked_by_held_snapshot(shop_db):
    with faults.VacuumBlocked(shop_db) as f:
        act = _activity(shop_db, [f.holder_pid])
        assert act[f.holder_pid]["state"] == "idle in transaction" and act[f.holder_pid]["xmin"]
        time.sleep(1.5)
        with psycopg.connect(shop_db, autocommit=True) as conn:
            conn.execute("VACUUM demo.carts")
            dead = conn.execute(
                "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'demo.carts'::regclass"
            ).fetchone()[0]
        # vacuum ran and still counts the dead rows: it could not remove them
        assert dead > f.rows
    assert f.info.roles["holder"] == [f.holder_pid] and f.info.counts["churner"] > 0
    assert one(shop_db, "SELECT to_regclass('demo.carts')") is None
    assert alive(shop_db, f.info.pids) == 0


def test_cpu_hog_sessions_are_on_cpu(shop_db):
    with faults.CpuHog(shop_db) as f:
        on_cpu = samples = 0
        for _ in range(20):
            for a in _activity(shop_db, f.info.pids).values():
                samples += 1
                on_cpu += a["state"] == "active" and a["wtype"] is None
            time.sleep(0.1)
        assert on_cpu / samples > 0.5
    cpu = "SELECT sum(sqrt(g::float8)%"
    assert pgss(shop_db, cpu, "total_exec_time") > 0
    assert pgss(shop_db, cpu, "temp_blks_written + shared_blks_read") == 0  # no I/O at all
    assert alive(shop_db, f.info.pids) == 0


def test_connection_storm_bounded_and_refused_without_permission(shop_db):
    with pytest.raises(ServerChangesNotAllowed):
        with faults.ConnectionStorm(shop_db):
            pass
    with faults.ConnectionStorm(shop_db, sessions=15) as f:
        n = one(
            shop_db,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'demo-app' "
            "AND pid = ANY(%s)",
            (f.info.pids,),
        )
        assert n == 15
    assert f.room["room"] >= 15 and alive(shop_db, f.info.pids) == 0


def test_seq_scan_io_without_restart_reads_the_table_again(shop_db):
    reads = "SELECT heap_blks_read FROM pg_statio_user_tables WHERE relname = 'order_archive'"
    pages = "SELECT relpages FROM pg_class WHERE oid = 'demo.order_archive'::regclass"
    with faults.SeqScanIO(shop_db) as f:
        assert any("larger than the buffer cache" in n for n in f.info.notes)
        n_pages, read0 = one(shop_db, pages), one(shop_db, reads)
        assert eventually(lambda: one(shop_db, reads) - read0 > 2 * n_pages, timeout=15)
    assert one(shop_db, "SELECT to_regclass('demo.order_archive')") is None
    assert alive(shop_db, f.info.pids) == 0


def test_server_wide_faults_refused_on_a_shared_server(pg, shop_db):
    before = one(shop_db, "SHOW max_wal_size")
    with pytest.raises(ServerChangesNotAllowed) as err:
        with faults.CheckpointPressure(shop_db):
            pass
    assert "--allow-server-changes" in err.value.hint
    assert one(shop_db, "SHOW max_wal_size") == before
    assert one(shop_db, "SELECT to_regclass('demo.order_audit')") is None


def test_checkpoint_counters_are_read_for_this_version(pg):
    with pg.admin() as conn:
        before = faults.checkpoint_counts(conn)
        conn.execute("CHECKPOINT")
        after = eventually(
            lambda: faults.checkpoint_counts(conn)["requested"] > before["requested"]
        )
    assert after


@pytest.mark.slow
def test_cli_fault_on_a_registered_target(shop_db, opscore_env, repo):
    import json

    from ops_core import api

    api.add_target("wl-faults", shop_db)
    res = run_cli(
        "workload", "fault", "idle_in_transaction", "--target", "wl-faults",
        "--duration", "2", "--param", "waiters=2", "--with-load", "2", "--json",
        env=opscore_env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    info = out["fault"]
    assert out["load"]["total_operations"] > 0 and out["load"]["clients"] == 2
    assert len(info["roles"]["holder"]) == 1 and len(info["roles"]["waiter"]) == 2
    assert alive(shop_db, info["pids"]) == 0
    refused = run_cli(
        "workload", "fault", "checkpoint_pressure", "--target", "wl-faults", env=opscore_env
    )
    assert refused.returncode != 0 and "--allow-server-changes" in refused.stderr
    unknown = run_cli("workload", "fault", "nope", "--target", "wl-faults", env=opscore_env)
    assert unknown.returncode != 0 and "Known faults" in unknown.stderr
    listed = run_cli("workload", "faults", "--json", env=opscore_env)
    assert {f["name"] for f in json.loads(listed.stdout)} == set(faults.FAULTS)


class _BrokenFault(faults.Fault):
    """Opens sessions, registers an undo step, then fails while starting."""

    name = "broken"

    def start(self) -> None:
        self.own_table("demo.broken_fault", "CREATE TABLE demo.broken_fault (id int)")
        conn = self.session("holder", autocommit=False)
        conn.execute("LOCK TABLE demo.broken_fault")
        raise RuntimeError("setup failed half-way")


def test_a_fault_failing_to_start_undoes_what_it_did(shop_db):
    f = _BrokenFault(shop_db)
    with pytest.raises(RuntimeError, match="half-way"):
        with f:
            pytest.fail("the body must not run")
    assert len(f.info.pids) == 1 and alive(shop_db, f.info.pids) == 0
    assert one(shop_db, "SELECT to_regclass('demo.broken_fault')") is None
    assert f.info.cleanup == [f"terminated sessions {f.info.pids}", "dropped demo.broken_fault"]


def test_workload_sessions_cannot_hide_as_opscore(shop_db):
    with pytest.raises(InvalidInput, match="opscore"):
        with faults.CpuHog(shop_db, application_name="opscore-app"):
            pass
