"""Benchmark: page load of the app (AppTest run time per page) over a repository holding
7 days of 15-minute snapshots and 1 Hz ASH of one target.

The data goes through the real write paths:

- snapshots: a real capture of a real target (a small varied workload runs between captures),
  stored with ``repository.snapshots.store``; only the capture time is moved back so the
  captures cover the last ``--days`` days at ``--every``-minute steps;
- ASH: real samples of pg_stat_activity taken during a pg_sleep / query load, replayed at 1 Hz
  over the same days through ``AshWriter.write`` (COPY) and ``summarize``, then retention
  (``purge_ash``: raw days older than the raw window are downsampled into history).

Each page (and each tab of the Performance Hub and the Workload repository) is run with AppTest:
cold (caches cleared) and warm (the next run, as a user clicking around gets). Goal: < 2 s.

    python bench/bench_app.py                  # embedded PostgreSQL 18 in a temp home
    python bench/bench_app.py --dsn "host=/var/run/postgresql port=5432 user=postgres"
    python bench/bench_app.py --days 1         # quicker
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

STATEMENTS = [
    "SELECT count(*) FROM bench_orders WHERE customer = %s",
    "SELECT sum(amount) FROM bench_orders WHERE id BETWEEN %(a)s AND %(a)s + 100",
    "SELECT customer, count(*) FROM bench_orders GROUP BY customer ORDER BY 2 DESC LIMIT %s",
    "UPDATE bench_orders SET amount = amount + 1 WHERE id = %s",
    "INSERT INTO bench_events (kind, at) VALUES (%s, now())",
    "SELECT e.kind, count(*) FROM bench_events e JOIN bench_orders o ON o.id = e.id "
    "WHERE o.customer < %s GROUP BY e.kind",
    "SELECT max(at) FROM bench_events WHERE kind = %s",
    "SELECT pg_sleep(%s)",
]


def setup_servers(args) -> tuple[str, callable]:
    """(target DSN, cleanup). Sets OPSCORE_HOME / OPSCORE_REPOSITORY_DSN for the repository."""
    home = Path(tempfile.mkdtemp(prefix="ops-bench-app-", dir="/tmp"))
    os.environ["OPSCORE_HOME"] = str(home)
    if args.dsn:
        with psycopg.connect(args.dsn, autocommit=True) as c:
            for db in ("opscore_bench_app_repo", "opscore_bench_app_tgt"):
                c.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db))
                )
                c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        os.environ["OPSCORE_REPOSITORY_DSN"] = make_conninfo(
            args.dsn, dbname="opscore_bench_app_repo"
        )
        target = make_conninfo(args.dsn, dbname="opscore_bench_app_tgt")

        def cleanup() -> None:
            shutil.rmtree(home, ignore_errors=True)

    else:
        from ops_core.targets.embedded import EmbeddedServer

        os.environ.pop("OPSCORE_REPOSITORY_DSN", None)
        server = EmbeddedServer(home)
        server.start()
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            c.execute("CREATE DATABASE benchdb")
        target = server.conninfo("benchdb")

        def cleanup() -> None:
            server.destroy()
            shutil.rmtree(home, ignore_errors=True)

    with psycopg.connect(target, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        c.execute("CREATE TABLE bench_orders (id int PRIMARY KEY, customer int, amount numeric)")
        c.execute("INSERT INTO bench_orders SELECT g, g % 500, g FROM generate_series(1, 20000) g")
        c.execute("CREATE TABLE bench_events (id serial PRIMARY KEY, kind int, at timestamptz)")
        c.execute("ANALYZE")
    from ops_core.config import reset_settings_cache

    reset_settings_cache()
    return target, cleanup


def run_some(conn: psycopg.Connection, i: int) -> None:
    """A little real work between two captures (varies with i so the deltas vary)."""
    for k in range(5 + i % 7):
        conn.execute(STATEMENTS[0], (k,))
        conn.execute(STATEMENTS[1], {"a": k * 50})
    conn.execute(STATEMENTS[2], (5,))
    conn.execute(STATEMENTS[3], (i % 20000 + 1,))
    conn.execute(STATEMENTS[4], (i % 9,))
    if i % 3 == 0:
        conn.execute(STATEMENTS[5], (i % 50,))
    conn.execute(STATEMENTS[6], (i % 9,))


def fill_snapshots(target_name: str, dsn: str, start: datetime, n: int, every: timedelta) -> float:
    from ops_core import repository
    from ops_core.api.targets import target_dsn
    from ops_core.collectors.capture import CaptureOptions, capture
    from ops_core.config import get_settings
    from ops_core.repository import snapshots as writes
    from ops_core.repository import targets as repo_targets

    t0 = time.perf_counter()
    settings = get_settings()
    with repository.session() as repo, psycopg.connect(dsn, autocommit=True) as work:
        t = repo_targets.get(repo, target_name)
        identity, repo_db = writes.repository_identity(repo)
        for i in range(n):
            run_some(work, i)
            known = set(writes.known_statements(repo, t.target_id))
            opts = CaptureOptions.from_settings(
                settings,
                with_sizes=i % 4 == 0,
                repository_identity=identity,
                repository_database=repo_db,
                local_host=True,
            )
            cap = capture(t.target_id, target_dsn(t), opts, known)
            cap.captured_at = start + i * every  # the only change: when it was taken
            writes.store(repo, cap)
            if (i + 1) % 96 == 0:
                print(f"  snapshots: {i + 1}/{n} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return time.perf_counter() - t0


def sample_pool(target_name: str, dsn: str, seconds: float = 6.0) -> list:
    """Real ASH samples of the target under a pg_sleep and query load."""
    from ops_core import api
    from ops_core.collectors.ash import AshCollector

    stop = threading.Event()

    def load(k: int) -> None:
        with psycopg.connect(dsn, autocommit=True, application_name=f"bench-{k}") as c:
            i = 0
            while not stop.is_set():
                if k == 0:
                    c.execute(STATEMENTS[7], (0.3,))
                else:
                    run_some(c, i)
                i += 1

    threads = [threading.Thread(target=load, args=(k,)) for k in range(3)]
    for th in threads:
        th.start()
    col = AshCollector(api.targets.target_dsn(api.get_target(target_name)))
    pool = []
    try:
        end = time.time() + seconds
        while time.time() < end:
            _, rows = col.sample()
            pool.append(rows)
            time.sleep(0.1)
    finally:
        col.close()
        stop.set()
        for th in threads:
            th.join()
    return pool


def fill_ash(target_name: str, pool: list, start: datetime, end: datetime) -> tuple[int, float]:
    from ops_core import api, repository
    from ops_core.repository import ash as repo_ash
    from ops_core.repository import ash_summary

    t0 = time.perf_counter()
    tid = api.get_target(target_name).target_id
    writer = repo_ash.AshWriter(tid)
    rows_total = 0
    hour = start.replace(minute=0, second=0, microsecond=0)
    with repository.session() as repo:
        while hour < end:
            batch = []
            for s in range(3600):
                ts = hour + timedelta(seconds=s)
                if ts < start or ts >= end:
                    continue
                src = pool[(s + hour.hour * 7) % len(pool)]
                for r in src:
                    shift = ts - r.sample_time
                    batch.append(
                        r._replace(
                            sample_time=ts,
                            query_start=r.query_start + shift if r.query_start else None,
                            xact_start=r.xact_start + shift if r.xact_start else None,
                            state_change=r.state_change + shift if r.state_change else None,
                        )
                    )
            rows_total += writer.write(repo, batch, 1.0)
            ash_summary.summarize(repo, tid, hour, hour + timedelta(hours=1))
            hour += timedelta(hours=1)
    stats = api.purge_ash(end)
    print(f"  ASH retention: {stats}")
    return rows_total, time.perf_counter() - t0


PAGES: list[tuple[str, str | None, dict]] = [
    ("Overview", None, {}),
    ("Performance Hub: Summary (last hour)", "performance.py", {}),
    ("Performance Hub: Summary (7 days)", "performance.py", {"hub_range": "Last 7 days"}),
    ("Performance Hub: Top SQL (7 days)", "performance.py",
     {"hub_range": "Last 7 days", "hub": "Top SQL"}),
    ("Performance Hub: Wait events (7 days)", "performance.py",
     {"hub_range": "Last 7 days", "hub": "Wait events"}),
    ("Performance Hub: Top sessions (7 days)", "performance.py",
     {"hub_range": "Last 7 days", "hub": "Top sessions"}),
    ("Performance Hub: I/O (7 days)", "performance.py", {"hub_range": "Last 7 days", "hub": "I/O"}),
    ("Performance Hub: Trends (7 days)", "performance.py",
     {"hub_range": "Last 7 days", "hub": "Trends"}),
    ("ASH (last hour)", "ash.py", {}),
    ("ASH (7 days)", "ash.py", {"ash_range": "Last 7 days"}),
    ("ASH by SQL (7 days)", "ash.py", {"ash_range": "Last 7 days", "ash_by": "sql"}),
    ("Live", "live.py", {}),
    ("Workload repository: Snapshots", "workload.py", {}),
    ("Workload repository: Baselines", "workload.py", {"wr": "Baselines"}),
    ("Workload repository: Compare", "workload.py", {"wr": "Compare"}),
    ("ADDM", "addm.py", {}),
    ("Catalog coverage", "catalog.py", {}),
]  # fmt: skip


def run_page(page: str | None, state: dict, clear: bool) -> float:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    main = str(ROOT / "app" / "main.py")
    if clear:
        st.cache_data.clear()
    at = AppTest.from_file(main, default_timeout=300)
    at.session_state["target"] = "bench"
    for k, v in state.items():
        at.session_state[k] = v
    if page:
        at.switch_page(str(ROOT / "app" / "views" / page))
    t0 = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(f"{page}: {at.exception[0].message}")
    return elapsed


def time_pages(args) -> None:
    run_page(None, {}, True)  # imports and first connections: not counted
    print(f"\n{'page':44s} {'cold (s)':>9s} {'warm (s)':>9s}")
    worst = 0.0
    for label, page, state in PAGES:
        cold = run_page(page, state, True)
        warm = statistics.median(run_page(page, state, False) for _ in range(args.rounds))
        worst = max(worst, cold)
        flag = "" if cold < 2 else "  > 2 s"
        print(f"{label:44s} {cold:9.2f} {warm:9.2f}{flag}", flush=True)
    print(f"\nslowest cold page load: {worst:.2f} s (goal < 2 s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--dsn", help="a PostgreSQL server for repository and target (default: embedded)"
    )
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--every", type=int, default=15, help="minutes between snapshots")
    ap.add_argument("--rounds", type=int, default=3, help="warm runs per page (median shown)")
    ap.add_argument("--keep", action="store_true", help="keep the data (prints OPSCORE_HOME)")
    ap.add_argument("--reuse", metavar="OPSCORE_HOME", help="time the pages over data kept before")
    args = ap.parse_args()

    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    if args.reuse:
        os.environ["OPSCORE_HOME"] = args.reuse
        from ops_core.config import reset_settings_cache

        reset_settings_cache()
        time_pages(args)
        return
    target_dsn, cleanup = setup_servers(args)
    try:
        from ops_core import api

        api.add_target("bench", target_dsn)
        end = datetime.now(UTC).replace(microsecond=0)
        start = end - timedelta(days=args.days)
        n = int(args.days * 24 * 60 / args.every) + 1
        print(f"Filling: {n} snapshots every {args.every} min and 1 Hz ASH over {args.days} days")
        snap_s = fill_snapshots("bench", target_dsn, start, n, timedelta(minutes=args.every))
        pool = sample_pool("bench", target_dsn)
        busy = sum(len(p) for p in pool) / max(1, len(pool))
        rows, ash_s = fill_ash("bench", pool, start, end)
        stmts = len(api.top_statements("bench", *api.snapshot_bounds("bench", start), limit=1000))
        print(
            f"  {n} snapshots in {snap_s:.0f} s ({snap_s / n * 1000:.0f} ms each), "
            f"{stmts} statements; {rows:,} ASH rows ({busy:.1f} sessions per sample) "
            f"in {ash_s:.0f} s"
        )
        time_pages(args)
    finally:
        if args.keep:
            print(
                f"kept: OPSCORE_HOME={os.environ['OPSCORE_HOME']} "
                f"OPSCORE_REPOSITORY_DSN={os.environ.get('OPSCORE_REPOSITORY_DSN', '')}"
            )
        else:
            cleanup()


if __name__ == "__main__":
    main()
