"""The fleet overview (the app's Fleet page, ``api.fleet_overview``) on a repository with a
fleet in it: time of the one repository query for every target, median of ``--rounds``.

Run it on the repository of ``bench/fleet_bench.py`` (200 targets with their ASH samples):

    OPSCORE_HOME=/tmp/opscore-fleet-bench python bench/bench_fleet_overview.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--window", type=float, default=5.0, help="minutes of ASH for DB time")
    args = ap.parse_args()
    from ops_core import api

    api.fleet_overview(args.window)  # warm: connection, catalog caches
    times, rows = [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        rows = api.fleet_overview(args.window)
        times.append((time.perf_counter() - t0) * 1000)
    states: dict[str, int] = {}
    for r in rows:
        states[r.collector] = states.get(r.collector, 0) + 1
    sampled = sum(1 for r in rows if r.db_time_rate > 0)
    print(
        f"{len(rows)} targets ({states}; {sampled} with DB time in the last {args.window:g} "
        f"min): fleet_overview median {statistics.median(times):.0f} ms (range "
        f"{min(times):.0f}..{max(times):.0f}) over {args.rounds} rounds; load average "
        f"{os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
