"""Catalog SQL: every file resolves by the version rule, runs on the server under test and
returns exactly the columns and types of its source's row type. Pure delta rules."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

from ops_core.collectors import catalog, deltas
from ops_core.collectors.host import HOST_SOURCE
from ops_core.targets import connection


def test_resolver_picks_highest_version_not_above_server():
    assert catalog.versions("pg_stat_statements") == [140000, 150000, 170000]
    assert catalog.resolve("pg_stat_statements", 140013) == 140000
    assert catalog.resolve("pg_stat_statements", 150010) == 150000
    assert catalog.resolve("pg_stat_statements", 160004) == 150000
    assert catalog.resolve("pg_stat_statements", 180006) == 170000
    assert catalog.resolve("checkpointer", 160000) == 140000
    assert catalog.resolve("checkpointer", 170000) == 170000
    assert catalog.resolve("pg_stat_io", 150000) is None
    assert catalog.resolve("pg_stat_io", 170002) == 160000
    assert catalog.resolve("pg_stat_io", 180000) == 180000
    for name in catalog.SOURCES:  # every supported major resolves every source but pg_stat_io
        for major in range(14, 19):
            v = catalog.resolve(name, major * 10000)
            assert (v is None) == (name == "pg_stat_io" and major < 16), (name, major)


@pytest.mark.parametrize("source", sorted(catalog.SOURCES))
def test_sql_runs_and_matches_row_type(pg, target_db, source):
    spec = catalog.SOURCES[source]
    version = catalog.resolve(source, pg.version_num)
    if version is None:
        assert source == "pg_stat_io" and pg.major < 16
        return
    with connection.connect(target_db, autocommit=False) as conn:
        schema = conn.execute(
            "SELECT extnamespace::regnamespace::text FROM pg_extension "
            "WHERE extname = 'pg_stat_statements'"
        ).fetchone()[0]
        q = catalog.query(
            source,
            pg.version_num,
            pgss=sql.Identifier(schema, "pg_stat_statements"),
            pgss_info=sql.Identifier(schema, "pg_stat_statements_info"),
        )
        params = {"with_sizes": True, "exclude_schemas": [], "max_relations": 5, "queryids": [1]}
        cur = conn.execute(q, params)
        cur.fetchall()
        got = [(d.name, conn.adapters.types.get(d.type_code).name) for d in cur.description]
    want = [(c.name, c.pgtype) for c in spec.columns]
    assert got == want, f"{source} {version}.sql columns differ from its row type"


def test_every_sql_file_is_marked_as_opscore():
    for name in catalog.SOURCES:
        for v in catalog.versions(name):
            assert catalog.SQL_MARKER in catalog._text(name, v), (name, v)


def _src(kind_counter_only=False):
    return catalog.Source("x", catalog._cols("k:text:key a b f:float8 since:timestamptz:since"))


def test_deltas_rules_pure():
    src = _src()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows1 = [{"k": "r1", "a": 10, "b": 5, "f": 1.5, "since": t0}]
    base = deltas.compute(src, rows1, None)
    assert base.rows == [] and base.last  # first capture: baseline only
    rows2 = [
        {"k": "r1", "a": 17, "b": 5, "f": 2.0, "since": t0},
        {"k": "r2", "a": 3, "b": 0, "f": 0.0, "since": t0},
    ]
    r = deltas.compute(src, rows2, base.last)
    by = {x["k"]: x for x in r.rows}
    assert by["r1"]["a"] == 7 and by["r1"]["b"] is None and by["r1"]["f"] == 0.5
    assert by["r2"]["a"] == 3 and r.new_rows == 1 and r.reset_rows == 0
    # a decrease is a reset: counted from zero, never negative
    rows3 = [{"k": "r1", "a": 4, "b": 6, "f": 2.5, "since": t0}]
    r3 = deltas.compute(src, rows3, r.last)
    assert r3.reset_rows == 1 and r3.rows[0]["a"] == 4 and r3.rows[0]["b"] == 6
    # a new since timestamp is a reset even when counters grew
    t1 = datetime(2026, 1, 2, tzinfo=UTC)
    rows4 = [{"k": "r1", "a": 50, "b": 60, "f": 3.0, "since": t1}]
    r4 = deltas.compute(src, rows4, r3.last)
    assert r4.reset_rows == 1 and r4.rows[0]["a"] == 50
    # whole-source reset
    r5 = deltas.compute(
        src, [{"k": "r1", "a": 51, "b": 60, "f": 3.0, "since": t1}], r4.last, source_reset=True
    )
    assert r5.rows[0]["a"] == 51 and r5.reset_rows == 1


def test_host_source_shape():
    from ops_core.collectors import host

    row = host.sample("/")
    assert set(row) == set(HOST_SOURCE.names)
    assert row["cpu_count"] >= 1 and row["mem_total"] > 0 and row["data_disk_total"] > 0
    assert host.is_local({"host": "/tmp/sock"}, False)
    assert host.is_local({"host": "127.0.0.1"}, False)
    assert not host.is_local({"host": "db.example.com"}, False)
    assert host.is_local({"host": "db.example.com"}, True)


def test_catalog_connection_is_read_only(target_db):
    with (
        connection.connect(target_db, autocommit=False) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("CREATE TABLE should_fail (a int)")
