"""Fleet ASH: the collector's CPU per target and its sample-time skew at 1 Hz, with N targets,
one process multiplexing them (asyncio, or a thread pool) against the per-target samplers
(one ``AshSampler`` thread per target, as ``opscore serve`` runs them), in one run.

The fleet is simulated as the issue says: a few real servers (embedded PostgreSQL 18, started
here under ``--home``) registered under many names, round-robin. Each server has a few active
sessions (``pg_sleep``), so every sample of every target has rows. The repository is the
first server. Every configuration runs in a child process (so its CPU is the collector's
alone, flush and COPY included; the servers' CPU is not in it) for ``--seconds`` seconds.

Figures per configuration: collector CPU % of one core per target while sampling (periodic
flushes included; the final flush of the window, once per 15 minutes in production, not);
sample skew p50/p99 (target's ``now()`` minus the whole-second tick, fleet modes) with this
process's own tick dispatch delay; interval jitter p50/p99 (|time between two samples of a
target - 1 s|, every mode, from the repository); repository rows/s; missed ticks; and at the
end repository bytes per row and per target-day (before compaction: ``bench/ash_size.py``
measures the compacted tiers).

    python bench/fleet_bench.py [--counts 10,50,100,200] [--seconds 20]
                                [--modes async,threads,per-target] [--servers 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _env(home: str) -> dict[str, str]:
    env = dict(os.environ)
    env["OPSCORE_HOME"] = home
    env.pop("OPSCORE_REPOSITORY_DSN", None)
    env["PYTHONPATH"] = str(ROOT)
    return env


# ---------------------------------------------------------------------------- child
def child(mode: str, names: list[str], seconds: float) -> None:
    from ops_core import api

    t_begin = datetime.now(UTC)
    out: dict = {"mode": mode, "targets": len(names)}
    if mode == "per-target":
        samplers = [api.ash_sampler(n, interval_s=1.0) for n in names]
        # CPU and time of the sampling (periodic flushes included, the final flush of a
        # window not: a window's end is once per 15 minutes in production)
        cpu0, wall0 = time.process_time(), time.monotonic()
        for s in samplers:
            s.start()
        threading.Event().wait(seconds)
        # the sampling part (as the fleet sampler reports it): before the final flushes
        out["cpu_s"] = time.process_time() - cpu0
        out["elapsed_s"] = time.monotonic() - wall0
        stats = [s.stop() for s in samplers]
        out["samples"] = sum(s.samples for s in stats)
        out["rows_written"] = sum(s.rows_written for s in stats)
        out["errors"] = sum(s.errors for s in stats)
        out["skew_p50_ms"] = out["skew_p99_ms"] = out["dispatch_p99_ms"] = None
        out["send_p50_ms"] = out["send_p99_ms"] = None
        out["missed"] = None
    else:
        st = api.run_ash_fleet(names, duration_s=seconds, interval_s=1.0, mode=mode)
        out["samples"] = st.samples
        out["rows_written"] = st.rows_written
        out["errors"] = st.errors
        out["skew_p50_ms"], out["skew_p99_ms"] = st.skew(0.5), st.skew(0.99)
        out["dispatch_p99_ms"] = st.dispatch(0.99)
        out["send_p50_ms"], out["send_p99_ms"] = st.send(0.5), st.send(0.99)
        out["missed"] = sum(t.missed for t in st.targets.values())
        out["copies"], out["flushes"] = st.copies, st.flushes
        out["cpu_s"], out["elapsed_s"] = st.sampling_cpu_s, st.sampling_s
    out["begin"], out["end"] = t_begin.isoformat(), datetime.now(UTC).isoformat()
    print("RESULT " + json.dumps(out))


# ---------------------------------------------------------------------------- parent
def _servers(home: Path, count: int):
    """The repository's embedded server and ``count - 1`` more, each with room for the
    connections of 200 targets, and a target database with three sleeping sessions."""
    import psycopg

    from ops_core import repository
    from ops_core.targets.embedded import EmbeddedServer, default_server

    repository.repository_dsn()  # starts the default server under OPSCORE_HOME
    servers = [default_server()]
    for i in range(1, count):
        servers.append(EmbeddedServer(home / f"pg{i}"))
    for s in servers:
        s.start()
        with psycopg.connect(s.conninfo(), autocommit=True) as c:
            if int(c.execute("SHOW max_connections").fetchone()[0]) < 800:
                c.execute("ALTER SYSTEM SET max_connections = 800")
                restart = True
            else:
                restart = False
        if restart:
            s.stop()
            s.start()
        s.ensure_database("fleet_target")
    return servers


def _sleepers(dsns: list[str], per: int = 3) -> list:
    import psycopg

    conns = []

    def sleep(c) -> None:
        try:
            c.execute("SELECT pg_sleep(100000)")
        except psycopg.Error:
            pass

    for d in dsns:
        for _ in range(per):
            c = psycopg.connect(d, autocommit=True, application_name="fleet-bench-sleeper")
            threading.Thread(target=sleep, args=(c,), daemon=True).start()
            conns.append(c)
    return conns


def _jitter(names: list[str], begin: str, end: str) -> tuple[float | None, float | None]:
    """|interval between consecutive samples - 1 s| over the targets, p50/p99 in ms."""
    from ops_core import repository

    with repository.session() as conn:
        rows = conn.execute(
            "SELECT t.name, s.sample_time FROM opscore.targets t "
            "JOIN LATERAL (SELECT DISTINCT sample_time FROM opscore.ash_samples x "
            "WHERE x.target_id = t.target_id AND x.sample_time BETWEEN %s AND %s) s ON true "
            "WHERE t.name = ANY(%s) ORDER BY 1, 2",
            (begin, end, names),
        ).fetchall()
    by: dict[str, list[datetime]] = {}
    for n, ts in rows:
        by.setdefault(n, []).append(ts)
    diffs = sorted(
        abs((b - a).total_seconds() - 1.0) * 1000
        for ts in by.values()
        for a, b in zip(ts, ts[1:], strict=False)
    )
    if not diffs:
        return None, None
    return statistics.median(diffs), diffs[min(len(diffs) - 1, int(0.99 * len(diffs)))]


def _ash_bytes() -> int:
    """Bytes of every ASH relation of the repository (hot partitions, chunks, texts, summaries,
    their indexes and TOAST)."""
    from ops_core import repository

    with repository.session() as conn:
        size = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'opscore' "
            "AND c.relkind = 'r' AND c.relname LIKE 'ash\\_%'"
        ).fetchone()[0]
    return size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="10,50,100,200")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--modes", default="burst,async,threads,per-target")
    ap.add_argument("--servers", type=int, default=3)
    ap.add_argument("--home", default="/tmp/opscore-fleet-bench")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "NAMES"))
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1].split(","), args.seconds)
        return
    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)
    os.environ.update(_env(str(home)))
    from ops_core import api

    api.init_repository()
    servers = _servers(home, args.servers)
    dsns = [s.conninfo("fleet_target") for s in servers]
    counts = [int(x) for x in args.counts.split(",")]
    modes = args.modes.split(",")
    known = {t.name for t in api.list_targets()}
    names = [f"fleet-{i:03d}" for i in range(max(counts))]
    for i, n in enumerate(names):
        if n not in known:
            api.add_target(n, dsns[i % len(dsns)], verify=False)
    sleepers = _sleepers(dsns)
    bytes0 = _ash_bytes()
    load0 = os.getloadavg()
    print(
        f"{len(servers)} embedded PostgreSQL 18 servers, {len(names)} target names round-robin "
        f"over them, 3 active sessions per server; {args.seconds:.0f} s per configuration; "
        f"load average at start {load0[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    results = []
    for n in counts:
        for mode in modes:
            chosen = names[:n]
            proc = subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__)),
                    "--seconds",
                    str(args.seconds),
                    "--child",
                    mode,
                    ",".join(chosen),
                ],
                env=_env(str(home)),
                capture_output=True,
                text=True,
                timeout=args.seconds * 10 + 300,
            )
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                print(f"{mode} x {n}: failed\n{proc.stderr[-2000:]}", flush=True)
                continue
            r = json.loads(line[-1][7:])
            r["jitter_p50_ms"], r["jitter_p99_ms"] = _jitter(
                chosen, r["begin"], (datetime.fromisoformat(r["end"]) + timedelta(1)).isoformat()
            )
            r["cpu_pct_per_target"] = 100 * r["cpu_s"] / r["elapsed_s"] / n
            r["cpu_pct_total"] = 100 * r["cpu_s"] / r["elapsed_s"]
            r["rows_per_s"] = r["rows_written"] / r["elapsed_s"]
            r["rows_per_target_day"] = r["rows_written"] / n / r["elapsed_s"] * 86400
            r["load"] = os.getloadavg()[0]
            results.append(r)
            sk = (
                f"skew p50 {r['skew_p50_ms']:.0f} / p99 {r['skew_p99_ms']:.0f} ms (tick "
                f"dispatch p99 {r['dispatch_p99_ms']:.0f} ms, query sent p50 "
                f"{r['send_p50_ms']:.0f} / p99 {r['send_p99_ms']:.0f} ms after the tick)"
                if r["skew_p50_ms"] is not None
                else "skew n/a (not tick-aligned)"
            )
            jit = (
                f"jitter p50 {r['jitter_p50_ms']:.0f} / p99 {r['jitter_p99_ms']:.0f} ms"
                if r["jitter_p50_ms"] is not None
                else "jitter n/a"
            )
            print(
                f"{n:4d} targets {mode:10s}: CPU {r['cpu_pct_total']:5.1f} % of a core = "
                f"{r['cpu_pct_per_target']:.3f} %/target; samples {r['samples']} "
                f"({r['samples'] / n / r['elapsed_s']:.2f}/target/s), missed "
                f"{r['missed']}, errors {r['errors']}; {sk}; {jit}; "
                f"{r['rows_per_s']:.0f} rows/s; load {r['load']:.1f}",
                flush=True,
            )
    rows = sum(r["rows_written"] for r in results)
    per_row = (_ash_bytes() - bytes0) / rows if rows else 0.0
    per_day = [r["rows_per_target_day"] for r in results]
    if per_day and rows:
        med = statistics.median(per_day)
        print(
            f"repository: {per_row:,.0f} bytes per sample row over all ASH relations "
            f"({rows:,} rows written by this run, mostly still in the hot tier: "
            f"bench/ash_size.py measures the compacted tiers); {med:,.0f} rows per "
            f"target-day here (3 active sessions), "
            f"so {per_row * med / 1e6:,.1f} MB per target-day before compaction"
        )
    for c in sleepers:
        c.cancel()
    (home / "fleet_bench.json").write_text(json.dumps(results, indent=1))
    print(f"results: {home / 'fleet_bench.json'}")


if __name__ == "__main__":
    main()
