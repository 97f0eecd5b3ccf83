"""Side by side with PoWA: snapshot cost and repository bytes on the same PostgreSQL 15 and the
same workload (5,000 distinct statements over 1,000 tables, every statement run in every
interval: the worst case for both).

Both tools keep their repository on the monitored server here (PoWA's `powa` database; opscore's
repository in database `opscore_powa_bench`), so each snapshot is a read of the target plus a
write on the same server. opscore reads more per snapshot than PoWA's default modules do (PoWA:
pg_stat_statements, pg_stat_kcache, pg_qualstats, pg_wait_sampling, pg_stat_bgwriter, and the
relations/functions of its own database; opscore: pg_stat_statements, database, table and index
statistics of the target database, pg_stat_io, WAL, checkpointer, archiver, replication,
settings), so the figures compare what each costs for what it keeps, not identical work.

Rounds alternate which tool snapshots first (order flipped every round to cancel drift); the
medians and ranges are printed with the ratio opscore/PoWA. Besides wall time, each snapshot's
CPU (every process of the PostgreSQL cluster: backends, including the ones that exit, as their
time accrues to the postmaster, and background writers; plus this process for opscore, whose
delta computation runs here) and WAL written (pg_current_wal_insert_lsn before and after): on a
machine shared with other work, CPU is the figure that compares.

Set-up of the PoWA side (Debian packages, run as root once; `bench/powa-setup` does it):
postgresql-15-powa, -pg-qualstats, -pg-stat-kcache, -hypopg, -pg-wait-sampling;
shared_preload_libraries with pg_stat_statements, pg_stat_kcache, pg_qualstats, pg_wait_sampling
and powa (powa.frequency = -1: no background snapshots during the measurement); database `powa`
with the extensions pg_stat_statements, btree_gist, pg_qualstats, pg_stat_kcache,
pg_wait_sampling, powa.

    python bench/powa_compare.py [--rounds 7] [--admin-dsn 'host=/var/run/postgresql user=postgres']
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import psycopg
from psycopg.conninfo import make_conninfo

REPO_DB = "opscore_powa_bench"
TARGET_DB = "bench_awr"
TARGET = "pg15_bench"


def powa_bytes(conn: psycopg.Connection) -> int:
    """Bytes of PoWA's tables (heap, indexes, TOAST) in the powa database."""
    return conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'm') AND c.relname LIKE 'powa\\_%' "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    ).fetchone()[0]


def powa_aggregate(conn: psycopg.Connection) -> int:
    """Run PoWA's aggregate functions for the local server, compact its tables (VACUUM FULL)
    and return its bytes."""
    for (fn,) in conn.execute(
        "SELECT function_name FROM powa_functions WHERE srvid = 0 AND operation = 'aggregate' "
        "AND enabled"
    ).fetchall():
        conn.execute(psycopg.sql.SQL("SELECT {}(0)").format(psycopg.sql.Identifier(fn)))
    conn.execute("VACUUM FULL")
    return powa_bytes(conn)


class ClusterCPU:
    """CPU seconds used so far by every process of one PostgreSQL cluster: the live ones
    (/proc/PID/schedstat, ns) plus what exited children left in the postmaster's cutime +
    cstime (clock ticks), so a backend that exits during the measurement (opscore's target
    connection) still counts."""

    def __init__(self, conn: psycopg.Connection) -> None:
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
        with open(os.path.join(data_dir, "postmaster.pid")) as f:
            self.pm = int(f.readline())
        self.tick = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _stat(pid: int) -> list[str]:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()  # fields from 3 (state) on

    def seconds(self) -> float:
        total = 0.0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                if pid != self.pm and int(self._stat(pid)[1]) != self.pm:
                    continue
                with open(f"/proc/{pid}/schedstat") as f:
                    total += int(f.read().split()[0]) / 1e9
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue  # exited meanwhile: its time is in the postmaster's cutime
        st = self._stat(self.pm)
        return total + (int(st[13]) + int(st[14])) / self.tick  # cutime + cstime


def wal_lsn(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'").fetchone()[0])


def create_db(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))


def check_powa(powa_dsn: str) -> str:
    try:
        with psycopg.connect(powa_dsn, autocommit=True) as conn:
            libs = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
            ver = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'powa'"
            ).fetchone()
    except psycopg.OperationalError as exc:
        sys.exit(f"cannot connect to the powa database ({exc}); run bench/powa-setup first")
    if ver is None or "powa" not in libs:
        sys.exit("PoWA is not loaded or not created in database powa: run bench/powa-setup first")
    return ver[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--admin-dsn", default="host=/var/run/postgresql port=5432 user=postgres")
    args = ap.parse_args()
    admin = make_conninfo(args.admin_dsn, dbname="postgres")
    powa_dsn = make_conninfo(args.admin_dsn, dbname="powa")
    powa_version = check_powa(powa_dsn)

    create_db(admin, REPO_DB)
    create_db(admin, TARGET_DB)
    target_dsn = make_conninfo(args.admin_dsn, dbname=TARGET_DB)
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        server_version = conn.execute("SHOW server_version").fetchone()[0]
    os.environ.setdefault("OPSCORE_HOME", "/tmp/opscore-powa-bench")
    os.environ["OPSCORE_REPOSITORY_DSN"] = make_conninfo(args.admin_dsn, dbname=REPO_DB)
    os.environ["OPSCORE_SNAPSHOT_DATABASES"] = f'["{TARGET_DB}"]'

    from snapshot_bench import repo_bytes, run_workload, setup_workload

    from ops_core import api, repository

    api.init_repository()
    if TARGET not in {t.name for t in api.list_targets()}:
        api.add_target(TARGET, target_dsn)
    print(
        f"PostgreSQL {server_version}, PoWA {powa_version}; setting up 1,000 tables ...",
        flush=True,
    )
    setup_workload(target_dsn)

    with psycopg.connect(powa_dsn, autocommit=True) as pconn:
        # first snapshots store every statement text / key: not what a steady interval costs
        run_workload(target_dsn)
        api.take_snapshot(TARGET)
        pconn.execute("SELECT powa_take_snapshot(0)")
        with repository.session() as repo:
            ops_before = repo_bytes(repo)
        ops0 = sum(v for t, v in ops_before.items() if t != "snapshot_state")
        powa0 = powa_aggregate(pconn)  # start aggregated and compacted
        ops_target, ops_total, powa_ms, ratios = [], [], [], []
        cpu: dict[str, list[float]] = {"opscore": [], "powa": []}
        wal: dict[str, list[int]] = {"opscore": [], "powa": []}
        meter = psycopg.connect(admin, autocommit=True)
        server_cpu = ClusterCPU(meter)
        for r in range(args.rounds):
            run_workload(target_dsn)
            order = ["opscore", "powa"] if r % 2 == 0 else ["powa", "opscore"]
            got: dict[str, float] = {}
            for tool in order:
                lsn0, s0, c0 = wal_lsn(meter), server_cpu.seconds(), time.process_time()
                if tool == "opscore":
                    info = api.take_snapshot(TARGET)
                    ops_target.append(info.target_ms)
                    ops_total.append(info.total_ms)
                    got[tool] = info.total_ms
                    here = time.process_time() - c0
                else:
                    t0 = time.perf_counter()
                    pconn.execute("SELECT powa_take_snapshot(0)")
                    got[tool] = (time.perf_counter() - t0) * 1000
                    powa_ms.append(got[tool])
                    here = 0.0  # PoWA runs entirely in its backend
                cpu[tool].append((server_cpu.seconds() - s0 + here) * 1000)
                wal[tool].append(wal_lsn(meter) - lsn0)
            ratios.append(got["opscore"] / got["powa"])
            print(
                f"round {r + 1}: opscore {got['opscore']:7.0f} ms (target side "
                f"{ops_target[-1]:.0f} ms; CPU {cpu['opscore'][-1]:.0f} ms, WAL "
                f"{wal['opscore'][-1] / 1024:,.0f} kB)   PoWA {got['powa']:7.0f} ms (CPU "
                f"{cpu['powa'][-1]:.0f} ms, WAL {wal['powa'][-1] / 1024:,.0f} kB)   ratio "
                f"{ratios[-1]:.2f}",
                flush=True,
            )
        meter.close()
        with repository.session() as repo:
            ops_after = repo_bytes(repo)
            state_live = repo.execute(
                "SELECT coalesce(sum(pg_column_size(s.*)), 0) FROM opscore.snapshot_state s"
            ).fetchone()[0]
            ops1 = sum(v for t, v in ops_after.items() if t != "snapshot_state")
            statements = repo.execute(
                "SELECT count(*) FROM opscore.statements s JOIN opscore.targets t "
                "USING (target_id) WHERE t.name = %s",
                (TARGET,),
            ).fetchone()[0]
        powa1 = powa_bytes(pconn)
        # what PoWA keeps once it has aggregated the rows (it does so every powa.coalesce
        # snapshots): run its aggregate functions now and compact the tables to measure that
        powa2 = powa_aggregate(pconn)
        growth = {t: v - ops_before[t] for t, v in ops_after.items() if t != "snapshot_state"}

    n = args.rounds
    ops_snap, powa_snap = (ops1 - ops0) / n, (powa1 - powa0) / n
    powa_agg = (powa2 - powa0) / n
    med = statistics.median
    print(
        f"\n== {n} rounds, 5,000 distinct statements x 1,000 tables, every statement in every "
        f"interval ({statements:,} statements known to opscore)"
    )
    print(
        f"snapshot time: opscore median {med(ops_total):.0f} ms (range {min(ops_total):.0f}.."
        f"{max(ops_total):.0f}; reading the target {med(ops_target):.0f} ms), PoWA "
        f"powa_take_snapshot(0) median {med(powa_ms):.0f} ms (range {min(powa_ms):.0f}.."
        f"{max(powa_ms):.0f}); median per-round ratio opscore/PoWA {med(ratios):.2f} "
        f"(range {min(ratios):.2f}..{max(ratios):.2f})"
    )
    cpu_ratio = [o / p for o, p in zip(cpu["opscore"], cpu["powa"], strict=True) if p > 0]
    print(
        f"snapshot CPU (the cluster's processes, plus this process for opscore): opscore "
        f"median {med(cpu['opscore']):.0f} ms, PoWA {med(cpu['powa']):.0f} ms; median "
        f"per-round ratio {med(cpu_ratio):.2f} (range {min(cpu_ratio):.2f}..{max(cpu_ratio):.2f})"
    )
    print(
        f"WAL per snapshot: opscore median {med(wal['opscore']) / 1024:,.0f} kB, PoWA "
        f"{med(wal['powa']) / 1024:,.0f} kB"
    )
    print(
        f"repository bytes per snapshot: opscore {ops_snap:,.0f} "
        f"(snapshot tables; plus the per-target state kept for the next delta: {state_live:,} "
        f"bytes live, {ops_after['snapshot_state']:,} on disk with the churn vacuum reuses), "
        f"PoWA {powa_snap:,.0f} (powa_* "
        "tables; PoWA keeps the newest snapshots row by row and aggregates every "
        "powa.coalesce = 100 snapshots)"
    )
    print(
        f"PoWA after aggregating these snapshots (its aggregate functions, then VACUUM FULL): "
        f"{powa_agg:,.0f} bytes per snapshot"
    )
    print(
        f"per target-day at 15-minute snapshots (opscore's default): opscore "
        f"{ops_snap * 96 / 1e6:,.1f} MB, PoWA {powa_snap * 96 / 1e6:,.1f} MB before and "
        f"{powa_agg * 96 / 1e6:,.1f} MB after aggregation; at PoWA's default 5-minute "
        f"frequency PoWA {powa_agg * 288 / 1e6:,.1f} MB after aggregation"
    )
    print(
        "opscore growth per snapshot by table: "
        + ", ".join(f"{t} {v / n:,.0f}" for t, v in growth.items() if v)
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
