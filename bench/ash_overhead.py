"""ASH overhead: pgbench TPS on the embedded PostgreSQL 18 with the 1 Hz sampler vs without.

Alternates the two configurations (order flipped every round to cancel drift) for ROUNDS
rounds of SECONDS s each (pgbench scale 5, -c 4 -j 2) and prints every round, the median of
the per-pair ratios (on/off) and their spread. The sampler runs in this process, on the same
2-core machine, writing into the repository on the same server: the embedded default.

    python bench/ash_overhead.py [ROUNDS] [SECONDS]
"""

from __future__ import annotations

import statistics
import sys
import time

from ash_common import api, bench_target, pgbench, tps

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 20


def one(sampler_on: bool) -> tuple[float, api.AshRunStats | None]:
    sampler = api.ash_sampler("bench", interval_s=1.0) if sampler_on else None
    if sampler:
        sampler.start()
    out = pgbench(["-n", "-c", "4", "-j", "2", "-T", str(SECONDS)])
    stats = sampler.stop() if sampler else None
    return tps(out), stats


def main() -> None:
    bench_target("bench")
    pgbench(["-n", "-c", "4", "-j", "2", "-T", "5"])  # warm-up
    ratios, rows = [], []
    t0 = time.monotonic()
    for r in range(ROUNDS):
        order = [False, True] if r % 2 == 0 else [True, False]
        res = {on: one(on) for on in order}
        off_tps, on_tps = res[False][0], res[True][0]
        st = res[True][1]
        ratios.append(on_tps / off_tps)
        rows.append((r + 1, off_tps, on_tps, st))
        mean_ms = 1000 * st.sample_seconds / max(st.samples, 1)
        print(
            f"round {r + 1}: off {off_tps:8.1f} tps  on {on_tps:8.1f} tps  ratio "
            f"{on_tps / off_tps:.4f}  (sampler: {st.samples} samples, {st.rows_written} rows, "
            f"{st.rows_written / max(st.samples, 1):.1f} sessions/sample, sample query "
            f"{mean_ms:.2f} ms, errors {st.errors})",
            flush=True,
        )
    med = statistics.median(ratios)
    print(
        f"\nASH overhead over {ROUNDS} alternated rounds of {SECONDS} s: median TPS ratio "
        f"on/off {med:.4f} (TPS change {100 * (med - 1):+.2f} %), spread of ratios "
        f"{min(ratios):.4f}..{max(ratios):.4f}, stdev {statistics.pstdev(ratios):.4f}; "
        f"took {time.monotonic() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
