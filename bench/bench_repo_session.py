"""Cost of one repository session on the embedded default: the fast path (connect first;
migration files read once per process) against the full path every session took before
(start check under the lock, a second connection to ensure the database, the migration files
read again), alternated in one run so the machine's load hits both alike.

    python bench/bench_repo_session.py [--n 200]

Prints the median and p95 wall time per session of each and their ratio, plus CPU seconds of
this process for each (the part the client pays).
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

from ops_core import repository
from ops_core.config import get_settings


def fast() -> None:
    with repository.session() as conn:
        conn.execute("SELECT 1")


def full() -> None:
    s = get_settings()
    dsn = repository.repository_dsn(s, start=True)
    conn = psycopg.connect(dsn, autocommit=True, application_name=repository.APPLICATION_NAME)
    try:
        known = {m.version for m in repository._migrations.__wrapped__()}
        applied = repository.applied_versions(conn)
        assert known <= applied, "run `opscore init` first"
        conn.execute("SELECT 1")
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    n = ap.parse_args().n
    fast()  # start the server / create the schema once, outside the measurement
    times: dict[str, list[float]] = {"fast": [], "full": []}
    cpu = {"fast": 0.0, "full": 0.0}
    for i in range(n):
        for name, fn in (
            (("fast", fast), ("full", full)) if i % 2 else (("full", full), ("fast", fast))
        ):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name] += time.process_time() - c0
    for name, ts in times.items():
        ts.sort()
        print(f"{name:5s} median {statistics.median(ts) * 1000:6.1f} ms  "
              f"p95 {ts[int(0.95 * len(ts)) - 1] * 1000:6.1f} ms  "
              f"CPU {cpu[name] / n * 1000:5.1f} ms/session")  # fmt: skip
    ratio = statistics.median(times["full"]) / statistics.median(times["fast"])
    print(f"full / fast median ratio: {ratio:.2f} (n={n} each, alternated)")


if __name__ == "__main__":
    main()
