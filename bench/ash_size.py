"""Repository bytes per target-day of ASH with 20 active sessions at 1 Hz, before and after
retention.

Writes one full UTC day (86,400 samples x 20 sessions = 1,728,000 rows, OLTP-shaped: see
ash_common.synthetic_rows) through the real write path into a day 10 days back, builds its
per-minute summary, measures the raw day partition (heap + primary key + TOAST), then runs the
real retention (purge with now = that day + 4.5 days: raw window 3 days) which downsamples the
day into history (1 sample in 10, weight 10 s) and drops the raw partition, and measures again.

    python bench/ash_size.py [SESSIONS] [SECONDS]
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

from ash_common import api, server, synthetic_rows

from ops_core import repository
from ops_core.repository import ash as repo_ash

SESSIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 86_400
CHUNK_S = 500


def size(conn, rel: str) -> int:
    return conn.execute("SELECT pg_total_relation_size(to_regclass(%s))", (rel,)).fetchone()[0]


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def main() -> None:
    server()
    name = "sizing"
    if name in {t.name for t in api.list_targets()}:
        api.remove_target(name)
    t = api.add_target(name, "host=/nonexistent dbname=x", verify=False)
    day = (datetime.now(UTC) - timedelta(days=10)).date()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    writer = repo_ash.AshWriter(t.target_id)
    raw = "opscore." + repo_ash.partition_name("ash_samples", day)
    hist = "opscore." + repo_ash.partition_name("ash_history", day)
    with repository.session() as conn:
        texts0, summary0 = size(conn, "opscore.ash_query_texts"), size(conn, "opscore.ash_summary")
        t0 = time.perf_counter()
        written = 0
        for i in range(0, SECONDS, CHUNK_S):
            rows = synthetic_rows(
                start + timedelta(seconds=i), min(CHUNK_S, SECONDS - i), SESSIONS, seed=i
            )
            written += writer.write(conn, rows, 1.0)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        buckets = repo_ash.summarize(conn, t.target_id, start, start + timedelta(seconds=SECONDS))
        summarize_s = time.perf_counter() - t0
        conn.execute("CHECKPOINT")
        raw_b = size(conn, raw)
        raw_idx = conn.execute("SELECT pg_indexes_size(to_regclass(%s))", (raw,)).fetchone()[0]
        summary_b = size(conn, "opscore.ash_summary") - summary0
        texts_b = size(conn, "opscore.ash_query_texts") - texts0
        t0 = time.perf_counter()
        res = repo_ash.purge(conn, start + timedelta(days=4, hours=12), 3, 30)
        purge_s = time.perf_counter() - t0
        hist_b = size(conn, hist)
        hist_rows = conn.execute(
            f"SELECT count(*), sum(weight_s) FROM {hist} WHERE target_id = %s", (t.target_id,)
        ).fetchone()
        raw_left = conn.execute("SELECT to_regclass(%s)", (raw,)).fetchone()[0]
    scale = 86_400 / SECONDS
    print(
        f"ASH repository size, {SESSIONS} active sessions at 1 Hz, {SECONDS:,} s "
        f"({written:,} rows, generated and loaded in {load_s:.1f} s; "
        f"summary of {buckets:,} rows built in {summarize_s:.1f} s)"
    )
    print(
        f"  raw samples   : {mb(raw_b * scale)} per target-day ({raw_b / written:.0f} B/row, of "
        f"which primary key {raw_idx / written:.0f} B)"
    )
    print(f"  5-min summary : {mb(summary_b * scale)} per target-day")
    print(f"  query texts   : {mb(texts_b)} (stored once per distinct text)")
    print(
        f"  retention ran in {purge_s:.1f} s: raw partition dropped={raw_left is None}, "
        f"history rows {hist_rows[0]:,} carrying {hist_rows[1]:,.0f} s of the "
        f"{written:,} sampled session-seconds"
    )
    print(f"  history       : {mb(hist_b * scale)} per target-day after retention")
    raw_days, hist_days = 3, 30
    steady = raw_days * raw_b + (hist_days - raw_days) * hist_b + hist_days * summary_b
    print(
        f"  before retention: {mb((raw_b + summary_b) * scale)} per target-day; after: "
        f"{mb((hist_b + summary_b) * scale)} per target-day; steady state per target with "
        f"defaults ({raw_days} d raw, {hist_days} d history+summary): {mb(steady * scale)} "
        f"(flat: each purge drops as much as a day adds)"
    )
    assert res["raw_dropped"], res
    api.remove_target(name)


if __name__ == "__main__":
    main()
