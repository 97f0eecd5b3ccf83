"""Repository bytes per target-day of ASH with 20 active sessions at 1 Hz, before and after
retention.

Writes one full UTC day (86,400 samples x 20 sessions = 1,728,000 rows, OLTP-shaped: see
ash_common.synthetic_rows) into a day 10 days back the way the sampler does: each 5-minute
bucket is written through the real write path (binary COPY into the hot table), summarized, and
compacted into a compressed chunk (ash_chunks.compact), after which the hot partition is
vacuumed as autovacuum does at real pace (one bucket every 5 minutes). Then it measures the raw
chunk partition (heap + primary key + TOAST), the hot partition, the summary and the
dictionaries, runs the real retention (purge with now = that day + 4.5 days: raw window 3 days),
which downsamples the day into history chunks (1 sample in 10, weight 10 s) and drops the raw
partitions, and measures again. Before retention it also times long-range reads of the summary:
the day's summary is copied to the 6 days after it and ``api.ash_db_time`` reads 7 days from
midnight and 6 days from noon by event, by SQL and by session (the summary answers ranges over
6 hours).

    python bench/ash_size.py [SESSIONS] [SECONDS]
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

from ash_common import api, server, synthetic_rows
from psycopg import sql

from ops_core import repository
from ops_core.repository import ash as repo_ash
from ops_core.repository import ash_chunks, ash_retention, ash_summary, ash_tiers

SESSIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 86_400
BUCKET_S = ash_tiers.RAW_CHUNK_S
DICTS = [d.table for d in ash_tiers.DICTIONARIES]
SUMMARY_TABLES = (ash_summary.SUMMARY_TABLE, ash_summary.DAYS_TABLE)
READ_DAYS = 7
READ_ROUNDS = 5


def size(conn, rel: str) -> int:
    return conn.execute("SELECT pg_total_relation_size(to_regclass(%s))", (rel,)).fetchone()[0]


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def column_bytes(conn, part: str) -> str:
    """Stored (compressed) bytes per session-sample of each array of a chunk partition."""
    cols = [*ash_tiers.ARRAYS, "blk_pids"]
    exprs = sql.SQL(", ").join(
        sql.SQL("sum(pg_column_size({}))").format(sql.Identifier(c)) for c in cols
    )
    query = sql.SQL("SELECT sum(samples), {} FROM opscore.{}").format(exprs, sql.Identifier(part))
    n, *sizes = conn.execute(query).fetchone()
    return ", ".join(f"{c} {b / n:.2f}" for c, b in zip(cols, sizes, strict=True))


def copy_summary(conn, target_id: int, start: datetime, days: int) -> None:
    """Copy the summary of the day at ``start`` to the ``days`` days after it."""
    for table in SUMMARY_TABLES:
        _copy_summary(conn, table, target_id, start, days)


def _copy_summary(conn, table: str, target_id: int, start: datetime, days: int) -> None:
    cols = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'opscore' "
            "AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
    ]
    select = sql.SQL(", ").join(
        sql.SQL("bucket_start + %(shift)s") if c == "bucket_start" else sql.Identifier(c)
        for c in cols
    )
    query = sql.SQL(
        "INSERT INTO opscore.{tbl} ({cols}) SELECT {select} FROM opscore.{tbl} "
        "WHERE target_id = %(t)s AND bucket_start >= %(lo)s AND bucket_start < %(hi)s"
    ).format(
        tbl=sql.Identifier(table),
        cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
        select=select,
    )
    lo, hi = start, start + timedelta(days=1)
    for d in range(1, days + 1):
        conn.execute(query, {"t": target_id, "lo": lo, "hi": hi, "shift": timedelta(days=d)})
    conn.execute(sql.SQL("VACUUM ANALYZE opscore.{}").format(sql.Identifier(table)))


def time_summary_reads(name: str, start: datetime) -> dict[str, tuple[float, int, float]]:
    """Median seconds of ``api.ash_db_time`` by event, sql and session over READ_DAYS days from
    midnight, and over READ_DAYS - 1 days from noon (after one warm-up read), with the rows and
    the DB time it returned."""
    out = {}
    windows = {
        f"{READ_DAYS} days from midnight": (start, start + timedelta(days=READ_DAYS)),
        f"{READ_DAYS - 1} days from noon": (
            start + timedelta(hours=12),
            start + timedelta(days=READ_DAYS - 1, hours=12),
        ),
    }
    for label, (lo, hi) in windows.items():
        for by in ("event", "sql", "session"):
            api.ash_db_time(name, lo, hi, by=[by])
            times = []
            for _ in range(READ_ROUNDS):
                t0 = time.perf_counter()
                df = api.ash_db_time(name, lo, hi, by=[by])
                times.append(time.perf_counter() - t0)
            assert df.attrs["source"] == "summary", df.attrs
            key = f"{label}, by {by}"
            out[key] = (sorted(times)[len(times) // 2], len(df), float(df["db_time_s"].sum()))
    return out


def main() -> None:
    server()
    name = "sizing"
    if name in {t.name for t in api.list_targets()}:
        api.remove_target(name)
    t = api.add_target(name, "host=/nonexistent dbname=x", verify=False)
    day = (datetime.now(UTC) - timedelta(days=10)).date()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    writer = repo_ash.AshWriter(t.target_id)
    hot_part = repo_ash.partition_name(ash_tiers.HOT_TABLE, day)
    hot = "opscore." + hot_part
    raw = repo_ash.partition_name(ash_tiers.RAW_CHUNKS, day)
    hist = repo_ash.partition_name(ash_tiers.HISTORY_CHUNKS, day)
    with repository.session() as conn:
        # a clean day: the partitions of an earlier (interrupted) run would hold its dead rows
        for table in (ash_tiers.HOT_TABLE, ash_tiers.RAW_CHUNKS, ash_tiers.HISTORY_CHUNKS):
            part = sql.Identifier(repo_ash.partition_name(table, day))
            conn.execute(sql.SQL("DROP TABLE IF EXISTS opscore.{}").format(part))
        fixed = ["opscore.ash_query_texts", *("opscore." + t for t in SUMMARY_TABLES)]
        fixed += ["opscore." + d for d in DICTS]
        for rel in fixed:  # no free space left by earlier runs: growth is this day's rows
            conn.execute(sql.SQL("VACUUM FULL {}").format(sql.Identifier(*rel.split("."))))
        base = {rel: size(conn, rel) for rel in fixed}
        written = 0
        load_s = summarize_s = compact_s = vacuum_s = 0.0
        hot_bucket_b = 0
        for i in range(0, SECONDS, BUCKET_S):
            rows = synthetic_rows(
                start + timedelta(seconds=i),
                min(BUCKET_S, SECONDS - i),
                SESSIONS,
                seed=i,
                backend_start=start - timedelta(hours=1),  # 20 pooled sessions all day
            )
            t0 = time.perf_counter()
            written += writer.write(conn, rows, 1.0)
            t1 = time.perf_counter()
            lo = start + timedelta(seconds=i)
            ash_summary.summarize(conn, t.target_id, lo, lo + timedelta(seconds=BUCKET_S))
            t2 = time.perf_counter()
            if i == 0:
                conn.execute("CHECKPOINT")
                hot_bucket_b = size(conn, hot)
            ash_chunks.compact(conn, t.target_id, lo + timedelta(seconds=BUCKET_S))
            t3 = time.perf_counter()
            conn.execute(sql.SQL("VACUUM opscore.{}").format(sql.Identifier(hot_part)))
            t4 = time.perf_counter()
            load_s += t1 - t0
            summarize_s += t2 - t1
            compact_s += t3 - t2
            vacuum_s += t4 - t3
        conn.execute("CHECKPOINT")
        raw_b = size(conn, "opscore." + raw)
        raw_idx = conn.execute(
            "SELECT pg_indexes_size(to_regclass(%s))", ("opscore." + raw,)
        ).fetchone()[0]
        chunks, chunk_rows = conn.execute(
            sql.SQL("SELECT count(*), sum(samples) FROM opscore.{}").format(sql.Identifier(raw))
        ).fetchone()
        per_column = column_bytes(conn, raw)
        hot_b = size(conn, hot)
        summary_b = sum(size(conn, "opscore." + t) - base["opscore." + t] for t in SUMMARY_TABLES)
        texts_b = size(conn, "opscore.ash_query_texts") - base["opscore.ash_query_texts"]
        dict_b = sum(size(conn, "opscore." + d) - base["opscore." + d] for d in DICTS)
        dict_rows = [
            conn.execute(
                sql.SQL("SELECT count(*) FROM opscore.{} WHERE target_id = %s").format(
                    sql.Identifier(d)
                ),
                (t.target_id,),
            ).fetchone()[0]
            for d in DICTS
        ]
        copy_summary(conn, t.target_id, start, READ_DAYS - 1)
        reads = time_summary_reads(name, start)
        t0 = time.perf_counter()
        res = ash_retention.purge(conn, start + timedelta(days=4, hours=12), 3, 30)
        purge_s = time.perf_counter() - t0
        conn.execute("CHECKPOINT")
        hist_b = size(conn, "opscore." + hist)
        hist_rows = conn.execute(
            sql.SQL("SELECT count(*), sum(weight_s) FROM {} WHERE s.tier = 'history'").format(
                ash_tiers.tiers_sql(True)
            ),
            {"t": t.target_id, "begin": start, "end": start + timedelta(days=1)},
        ).fetchone()
        left = [
            p
            for p in (hot, "opscore." + raw)
            if conn.execute("SELECT to_regclass(%s)", (p,)).fetchone()[0] is not None
        ]
    scale = 86_400 / SECONDS
    print(
        f"ASH repository size, {SESSIONS} active sessions at 1 Hz, {SECONDS:,} s "
        f"({written:,} rows, loaded in {load_s:.1f} s, summarized in {summarize_s:.1f} s, "
        f"compacted bucket by bucket in {compact_s:.1f} s = {written / compact_s:,.0f} rows/s)"
    )
    print(
        f"  raw chunks    : {mb(raw_b * scale)} per target-day ({raw_b / written:.1f} B per "
        f"session-sample; {chunks:,} chunks holding {chunk_rows:,} samples; primary key "
        f"{raw_idx / written:.2f} B)"
    )
    print(f"  per array (B per session-sample): {per_column}")
    print(
        f"  hot table     : {mb(hot_bucket_b)} for one 5-minute bucket of rows before compaction "
        f"({hot_bucket_b / (SESSIONS * BUCKET_S):.0f} B/row); the day's hot partition at the end, "
        f"vacuumed after each compaction: {mb(hot_b)} (dropped by retention)"
    )
    print(f"  5-min summary : {mb(summary_b * scale)} per target-day")
    print(
        f"  dictionaries  : {max(dict_b, 0) / 1e3:,.0f} kB ({dict_rows[0]} sessions, "
        f"{dict_rows[1]} events, {dict_rows[2]} queries); query texts "
        f"{max(texts_b, 0) / 1e3:,.0f} kB (stored once per distinct text)"
    )
    print(
        f"  retention ran in {purge_s:.1f} s: raw partitions dropped={not left}, history rows "
        f"{hist_rows[0]:,} carrying {hist_rows[1]:,.0f} s of the {written:,} sampled "
        f"session-seconds"
    )
    print(f"  history chunks: {mb(hist_b * scale)} per target-day after retention")
    raw_days, hist_days = 3, 30
    steady = (
        (raw_days * raw_b + (hist_days - raw_days) * hist_b + hist_days * summary_b) * scale
        + hot_b
        + dict_b
    )
    print(
        f"  before retention: {mb((raw_b + summary_b) * scale)} per target-day; after: "
        f"{mb((hist_b + summary_b) * scale)} per target-day; steady state per target with "
        f"defaults ({raw_days} d raw, {hist_days} d history+summary, the current day's hot "
        f"partition, dictionaries): {mb(steady)} (flat: each purge drops as much as a day adds)"
    )
    for by, (secs, n, dbt) in reads.items():
        print(
            f"  summary read, {by:<31}: {secs * 1000:,.0f} ms (median of "
            f"{READ_ROUNDS}; {n} rows, {dbt:,.0f} s of DB time)"
        )
    assert res["raw_dropped"] and not left, (res, left)
    api.remove_target(name)


if __name__ == "__main__":
    main()
