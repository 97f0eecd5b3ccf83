"""Server-wide faults (ALTER SYSTEM, restart, filling max_connections) on a throw-away
embedded server this module owns, never on the shared test server."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from ops_core.targets.embedded import EmbeddedServer
from ops_core.workload import faults
from ops_core.workload.fault_base import ServerChangesNotAllowed

from .workload_helpers import alive, eventually, one

pytestmark = pytest.mark.slow  # throw-away servers, restarts


@pytest.fixture(scope="module")
def own():
    home = Path(tempfile.mkdtemp(prefix="ops-wl-", dir=tempfile.gettempdir()))
    server = EmbeddedServer(home)
    server.start()
    try:
        yield server
    finally:
        server.destroy()
        shutil.rmtree(home, ignore_errors=True)


def _auto_conf(dsn: str, name: str):
    return one(
        dsn,
        "SELECT setting FROM pg_file_settings WHERE name = %s "
        "AND sourcefile LIKE '%%postgresql.auto.conf'",
        (name,),
    )


def test_checkpoint_pressure_restores_previous_setting_even_on_error(own):
    dsn = own.conninfo()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET max_wal_size = '256MB'")  # a prior admin choice
        conn.execute("SELECT pg_reload_conf()")
    assert eventually(lambda: one(dsn, "SHOW max_wal_size") == "256MB")
    with pytest.raises(ServerChangesNotAllowed):
        faults.CheckpointPressure(dsn).__enter__()
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = faults.checkpoint_counts(conn)
        with pytest.raises(RuntimeError):
            with faults.CheckpointPressure(dsn, allow_server_changes=True) as f:
                assert eventually(lambda: one(dsn, "SHOW max_wal_size") == "32MB")
                assert eventually(
                    lambda: faults.checkpoint_counts(conn)["requested"] >= before["requested"] + 2,
                    timeout=20,
                )
                raise RuntimeError("test body failed")
    assert f.info.settings["max_wal_size"] == {
        "scope": "server",
        "value": "32MB",
        "previous": "256MB",
    }
    assert _auto_conf(dsn, "max_wal_size") == "256MB"
    assert eventually(lambda: one(dsn, "SHOW max_wal_size") == "256MB")
    assert one(dsn, "SELECT to_regclass('demo.order_audit')") is None
    assert alive(dsn, f.info.pids) == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM RESET max_wal_size")
        conn.execute("SELECT pg_reload_conf()")


def test_seq_scan_io_with_small_shared_buffers_restarts_and_restores(own):
    dsn = own.conninfo()
    before = one(dsn, "SHOW shared_buffers")
    reads = "SELECT heap_blks_read FROM pg_statio_user_tables WHERE relname = 'order_archive'"
    with faults.SeqScanIO(dsn, server=own, allow_server_changes=True) as f:
        assert one(dsn, "SHOW shared_buffers") == "16MB"
        pages = one(dsn, "SELECT relpages FROM pg_class WHERE relname = 'order_archive'")
        read0 = one(dsn, reads)
        assert eventually(lambda: one(dsn, reads) - read0 > 2 * pages, timeout=15)
    assert one(dsn, "SHOW shared_buffers") == before
    assert _auto_conf(dsn, "shared_buffers") is None
    assert "restarted the server" in f.info.cleanup
    assert one(dsn, "SELECT to_regclass('demo.order_archive')") is None


def test_seq_scan_io_refuses_a_restart_without_permission(own):
    with pytest.raises(ServerChangesNotAllowed):
        with faults.SeqScanIO(own.conninfo(), server=own):
            pass


def test_connection_storm_fills_up_to_the_reserve(own):
    dsn = own.conninfo()
    with faults.ConnectionStorm(dsn, allow_server_changes=True, reserve=5) as f:
        room = f.room
        n = one(dsn, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        assert len(f.info.pids) == room["room"] > 50
        # the storm stops short of the reserved slots: a superuser still gets in
        assert n <= room["max_connections"] - room["superuser_reserved_connections"]
    assert alive(dsn, f.info.pids) == 0


def test_cli_fault_killed_with_sigterm_still_restores(own):
    import os
    import signal
    import subprocess
    import sys

    dsn = own.conninfo()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ops_core", "workload", "fault", "checkpoint_pressure",
         "--dsn", dsn, "--duration", "120", "--allow-server-changes"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    try:
        assert eventually(lambda: one(dsn, "SHOW max_wal_size") == "32MB", timeout=30)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert eventually(lambda: one(dsn, "SHOW max_wal_size") == "1GB")
    assert _auto_conf(dsn, "max_wal_size") is None
    assert one(dsn, "SELECT to_regclass('demo.order_audit')") is None


def test_a_role_without_alter_system_gets_a_clear_error_and_nothing_stays(own):
    from psycopg.conninfo import make_conninfo

    from ops_core.errors import PrivilegeMissing

    with psycopg.connect(own.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE ROLE wl_plain LOGIN")
        conn.execute("CREATE DATABASE wl_plain OWNER wl_plain")
    dsn = make_conninfo(own.conninfo(), user="wl_plain", dbname="wl_plain")
    try:
        f = faults.CheckpointPressure(dsn, allow_server_changes=True)
        with pytest.raises(PrivilegeMissing) as err:
            with f:
                pass
        assert "max_wal_size" in err.value.message and "GRANT ALTER SYSTEM" in err.value.hint
        assert one(dsn, "SELECT to_regclass('demo.order_audit')") is None
        assert one(dsn, "SHOW max_wal_size") == "1GB" and "max_wal_size" not in f.info.settings
    finally:
        with psycopg.connect(own.conninfo(), autocommit=True) as conn:
            conn.execute("DROP DATABASE wl_plain WITH (FORCE)")
            conn.execute("DROP ROLE wl_plain")
