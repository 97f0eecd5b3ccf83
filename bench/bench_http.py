"""Benchmark: the HTTP API on loopback over a repository holding a week of data (15-minute
snapshots and 1 Hz ASH of one target, filled through the real write paths by
bench/bench_app.py's loaders).

`opscore api serve` runs in its own process (uvicorn, ``--workers``: one run per count given;
``--baseline-src``: first a run of another source tree's server on the same data, for a
before/after at the same load); the client fires N
concurrent requests (default 1,000) with httpx over loopback, each with a read token, round
robin over read routes (snapshot list, load profile of the last day, top SQL of the last day,
ASH top events of the last hour, alert rules, Prometheus metrics, a typed GraphQL query), then
N/5 concurrent writes (create an alert rule, operate token). Prints p50/p95/p99 per kind and
requests per second, and each route's ratio over ``/health/liveness`` measured in the same
batch (the machine is shared: ratios travel better than absolute figures). Before the
concurrent batch, ``--serial`` requests per route one at a time give the service time
without queueing.
The reference document asks p95 < 100 ms for reads and < 500 ms for writes.

    python bench/bench_http.py                 # embedded PostgreSQL 18, 7 days
    python bench/bench_http.py --days 1 --requests 500
    python bench/bench_http.py --days 1 --workers 1,2 --baseline-src /tmp/opscore-main
    python bench/bench_http.py --dsn "host=/var/run/postgresql port=5432 user=postgres"
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_app  # noqa: E402
import httpx  # noqa: E402


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def fire(base: str, token: str, requests: list[tuple[str, str, dict]]) -> tuple:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=100)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=300) as c:

        async def one(method: str, path: str, kw: dict) -> tuple[float, int]:
            t0 = time.perf_counter()
            r = await c.request(method, path, **kw)
            return time.perf_counter() - t0, r.status_code

        t0 = time.perf_counter()
        out = await asyncio.gather(*(one(m, p, kw) for m, p, kw in requests))
        return out, time.perf_counter() - t0


GQL_READ = "{ alerts(limit: 20) { alertId rule severity status firedAt } }"


async def fire_serial(base: str, token: str, requests: list[tuple[str, str, dict]]) -> tuple:
    headers = {"Authorization": f"Bearer {token}"}
    out = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=300) as c:
        t0 = time.perf_counter()
        for method, path, kw in requests:
            t1 = time.perf_counter()
            r = await c.request(method, path, **kw)
            out.append((time.perf_counter() - t1, r.status_code))
        return out, time.perf_counter() - t0


def report(
    kind: str, out: list[tuple[float, int]], wall: float, base: dict | None = None
) -> dict[str, float]:
    """Print p50/p95/p99, mean and rate; with ``base`` (the baseline's figures from the same
    run) also the ratios, which mean more than absolute figures on a shared, busy machine."""
    ms = [d * 1000 for d, _ in out]
    bad = sum(1 for _, s in out if s != 200)
    figs = {"p50": pct(ms, 50), "p95": pct(ms, 95), "p99": pct(ms, 99)}
    ratios = (
        "  x baseline: " + " / ".join(f"{figs[k] / max(base[k], 1e-9):.2f}" for k in figs)
        if base
        else ""
    )
    print(
        f"{kind:32} n={len(out):5}  p50 {figs['p50']:7.1f} ms  p95 {figs['p95']:7.1f} ms  "
        f"p99 {figs['p99']:7.1f} ms  mean {statistics.fmean(ms):7.1f} ms  "
        f"{len(out) / wall:6.1f} req/s  non-200: {bad}{ratios}"
    )
    return figs


def run_schemathesis(base: str, token: str, examples: int) -> None:
    """Property-based requests from the OpenAPI document on the served rows (the rows not
    served answer 501 by design): no 5xx, every response conforming to its schema. An operate
    token: destructive routes answer 403 (their documented refusal)."""
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [
        str(exe), "run", f"{base}/api/v1/openapi.json",
        "-H", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_headers_conformance,response_schema_conformance",
        "--max-examples", str(examples), "--phases", "examples,fuzzing",
        "--exclude-tag", "not served",  # they answer 501 by design (tests/test_http.py)
        "--request-timeout", "300", "--workers", "1",
        "--suppress-health-check", "all",
    ]  # fmt: skip
    print(
        "schemathesis:", " ".join(c if not c.startswith("Authorization") else "-H ..." for c in cmd)
    )
    subprocess.run(cmd, check=False)


def start_server(workers: int, src: Path | None = None) -> subprocess.Popen:
    """`opscore api serve` in its own process, ready (liveness answers); ``src``: another
    opscore source tree (an earlier commit) serving with its own defaults."""
    port = free_port()
    cmd = [sys.executable, "-m", "ops_core", "api", "serve", "--port", str(port)]
    server = subprocess.Popen(
        cmd if src else [*cmd, "--workers", str(workers)],
        env={**os.environ, "PYTHONPATH": str(src or ROOT)},
        cwd=src or ROOT,  # `python -m` puts the working directory first on sys.path
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server.base = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.base}/api/v1/health/liveness", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    print(f"server ready in {time.perf_counter() - t0:.1f} s ({src or f'{workers} worker(s)'})")
    return server


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=60)


def burst(args, base: str, read: str, write: str, tag: str, end, day_ids, round_: int) -> None:
    """Serial service times, then the concurrent reads, then the concurrent writes."""
    rng = {"target": "bench", "begin_id": day_ids[0], "end_id": day_ids[1]}
    hour = {"target": "bench", "begin": (end - timedelta(hours=1)).isoformat(),
            "end": end.isoformat()}  # fmt: skip
    baseline = "/api/v1/health/liveness"  # no repository or target work: the floor
    reads = [
        ("GET", baseline, {}),
        ("GET", "/api/v1/workload/snapshots", {"params": {"target": "bench", "limit": 50}}),
        ("GET", "/api/v1/performance/hub/summary", {"params": rng}),
        ("GET", "/api/v1/performance/hub/sql-stats", {"params": {**rng, "limit": 20}}),
        ("GET", "/api/v1/performance/hub/wait-events", {"params": hour}),
        ("GET", "/api/v1/alerts/rules", {}),
        ("GET", "/api/v1/metrics/prometheus", {"params": {"target": "bench"}}),
        ("POST", "/api/v1/graphql", {"json": {"query": GQL_READ}}),
    ]
    for m, p, kw in reads:  # warm-up, and every route answers
        r = httpx.request(m, base + p, headers={"Authorization": f"Bearer {read}"}, **kw)
        assert r.status_code == 200 and "errors" not in r.text[:20], (p, r.text[:300])
    # service time first: the same routes one request at a time (no queueing)
    serial = [reads[i % len(reads)] for i in range(len(reads) * args.serial)]
    print(f"{len(serial)} requests one at a time (service time, no queueing)")
    sout, swall = asyncio.run(fire_serial(base, read, serial))
    sper = {p: [o for o, b in zip(sout, serial, strict=True) if b[1] == p] for _m, p, _kw in reads}
    sfloor = report(baseline.removeprefix("/api/v1/"), sper[baseline], swall / len(reads))
    for _m, p, _kw in reads[1:]:
        report(p.removeprefix("/api/v1/"), sper[p], swall / len(reads), sfloor)
    batch = [reads[i % len(reads)] for i in range(args.requests)]
    out, wall = asyncio.run(fire(base, read, batch))
    print(f"{len(batch)} concurrent reads, round robin; ratios p50/p95/p99 over {baseline}")
    report("reads (all routes)", out, wall)
    per = {p: [o for o, b in zip(out, batch, strict=True) if b[1] == p] for _m, p, _kw in reads}
    share = len(per[baseline]) / len(out)
    floor = report(baseline.removeprefix("/api/v1/"), per[baseline], wall * share)
    for _m, p, _kw in reads[1:]:  # the same run, per route (rate: its share of the run)
        report(p.removeprefix("/api/v1/"), per[p], wall * len(per[p]) / len(out), floor)
    writes = [
        ("POST", "/api/v1/alerts/rules",
         {"json": {"name": f"b{tag}w{round_}n{i}", "metric": "connections", "value": 1e9}})
        for i in range(max(1, args.requests // 5))
    ]  # fmt: skip
    out, wall = asyncio.run(fire(base, write, writes))
    report("writes (create alert rule)", out, wall, floor)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", help="a PostgreSQL server for repository and target")
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--every", type=int, default=15, help="minutes between snapshots")
    ap.add_argument("--requests", type=int, default=1000, help="concurrent reads")
    ap.add_argument("--serial", type=int, default=20, help="one-at-a-time requests per route")
    ap.add_argument(
        "--workers",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[2],
        help="server processes; a list (1,2) runs the burst against each in turn, same data",
    )
    ap.add_argument(
        "--baseline-src",
        type=Path,
        help="first, the same burst against `opscore api serve` from this source tree (e.g. "
        "`git archive <commit>` unpacked): before/after on the same data, back to back",
    )
    ap.add_argument(
        "--schemathesis",
        type=int,
        metavar="N",
        default=0,
        help="then run schemathesis (N examples per operation, an operate token) on the server",
    )
    args = ap.parse_args()
    target_dsn, cleanup = bench_app.setup_servers(args)
    server = None
    try:
        from ops_core import api

        api.add_target("bench", target_dsn)
        end = datetime.now(UTC).replace(microsecond=0)
        start = end - timedelta(days=args.days)
        n = int(args.days * 24 * 60 / args.every) + 1
        print(f"Filling: {n} snapshots every {args.every} min and 1 Hz ASH over {args.days} days")
        bench_app.fill_snapshots("bench", target_dsn, start, n, timedelta(minutes=args.every))
        pool = bench_app.sample_pool("bench", target_dsn)
        rows, _ = bench_app.fill_ash("bench", pool, start, end)
        print(f"  {n} snapshots, {rows:,} ASH rows")
        tag = uuid.uuid4().hex[:6]
        read = api.create_api_token(f"bench-read-{tag}", "read").secret
        write = api.create_api_token(f"bench-op-{tag}", "operate").secret
        day_ids = api.snapshot_bounds("bench", end - timedelta(days=1))
        runs = [(0, args.baseline_src)] if args.baseline_src else []
        for workers, src in [*runs, *((w, None) for w in args.workers)]:
            print("\n== opscore api serve " + (f"from {src}" if src else f"--workers {workers}"))
            server = start_server(workers, src)
            try:
                burst(args, server.base, read, write, tag, end, day_ids, round_=workers)
            finally:
                stop_server(server)
            server = None
        if args.schemathesis:
            server = start_server(args.workers[-1])
            run_schemathesis(server.base, write, args.schemathesis)
    finally:
        if server is not None:
            stop_server(server)
        cleanup()


if __name__ == "__main__":
    main()
