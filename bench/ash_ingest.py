"""ASH ingest throughput: rows/s written into the repository by the real write path
(AshWriter: partition check, query texts upsert, binary COPY into the hot table, one transaction
per batch); then the throughput of compacting those rows into compressed chunks bucket by bucket,
as the sampler does once a 5-minute bucket is complete (ash_chunks.compact).

Writes ROWS rows (50 sessions per sample) in batches of BATCH rows (the sampler flushes every
10 s, i.e. 10 x active sessions rows; a fleet repository sees larger batches) and prints rows/s.
Row generation is excluded from the timing.

    python bench/ash_ingest.py [ROWS] [BATCH]
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta

from ash_common import api, backend_cpu_s, server, synthetic_rows
from psycopg import sql

from ops_core import repository
from ops_core.repository import ash_chunks, ash_tiers
from ops_core.repository.ash import AshWriter

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
BATCH = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
SESSIONS = 50


def main() -> None:
    server()
    name = "ingest"
    if name in {t.name for t in api.list_targets()}:
        api.remove_target(name)
    t = api.add_target(name, "host=/nonexistent dbname=x", verify=False)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    rows = synthetic_rows(start, ROWS // SESSIONS, SESSIONS)
    batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
    writer = AshWriter(t.target_id)
    with repository.session() as conn:
        writer.create_ahead(conn, start)
        backend = conn.info.backend_pid
        srv0, cpu0 = backend_cpu_s(backend), time.process_time()
        t0 = time.perf_counter()
        for b in batches:
            writer.write(conn, b, 1.0)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        srv = backend_cpu_s(backend) - srv0
        srv1 = backend_cpu_s(backend)
        bucket = timedelta(seconds=ash_tiers.RAW_CHUNK_S)
        last = max(r.sample_time for r in rows)
        t0 = time.perf_counter()
        edge = ash_chunks.bucket_floor(start, ash_tiers.RAW_CHUNK_S) + bucket
        compacted = 0
        while edge <= last + bucket:
            compacted += ash_chunks.compact(conn, t.target_id, edge) or 0
            edge += bucket
        compact_s = time.perf_counter() - t0
        compact_srv = backend_cpu_s(backend) - srv1
        n = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE s.target_id = %(t)s").format(
                ash_tiers.tiers_sql(False)
            ),
            {"t": t.target_id, "begin": start, "end": last + bucket},
        ).fetchone()[0]
    assert n == len(rows) == compacted, (n, len(rows), compacted)
    print(
        f"ASH ingest: {len(rows):,} rows in {len(batches)} batches of {BATCH:,} in "
        f"{elapsed:.2f} s = {len(rows) / elapsed:,.0f} rows/s (goal > 50,000/s; that is "
        f"{len(rows) / elapsed / 100:,.0f} targets x 100 active sessions at 1 Hz)"
    )
    print(
        f"  CPU: writer process {cpu:.2f} s + server backend {srv:.2f} s = "
        f"{len(rows) / (cpu + srv):,.0f} rows per CPU-second (what machine load cannot blur; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    print(
        f"  compaction into chunks, bucket by bucket: {compacted:,} rows in {compact_s:.2f} s "
        f"= {compacted / compact_s:,.0f} rows/s; server backend CPU {compact_srv:.2f} s = "
        f"{compacted / compact_srv:,.0f} rows per CPU-second"
    )
    api.remove_target(name)


if __name__ == "__main__":
    main()
