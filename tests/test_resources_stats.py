"""Resource statistics on a real server: connections grouped against max_connections, the
buffer pool from pg_buffercache once installed (said so before), I/O per database and
pg_stat_io where the server has it, role allocations; host figures only for a local server."""

from __future__ import annotations

import psycopg
import pytest

from ops_core import api
from tests.helpers import run_cli


@pytest.fixture
def rs(repo, target_db):
    api.add_target("rs", target_db)
    return target_db


def test_resource_stats_real_figures(pg, rs):
    with psycopg.connect(rs, application_name="rs-idle") as c:
        c.execute("SELECT 1")
        conn = api.connection_stats("rs")
        assert conn.by_application.get("rs-idle", 0) >= 1
        assert conn.by_state.get("idle in transaction", 0) >= 1
        assert 0 < conn.used_pct <= 100 and conn.max_connections > conn.client_connections
    bp = api.buffer_pool("rs")
    assert not bp.available and "pg_buffercache" in bp.reason
    with psycopg.connect(rs, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_buffercache")
        c.execute("CREATE TABLE rs_t AS SELECT g FROM generate_series(1, 20000) g")
        c.execute("SELECT count(*) FROM rs_t")
    bp = api.buffer_pool("rs")
    assert bp.available and 0 < bp.used <= bp.buffers
    assert "public.rs_t" in set(bp.top_relations["relation"])
    io = api.io_stats("rs")
    dbname = psycopg.conninfo.conninfo_to_dict(rs)["dbname"]
    assert dbname in set(io.by_database["database"])
    if pg.major >= 16:
        assert len(io.pg_stat_io) and not io.notes
    else:
        assert io.pg_stat_io.empty and "PostgreSQL 16" in io.notes[0]
    mem = api.memory_stats("rs")
    sb = mem.settings[mem.settings["name"] == "shared_buffers"].iloc[0]
    assert sb["bytes"] == bp.buffers * 8192
    cpu = api.cpu_stats("rs", since="5m")
    if cpu.host_local:
        assert cpu.cpu_count and 0 <= cpu.host_cpu_pct <= 100 and mem.host_total_bytes
    else:
        assert cpu.host_cpu_pct is None and "host" in cpu.notes[0]
    alloc = api.resource_allocations("rs")
    assert "postgres" in set(alloc["role"])
    r = run_cli("resource", "stats", "--target", "rs", "--json")
    assert r.returncode == 0, r.stderr
