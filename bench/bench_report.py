"""Benchmark: AWR report model assembly and HTML rendering over a long range.

Prints figures, asserts nothing. Goal: under 3 s for the model and 10 s for the HTML of a
7-day range of 15-minute snapshots (673 snapshots) with 5,000 distinct statements. The HTML
figure is split into the notebook's cells (model and sections, in-process by default;
``OPSCORE_REPORT_KERNEL=1`` measures the Jupyter-kernel path) and nbconvert.

How the repository is loaded (synthetic but realistic, through the real write path): for each
15-minute step a :class:`ops_core.collectors.capture.Capture` is built holding *cumulative*
counters, exactly what a capture reads from a target, and stored with
``ops_core.repository.snapshots.store`` — the function ``take_snapshot`` uses — so deltas, resets,
texts, columnar arrays, the snapshot_state bookkeeping and the daily rollup built after each
capture (``roll_previous_day``, as ``take_snapshot`` does) are the production code. The shapes:

- 5,000 statements with Zipf-like popularity; the top 500 run in every interval, the others in
  a seeded random 30 % of intervals (so ~1,900 statement rows per interval, ~1.3 M over 7 days);
  mean time per call log-normal (0.05 ms to seconds), rows, shared hits/reads, temp for 2 %,
  WAL for writers;
- 3 databases, 200 tables and 300 indexes (a seeded 40 % move per interval), 30 pg_stat_io
  rows, pg_stat_wal, checkpointer, archiver and 40 settings (one changes on day 4).

No ASH samples are loaded: the AWR model then says so (the ASH part of the report is measured by
the ASH benchmarks). Usage::

    OPSCORE_HOME=/tmp/bench-report python bench/bench_report.py [--days 7] [--statements 5000]
        [--html] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

os.environ.setdefault("OPSCORE_HOME", "/tmp/bench-report")

from ops_core import api, repository  # noqa: E402
from ops_core.collectors.capture import Capture  # noqa: E402
from ops_core.collectors.catalog import SOURCES  # noqa: E402
from ops_core.repository import snapshot_columnar as columnar  # noqa: E402
from ops_core.repository import snapshots as writes  # noqa: E402

TARGET = "bench-report"
STEP = timedelta(minutes=15)


def _row(source: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SOURCES[source].names)
    row.update(values)
    return row


class Workload:
    """Cumulative counters of a synthetic server, advanced one interval at a time."""

    def __init__(self, statements: int, seed: int = 42):
        self.rng = random.Random(seed)
        self.n = statements
        self.stmt: list[dict[str, Any]] = []
        for i in range(statements):
            writer = i % 7 == 0
            self.stmt.append(
                {
                    "queryid": self.rng.getrandbits(63) - (1 << 62),
                    "dbid": 16384 + i % 3,
                    "userid": 10 + i % 4,
                    "toplevel": True,
                    "calls_per": max(1, int(20000 / (i + 1) ** 0.8)),
                    "ms": self.rng.lognormvariate(-1.0, 2.0),
                    "rows_per": self.rng.choice([0, 1, 1, 5, 20, 100]),
                    "temp": i % 50 == 3,
                    "writer": writer,
                    "text": f"/* bench */ SELECT c{i % 17}, c{i % 11} FROM t{i % 200} "
                    f"WHERE k{i % 13} = $1 AND v > $2 -- shape {i}"
                    if not writer
                    else f"/* bench */ UPDATE t{i % 200} SET v{i % 9} = v{i % 9} + $1 "
                    f"WHERE id = $2 -- shape {i}",
                    "c": dict.fromkeys(SOURCES["pg_stat_statements"].of_kind("counter"), 0),
                }
            )
        self.db = {
            d: dict.fromkeys(SOURCES["pg_stat_database"].of_kind("counter"), 0) for d in range(3)
        }
        self.tables = {
            t: dict.fromkeys(SOURCES["tables"].of_kind("counter"), 0) for t in range(200)
        }
        self.indexes = {
            x: dict.fromkeys(SOURCES["indexes"].of_kind("counter"), 0) for x in range(300)
        }
        self.io = {
            k: dict.fromkeys(SOURCES["pg_stat_io"].of_kind("counter"), 0)
            for k in [
                (b, o, c)
                for b in (
                    "client backend",
                    "autovacuum worker",
                    "checkpointer",
                    "background writer",
                    "walsender",
                )
                for o in ("relation", "temp relation")
                for c in ("normal", "vacuum", "bulkread")
            ]
        }
        self.wal = dict.fromkeys(SOURCES["pg_stat_wal"].of_kind("counter"), 0)
        self.ckpt = dict.fromkeys(SOURCES["checkpointer"].of_kind("counter"), 0)
        self.arch = dict.fromkeys(SOURCES["pg_stat_archiver"].of_kind("counter"), 0)
        self.reset_at = datetime(2026, 1, 1, tzinfo=UTC)

    def step(self) -> None:
        r = self.rng
        for i, s in enumerate(self.stmt):
            if i >= 500 and r.random() > 0.3:
                continue
            c = s["c"]
            calls = max(1, int(s["calls_per"] * r.uniform(0.7, 1.3)))
            c["calls"] += calls
            c["total_exec_time"] += calls * s["ms"] * r.uniform(0.8, 1.2)
            c["rows"] += calls * s["rows_per"]
            c["shared_blks_hit"] += calls * r.randint(3, 40)
            c["shared_blks_read"] += r.randint(0, calls)
            if s["temp"]:
                spilled = r.randint(0, calls) * r.randint(10, 500)  # some calls spill
                c["temp_blks_written"] += spilled
                c["temp_blks_read"] += spilled
            if s["writer"]:
                c["wal_records"] += calls * 2
                c["wal_bytes"] += calls * r.randint(100, 400)
                c["shared_blks_dirtied"] += calls
        for d in self.db.values():
            for k in ("xact_commit", "blks_hit", "tup_returned", "tup_fetched"):
                d[k] += r.randint(50_000, 200_000)
            for k in ("xact_rollback", "blks_read", "tup_inserted", "tup_updated", "tup_deleted"):
                d[k] += r.randint(100, 5_000)
            d["temp_files"] += r.randint(0, 5)
            d["temp_bytes"] += r.randint(0, 50_000_000)
            d["active_time"] += r.uniform(100_000, 600_000)
            d["session_time"] += 900_000 * 20
            d["idle_in_transaction_time"] += r.uniform(0, 10_000)
            d["sessions"] += r.randint(5, 50)
        for group in (self.tables, self.indexes):
            for counters in group.values():
                if r.random() < 0.4:
                    for k in counters:
                        counters[k] += r.randint(0, 1000)
        for counters in self.io.values():
            for k in counters:
                counters[k] += r.randint(0, 10_000)
        self.wal["wal_records"] += r.randint(100_000, 500_000)
        self.wal["wal_bytes"] += r.randint(10_000_000, 90_000_000)
        self.wal["wal_fpi"] += r.randint(100, 5_000)
        self.wal["wal_write"] += r.randint(1_000, 5_000)
        self.wal["wal_sync"] += r.randint(100, 500)
        self.ckpt["num_timed"] += 1 if r.random() < 0.5 else 0
        self.ckpt["buffers_written"] += r.randint(1_000, 30_000)
        self.ckpt["buffers_alloc"] += r.randint(1_000, 30_000)
        self.arch["archived_count"] += r.randint(5, 40)

    def capture(self, target_id: int, at: datetime, step_no: int) -> Capture:
        cap = Capture(
            target_id=target_id,
            captured_at=at,
            server_version_num=180001,
            postmaster_start=datetime(2026, 1, 1, tzinfo=UTC),
            datname="postgres",
            with_sizes=step_no % 4 == 0,
        )
        rows = cap.rows
        rows["pg_stat_statements_info"] = [{"dealloc": 0, "stats_reset": self.reset_at}]
        rows["pg_stat_statements"] = [
            _row(
                "pg_stat_statements",
                userid=s["userid"],
                dbid=s["dbid"],
                toplevel=True,
                queryid=s["queryid"],
                stats_since=self.reset_at,
                **s["c"],
            )
            for s in self.stmt
            if s["c"]["calls"]
        ]
        if step_no == 0:
            cap.texts = [
                {
                    "queryid": s["queryid"],
                    "dbid": s["dbid"],
                    "userid": s["userid"],
                    "toplevel": True,
                    "datname": f"app{s['dbid'] - 16384}",
                    "username": f"user{s['userid'] - 10}",
                    "query": s["text"],
                }
                for s in self.stmt
            ]
        rows["pg_stat_database"] = [
            _row(
                "pg_stat_database",
                datid=16384 + d,
                datname=f"app{d}",
                numbackends=20,
                size_bytes=10**10,
                stats_reset=self.reset_at,
                **c,
            )
            for d, c in self.db.items()
        ]
        rows["tables"] = [
            _row(
                "tables",
                datname=f"app{t % 3}",
                relid=20000 + t,
                schemaname="public",
                relname=f"t{t}",
                n_live_tup=100_000,
                n_dead_tup=1_000,
                **c,
            )
            for t, c in self.tables.items()
        ]
        rows["indexes"] = [
            _row(
                "indexes",
                datname=f"app{x % 3}",
                indexrelid=30000 + x,
                relid=20000 + x % 200,
                schemaname="public",
                relname=f"t{x % 200}",
                indexrelname=f"t{x % 200}_i{x}",
                **c,
            )
            for x, c in self.indexes.items()
        ]
        rows["pg_stat_io"] = [
            _row("pg_stat_io", backend_type=b, object=o, context=c, stats_reset=self.reset_at, **v)
            for (b, o, c), v in self.io.items()
        ]
        rows["pg_stat_wal"] = [_row("pg_stat_wal", stats_reset=self.reset_at, **self.wal)]
        rows["checkpointer"] = [_row("checkpointer", stats_reset=self.reset_at, **self.ckpt)]
        rows["pg_stat_archiver"] = [
            _row("pg_stat_archiver", stats_reset=self.reset_at, **self.arch)
        ]
        work_mem = "4096" if step_no < 300 else "16384"  # a setting changed on day 4
        rows["settings"] = [
            {
                "name": f"setting_{k}",
                "setting": str(k),
                "unit": None,
                "source": "configuration file",
            }
            for k in range(40)
        ] + [
            {"name": "work_mem", "setting": work_mem, "unit": "kB", "source": "configuration file"}
        ]
        cap.sources = {k: "ok" for k in rows}
        return cap


def load(days: float, statements: int) -> tuple[int, int, float]:
    api.init_repository()
    try:
        api.remove_target(TARGET)
    except Exception:  # noqa: BLE001 - not there yet
        pass
    t = api.add_target(TARGET, "host=/nonexistent dbname=bench", verify=False)
    w = Workload(statements)
    steps = int(days * 24 * 4) + 1
    start = (datetime.now(UTC) - timedelta(days=days + 1)).replace(second=0, microsecond=0)
    first = last = 0
    t0 = time.perf_counter()
    with repository.session() as repo:
        for i in range(steps):
            if i:
                w.step()
            sid, _ = writes.store(repo, w.capture(t.target_id, start + i * STEP, i))
            columnar.roll_previous_day(repo, t.target_id)  # as take_snapshot does
            first = first or sid
            last = sid
            if i % 96 == 0:
                print(f"  loaded day {i // 96}: snapshot {sid} ({time.perf_counter() - t0:,.0f} s)")
    return first, last, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=7)
    ap.add_argument("--statements", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--html", action="store_true", help="also render the HTML report")
    ap.add_argument("--keep", action="store_true", help="reuse an already loaded repository")
    args = ap.parse_args()
    print(f"repository: OPSCORE_HOME={os.environ['OPSCORE_HOME']}")
    if args.keep:
        snaps = api.list_snapshots(TARGET, limit=100000)
        first, last = snaps[-1].snapshot_id, snaps[0].snapshot_id
        print(f"reusing snapshots {first}..{last}")
    else:
        print(f"loading {args.days:g} days of 15-minute snapshots, {args.statements:,} statements")
        first, last, secs = load(args.days, args.statements)
        n = last - first + 1
        print(f"load: {n} snapshots in {secs:,.1f} s ({secs / n * 1000:,.0f} ms each)")
        with repository.session() as repo:
            n = repo.execute(
                "SELECT sum(cardinality(x.stmt_id)) FROM opscore.snap_statements x "
                "JOIN opscore.snapshots s "
                "USING (snapshot_id) JOIN opscore.targets t USING (target_id) WHERE t.name = %s",
                (TARGET,),
            ).fetchone()[0]
        print(f"statement deltas stored in the range: {n:,}")
    times = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        r = api.awr_report(TARGET, first, last)
        times.append(time.perf_counter() - t0)
    print(
        f"AWR model, snapshots {first}..{last} ({r.header['elapsed_s'] / 86400:.1f} days, "
        f"{r.header['statements']:,} statements): median {statistics.median(times):.2f} s "
        f"(runs: {', '.join(f'{x:.2f}' for x in times)}) — goal < 3 s"
    )
    print(f"  highlights: {r.highlights[:2]}")
    mid = first + (last - first) // 2
    t0 = time.perf_counter()
    api.compare_report(TARGET, mid, last, first, mid)
    print(f"compare model (two 3.5-day halves): {time.perf_counter() - t0:.2f} s")
    if args.html:
        out = f"{os.environ['OPSCORE_HOME']}/reports"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        rendered = api.render_report("awr", TARGET, begin=first, end=last, reports_dir=out)
        secs = time.perf_counter() - t0
        size = rendered.html.stat().st_size / 1048576
        print(
            f"AWR HTML: {secs:.1f} s (cells {rendered.execute_s:.1f} s, nbconvert "
            f"{rendered.convert_s:.1f} s) — goal < 10 s ({rendered.html}, {size:.2f} MB)"
        )


if __name__ == "__main__":
    main()
