"""The embedded PostgreSQL lifecycle: start twice, stop twice, crash recovery, settings."""

import os
import shutil
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from ops_core.targets.embedded import EmbeddedServer


@pytest.fixture
def server(tmp_path_factory):
    import tempfile
    from pathlib import Path

    home = Path(tempfile.mkdtemp(prefix="ops-emb-", dir=tempfile.gettempdir()))
    s = EmbeddedServer(home)
    yield s
    s.destroy()
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_start_twice_stop_twice_and_crash_recovery(server):
    first = server.start()
    assert first.running and first.port
    again = server.start()
    assert again.pid == first.pid, "a second start must reuse the running server"

    with psycopg.connect(server.conninfo()) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (
                    [
                        "shared_preload_libraries",
                        "compute_query_id",
                        "track_io_timing",
                        "track_wal_io_timing",
                        "wal_level",
                        "summarize_wal",
                        "listen_addresses",
                        "track_activity_query_size",
                    ],
                ),
            ).fetchall()
        )
    assert settings["shared_preload_libraries"] == "pg_stat_statements,auto_explain"
    assert settings["compute_query_id"] == "on"
    assert settings["track_io_timing"] == "on"
    assert settings["track_wal_io_timing"] == "on"
    assert settings["wal_level"] == "replica"
    assert settings["summarize_wal"] == "on"
    assert settings["listen_addresses"] == "127.0.0.1"
    assert int(settings["track_activity_query_size"]) >= 4096

    # pg_stat_statements exists in postgres (the database `opscore db url` names) and in
    # template1, so a database created later has it too
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE made_later")
    for db in ("postgres", "template1", "made_later"):
        with psycopg.connect(server.conninfo(db)) as conn:
            n = conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone()[0]
            assert n >= 0, db

    # TCP on 127.0.0.1 with the password from the passfile
    with psycopg.connect(server.url(tcp=True)) as conn:
        assert conn.execute("SELECT inet_server_addr()::text").fetchone()[0].startswith("127.0.0.1")
    assert "password" not in server.url(tcp=True)
    assert oct(server.passfile.stat().st_mode & 0o777) == "0o600"

    # crash: SIGKILL the postmaster, leaving a stale postmaster.pid
    os.kill(first.pid, signal.SIGKILL)
    deadline = time.time() + 10
    while server.status().running and time.time() < deadline:
        time.sleep(0.1)
    st = server.status()
    assert not st.running and "stale" in st.detail
    restarted = server.start()
    assert restarted.running and restarted.pid != first.pid
    with psycopg.connect(server.conninfo()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

    stopped = server.stop()
    assert not stopped.running
    assert not server.stop().running  # stopping a stopped server is fine


@pytest.mark.slow
def test_cli_db_commands(server):
    env = {**os.environ, "OPSCORE_HOME": str(server.home)}
    env.pop("OPSCORE_REPOSITORY_DSN", None)

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "ops_core", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    st = cli("db", "status")
    assert st.returncode == 3 and "not initialized" in st.stdout
    assert cli("db", "start").returncode == 0
    assert cli("db", "start").returncode == 0
    out = cli("db", "status", "--json")
    assert out.returncode == 0
    import json

    data = json.loads(out.stdout)
    assert data["running"] is True and data["port"] > 0
    url = cli("db", "url")
    assert url.stdout.startswith("postgresql://postgres@/") and "password" not in url.stdout
    assert cli("db", "stop").returncode == 0
    assert cli("db", "stop").returncode == 0
    assert cli("db", "status").returncode == 3
