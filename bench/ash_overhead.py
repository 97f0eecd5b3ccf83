"""ASH overhead: pgbench TPS on the embedded PostgreSQL 18 with the 1 Hz sampler vs without.

Alternates the two configurations (order flipped every round to cancel drift) for ROUNDS
rounds of SECONDS s each (pgbench scale 5, -c 4 -j 2) and prints every round, the median of
the per-pair ratios (on/off) and their spread. The sampler runs in this process, on the same
2-core machine, writing into the repository on the same server: the embedded default.

    python bench/ash_overhead.py [ROUNDS] [SECONDS]
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from ash_common import api, backend_cpu_s, bench_target, pgbench, tps

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 20


def one(sampler_on: bool) -> tuple[float, api.AshRunStats | None, float, float]:
    """TPS of one pgbench run, the sampler's stats, the CPU this process used per second
    (pgbench is a child process: this is the sampler thread, flushes included), and the CPU per
    second of the sampler's two server backends (target monitoring session + repository
    writer: the same embedded server)."""
    sampler = api.ash_sampler("bench", interval_s=1.0) if sampler_on else None
    cpu0, wall0 = time.process_time(), time.monotonic()
    if sampler:
        sampler.start()
    out = pgbench(["-n", "-c", "4", "-j", "2", "-T", str(SECONDS)])
    server_cpu = 0.0
    if sampler:
        pids = [c.info.backend_pid for c in (sampler.collector.conn, sampler._repo) if c]
        server_cpu = sum(backend_cpu_s(p) for p in pids)
    stats = sampler.stop() if sampler else None
    wall = time.monotonic() - wall0
    return tps(out), stats, (time.process_time() - cpu0) / wall, server_cpu / wall


def main() -> None:
    bench_target("bench")
    pgbench(["-n", "-c", "4", "-j", "2", "-T", "5"])  # warm-up
    ratios, sample_ms, cpus, srvs = [], [], [], []
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    for r in range(ROUNDS):
        order = [False, True] if r % 2 == 0 else [True, False]
        res = {on: one(on) for on in order}
        off_tps, on_tps = res[False][0], res[True][0]
        st, cpu, srv = res[True][1], res[True][2], res[True][3]
        srvs.append(srv)
        ratios.append(on_tps / off_tps)
        sample_ms.append(1000 * st.sample_seconds / max(st.samples, 1))
        cpus.append(cpu)
        mean_ms = sample_ms[-1]
        print(
            f"round {r + 1}: off {off_tps:8.1f} tps  on {on_tps:8.1f} tps  ratio "
            f"{on_tps / off_tps:.4f}  (sampler: {st.samples} samples, {st.rows_written} rows, "
            f"{st.rows_written / max(st.samples, 1):.1f} sessions/sample, sample query "
            f"{mean_ms:.2f} ms, CPU: sampler {100 * cpu:.2f} % + its server backends "
            f"{100 * srv:.2f} % of a core, errors {st.errors})",
            flush=True,
        )
    med = statistics.median(ratios)
    print(
        f"\nASH overhead over {ROUNDS} alternated rounds of {SECONDS} s: median TPS ratio "
        f"on/off {med:.4f} (TPS change {100 * (med - 1):+.2f} %), spread of ratios "
        f"{min(ratios):.4f}..{max(ratios):.4f}, stdev {statistics.pstdev(ratios):.4f}; "
        f"took {time.monotonic() - t0:.0f} s; load average {load:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end on {os.cpu_count()} CPUs"
    )
    print(
        f"Sampler cost at 1 Hz: median sample query round trip {statistics.median(sample_ms):.2f}"
        f" ms (target side, at most {statistics.median(sample_ms) / 10:.2f} % of one core), "
        f"median CPU of the sampler process {100 * statistics.median(cpus):.2f} % and of its "
        f"server backends {100 * statistics.median(srvs):.2f} % of one core: at most "
        f"{50 * (statistics.median(cpus) + statistics.median(srvs)):.2f} % of this 2-core "
        "machine taken from pgbench"
    )


if __name__ == "__main__":
    main()
