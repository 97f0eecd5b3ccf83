"""Benchmark: AWR snapshot cost and repository size on the embedded PostgreSQL 18.

Prints figures, asserts nothing. Scenarios:
1. 5,000 distinct statements in pg_stat_statements (distinct structure, not literals) over
   1,000 tables: time on the target and total capture time per snapshot (median of rounds),
   when every statement ran in the interval (the worst case for storage).
2. Repository bytes per snapshot and projected per target-day (15-minute snapshots).
3. Reading a day of such snapshots back as one range aggregate.
4. (--relations N) snapshot time on a database with N relations (bounded capture).

    OPSCORE_HOME=/tmp/snap-bench python bench/snapshot_bench.py [--rounds 5] [--relations 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import psycopg
from psycopg import sql

os.environ.setdefault("OPSCORE_HOME", "/tmp/snap-bench")

from ops_core import api, repository  # noqa: E402
from ops_core.api.demo import prepare_embedded_database  # noqa: E402

TABLES = 1000
SHAPES = [
    "SELECT c1 FROM {t} WHERE id = %s",
    "SELECT count(*) FROM {t} WHERE c2 > %s",
    "SELECT id, c1, c2 FROM {t} ORDER BY id DESC LIMIT %s",
    "UPDATE {t} SET c2 = c2 + 1 WHERE id = %s",
    "SELECT max(c1), min(c2) FROM {t} WHERE id < %s",
]

SNAP_TABLES = [
    "snapshots",
    "snapshot_state",
    "statements",
    "snap_statements",
    "snap_databases",
    "snap_tables",
    "snap_indexes",
    "snap_io",
    "snap_cluster",
]


def repo_bytes(conn: psycopg.Connection) -> dict[str, int]:
    return {
        t: conn.execute(
            "SELECT pg_total_relation_size(%s::regclass)", (f"opscore.{t}",)
        ).fetchone()[0]
        for t in SNAP_TABLES
    }


def setup_workload(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'w\\_%'")
        if have.fetchone()[0] >= TABLES:
            return
        for i in range(TABLES):
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY, c1 int, c2 int)"
                ).format(sql.Identifier(f"w_{i}"))
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT g, g, g FROM generate_series(1, 20) g "
                    "ON CONFLICT DO NOTHING"
                ).format(sql.Identifier(f"w_{i}"))
            )


def run_workload(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(TABLES):
            t = sql.Identifier(f"w_{i}")
            for shape in SHAPES:
                conn.execute(sql.SQL(shape).format(t=t), (5,))


def scenario_statements(rounds: int) -> None:
    os.environ["OPSCORE_SNAPSHOT_DATABASES"] = '["bench_awr"]'  # not the 100k-relation DB
    from ops_core.config import reset_settings_cache

    reset_settings_cache()
    server = api.embedded_server()
    dsn = prepare_embedded_database(server, "bench_awr")
    api.init_repository()
    if "bench" not in {t.name for t in api.list_targets()}:
        with repository.session() as repo:
            from ops_core.repository import targets as rt

            rt.insert(repo, "bench", dsn, "none", embedded=True)
    print("setting up 1,000 tables ...", flush=True)
    setup_workload(dsn)
    run_workload(dsn)
    base = api.take_snapshot("bench")
    print(
        f"baseline snapshot {base.snapshot_id}: target {base.target_ms:.0f} ms, "
        f"total {base.total_ms:.0f} ms (first capture: all statement texts)"
    )
    with repository.session() as repo:
        before = repo_bytes(repo)
    target_ms, total_ms, stored = [], [], []
    for _ in range(rounds):
        run_workload(dsn)
        info = api.take_snapshot("bench")
        target_ms.append(info.target_ms)
        total_ms.append(info.total_ms)
        stored.append(info.statements)
    with repository.session() as repo:
        after = repo_bytes(repo)
        pgss = repo.execute(
            "SELECT count(*) FROM opscore.statements s JOIN opscore.targets t USING (target_id) "
            "WHERE t.name = 'bench'"
        ).fetchone()[0]
    print(
        f"\n== 5,000 distinct statements, 1,000 tables, {rounds} rounds "
        f"(statements known to the repository: {pgss})"
    )
    print(f"statements stored per interval: {statistics.median(stored):.0f}")
    print(
        f"time on the target: median {statistics.median(target_ms):.0f} ms "
        f"(min {min(target_ms):.0f}, max {max(target_ms):.0f})"
    )
    print(
        f"total capture time: median {statistics.median(total_ms):.0f} ms "
        f"(min {min(total_ms):.0f}, max {max(total_ms):.0f})"
    )
    growth = {t: after[t] - before[t] for t in SNAP_TABLES}
    per_snap = sum(v for t, v in growth.items() if t != "snapshot_state") / rounds
    print(
        "repository growth per snapshot by table (bytes): "
        + ", ".join(f"{t}={v / rounds:,.0f}" for t, v in growth.items() if v)
    )
    print(
        f"repository bytes per snapshot: {per_snap:,.0f} "
        f"-> per target-day at 15-minute snapshots: {per_snap * 96 / 1e6:,.1f} MB "
        "(every statement changed in every interval: the worst case)"
    )
    print(f"per-target state kept for the next delta: {after['snapshot_state']:,} bytes")
    read_day(rounds)


def read_day(rounds: int, days: int = 7) -> None:
    """Replicate the measured intervals to ``days`` days of 15-minute snapshots and read them
    back as one range: first read (builds the daily rollups) and second read."""
    with repository.session() as repo:
        tid, last = repo.execute(
            "SELECT target_id, max(snapshot_id) FROM opscore.snapshots JOIN opscore.targets "
            "USING (target_id) WHERE name = 'bench' GROUP BY 1"
        ).fetchone()
        n = repo.execute(
            "SELECT count(*) FROM opscore.snapshots WHERE target_id = %s AND status <> 'failed'",
            (tid,),
        ).fetchone()[0]
        t0 = time.perf_counter()
        with repo.transaction():
            for _ in range(max(0, 96 * days - n)):
                row = repo.execute(
                    "INSERT INTO opscore.snapshots (target_id, captured_at, status, "
                    "prev_snapshot_id, interval_s) SELECT target_id, captured_at + "
                    "interval '15 min', 'ok', snapshot_id, 900 FROM opscore.snapshots "
                    "WHERE snapshot_id = (SELECT max(snapshot_id) FROM opscore.snapshots "
                    "WHERE target_id = %s) RETURNING snapshot_id",
                    (tid,),
                ).fetchone()
                repo.execute(
                    "INSERT INTO opscore.snap_statements SELECT %s, stmt_id, plans, "
                    "total_plan_time, calls, total_exec_time, rows, shared_blks_hit, "
                    "shared_blks_read, shared_blks_dirtied, shared_blks_written, local_blks_hit, "
                    "local_blks_read, local_blks_dirtied, local_blks_written, temp_blks_read, "
                    "temp_blks_written, shared_blk_read_time, shared_blk_write_time, "
                    "temp_blk_read_time, temp_blk_write_time, wal_records, wal_fpi, wal_bytes "
                    "FROM opscore.snap_statements WHERE snapshot_id = %s",
                    (row[0], last),
                )
        fill = time.perf_counter() - t0
        first, end = repo.execute(
            "SELECT min(snapshot_id), max(snapshot_id) FROM opscore.snapshots WHERE target_id = %s",
            (tid,),
        ).fetchone()
        rows = repo.execute(
            "SELECT sum(cardinality(x.stmt_id)) FROM opscore.snap_statements x "
            "JOIN opscore.snapshots s "
            "USING (snapshot_id) WHERE s.target_id = %s",
            (tid,),
        ).fetchone()[0]
    print(
        f"\n== {days} days of 15-minute snapshots ({rows:,} statement deltas; "
        f"filled in {fill:.1f} s)"
    )
    with repository.session() as repo:
        size = repo.execute("SELECT pg_total_relation_size('opscore.snap_statements')").fetchone()[
            0
        ]
        repo.execute("DELETE FROM opscore.snap_statements_day")
    print(f"snap_statements for the {days} days: {size / 1e6:,.1f} MB")
    for label in ("first read (builds the daily rollups)", "second read (rollups built)"):
        t0 = time.perf_counter()
        agg = api.snapshot_range("bench", first, end)
        took = time.perf_counter() - t0
        print(
            f"range aggregate, {label}: {took * 1000:,.0f} ms "
            f"({len(agg.snapshot_ids)} intervals, {len(agg.statements):,} statements)"
        )
    t0 = time.perf_counter()
    api.snapshot_range("bench", first, first + 96)
    print(f"range of the first 96 intervals: {(time.perf_counter() - t0) * 1000:,.0f} ms")


def read_only(days: int) -> None:
    read_day(0, days)


def scenario_relations(n: int) -> None:
    server = api.embedded_server()
    dsn = prepare_embedded_database(server, "bench_rel")
    with psycopg.connect(dsn, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'r\\_%'").fetchone()[
            0
        ]
        tables = n // 2  # each table has a primary key index: 2 relations
        print(f"creating {tables:,} tables with a primary key ({n:,} relations) ...", flush=True)
        t0 = time.perf_counter()
        for start in range(have // 2, tables, 1000):
            last = min(start + 999, tables - 1)  # ints only: no user value in this SQL
            conn.execute(
                f"DO $$ BEGIN FOR i IN {start}..{last} LOOP EXECUTE format("
                "'CREATE TABLE IF NOT EXISTS r_%s (id int PRIMARY KEY)', i); END LOOP; END $$"
            )
        print(f"created in {time.perf_counter() - t0:.0f} s")
    if "bench_rel" not in {t.name for t in api.list_targets()}:
        with repository.session() as repo:
            from ops_core.repository import targets as rt

            rt.insert(repo, "bench_rel", dsn, "none", embedded=True)
    os.environ["OPSCORE_SNAPSHOT_DATABASES"] = '["bench_rel"]'
    from ops_core.config import reset_settings_cache

    reset_settings_cache()
    results = []
    for _ in range(3):
        info = api.take_snapshot("bench_rel")
        results.append(info)
    print(f"\n== {n:,} relations, snapshot_max_relations=2000")
    for i in results:
        print(
            f"snapshot {i.snapshot_id}: target {i.target_ms:.0f} ms, total {i.total_ms:.0f} ms,"
            f" sizes {'yes' if i.with_sizes else 'no'}, status {i.status}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--relations", type=int, default=0)
    ap.add_argument("--skip-statements", action="store_true")
    ap.add_argument("--read-only", action="store_true", help="only the range-read scenario")
    args = ap.parse_args()
    api.db_start()
    if args.read_only:
        read_only(7)
    elif not args.skip_statements:
        scenario_statements(args.rounds)
    if args.relations:
        scenario_relations(args.relations)


if __name__ == "__main__":
    main()
