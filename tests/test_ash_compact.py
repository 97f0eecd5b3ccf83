"""Compressed ASH chunks against a real PostgreSQL: exact round trip, idempotent compaction,
reads over hot rows + raw chunks + history chunks, retention into history, and target
removal."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ops_core import api, repository
from ops_core.repository import ash as repo_ash
from ops_core.repository import ash_chunks, ash_stage, ash_tiers
from ops_core.repository.ash import AshRow

from .test_ash import _rows


@pytest.fixture
def target(repo):
    return api.add_target("chunky", "host=/nonexistent dbname=x", verify=False)


def _bucket(ts: datetime) -> datetime:
    return ash_chunks.bucket_floor(ts, ash_tiers.RAW_CHUNK_S)


def _varied_rows(base: datetime, n_times: int) -> list[AshRow]:
    """Rows that use every corner of the encoding: NULL in every nullable column, microsecond
    times, a query start after the sample time, a transaction open for 40 days, a backend open
    for a year, NULL and empty and long blocking-pid lists, IPv4 and IPv6 clients."""
    rows = []
    long_list = list(range(70_000, 70_600))  # 600 blockers
    for i in range(n_times):
        ts = base + timedelta(seconds=i, microseconds=(i * 7919) % 1_000_000)
        rows += [
            AshRow(
                ts, 100, None, "client backend", "app", "shop", "web-1",
                ipaddress.ip_interface("10.1.2.3/32"), base - timedelta(days=365, microseconds=3),
                "active", "Lock", "transactionid", 1234567890123456789, "UPDATE t SET v = $1",
                ts - timedelta(milliseconds=250, microseconds=1),
                ts - timedelta(days=40, microseconds=17), ts + timedelta(microseconds=5),
                2_000_000_000, 1, [101, 102] if i % 2 else [],
            ),
            AshRow(
                ts, 101, None, None, None, None, None, None, None,
                None, None, None, None, None, None, None, None, None, None, None,
            ),
            AshRow(
                ts, 102, 100, "parallel worker", "app", "shop", "",
                ipaddress.ip_interface("::1/128"), base, "idle in transaction", "Client",
                "ClientRead", None, "SELECT 1",
                ts + timedelta(microseconds=900), None, ts, None, 2**31 - 1,
                long_list if i == 3 else None,
            ),
            AshRow(
                ts, 103, None, "client backend", "app", "shop", "web-2", None, base, "active",
                None, None, -42, None, ts, ts, ts, 0, 0, [100],
            ),
        ]  # fmt: skip
    return rows


def _read_all(conn: psycopg.Connection, target_id: int, begin: datetime, end: datetime) -> list:
    """Every column of every sample of the tiers, decoded, in a stable order."""
    query = psycopg.sql.SQL("SELECT * FROM {} ORDER BY s.sample_time, s.pid").format(
        ash_tiers.tiers_sql(True)
    )
    return conn.execute(query, {"t": target_id, "begin": begin, "end": end}).fetchall()


def _count(conn: psycopg.Connection, table: str, target_id: int) -> int:
    q = psycopg.sql.SQL("SELECT count(*) FROM opscore.{} WHERE target_id = %s")
    return conn.execute(q.format(psycopg.sql.Identifier(table)), (target_id,)).fetchone()[0]


def test_compaction_round_trip_is_exact_and_idempotent(target):
    tid = target.target_id
    now = datetime.now(UTC)
    base = _bucket(now) - timedelta(hours=2, seconds=-290)  # 10 s before a bucket boundary
    rows = _varied_rows(base, 20)  # spans two buckets
    rng = (base - timedelta(minutes=10), base + timedelta(minutes=10))
    with repository.session() as conn:
        assert repo_ash.AshWriter(tid).write(conn, rows, 1.0) == len(rows)
        before = _read_all(conn, tid, *rng)
        assert len(before) == len(rows) and {r[-1] for r in before} == {"raw"}
        # what was written is what the hot table returns (the reference for the chunks)
        assert [r[3] for r in before] == [r.pid for r in sorted(rows, key=lambda r: (r[0], r[1]))]

        # only complete buckets: the first bucket (10 s) and nothing of the one holding `before`
        assert ash_chunks.compact(conn, tid, base + timedelta(seconds=15)) == 40
        assert _count(conn, "ash_chunks", tid) == 1 and _count(conn, "ash_samples", tid) == 40
        assert ash_chunks.compact(conn, tid, now) == 40
        assert _count(conn, "ash_chunks", tid) == 2 and _count(conn, "ash_samples", tid) == 0
        after = _read_all(conn, tid, *rng)
        assert after == before  # every column of every sample, NULLs and '{}' included
        blocked = {
            r[3]: r[-2] for r in after if r[1] == base + timedelta(seconds=3, microseconds=3 * 7919)
        }
        assert blocked[102] == list(range(70_000, 70_600)) and blocked[101] is None
        assert blocked[100] == [101, 102] and blocked[103] == [100]
        assert {tuple(r[-2] or ()) for r in after if r[3] == 100} == {(), (101, 102)}

        # a second compaction changes nothing; a retried batch landing after compaction (the
        # same rows again, in the hot table) and late samples of a compacted bucket are merged:
        # no duplicate, nothing lost
        assert ash_chunks.compact(conn, tid, now) == 0
        assert _read_all(conn, tid, *rng) == before
        late = _rows(base + timedelta(seconds=1, microseconds=1), 2, [555])
        repo_ash.AshWriter(tid).write(conn, rows[:8] + late, 1.0)
        assert ash_chunks.compact(conn, tid, now) == 10
        merged = _read_all(conn, tid, *rng)
        assert len(merged) == len(rows) + 2 and _count(conn, "ash_chunks", tid) == 2
        assert [r for r in merged if r[3] != 555] == before


def test_a_failed_compaction_leaves_the_samples_hot_and_a_busy_target_is_skipped(target):
    tid = target.target_id
    base = _bucket(datetime.now(UTC)) - timedelta(hours=1)
    rng = (base, base + timedelta(minutes=5))
    with repository.session() as conn:
        repo_ash.AshWriter(tid).write(conn, _varied_rows(base, 5), 1.0)
        before = _read_all(conn, tid, *rng)
        # a crash mid-compaction: chunks written, then the transaction dies before it commits
        with pytest.raises(RuntimeError), conn.transaction():
            ash_chunks.compact(conn, tid, base + timedelta(minutes=5))
            assert _count(conn, "ash_chunks", tid) == 1
            raise RuntimeError("crash")
        assert _count(conn, "ash_chunks", tid) == 0 and _read_all(conn, tid, *rng) == before
        # another writer holds the target: the sampler's compaction does not wait
        with repository.connect() as other, other.transaction():
            other.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ash_stage.COMPACT_LOCK, tid))
            assert ash_chunks.compact(conn, tid, base + timedelta(minutes=5), wait=False) is None
        assert _count(conn, "ash_chunks", tid) == 0
        assert ash_chunks.compact(conn, tid, base + timedelta(minutes=5), wait=False) == 20
        assert _read_all(conn, tid, *rng) == before


def test_reads_over_hot_raw_and_history_tiers_keep_db_time(target):
    tid = target.target_id
    now = datetime.now(UTC).replace(hour=12, minute=2, second=0, microsecond=0)
    old = now - timedelta(days=10, minutes=2)  # leaves the raw window: history
    mid = now - timedelta(days=1, minutes=2)  # raw chunks
    cur = _bucket(now)  # the current bucket of `now`: stays hot
    with repository.session() as conn:
        w = repo_ash.AshWriter(tid)
        for base in (old, mid, cur):
            w.write(conn, _rows(base, 100, [1, 2, 3]), 1.0)
    whole = (old - timedelta(hours=1), now + timedelta(hours=1))
    totals = api.ash_db_time("chunky", *whole, by=[], source="samples")
    by_event = api.ash_db_time("chunky", *whole, by=["event"], source="samples")
    assert totals["db_time_s"].iloc[0] == pytest.approx(900)

    res = api.purge_ash(now=now)
    assert res["history_added"] == 30  # 100 samples -> 10 kept, 3 sessions each
    df = api.query_ash("chunky", *whole)
    assert df.groupby("tier").size().to_dict() == {"history": 30, "raw": 600}
    with repository.session() as conn:
        assert _count(conn, "ash_samples", tid) == 300  # the current bucket
        assert _count(conn, "ash_chunks", tid) == 1  # mid's bucket (100 s inside one bucket)
        assert _count(conn, "ash_history_chunks", tid) == 1
    after = api.ash_db_time("chunky", *whole, by=[], source="samples")
    assert after["db_time_s"].iloc[0] == pytest.approx(totals["db_time_s"].iloc[0])
    assert after["time_s"].iloc[0] == pytest.approx(totals["time_s"].iloc[0])
    by_event2 = api.ash_db_time("chunky", *whole, by=["event"], source="samples")
    assert by_event2["db_time_s"].tolist() == pytest.approx(by_event["db_time_s"].tolist())
    # each tier alone, and the summary (built by the purge for the compacted leftovers)
    day_mid = (mid - timedelta(minutes=1), mid + timedelta(minutes=5))
    assert api.ash_db_time("chunky", *day_mid, by=[])["db_time_s"].iloc[0] == pytest.approx(300)
    summary = api.ash_db_time("chunky", *day_mid, by=["sql"], source="summary")
    assert summary["db_time_s"].sum() == pytest.approx(300)
    hist = api.query_ash("chunky", old - timedelta(minutes=1), old + timedelta(minutes=5))
    assert set(hist["weight_s"]) == {10.0} and hist["sample_time"].nunique() == 10
    assert api.last_ash_sample("chunky") == cur + timedelta(seconds=99)


def test_a_short_read_unnests_only_the_chunks_it_needs(target):
    tid = target.target_id
    day = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0)
    day = day.replace(microsecond=0)
    with repository.session() as conn:
        # a whole day, one session every 10 s: 288 chunks
        repo_ash.AshWriter(tid).write(conn, _rows(day, 8640, [9], step_s=10), 1.0)
        ash_chunks.compact(conn, tid, day + timedelta(days=1))
        assert _count(conn, "ash_chunks", tid) == 288
        conn.execute("ANALYZE opscore.ash_chunks")
        begin = day + timedelta(hours=13, minutes=1)
        query = psycopg.sql.SQL(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM {} "
            "WHERE s.target_id = %(t)s AND s.sample_time >= %(begin)s AND s.sample_time < %(end)s"
        ).format(ash_tiers.tiers_sql(True))
        params = {"t": tid, "begin": begin, "end": begin + timedelta(minutes=5)}
        plan = conn.execute(query, params).fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
    chunk_rows: list[int] = []

    def walk(node: dict) -> None:
        if str(node.get("Relation Name", "")).startswith("ash_chunks_p"):
            chunk_rows.append(node["Actual Rows"] * node.get("Actual Loops", 1))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    assert chunk_rows and sum(chunk_rows) <= 2, chunk_rows  # two chunks overlap, not 288
    df = api.query_ash("chunky", begin, begin + timedelta(minutes=5))
    assert len(df) == 30 and set(df["tier"]) == {"raw"}


def test_retention_downsamples_then_drops_history_and_trims_dictionaries(target):
    tid = target.target_id
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    day = now - timedelta(days=8)
    with repository.session() as conn:
        repo_ash.AshWriter(tid).write(conn, _varied_rows(day, 3), 1.0)
    rng = (day - timedelta(minutes=1), day + timedelta(minutes=5))
    raw = api.ash_db_time("chunky", *rng, by=[])

    api.purge_ash(now=now)  # past the raw window: one sample in 10 kept, weighted
    parts = api.ash_partitions()["history"]
    assert parts == [repo_ash.partition_name("ash_history_chunks", day.date())]
    with repository.session() as conn:
        assert _count(conn, "ash_history_chunks", tid) == 1
        assert _count(conn, "ash_sessions", tid) > 0
    hist = api.ash_db_time("chunky", *rng, by=[])
    assert hist.loc[0, "time_s"] == pytest.approx(raw.loc[0, "time_s"])

    # past the history window: partitions dropped, dictionaries trimmed
    res = api.purge_ash(now=now + timedelta(days=30))
    assert parts[0] in res["history_dropped"]
    with repository.session() as conn:
        for table in ("ash_history_chunks", "ash_sessions", "ash_events", "ash_queries"):
            assert _count(conn, table, tid) == 0, table


def test_removing_a_target_removes_its_chunks_and_dictionaries(target):
    tid = target.target_id
    keep = api.add_target("other", "host=/nonexistent dbname=y", verify=False)
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    with repository.session() as conn:
        for t in (tid, keep.target_id):
            w = repo_ash.AshWriter(t)
            w.write(conn, _rows(now - timedelta(days=5), 30, [1, 2]), 1.0)
            w.write(conn, _rows(now - timedelta(days=1), 30, [1, 2]), 1.0)
            w.write(conn, _rows(now, 3, [1]), 1.0)
    api.purge_ash(now=now)
    tables = ("ash_samples", "ash_chunks", "ash_history_chunks", "ash_sessions", "ash_events")
    tables += ("ash_queries", "ash_query_texts")
    with repository.session() as conn:
        assert all(_count(conn, t, tid) > 0 for t in tables)
    api.remove_target("chunky")
    with repository.session() as conn:
        assert [_count(conn, t, tid) for t in tables] == [0] * len(tables)
        assert all(_count(conn, t, keep.target_id) > 0 for t in tables)


def test_a_writer_gets_back_a_hot_partition_that_retention_dropped(target):
    tid = target.target_id
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    writer = repo_ash.AshWriter(tid)  # a long-running sampler's writer: it cached the day
    with repository.session() as conn:
        writer.write(conn, _rows(yesterday, 5, [1]), 1.0)
    res = api.purge_ash(now=now)  # compacts the day and drops its emptied hot partition
    assert repo_ash.partition_name("ash_samples", yesterday.date()) in res["raw_dropped"]
    with repository.session() as conn:  # late samples of that day (a retried flush)
        assert writer.write(conn, _rows(yesterday + timedelta(seconds=5), 5, [1]), 1.0) == 5
    rng = (yesterday - timedelta(minutes=1), yesterday + timedelta(minutes=1))
    df = api.query_ash("chunky", *rng)
    assert len(df) == 10 and df["sample_time"].is_unique


def _migrate_below(conn: psycopg.Connection, version: int) -> None:
    """The repository as an installation that has every migration before ``version``."""
    conn.execute("DROP SCHEMA IF EXISTS opscore CASCADE")
    conn.execute("CREATE SCHEMA opscore")
    conn.execute(
        "CREATE TABLE opscore.schema_migrations (version int PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for m in repository.migrations():
        if m.version < version:
            with conn.transaction():
                conn.execute(m.sql)
                conn.execute(
                    "INSERT INTO opscore.schema_migrations (version, name) VALUES (%s, %s)",
                    (m.version, m.name),
                )


def test_migration_0020_drops_row_history_but_never_its_rows(repo):
    conn = repo
    _migrate_below(conn, 20)
    # the targets table as it was before migration 20 (the repository module reads columns
    # later migrations add, e.g. 0028's tags)
    tid = conn.execute(
        "INSERT INTO opscore.targets (name, dsn, password_source) "
        "VALUES ('old', 'host=/nonexistent dbname=x', 'none') RETURNING target_id"
    ).fetchone()[0]
    day = (datetime.now(UTC) - timedelta(days=40)).date()
    repo_ash.ensure_partitions(conn, "ash_history", [day])
    conn.execute(
        "INSERT INTO opscore.ash_history (target_id, sample_time, weight_s, pid) "
        "VALUES (%s, %s, 10, 1)",
        (tid, repo_ash.day_start(day)),
    )
    # rows the old layout still holds: refused, nothing changed
    with pytest.raises(psycopg.errors.RaiseException, match="ash_history still holds"):
        repository.migrate(conn)
    assert conn.execute("SELECT count(*) FROM opscore.ash_history").fetchone()[0] == 1
    assert 20 not in repository.applied_versions(conn)
    # empty (as every installation's is): dropped, and removing a target still works
    conn.execute("DELETE FROM opscore.ash_history")
    assert 20 in [m.version for m in repository.migrate(conn)]
    assert conn.execute("SELECT to_regclass('opscore.ash_history')").fetchone()[0] is None
    repo_ash.AshWriter(tid).write(conn, _rows(datetime.now(UTC), 3, [1]), 1.0)
    conn.execute("DELETE FROM opscore.targets WHERE target_id = %s", (tid,))
    assert _count(conn, "ash_samples", tid) == 0
