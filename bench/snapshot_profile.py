"""Where a snapshot's time goes: the target read against the repository side (the statements
the repository knew, delta computation, the write), on the workload of bench/snapshot_bench.py
(5,000 distinct statements over 1,000 tables, every statement run in every interval).

Each phase of ``api.take_snapshot`` is timed by wrapping the functions it calls (this script
only; the product is unchanged), for ``--rounds`` rounds; medians are printed, wall time and
CPU time (this process, and for the repository write the repository backend's too: on a
machine shared with other work, CPU time is what compares), and with ``--profile`` the top
functions of one more round by cumulative time (cProfile). To compare two versions of the
code, run this script from each checkout (PYTHONPATH) on the same OPSCORE_HOME.

    python bench/snapshot_profile.py [--rounds 5] [--profile] [--cold] [--dsn DSN_OF_TARGET_DB]

Without ``--dsn`` the target is a database ``bench_awr`` on the embedded server under
``OPSCORE_HOME`` (default /tmp/snap-profile), which is also the repository.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OPSCORE_HOME", "/tmp/snap-profile")

TIMES: dict[str, list[float]] = defaultdict(list)
CPU: dict[str, list[float]] = defaultdict(list)


def backend_cpu_s(pid: int) -> float:
    """CPU seconds a server backend has used (/proc/PID/schedstat, ns)."""
    return int(open(f"/proc/{pid}/schedstat").read().split()[0]) / 1e9


def timed(module, name: str, label: str, server: bool = False) -> None:
    """Wall ms and CPU ms (this process; with ``server`` also the repository backend whose
    connection is the first argument) of every call."""
    fn = getattr(module, name)

    def wrapper(*a, **kw):
        pid = a[0].info.backend_pid if server else None
        b0 = backend_cpu_s(pid) if pid else 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **kw)
        finally:
            TIMES[label].append((time.perf_counter() - t0) * 1000)
            cpu = time.process_time() - c0 + ((backend_cpu_s(pid) - b0) if pid else 0.0)
            CPU[label].append(cpu * 1000)

    setattr(module, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--dsn")
    ap.add_argument(
        "--cold",
        action="store_true",
        help="forget what this process kept between snapshots (delta state, known statements) "
        "before each round: what a fresh process per snapshot pays (a Prefect process worker)",
    )
    args = ap.parse_args()

    from snapshot_bench import run_workload, setup_workload

    from ops_core import api, repository
    from ops_core.api import snapshots as api_snap
    from ops_core.model import deltas  # where the repository calls it from
    from ops_core.repository import snapshot_columnar, snapshots

    api.init_repository()
    if args.dsn:
        dsn = args.dsn
    else:
        from ops_core.targets.embedded import default_server

        dsn = default_server().ensure_database("bench_awr")
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        version = c.execute("SHOW server_version").fetchone()[0]
    if "profile" not in {t.name for t in api.list_targets()}:
        api.add_target("profile", dsn)
    os.environ["OPSCORE_SNAPSHOT_DATABASES"] = (
        f'["{psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]}"]'
    )
    from ops_core.config import reset_settings_cache

    reset_settings_cache()
    print(f"PostgreSQL {version}; setting up 1,000 tables ...", flush=True)
    setup_workload(dsn)
    run_workload(dsn)
    api.take_snapshot("profile")  # texts of every statement stored: not a steady interval

    timed(api_snap, "capture", "target read (capture)")
    from ops_core.collectors import capture as capture_mod

    timed(capture_mod, "_main_transaction", "target: main transaction (+ target backend)", True)
    timed(snapshots, "known_statements", "repository: statements known")
    timed(snapshots, "sizes_due", "repository: sizes due")
    timed(snapshots, "_previous", "repository: previous state read")
    timed(deltas, "snapshot_deltas", "deltas (Python)")
    timed(snapshots, "_write", "repository: write")
    timed(snapshots, "store", "repository: store (state read + deltas + write)", server=True)
    timed(snapshot_columnar, "roll_previous_day", "repository: daily rollup check")
    totals, target = [], []
    for r in range(args.rounds):
        run_workload(dsn)
        if args.cold:
            snapshots.STATE_CACHE.entries.clear()
            snapshots.STATE_CACHE.bytes = 0
            getattr(snapshots, "_KNOWN", {}).clear()
        t0 = time.perf_counter()
        info = api.take_snapshot("profile")
        totals.append((time.perf_counter() - t0) * 1000)
        target.append(info.target_ms)
        print(
            f"round {r + 1}: take_snapshot {totals[-1]:.0f} ms (recorded total_ms "
            f"{info.total_ms:.0f}), target side {info.target_ms:.0f} ms, "
            f"{info.statements} statements",
            flush=True,
        )
    med = statistics.median
    print(f"\n== medians over {args.rounds} rounds ({os.getloadavg()[0]:.1f} load average)")
    print(f"take_snapshot as called: {med(totals):.0f} ms; target side {med(target):.0f} ms")
    print(f"  {'phase':50s} {'wall':>9s} {'CPU':>9s}  (CPU: this process, + backend for store)")
    for label, v in TIMES.items():
        print(f"  {label:50s} {med(v):6.0f} ms {med(CPU[label]):6.0f} ms")
    if args.profile:
        run_workload(dsn)
        prof = cProfile.Profile()
        prof.enable()
        api.take_snapshot("profile")
        prof.disable()
        pstats.Stats(prof).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(30)
    with repository.session():
        pass


if __name__ == "__main__":
    main()
