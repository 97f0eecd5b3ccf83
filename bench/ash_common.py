"""Shared set-up of the ASH benchmarks: a private embedded PostgreSQL 18 and opscore home.

The benchmarks set ``OPSCORE_HOME`` (default /tmp/opscore-ash-bench) before importing opscore, so
they never touch ~/.opscore; the repository is the embedded server's database ``opscore``.
"""

from __future__ import annotations

import os
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path

os.environ.setdefault("OPSCORE_HOME", "/tmp/opscore-ash-bench")
os.environ.pop("OPSCORE_REPOSITORY_DSN", None)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from ops_core import api, commands  # noqa: E402
from ops_core.repository.ash import AshRow  # noqa: E402
from ops_core.targets.embedded import bin_dir  # noqa: E402

BENCH_DB = "ash_bench"


def server():
    """Start the embedded server and the repository; return the server."""
    srv = api.embedded_server()
    srv.start()
    api.init_repository()
    return srv


def bench_target(name: str = "bench") -> api.Target:
    """A database with pgbench tables (scale 5) on the embedded server, registered as target."""
    srv = server()
    with psycopg.connect(srv.conninfo("postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone():
            conn.execute(f"CREATE DATABASE {BENCH_DB}")
            pgbench(["-i", "-s", "5", "-q"])
    for t in api.list_targets():
        if t.name == name:
            return t
    return api.add_target(name, srv.conninfo(BENCH_DB))


def backend_cpu_s(pid: int | None) -> float:
    """CPU seconds a server backend has used since it started: /proc/PID/schedstat (ns), or
    utime + stime of /proc/PID/stat (clock ticks) where schedstat is missing."""
    if pid is None:
        return 0.0
    try:
        return int(open(f"/proc/{pid}/schedstat").read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pgbench(args: list[str], timeout: float = 600) -> str:
    srv = api.embedded_server()
    conn = ["-h", str(srv.socket_dir), "-p", str(srv.configured_port()), "-U", "postgres"]
    res = commands.run([bin_dir() / "pgbench", *conn, *args, BENCH_DB], timeout=timeout)
    return res.stdout + res.stderr


def tps(output: str) -> float:
    for line in output.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise RuntimeError(f"no tps in pgbench output:\n{output}")


QUERIES = [
    "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
    "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
    "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2",
    "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, now())",
    "END",
] + [
    f"SELECT * FROM orders_{i} o JOIN customers c USING (customer_id) WHERE o.id = $1"
    for i in range(60)
]
WAITS = [
    ("active", None, None, 40),
    ("active", "IO", "DataFileRead", 10),
    ("active", "LWLock", "WALWrite", 8),
    ("active", "IO", "WalSync", 8),
    ("active", "Lock", "transactionid", 6),
    ("active", "Client", "ClientRead", 2),
    ("idle in transaction", "Client", "ClientRead", 26),
]


def synthetic_rows(
    start: datetime,
    seconds: int,
    sessions: int,
    *,
    seed: int = 1,
    step_s: float = 1.0,
    backend_start: datetime | None = None,
) -> list[AshRow]:
    """``sessions`` rows per sample for ``seconds`` samples, shaped like a pgbench-style OLTP
    load: a mix of CPU, I/O, WAL, lock and idle-in-transaction waits, each session running 6 of
    66 statements. The sessions started ``backend_start`` (default: an hour before ``start``;
    give the same one to consecutive calls for sessions that live on, as a pool's do)."""
    rnd = random.Random(seed)
    weights = [w[3] for w in WAITS]
    backend_start = backend_start or start - timedelta(hours=1)
    rows = []
    for i in range(seconds):
        ts = start + timedelta(seconds=i * step_s)
        for s in range(sessions):
            state, wtype, wevent, _ = rnd.choices(WAITS, weights)[0]
            # each session runs its own few statements (an application's transaction mix)
            q = (s * 3 + rnd.randrange(6)) % len(QUERIES)
            rows.append(
                AshRow(
                    ts, 10_000 + s, None, "client backend", "app", "shop", f"web-{s % 4}",
                    None, backend_start, state, wtype, wevent, 1_000_000 + q, QUERIES[q],
                    ts - timedelta(milliseconds=rnd.randrange(500)),
                    ts - timedelta(milliseconds=rnd.randrange(2000)), ts, rnd.randrange(50),
                    rnd.randrange(80), [10_000 + (s + 1) % sessions] if wtype == "Lock" else None,
                )
            )  # fmt: skip
    return rows
