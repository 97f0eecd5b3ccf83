"""AWR snapshots against a real PostgreSQL: exact deltas, resets, failures, ranges, baselines,
retention, opscore's own activity left out, CLI."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import numpy as np
import orjson
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ops_core import api
from ops_core.collectors import catalog
from ops_core.collectors.capture import CaptureOptions, capture
from ops_core.config import get_settings, reset_settings_cache
from ops_core.errors import InvalidInput, NotFound, UnknownTarget
from ops_core.repository import snapshots as writes
from ops_core.targets.embedded import _free_port

from .helpers import invoke_cli, only_evictions, run_cli


def _dbname(dsn: str) -> str:
    return conninfo_to_dict(dsn)["dbname"]


@pytest.fixture
def only_dbs(monkeypatch):
    """Limit object capture to the given databases (the shared PG15 holds other helpers' DBs)."""

    def set_(*names: str) -> None:
        monkeypatch.setenv("OPSCORE_SNAPSHOT_DATABASES", json.dumps(list(names)))
        reset_settings_cache()

    yield set_
    monkeypatch.delenv("OPSCORE_SNAPSHOT_DATABASES", raising=False)
    reset_settings_cache()


def _wait_table_stats(dsn: str, table: str, n_tup_ins: int) -> None:
    """Table counters reach pg_stat_* when the backend flushes them (at most ~1 s later)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(100):
            row = conn.execute(
                "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = %s", (table,)
            ).fetchone()
            if row and row[0] >= n_tup_ins:
                return
            time.sleep(0.1)
            conn.execute("SELECT pg_stat_clear_snapshot()")
    raise AssertionError(f"table stats of {table} never reached {n_tup_ins}")


def _stmt(detail, fragment: str):
    rows = detail.statements[detail.statements["query"].fillna("").str.contains(fragment)]
    assert len(rows) == 1, f"{fragment!r}: {len(rows)} matches"
    return rows.iloc[0]


def test_deltas_exact_for_a_known_workload(repo, target_db, only_dbs, pg):
    only_dbs(_dbname(target_db))
    with psycopg.connect(target_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE awr_t (a int PRIMARY KEY, b text)")
    api.add_target("w", target_db)
    s1 = api.take_snapshot("w")
    assert s1.status == "ok" and s1.is_baseline and s1.statements == 0
    with psycopg.connect(target_db, autocommit=True) as conn:
        for i in range(3):
            conn.execute(
                "INSERT INTO awr_t SELECT g, 'x' FROM generate_series(%s::int, %s::int) g",
                (i * 10 + 1, i * 10 + 10),
            )
        for _ in range(7):
            conn.execute("SELECT b FROM awr_t WHERE a <= %s", (4,))
    _wait_table_stats(target_db, "awr_t", 30)
    s2 = api.take_snapshot("w")
    assert s2.status == "ok" and s2.prev_snapshot_id == s1.snapshot_id
    # on a shared server other work may fill pg_stat_statements: evictions are reported
    assert only_evictions(s2.resets), s2.resets
    d = api.get_snapshot(s2.snapshot_id)
    ins = _stmt(d, "INSERT INTO awr_t")
    sel = _stmt(d, "SELECT b FROM awr_t")
    assert (ins.calls, ins.rows) == (3, 30)
    assert (sel.calls, sel.rows) == (7, 28)
    assert sel.total_exec_time > 0
    assert sel.mean_exec_time == pytest.approx(sel.total_exec_time / 7)
    assert ins.wal_bytes > 0 and sel.shared_blks_hit > 0
    db = d.databases.set_index("datname").loc[_dbname(target_db)]
    assert db.xact_commit >= 10 and db.tup_inserted >= 30
    tbl = d.tables[d.tables["relname"] == "awr_t"].iloc[0]
    assert tbl.n_tup_ins == 30 and tbl.datname == _dbname(target_db)
    assert "pg_stat_wal" in d.cluster and "settings" in d.cluster and "checkpointer" in d.cluster
    # nothing moved: no statement of the workload stored in the next interval
    s3 = api.take_snapshot("w")
    d3 = api.get_snapshot(s3.snapshot_id)
    assert not d3.statements["query"].fillna("").str.contains("awr_t").any()
    # a range sums the intervals
    agg = api.snapshot_range("w", s1.snapshot_id, s3.snapshot_id)
    assert agg.snapshot_ids == [s2.snapshot_id, s3.snapshot_id]
    r = agg.statements[agg.statements["query"].fillna("").str.contains("SELECT b FROM awr_t")]
    assert int(r.iloc[0].calls) == 7
    # version-specific sources
    io_state = s2.sources["pg_stat_io"]
    assert io_state == "ok" if pg.major >= 16 else io_state.startswith("not available")
    assert (d.io is not None) == (pg.major >= 16)
    assert s2.sources["checkpointer"] == "ok" and s2.sources["pg_stat_statements"] == "ok"


def test_opscore_own_activity_left_out_by_default(repo, target_db, only_dbs):
    only_dbs(_dbname(target_db))
    api.add_target("own", target_db)
    api.take_snapshot("own")
    s2 = api.take_snapshot("own")
    s3 = api.take_snapshot("own")
    assert s2.statements >= 1  # opscore's own catalog queries did run and were stored ...
    d = api.get_snapshot(s3.snapshot_id)
    assert not d.statements["query"].map(catalog.is_own_sql).any()  # ... but are hidden
    full = api.get_snapshot(s3.snapshot_id, include_opscore=True)
    assert full.statements["query"].fillna("").str.contains(catalog.SQL_MARKER, regex=False).any()
    # the repository database: same server as the target here, so it is known and hidden
    repo_db = repo.execute("SELECT current_database()").fetchone()[0]
    assert s3.own_datname == repo_db
    assert repo_db not in set(d.databases["datname"])
    assert repo_db in set(full.databases["datname"])
    assert repo_db not in set(full.tables["datname"])  # its objects are not even captured
    assert not any(k.endswith("@" + repo_db) for k in s3.sources)


def test_stats_reset_gives_no_negative_delta_and_is_recorded(repo, target_db, only_dbs, pg):
    only_dbs(_dbname(target_db))
    with psycopg.connect(target_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE rst (a int)")
    api.add_target("r", target_db)
    s1 = api.take_snapshot("r")
    with psycopg.connect(target_db, autocommit=True) as conn:
        for _ in range(8):
            conn.execute("SELECT count(*) FROM rst WHERE a > %s", (1,))
    s2 = api.take_snapshot("r")
    assert _stmt(api.get_snapshot(s2.snapshot_id), "FROM rst WHERE").calls == 8
    with psycopg.connect(target_db, autocommit=True) as conn:
        dbid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()")
        # reset this database's statements only (the PG15 server is shared with other work)
        conn.execute("SELECT pg_stat_statements_reset(0, %s, 0)", (dbid.fetchone()[0],))
        for _ in range(4):
            conn.execute("SELECT count(*) FROM rst WHERE a > %s", (1,))
    s3 = api.take_snapshot("r")
    d3 = api.get_snapshot(s3.snapshot_id, include_opscore=True)
    assert _stmt(d3, "FROM rst WHERE").calls == 4  # counted from the reset, never 4 - 8
    for col in catalog.SOURCES["pg_stat_statements"].of_kind("counter"):
        assert (d3.statements[col].fillna(0) >= 0).all(), col
    assert any(r["source"] == "pg_stat_statements" for r in s3.resets)
    agg = api.snapshot_range("r", s1.snapshot_id, s3.snapshot_id)
    assert any(r["source"] == "pg_stat_statements" for r in agg.resets)
    assert int(_stmt(agg, "FROM rst WHERE").calls) == 12


def test_unreachable_target_is_a_recorded_failure(repo, target_db, only_dbs):
    only_dbs(_dbname(target_db))
    api.add_target("ok", target_db)
    api.take_snapshot("ok")
    counts = {
        t: repo.execute(f"SELECT count(*) FROM opscore.{t}").fetchone()[0]
        for t in ("snap_statements", "snap_databases", "snapshot_state", "statements")
    }
    api.add_target("down", f"host=127.0.0.1 port={_free_port()} user=x dbname=y", verify=False)
    with pytest.raises(api.SnapshotFailed) as err:
        api.take_snapshot("down")
    assert "127.0.0.1" in err.value.message and err.value.info.status == "failed"
    snaps = api.list_snapshots("down")
    assert len(snaps) == 1 and snaps[0].status == "failed" and snaps[0].error
    for t, n in counts.items():
        assert repo.execute(f"SELECT count(*) FROM opscore.{t}").fetchone()[0] == n, t
    with pytest.raises(InvalidInput, match="failed capture"):
        api.snapshot_range("down", snaps[0].snapshot_id, snaps[0].snapshot_id + 1)
    # in this process: the real `opscore snapshot` process is in the CLI test below
    res = invoke_cli("snapshot", "take", "--target", "down")
    assert res.returncode != 0 and "failed" in res.stderr and "Traceback" not in res.stderr


def test_same_capture_twice_is_stored_once(repo, target_db, only_dbs):
    only_dbs(_dbname(target_db))
    t = api.add_target("idem", target_db)
    api.take_snapshot("idem")
    opts = CaptureOptions.from_settings(get_settings())
    cap = capture(t.target_id, target_db, opts, set())
    sid1, created1 = writes.store(repo, cap)
    sid2, created2 = writes.store(repo, cap)
    assert created1 and not created2 and sid1 == sid2
    n = repo.execute(
        "SELECT count(*) FROM opscore.snapshots WHERE target_id = %s", (t.target_id,)
    ).fetchone()[0]
    assert n == 2


def test_state_kept_in_memory_is_the_state_stored(repo, target_db, only_dbs):
    """The delta state a capture keeps in memory for the next one is the one it stored: read
    back from opscore.snapshot_state it is equal, source by source; an entry from another
    snapshot (id or capture time) is never used."""
    only_dbs(_dbname(target_db))
    t = api.add_target("mem", target_db)
    with psycopg.connect(target_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE mem_t (id int, v numeric)")
        api.take_snapshot("mem")
        conn.execute("INSERT INTO mem_t SELECT g, g / 3.0 FROM generate_series(1, 500) g")
        conn.execute("SELECT pg_stat_force_next_flush()")
        s2 = api.take_snapshot("mem")
    key = writes._StateCache.key(repo, t.target_id)
    cached = writes.STATE_CACHE.get(key, s2.snapshot_id, s2.captured_at)
    assert cached and "pg_stat_statements" in cached and any(k.startswith("tables") for k in cached)
    writes.STATE_CACHE.drop(key)
    stored = writes._previous(repo, t.target_id)
    assert stored is not None and stored.snapshot_id == s2.snapshot_id
    assert stored.states == cached
    # another snapshot's entry, or the same id at another time (a repository created again)
    writes.STATE_CACHE.put(key, s2.snapshot_id, s2.captured_at, cached, 1)
    assert writes.STATE_CACHE.get(key, s2.snapshot_id + 1, s2.captured_at) is None
    later = s2.captured_at + timedelta(microseconds=1)
    assert writes.STATE_CACHE.get(key, s2.snapshot_id, later) is None
    # and deltas after it are exact, as with the stored state
    with psycopg.connect(target_db, autocommit=True) as conn:
        conn.execute("INSERT INTO mem_t SELECT g, 1 FROM generate_series(1, 70) g")
        conn.execute("SELECT pg_stat_force_next_flush()")
    s3 = api.take_snapshot("mem")
    tables = api.get_snapshot(s3.snapshot_id).tables
    row = tables[tables["relname"] == "mem_t"]
    assert int(row["n_tup_ins"].iloc[0]) == 70


def test_known_statements_kept_in_memory_follow_the_repository(repo, target_db, only_dbs):
    """The statements a process keeps between captures (key -> stmt_id) are always what the
    repository holds: statements added by another process are read, and a removal (or a
    removal and an addition that keep the count) makes it read them all again."""
    only_dbs(_dbname(target_db))
    t = api.add_target("known", target_db)
    api.take_snapshot("known")

    def fresh() -> dict:
        return writes._statement_ids(repo, t.target_id, 0)

    first = writes.known_statements(repo, t.target_id)
    assert first and first == fresh()

    def add(queryid: int) -> None:  # what another process's capture writes
        repo.execute(
            "INSERT INTO opscore.statements (target_id, queryid, dbid, userid, toplevel) "
            "VALUES (%s, %s, 1, 1, true)",
            (t.target_id, queryid),
        )

    add(-101)
    got = writes.known_statements(repo, t.target_id)
    assert got == fresh() and (-101, 1, 1, True) in got
    # one removed and one added: the same count, a higher id
    repo.execute("DELETE FROM opscore.statements WHERE queryid = -101")
    add(-102)
    got = writes.known_statements(repo, t.target_id)
    assert got == fresh() and (-101, 1, 1, True) not in got and (-102, 1, 1, True) in got
    repo.execute("DELETE FROM opscore.statements WHERE queryid = -102")
    assert writes.known_statements(repo, t.target_id) == fresh()
    # and a capture writes its statements with the ids the repository gave them
    s2 = api.take_snapshot("known")
    ids = repo.execute(
        "SELECT DISTINCT unnest(stmt_id) FROM opscore.snap_statements WHERE snapshot_id = %s",
        (s2.snapshot_id,),
    ).fetchall()
    assert ids and {r[0] for r in ids} <= set(fresh().values())


def _as_older_opscore(repo, target_id: int) -> int:
    """Rewrite the target's stored delta states as an opscore before the column states stored
    them (JSON, key -> [since, counters...]) and forget the process's copy; how many were."""
    from ops_core.model.delta_columns import shape_of
    from ops_core.model.deltas import HOST_SOURCE

    converted = 0
    for source, data in repo.execute(
        "SELECT source, state FROM opscore.snapshot_state WHERE target_id = %s", (target_id,)
    ).fetchall():
        st = writes._state_value(data)
        if isinstance(st, writes.deltas.ColumnState):
            name = source.split("@", 1)[0]
            src = HOST_SOURCE if name == "host" else catalog.SOURCES[name]
            repo.execute(
                "UPDATE opscore.snapshot_state SET state = %s WHERE target_id = %s AND source = %s",
                (orjson.dumps(st.to_row_state(shape_of(src))), target_id, source),
            )
            converted += 1
    writes.STATE_CACHE.drop(writes._StateCache.key(repo, target_id))
    return converted


def test_a_state_stored_by_an_older_opscore_gives_exact_deltas(repo, target_db, only_dbs):
    """Upgrading from an opscore that stored every source's state as key -> [since, counters]
    (before the statements', tables' and indexes' states were kept as columns): the first
    capture after it takes exact deltas against that state, not a new baseline."""
    only_dbs(_dbname(target_db))
    t = api.add_target("older", target_db)
    with psycopg.connect(target_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE older_t (id int)")
        conn.execute("CREATE INDEX ON older_t (id)")
        conn.execute("SELECT count(*) FROM older_t WHERE id = 42")
        s1 = api.take_snapshot("older")
        assert _as_older_opscore(repo, t.target_id) >= 3  # statements, tables and indexes
        conn.execute("INSERT INTO older_t SELECT generate_series(1, 33)")
        for _ in range(3):
            conn.execute("SELECT count(*) FROM older_t WHERE id = 42")
        conn.execute("SELECT pg_stat_force_next_flush()")
    s2 = api.take_snapshot("older")
    assert not s2.is_baseline and s2.prev_snapshot_id == s1.snapshot_id, s2.resets
    assert not [r for r in s2.resets if r["source"] == "delta state"], s2.resets
    detail = api.get_snapshot(s2.snapshot_id)
    tables = detail.tables
    assert int(tables.loc[tables["relname"] == "older_t", "n_tup_ins"].iloc[0]) == 33
    assert int(_stmt(detail, "FROM older_t WHERE id")["calls"]) == 3


def test_migration_0032_keeps_the_stored_state_as_bytes(repo, target_db, only_dbs):
    """Migration 0032 turns the JSON state stored before it into bytes (re-applied here on a
    column of the old shape): the same values, stored uncompressed, and the next snapshot
    takes its deltas against them instead of starting a new baseline."""
    from importlib import resources

    only_dbs(_dbname(target_db))
    t = api.add_target("mig32", target_db)
    with psycopg.connect(target_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE mig_t (id int)")
        s1 = api.take_snapshot("mig32")
        _as_older_opscore(repo, t.target_id)  # JSON, as before 0032 (and the column states)
        repo.execute(
            "ALTER TABLE opscore.snapshot_state ALTER COLUMN state TYPE json "
            "USING convert_from(state, 'UTF8')::json"
        )
        before = dict(repo.execute("SELECT source, state::text FROM opscore.snapshot_state"))
        sql = (
            resources.files("ops_core.repository")
            .joinpath("migrations", "0032_snapshot_state_bytes.sql")
            .read_text()
        )
        repo.execute(sql)
        after = dict(repo.execute("SELECT source, state FROM opscore.snapshot_state"))
        assert before and {k: orjson.loads(v) for k, v in after.items()} == {
            k: json.loads(v) for k, v in before.items()
        }
        (storage,) = repo.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = "
            "'opscore.snapshot_state'::regclass AND attname = 'state'"
        ).fetchone()
        assert storage == "e"  # external: not compressed by the repository
        conn.execute("INSERT INTO mig_t SELECT generate_series(1, 33)")
        conn.execute("SELECT pg_stat_force_next_flush()")
    s2 = api.take_snapshot("mig32")
    tables = api.get_snapshot(s2.snapshot_id).tables
    assert int(tables.loc[tables["relname"] == "mig_t", "n_tup_ins"].iloc[0]) == 33
    assert s2.snapshot_id > s1.snapshot_id


def test_delta_state_is_unlogged_and_its_loss_is_a_reported_baseline(repo, target_db, only_dbs):
    """snapshot_state is not WAL-logged (migration 0033): a repository crash empties it. The
    next capture is then a baseline that says why (not a silent one, not an interval of zeros
    taken against nothing), and the capture after it has exact deltas again."""
    only_dbs(_dbname(target_db))
    (persistence,) = repo.execute(
        "SELECT relpersistence FROM pg_class WHERE oid = 'opscore.snapshot_state'::regclass"
    ).fetchone()
    assert persistence == "u"
    t = api.add_target("lost", target_db)
    with psycopg.connect(target_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE lost_t (id int)")
        api.take_snapshot("lost")
        api.take_snapshot("lost")
        # what a crash leaves: the unlogged table empty, no process memory
        repo.execute("DELETE FROM opscore.snapshot_state WHERE target_id = %s", (t.target_id,))
        writes.STATE_CACHE.drop(writes._StateCache.key(repo, t.target_id))
        conn.execute("INSERT INTO lost_t SELECT generate_series(1, 10)")
        conn.execute("SELECT pg_stat_force_next_flush()")
        s3 = api.take_snapshot("lost")
        assert s3.is_baseline and s3.interval_s is None
        lost = [r for r in s3.resets if r["source"] == "delta state"]
        assert lost and "new baseline" in lost[0]["reason"], s3.resets
        assert api.get_snapshot(s3.snapshot_id).statements.empty  # no deltas invented
        conn.execute("INSERT INTO lost_t SELECT generate_series(1, 21)")
        conn.execute("SELECT pg_stat_force_next_flush()")
    s4 = api.take_snapshot("lost")
    assert not s4.is_baseline and s4.prev_snapshot_id == s3.snapshot_id
    tables = api.get_snapshot(s4.snapshot_id).tables
    assert int(tables.loc[tables["relname"] == "lost_t", "n_tup_ins"].iloc[0]) == 21


def test_object_stats_every_database_bounded_and_excluded(repo, target_db, pg, monkeypatch):
    other = pg.create_database("tgt2", pgss=False)
    try:
        for dsn in (target_db, other):
            with psycopg.connect(dsn, autocommit=True) as conn:
                for i in range(3):
                    conn.execute(f"CREATE TABLE many_{i} (a int)")
                    conn.execute(f"INSERT INTO many_{i} SELECT generate_series(1, {i + 1})")
        monkeypatch.setenv(
            "OPSCORE_SNAPSHOT_DATABASES", json.dumps([_dbname(target_db), _dbname(other)])
        )
        monkeypatch.setenv("OPSCORE_SNAPSHOT_MAX_RELATIONS", "2")
        reset_settings_cache()
        api.add_target("m", target_db)
        s1 = api.take_snapshot("m")
        assert s1.sources[f"tables@{_dbname(other)}"] == "ok"
        rows = repo.execute(
            "SELECT state FROM opscore.snapshot_state WHERE source = %s",
            (f"tables@{_dbname(other)}",),
        ).fetchone()
        assert len(writes._state_value(rows[0])) == 2  # top-N: 2 of the 3 tables
        monkeypatch.setenv("OPSCORE_SNAPSHOT_EXCLUDE_DATABASES", json.dumps([_dbname(other)]))
        reset_settings_cache()
        s2 = api.take_snapshot("m")
        assert f"tables@{_dbname(other)}" not in s2.sources
        assert s2.sources[f"tables@{_dbname(target_db)}"] == "ok"
    finally:
        monkeypatch.undo()
        reset_settings_cache()
        pg.drop_database(other)


def test_bad_input_gives_clear_errors(repo, target_db, only_dbs):
    only_dbs(_dbname(target_db))
    api.add_target("a", target_db)
    api.add_target("b", target_db)
    a1, a2 = api.take_snapshot("a"), api.take_snapshot("a")
    b1 = api.take_snapshot("b")
    with pytest.raises(NotFound, match="no snapshot 987654"):
        api.get_snapshot(987654)
    with pytest.raises(NotFound):
        api.snapshot_range("a", a1.snapshot_id, 987654)
    with pytest.raises(InvalidInput, match="reversed"):
        api.snapshot_range("a", a2.snapshot_id, a1.snapshot_id)
    with pytest.raises(InvalidInput, match="empty"):
        api.snapshot_range("a", a1.snapshot_id, a1.snapshot_id)
    with pytest.raises(InvalidInput, match="belongs to target 'b'"):
        api.snapshot_range("a", a1.snapshot_id, b1.snapshot_id)
    with pytest.raises(UnknownTarget):
        api.take_snapshot("nope")
    with pytest.raises(InvalidInput, match="reversed"):
        api.create_baseline("bl", "a", a2.snapshot_id, a1.snapshot_id)
    api.create_baseline("bl", "a", a1.snapshot_id, a2.snapshot_id)
    with pytest.raises(InvalidInput, match="already exists"):
        api.create_baseline("bl", "a", a1.snapshot_id, a2.snapshot_id)
    with pytest.raises(InvalidInput, match="overlap baseline"):
        api.delete_snapshots("a", a1.snapshot_id, a1.snapshot_id)
    with pytest.raises(NotFound):
        api.delete_baseline("nope")
    with pytest.raises(InvalidInput, match="second period"):
        api.compare_periods("a", a1.snapshot_id, a2.snapshot_id)
    with pytest.raises(InvalidInput, match="of target 'a'"):
        api.compare_periods("b", b1.snapshot_id, b1.snapshot_id + 1, baseline="bl")
    with pytest.raises(InvalidInput):
        api.purge_snapshots(0)
    res = invoke_cli("snapshot", "show", "987654")
    assert res.returncode != 0 and "no snapshot 987654" in res.stderr
    assert "Traceback" not in res.stderr


def test_baselines_protect_snapshots_from_purge(repo, target_db, only_dbs):
    only_dbs(_dbname(target_db))
    api.add_target("p", target_db)
    s = [api.take_snapshot("p") for _ in range(4)]
    api.create_baseline("keep", "p", s[0].snapshot_id, s[1].snapshot_id)
    repo.execute("UPDATE opscore.snapshots SET captured_at = captured_at - interval '30 days'")
    # s0, s1 in the baseline; s3 the latest (base of the next delta): only s2 goes
    assert api.purge_snapshots(7) == 1
    left = {x.snapshot_id for x in api.list_snapshots("p")}
    assert left == {s[0].snapshot_id, s[1].snapshot_id, s[3].snapshot_id}
    assert [b.name for b in api.list_baselines("p")] == ["keep"]
    api.delete_baseline("keep")
    assert api.purge_snapshots(7) == 2
    assert api.delete_snapshots("p", s[3].snapshot_id, s[3].snapshot_id) == 1


@pytest.mark.slow
def test_cli_take_list_show_compare_baseline(repo, target_db, only_dbs):
    only_dbs(_dbname(target_db))
    api.add_target("c", target_db)
    env = {"OPSCORE_SNAPSHOT_DATABASES": json.dumps([_dbname(target_db)])}
    ids = []
    for i in range(3):  # the first through a real `opscore` process, the rest in this one
        res = (run_cli("snapshot", "take", "--json", env=env) if i == 0
               else invoke_cli("snapshot", "take", "--json"))  # fmt: skip
        assert res.returncode == 0, res.stderr
        ids.append(json.loads(res.stdout)[0]["snapshot_id"])
    res = invoke_cli("snapshot", "list", "--target", "c", "--json")
    assert [x["snapshot_id"] for x in json.loads(res.stdout)] == ids[::-1]
    res = invoke_cli("snapshot", "show", str(ids[1]), "--json")
    data = json.loads(res.stdout)
    assert data["info"]["snapshot_id"] == ids[1] and isinstance(data["statements"], list)
    res = invoke_cli("snapshot", "show", str(ids[1]))
    assert res.returncode == 0 and "Top statements" in res.stdout
    res = invoke_cli(
        "baseline", "create", "b1", "--target", "c", "--begin", str(ids[0]), "--end", str(ids[1])
    )
    assert res.returncode == 0, res.stderr
    res = invoke_cli("baseline", "list", "--json")
    assert json.loads(res.stdout)[0]["name"] == "b1"
    res = invoke_cli(
        "snapshot",
        "compare",
        "--target",
        "c",
        "--begin1",
        str(ids[1]),
        "--end1",
        str(ids[2]),
        "--baseline",
        "b1",
    )
    assert res.returncode == 0, res.stderr
    assert "Load profile" in res.stdout and "Top SQL" in res.stdout
    res = run_cli(
        "snapshot",
        "compare",
        "--target",
        "c",
        "--begin1",
        str(ids[2]),
        "--end1",
        str(ids[1]),
        "--baseline",
        "b1",
    )
    assert res.returncode != 0 and "reversed" in res.stderr
    res = invoke_cli("baseline", "delete", "b1")
    assert res.returncode == 0
    res = invoke_cli("snapshot", "purge", "--days", "30", "--json")
    assert json.loads(res.stdout) == {"deleted": 0}


def test_daily_rollups_give_the_same_sums_as_raw_snapshots(repo, target_db, only_dbs, monkeypatch):
    from ops_core.repository import snapshot_columnar as columnar

    only_dbs(_dbname(target_db))
    with psycopg.connect(target_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE roll (a int)")
    api.add_target("roll", target_db)
    snaps = [api.take_snapshot("roll")]
    for i in range(5):
        with psycopg.connect(target_db, autocommit=True) as conn:
            for _ in range(i + 1):
                conn.execute("INSERT INTO roll VALUES (%s)", (i,))
        snaps.append(api.take_snapshot("roll"))
    # snapshots 1..5 become a complete day in the past (the range's begin the day before);
    # one more today
    for i, s in enumerate(snaps):
        repo.execute(
            "UPDATE opscore.snapshots SET captured_at = "
            "(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') "
            "- make_interval(days => %s) + make_interval(mins => %s) WHERE snapshot_id = %s",
            (2 if i == 0 else 1, i, s.snapshot_id),
        )
    last = api.take_snapshot("roll")
    first_id, end_id = snaps[0].snapshot_id, last.snapshot_id

    def totals():
        agg = api.snapshot_range("roll", first_id, end_id, include_opscore=True)
        st = agg.statements.set_index("stmt_id")[["calls", "rows", "intervals"]]
        tb = agg.tables.set_index(["datname", "relid"])[["n_tup_ins", "relname"]]
        return st.sort_index(), tb.sort_index()

    with_rollup = totals()
    built = repo.execute("SELECT count(*) FROM opscore.snap_statements_day").fetchone()[0]
    assert built == 1
    monkeypatch.setattr(columnar, "MIN_ROLLUP_SNAPSHOTS", 10**9)
    raw = totals()
    assert with_rollup[0].equals(raw[0]) and with_rollup[1].equals(raw[1])
    ins = raw[0][raw[0]["calls"] == 15]  # 1+2+3+4+5 inserts
    assert len(ins) == 1 and int(ins.iloc[0]["rows"]) == 15
    monkeypatch.undo()
    # deleting a snapshot of that day makes the rollup stale: rebuilt, sums follow
    api.delete_snapshots("roll", snaps[5].snapshot_id, snaps[5].snapshot_id)
    agg = api.snapshot_range("roll", first_id, end_id, include_opscore=True)
    assert snaps[5].snapshot_id not in agg.snapshot_ids
    n = repo.execute("SELECT snapshots FROM opscore.snap_statements_day").fetchone()[0]
    assert n == 4


def test_deleting_the_latest_snapshot_makes_the_next_one_a_baseline(repo, target_db, only_dbs):
    only_dbs(_dbname(target_db))
    api.add_target("dl", target_db)
    s1 = api.take_snapshot("dl")
    s2 = api.take_snapshot("dl")
    assert api.delete_snapshots("dl", s2.snapshot_id, s2.snapshot_id) == 1
    s3 = api.take_snapshot("dl")
    # deltas against s2's counters would be attributed to the longer s1..s3 interval
    assert s3.is_baseline and s1.snapshot_id < s3.snapshot_id
    assert api.get_snapshot(s3.snapshot_id).statements.empty
    s4 = api.take_snapshot("dl")
    assert s4.prev_snapshot_id == s3.snapshot_id and s4.statements > 0


def test_capture_excludes_schemas_and_bounds_relations(target_db):
    with psycopg.connect(target_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA skipme")
        conn.execute("CREATE TABLE skipme.hidden (a int)")
        for i in range(4):
            conn.execute(f"CREATE TABLE public.shown_{i} (a int PRIMARY KEY)")
    db = _dbname(target_db)
    opts = CaptureOptions(databases=[db], exclude_schemas=["skipme"], max_relations=3)
    cap = capture(0, target_db, opts)
    assert cap.failed is None and cap.sources[f"tables@{db}"] == "ok"
    names = {r["relname"] for r in cap.rows["tables"]}
    assert "hidden" not in names and len(names) == 3  # top-N: 3 of the 4 tables
    assert len(cap.rows["indexes"]) == 3
    cap = capture(0, target_db, CaptureOptions(databases=[db]))
    assert "hidden" in {r["relname"] for r in cap.rows["tables"]}


def test_database_dropped_during_a_capture_does_not_abort_it(target_db, pg):
    """The capture's REPEATABLE READ snapshot still lists a database another session dropped:
    choosing the databases must not fail on it (a by-name privilege check raised 'does not
    exist' and aborted the whole snapshot); a database that cannot be read becomes a recorded
    error of the snapshot."""
    from ops_core.collectors.capture import Capture, _databases, _open

    doomed = pg.create_database("doomed", pgss=False)
    name = _dbname(doomed)
    with _open(target_db) as conn:
        conn.execute("SELECT count(*) FROM pg_database").fetchone()  # fixes the snapshot
        pg.drop_database(doomed)
        cap = Capture(target_id=0)
        chosen = _databases(conn, CaptureOptions(), cap)  # raised InvalidCatalogName before
        assert _dbname(target_db) in chosen
        conn.rollback()
    cap = capture(0, target_db, CaptureOptions(databases=[_dbname(target_db), name]))
    assert cap.failed is None
    assert cap.sources[f"tables@{name}"].startswith("error: database not found")


def test_columnar_write_keeps_every_value_in_row_order(repo):
    """The columnar write (``_insert_arrays``): rows of one shape go through a C-level getter,
    a row missing a column falls back to NULL for it, groups split by their value; the stored
    arrays are every row's values in row order either way."""
    from ops_core.repository import snapshot_columnar as columnar
    from ops_core.repository import snapshots as repo_snap

    spec = columnar.Columnar(
        "t_columnar_check", ("datname",), ("k",), ("c1", "c2"), ("g",),
        {"k": "int8", "c1": "int8", "c2": "float8", "g": "text"},
    )  # fmt: skip
    repo.execute(
        "CREATE TABLE opscore.t_columnar_check (snapshot_id int, datname text, k int8[], "
        "c1 int8[], c2 float8[], g text[])"
    )
    same = [
        {"datname": f"db{i % 2}", "k": i, "c1": i * 10, "c2": i / 4, "g": f"v{i}"} for i in range(7)
    ]
    mixed = [dict(r) for r in same]
    del mixed[3]["c2"]  # another shape: its c2 is NULL, the rest as given
    with repo.transaction():
        repo_snap._insert_arrays(repo, spec, 1, same, group="datname")
        repo_snap._insert_arrays(repo, spec, 2, mixed, group="datname")
    got = {
        (sid, db): (k, c1, c2, g)
        for sid, db, k, c1, c2, g in repo.execute(
            "SELECT snapshot_id, datname, k, c1, c2, g FROM opscore.t_columnar_check"
        ).fetchall()
    }
    for sid, rows in ((1, same), (2, mixed)):
        for db in ("db0", "db1"):
            mine = [r for r in rows if r["datname"] == db]
            want = tuple(
                [r.get(c) if c in ("k", "g") else r.get(c) or None for r in mine]
                for c in ("k", "c1", "c2", "g")
            )  # a zero counter (row 0's) is stored as NULL
            assert got[(sid, db)] == want
    assert got[(2, "db1")][2][1] is None  # row 3 (db1's second) kept its other values
    assert got[(1, "db0")][1][0] is None and got[(1, "db0")][0][0] == 0  # counter, key


def test_a_block_is_stored_as_its_rows_would_be(repo):
    """A DeltaBlock (the statements' deltas as matrices) written as one numpy-built binary COPY
    stores exactly the arrays its rows store through the row-at-a-time COPY: integers, floats,
    numeric, zeros as NULL, in the same order."""
    from decimal import Decimal

    from ops_core.model.deltas import compute
    from ops_core.model.sources import Source, columns
    from ops_core.repository import snapshot_columnar as columnar
    from ops_core.repository import snapshots as repo_snap

    src = Source("t_block", columns("k:int8:key c1 c2:float8 c3:numeric"), only_changed=True)
    first = [{"k": i, "c1": i, "c2": i / 3, "c3": Decimal(i)} for i in range(50)]
    second = [
        {"k": i, "c1": i + i % 3, "c2": i / 3 + (i % 4) * 0.25, "c3": Decimal(i + i % 5 * 10**15)}
        for i in range(60)
    ]
    res = compute(src, second, compute(src, first, {}).last, columns=True)
    assert res.block is not None and 0 < len(res.rows) < 60
    spec = columnar.Columnar(
        "t_block", (), ("stmt_id",), ("c1", "c2", "c3"), (),
        {"stmt_id": "int4", "c1": "int8", "c2": "float8", "c3": "numeric"},
    )  # fmt: skip
    repo.execute(
        "CREATE TABLE opscore.t_block (snapshot_id int, stmt_id int4[], c1 int8[], c2 float8[], "
        "c3 numeric[])"
    )
    ids = [r["k"] + 1000 for r in res.block.rows]
    with repo.transaction():
        repo_snap._insert_block(repo, spec, 1, {"stmt_id": np.array(ids)}, res.block)
        rows = [{**r, "stmt_id": i} for r, i in zip(res.rows, ids, strict=True)]
        repo_snap._insert_arrays(repo, spec, 2, rows)
    got = dict(
        (r[0], r[1:])
        for r in repo.execute("SELECT snapshot_id, stmt_id, c1, c2, c3 FROM opscore.t_block")
    )
    assert got[1] == got[2]
    assert got[1][0] == ids and None in got[1][1] and None not in got[1][0]
    assert max(x or 0 for x in got[1][3]) >= 10**15  # numeric through float8: integral, exact


def test_tables_blocks_are_stored_as_their_rows_would_be(repo):
    """Tables and indexes deltas computed as matrices per database and written as one INSERT
    of arrays (counters built by numpy, names, timestamps and sizes adapted as lists, datname
    a value) store the row the row-by-row path stores: mixed-case and NULL names, NULL
    timestamps and sizes, zero counters as NULL, row order."""
    import dataclasses
    from datetime import datetime, timezone

    from ops_core.model.deltas import compute
    from ops_core.repository import snapshot_columnar as columnar
    from ops_core.repository import snapshots as repo_snap

    at = datetime(2026, 12, 1, 12, 3, 4, 567891, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    for name, spec in (("tables", columnar.TABLES), ("indexes", columnar.INDEXES)):
        src = catalog.SOURCES[name]

        def row(i: int, bump: int, src=src) -> dict:
            r = {}
            for c in src.columns:
                if c.pgtype == "text":
                    r[c.name] = [f"T{i}", f'odd "name" {i}', None][i % 3]
                elif c.pgtype == "timestamptz":
                    r[c.name] = None if i % 2 else at + timedelta(days=i, microseconds=i)
                elif c.kind == "counter":
                    r[c.name] = i * 10 + (bump if i % 4 else 0)
                else:  # keys and gauges (oids, sizes)
                    r[c.name] = None if (c.kind == "gauge" and i % 5 == 0) else 1000 + i
            return r

        first = [row(i, 0) for i in range(40)]
        second = [row(i, 3) for i in range(45)]
        a = compute(src, second, compute(src, first, None).last)
        b = compute(src, second, compute(src, first, None, columns=True).last, columns=True)
        assert b.block is not None and 0 < len(a.rows) == len(b.rows) < 45
        repo.execute(f"CREATE TABLE opscore.t_{name} (LIKE opscore.{spec.table})")
        test_spec = dataclasses.replace(spec, table=f"t_{name}")
        with repo.transaction():
            repo_snap._insert_block(repo, test_spec, 1, {}, b.block, {"datname": "Shop"})
            rows = [{**r, "datname": "Shop"} for r in a.rows]
            repo_snap._insert_arrays(repo, test_spec, 2, rows, group="datname")
        got = {
            r[0]: r[1:]
            for r in repo.execute(
                f"SELECT snapshot_id, datname, {', '.join(spec.cols)} FROM opscore.t_{name}"
            )
        }
        assert got[1] == got[2], name
        names = got[1][1 + spec.cols.index("relname")]
        assert got[1][0] == "Shop" and None in names and 'odd "name" 1' in names
