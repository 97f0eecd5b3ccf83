"""ADDM on server-wide faults (ALTER SYSTEM, restart, filling max_connections), each on a
throw-away embedded server this module owns (never on the shared test server): checkpoint
pressure, a connection storm, sequential I/O with a small shared_buffers."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ops_core import api
from ops_core.errors import InvalidInput
from ops_core.targets.embedded import EmbeddedServer
from ops_core.workload import faults
from ops_core.workload.schema import setup_shop_schema

from .addm_helpers import describe, run_scenario

pytestmark = pytest.mark.slow  # scenario: server-wide faults on a throw-away server

TARGET = "addmown"
DB = "addm_own"


@pytest.fixture(scope="module")
def own(opscore_env):
    from ops_core import repository

    home = Path(tempfile.mkdtemp(prefix="ops-addm-", dir=tempfile.gettempdir()))
    server = EmbeddedServer(home)
    server.start()
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB}")
        dsn = make_conninfo(server.conninfo(), dbname=DB)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        setup_shop_schema(dsn, 1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ANALYZE")
        with repository.session() as repo:
            repository.migrate(repo)
        if TARGET in [t.name for t in api.list_targets()]:
            api.remove_target(TARGET)
        api.add_target(TARGET, dsn)
        yield server, dsn
    finally:
        try:
            api.remove_target(TARGET)
        except Exception:  # noqa: BLE001 - best effort
            pass
        server.destroy()
        shutil.rmtree(home, ignore_errors=True)


def test_checkpoint_pressure(own):
    server, dsn = own
    fault = faults.CheckpointPressure(dsn, allow_server_changes=True)
    sc = run_scenario(
        "checkpoint_pressure", "checkpoint_pressure", TARGET, dsn, fault, database=DB, hold_s=8
    )
    top = sc.top
    assert top.type == "checkpoint_pressure", describe(sc)
    assert top.evidence["checkpoints_requested"] >= 2
    assert top.evidence["max_wal_size_mb"] == 32
    assert "demo.order_audit" in " ".join(s["query"] for s in top.statements)
    assert top.recommendations[0].action.startswith("ALTER SYSTEM SET max_wal_size = ")


def test_connection_storm(own):
    server, dsn = own
    fault = faults.ConnectionStorm(dsn, allow_server_changes=True)
    sc = run_scenario(
        "connection_storm", "connection_saturation", TARGET, dsn, fault, database=DB, hold_s=4
    )
    top = sc.top
    assert top.type == "connection_saturation", describe(sc)
    assert top.evidence["max_connections"] == fault.room["max_connections"]
    assert top.evidence["connections"] >= fault.room["in_use_before"] + len(fault.info.pids)
    assert f"database {DB}" in top.objects


def test_seq_scan_io(own):
    server, dsn = own
    fault = faults.SeqScanIO(dsn, server=server, allow_server_changes=True)
    sc = run_scenario(
        "seq_scan_io", "io_bound_sql", TARGET, dsn, fault, database=DB, fault_first=True
    )
    top = sc.top
    assert top.type == "io_bound_sql", describe(sc)
    assert top.objects == ["demo.order_archive"]
    assert "demo.order_archive" in top.statements[0]["query"]


def test_range_spanning_a_restart_is_refused(own):
    server, dsn = own
    a = api.take_snapshot(TARGET)
    server.stop()
    server.start()
    b = api.take_snapshot(TARGET)
    c = api.take_snapshot(TARGET)
    assert any(r["source"] == "server" for r in b.resets)
    with pytest.raises(InvalidInput) as exc:
        api.run_addm(TARGET, a.snapshot_id, c.snapshot_id, database=DB)
    assert "restart" in exc.value.message
    assert f"--begin {b.snapshot_id}" in exc.value.hint
    ok = api.run_addm(TARGET, b.snapshot_id, c.snapshot_id, database=DB)  # after it: fine
    assert ok.db_time_source == "pg_stat_statements"  # and no ASH was sampled: said so
    assert any("ADDM needs ASH" in n for n in ok.notes)
