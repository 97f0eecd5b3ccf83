"""The compressed 5-minute ASH summary (migration 0007) against a real PostgreSQL: its answers
equal the samples' for every grouping on a sampled workload, a rebuild replaces a bucket, day
rows equal their buckets, and retention keeps the dictionary entries that kept summary buckets
reference."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from ops_core import api, repository
from ops_core.repository import ash as repo_ash
from ops_core.repository import ash_chunks, ash_read, ash_retention, ash_summary
from ops_core.repository.ash import AshRow

from .helpers import WAIT_S, cancel_backends, wait_until
from .test_ash import _Session, _wait_for

BUCKET = repo_ash.SUMMARY_BUCKET_S

#: DB-time questions per grouping (dimensions, filters), each answered by the summary
QUESTIONS: list[tuple[list[str], dict]] = [
    (["wait_class", "event"], {}),
    (["event"], {}),
    (["wait_event_type"], {}),
    (["wait_class"], {}),
    ([], {}),
    (["event", "hour"], {}),
    (["query_id"], {}),
    (["query_id", "wait_class"], {}),
    (["query_id"], {"wait_class": "Lock"}),
    (["pid", "backend_start", "usename", "application_name"], {}),
    (["usename"], {}),
    (["datname"], {}),
    (["application_name"], {}),
    (["backend_type"], {}),
    (["pid", "backend_type"], {"application": "ash-sum-sleeper"}),
]


def _floor(ts: datetime) -> datetime:
    return ash_chunks.bucket_floor(ts, BUCKET)


def _sorted(df: pd.DataFrame, dims: list[str]) -> pd.DataFrame:
    keys = [c for c in df.columns if c not in ("samples", "time_s", "db_time_s", "query")]
    return df.sort_values(keys or ["samples"], na_position="first").reset_index(drop=True)


def _assert_same(summary: pd.DataFrame, samples: pd.DataFrame, dims: list[str]) -> None:
    assert list(summary.columns) == list(samples.columns)
    a, b = _sorted(summary, dims), _sorted(samples, dims)
    assert len(a) == len(b), (a, b)
    for col in a.columns:
        if pd.api.types.is_float_dtype(a[col]):  # time_s, db_time_s, aas
            assert a[col].tolist() == pytest.approx(b[col].tolist(), rel=1e-6), col
        else:
            assert (
                a[col].astype(object).where(a[col].notna(), None).tolist()
                == b[col].astype(object).where(b[col].notna(), None).tolist()
            ), col


def _summary_rows(conn: psycopg.Connection, target_id: int) -> list:
    return conn.execute(
        "SELECT * FROM opscore.ash_summary_chunks WHERE target_id = %s "
        "ORDER BY bucket_start, grouping",
        (target_id,),
    ).fetchall()


@pytest.fixture
def workload_target(repo, target_db):
    api.add_target("ashdb", target_db)
    with psycopg.connect(target_db, autocommit=True) as c:
        c.execute("CREATE TABLE ash_t (id int PRIMARY KEY, v int)")
        c.execute("INSERT INTO ash_t VALUES (1, 0)")
    return target_db


@pytest.mark.slow
def test_summary_answers_equal_sample_answers_on_a_sampled_workload(workload_target):
    dsn = workload_target
    blocker = psycopg.connect(dsn, application_name="ash-sum-blocker")
    blocker.execute("UPDATE ash_t SET v = v + 1 WHERE id = 1")  # idle in transaction, holding
    sessions = [
        _Session(dsn, "ash-sum-waiter", "UPDATE ash_t SET v = v + 10 WHERE id = 1"),
        _Session(dsn, "ash-sum-sleeper", "SELECT pg_sleep(600)"),  # cancelled once sampled
        _Session(dsn, "ash-sum-cpu", "SELECT count(*) FROM generate_series(1, 40000000)"),
    ]
    for s in sessions:
        s.start()
    _wait_for(
        dsn,
        "SELECT count(*) = 2 FROM pg_stat_activity WHERE pid = ANY(%s) "
        "AND wait_event IN ('transactionid', 'tuple', 'PgSleep')",
        ([sessions[0].pid, sessions[1].pid],),
    )
    sampler = api.ash_sampler("ashdb", interval_s=0.1)
    try:
        sampler.start()
        wait_until(lambda: sampler.stats.samples >= 20, what="20 samples")
    finally:
        st = sampler.stop()  # its final flush summarizes the last, partial bucket
        cancel_backends(dsn, [s.pid for s in sessions])
        blocker.rollback()
        blocker.close()
    for s in sessions:
        s.join(WAIT_S)
    assert st.errors == 0, st.last_error
    target = api.get_target("ashdb")
    # whole buckets around the run, from its own clock: not from the hot rows, which lose a
    # bucket to its chunks as soon as the sampler sees it complete (a run across a boundary)
    lo = _floor(st.started_at)
    hi = _floor(datetime.now(UTC)) + timedelta(seconds=BUCKET)
    df = api.query_ash("ashdb", lo, hi)
    assert {"Lock", "Client", "Timeout", "CPU"} <= set(df["wait_class"])
    assert len(df) == st.rows_written > 40

    def compare() -> None:
        for dims, flt in QUESTIONS:
            summary = api.ash_db_time("ashdb", lo, hi, by=dims, source="summary", **flt)
            samples = api.ash_db_time("ashdb", lo, hi, by=dims, source="samples", **flt)
            assert summary.attrs["source"] == "summary" and len(samples) > 0, dims
            _assert_same(summary, samples, dims)
        # the ASH chart, per 5-minute bucket
        for by in (["wait_class"], ["query_id"], ["usename"]):
            a = api.ash_activity("ashdb", lo, hi, by=by, bucket_s=BUCKET, source="summary")
            b = api.ash_activity("ashdb", lo, hi, by=by, bucket_s=BUCKET, source="samples")
            _assert_same(a, b, ["bucket_start", *by])

    compare()  # the sampler's summary, built from hot rows
    with repository.session() as conn:
        built = _summary_rows(conn, target.target_id)
        assert {r[2] for r in built} == {"event", "sql", "session"}
        # compacted into chunks and summarized again, from the chunks: the same rows
        ash_chunks.compact(conn, target.target_id, hi)
        hot = conn.execute(
            "SELECT count(*) FROM opscore.ash_samples WHERE target_id = %s", (target.target_id,)
        ).fetchone()[0]
        assert hot == 0
        groups = ash_summary.summarize(conn, target.target_id, lo, hi)
        assert groups == sum(r[4] for r in built)
        assert _summary_rows(conn, target.target_id) == built
    compare()


def _rows(
    base: datetime, n: int, step_s: float = 1.0, started: datetime | None = None
) -> list[AshRow]:
    """Four sessions in one sample per step: CPU, a lock wait with a query, an idle-in-
    transaction session, and a NULL-everything background process (3 event, 5 sql and 4
    session groups). The client sessions started ``started`` (default: 2 days before)."""
    start = started or base - timedelta(days=2)
    out = []
    for i in range(n):
        ts = base + timedelta(seconds=i * step_s)
        out += [
            AshRow(
                ts, 100, None, "client backend", "app", "shop", "web",
                ipaddress.ip_interface("10.0.0.1/32"), start, "active", None, None, 11,
                "SELECT 11", ts, ts, ts, 1, 1, None,
            ),
            AshRow(
                ts, 101, None, "client backend", "app", "shop", "web", None, start, "active",
                "Lock", "transactionid", 12 if i % 3 else None, "UPDATE t SET v = 1", ts, ts,
                ts, 1, 1, [102],
            ),
            AshRow(
                ts, 102, None, "client backend", "batch", "shop", "", None, start,
                "idle in transaction", "Client", "ClientRead", 13, "SELECT 13", ts, ts, ts, 1,
                1, None,
            ),
            AshRow(
                ts, 103, None, None, None, None, None, None, None,
                None, None, None, None, None, None, None, None, None, None, None,
            ),
        ]  # fmt: skip
    return out


@pytest.fixture
def target(repo):
    return api.add_target("summed", "host=/nonexistent dbname=x", verify=False)


def test_resummarizing_replaces_a_bucket(target):
    tid = target.target_id
    base = _floor(datetime.now(UTC)) - timedelta(hours=3)
    rng = (base, base + timedelta(minutes=10))
    with repository.session() as conn:
        # two buckets; the second sampled at 0.5 s (weights 0.5: time_s is not samples * 1)
        repo_ash.AshWriter(tid).write(conn, _rows(base, 300), 1.0)
        repo_ash.AshWriter(tid).write(conn, _rows(base + timedelta(minutes=5), 100, 0.5), 0.5)
        assert ash_summary.summarize(conn, tid, *rng) == 2 * (3 + 5 + 4)
        first = _summary_rows(conn, tid)
        assert len(first) == 6 and {r[5] for r in first} == {1.0, 0.5}
        assert ash_summary.summarize(conn, tid, *rng) == 24  # again: the same rows, not twice
        assert _summary_rows(conn, tid) == first
        by_pid = ash_read.db_time(conn, tid, *rng, ["pid"], use_summary=True)
        assert dict(zip(by_pid["pid"], by_pid["time_s"], strict=True)) == {
            100: 350.0,
            101: 350.0,
            102: 350.0,
            103: 350.0,
        }
        # a session's samples gone from the first bucket: its rebuild no longer has it, the
        # other bucket is untouched
        conn.execute(
            "DELETE FROM opscore.ash_samples WHERE target_id = %s AND pid = 103 "
            "AND sample_time < %s",
            (tid, base + timedelta(minutes=5)),
        )
        assert ash_summary.summarize(conn, tid, base, base + timedelta(seconds=1)) == 3 + 4 + 3
        assert _summary_rows(conn, tid)[3:] == first[3:]
        by_pid = ash_read.db_time(conn, tid, *rng, ["pid"], use_summary=True)
        assert dict(zip(by_pid["pid"], by_pid["time_s"], strict=True))[103] == 50.0
        # a bucket without samples loses its summary
        conn.execute("DELETE FROM opscore.ash_samples WHERE target_id = %s", (tid,))
        assert ash_summary.summarize(conn, tid, *rng) == 0
        assert _summary_rows(conn, tid) == []


def test_trimming_keeps_the_dictionary_entries_of_kept_buckets(target):
    """A session seen with two client addresses is two dictionary entries that decode to the
    same summary group. The older entry goes when its day goes; the bucket that uses the
    newer one keeps the session."""
    tid = target.target_id
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    old, recent = now - timedelta(days=25), now - timedelta(days=2)
    with repository.session() as conn:
        w = repo_ash.AshWriter(tid)
        w.write(conn, _rows(old, 30), 1.0)
        moved = [
            r._replace(client_addr=ipaddress.ip_interface("10.0.0.2/32")) for r in _rows(recent, 30)
        ]
        w.write(conn, moved, 1.0)
        for base in (old, recent):
            ash_summary.summarize(conn, tid, base, base + timedelta(minutes=1))
        ash_chunks.compact(conn, tid, now)
        keys = conn.execute(
            "SELECT session_key, host(client_addr) FROM opscore.ash_sessions "
            "WHERE target_id = %s AND pid = 100 ORDER BY session_key",
            (tid,),
        ).fetchall()
        assert [k[1] for k in keys] == ["10.0.0.1", "10.0.0.2"]
        rng = (recent - timedelta(minutes=5), recent + timedelta(minutes=5))
        before = ash_read.db_time(conn, tid, *rng, ["pid", "usename"], use_summary=True)
        assert len(before) == 4 and 100 in set(before["pid"])
        # history kept 20 days: the old day and its summary go, and dictionary entries last
        # seen before the window
        res = ash_retention.purge(conn, now, 3, 20)
        assert res["summary_deleted"] == 12
        left = conn.execute(
            "SELECT session_key FROM opscore.ash_sessions WHERE target_id = %s AND pid = 100",
            (tid,),
        ).fetchall()
        assert left == [(keys[1][0],)]
        after = ash_read.db_time(conn, tid, *rng, ["pid", "usename"], use_summary=True)
        assert after.equals(before)
        # every entry a kept bucket references is still there, last seen no earlier than it
        for key, table in (
            ("event_key", "ash_events"),
            ("query_key", "ash_queries"),
            ("session_key", "ash_sessions"),
        ):
            key = sql.Identifier(key)
            missing = conn.execute(
                sql.SQL(
                    "SELECT count(*) FROM opscore.ash_summary_chunks c, unnest(c.{k}) AS x(k) "
                    "WHERE NOT EXISTS (SELECT 1 FROM opscore.{t} d WHERE d.target_id = "
                    "c.target_id AND d.{k} = x.k AND d.last_seen >= c.bucket_start)"
                ).format(k=key, t=sql.Identifier(table))
            ).fetchone()[0]
            assert missing == 0, table


@pytest.mark.slow
def test_day_rows_equal_their_buckets(target):
    """Complete days are read from their day rows when a range covers them whole; a day row is
    rebuilt with its buckets and goes with the first bucket retention drops of its day."""
    tid = target.target_id
    day1 = _floor(datetime.now(UTC)).replace(hour=0, minute=0) - timedelta(days=4)
    day2 = day1 + timedelta(days=1)
    end = day2 + timedelta(days=1)
    with repository.session() as conn:
        rows = _rows(day1, 2 * 8640, step_s=10)  # two whole days, a sample every 10 s
        repo_ash.AshWriter(tid).write(conn, rows, 10.0)
        ash_summary.summarize(conn, tid, day1, end)
        days = conn.execute(
            "SELECT bucket_start, grouping, groups FROM opscore.ash_summary_days "
            "WHERE target_id = %s ORDER BY 1, 2",
            (tid,),
        ).fetchall()
        assert [(d, g) for d, g, _ in days] == [
            (d, g) for d in (day1, day2) for g in ("event", "session", "sql")
        ]

    def compare(lo: datetime, hi: datetime, since: datetime | None = None) -> None:
        for dims, flt in QUESTIONS:
            if "application" in flt:
                continue
            summary = api.ash_db_time("summed", lo, hi, by=dims, source="summary", **flt)
            samples = api.ash_db_time("summed", since or lo, hi, by=dims, source="samples", **flt)
            _assert_same(summary, samples, dims)

    compare(day1, end)  # both days from their day rows
    compare(day1 + timedelta(hours=6), end)  # day 2 from its row, day 1 from buckets
    compare(day1 + timedelta(hours=6), day2 + timedelta(hours=18))  # buckets only
    with repository.session() as conn:
        # a bucket of day 2 rebuilt without a session: the day row follows
        conn.execute(
            "DELETE FROM opscore.ash_samples WHERE target_id = %s AND pid = 103 "
            "AND sample_time >= %s AND sample_time < %s",
            (tid, day2 + timedelta(hours=10), day2 + timedelta(hours=11)),
        )
        ash_summary.summarize(conn, tid, day2 + timedelta(hours=10), day2 + timedelta(hours=11))
    compare(day1, end)
    with repository.session() as conn:
        # retention's cut in the middle of day 1: its day row goes, day 2's stays
        cut = day1 + timedelta(hours=12)
        res = ash_retention.purge(conn, cut + timedelta(days=20), 40, 20)
        assert res["summary_deleted"] == 144 * 12 and res["summary_days_built"] == 0
        left = conn.execute(
            "SELECT DISTINCT bucket_start FROM opscore.ash_summary_days WHERE target_id = %s",
            (tid,),
        ).fetchall()
        assert left == [(day2,)]
    compare(day1, end, since=cut)
