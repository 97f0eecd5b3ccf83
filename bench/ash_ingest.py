"""ASH ingest throughput: rows/s written into the repository by the real write path
(AshWriter: partition check, query texts upsert, binary COPY, one transaction per batch).

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

from ops_core import repository
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
        n = conn.execute(
            "SELECT count(*) FROM opscore.ash_samples WHERE target_id = %s", (t.target_id,)
        ).fetchone()[0]
    assert n == len(rows), (n, len(rows))
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
    api.remove_target(name)


if __name__ == "__main__":
    main()
