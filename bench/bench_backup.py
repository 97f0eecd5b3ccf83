"""Backup and restore throughput of opscore against the raw tools, in the same run.

On a throw-away embedded PostgreSQL 18 with a pgbench database (scale 60 ≈ 1 GB):

- backup: ``opscore`` full backup (api.take_full_backup: pg_basebackup + catalog, manifest,
  WAL catch-up) vs a bare ``pg_basebackup -Fp -X stream -c fast`` with the same options;
- restore: ``api.restore_backup`` vs ``cp -a`` of the same backup directory;
- incremental: size and time of an incremental after a short pgbench run, vs the full.

Rounds alternate (raw, opscore, raw, opscore, ...) and the median of per-pair ratios is printed
with the spread. Usage: ``python bench/bench_backup.py [--scale 60] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="ops-bench-bk-", dir="/tmp"))
    os.environ["OPSCORE_HOME"] = str(home)
    os.environ.pop("OPSCORE_REPOSITORY_DSN", None)
    from ops_core import api, commands
    from ops_core.backup.store import dir_size
    from ops_core.config import reset_settings_cache
    from ops_core.targets.embedded import EmbeddedServer, bin_dir

    reset_settings_cache()
    srv = EmbeddedServer(home)
    try:
        srv.start()
        api.init_repository()
        dsn = srv.conninfo("postgres")
        t0 = time.monotonic()
        commands.run([bin_dir() / "pgbench", "-i", "-q", "-s", str(args.scale), dsn], timeout=3600)
        print(f"pgbench -i -s {args.scale}: {time.monotonic() - t0:.1f} s", flush=True)
        api.add_target("bench", dsn)
        store = home / "store"
        api.set_backup_store("bench", store)
        scratch = home / "scratch"
        scratch.mkdir()

        backup_ratios, restore_ratios = [], []
        raw_b, ops_b, raw_r, ops_r = [], [], [], []
        for i in range(args.rounds):
            # alternate which runs first, so cache warmth does not favour one side
            order = ["raw", "opscore"] if i % 2 == 0 else ["opscore", "raw"]
            size = raw_s = ops_s = 0.0
            b = None
            for side in order:
                if side == "raw":
                    raw_dir = scratch / f"raw{i}"
                    t0 = time.monotonic()
                    commands.run(
                        [
                            bin_dir() / "pg_basebackup",
                            "-d",
                            dsn,
                            "-D",
                            raw_dir,
                            "-Fp",
                            "-X",
                            "stream",
                            "-c",
                            "fast",
                            "--manifest-checksums=CRC32C",
                        ],
                        timeout=3600,
                    )
                    raw_s = time.monotonic() - t0
                    size = dir_size(raw_dir)
                    shutil.rmtree(raw_dir)
                else:
                    t0 = time.monotonic()
                    b = api.take_full_backup("bench")
                    ops_s = time.monotonic() - t0
            assert b is not None
            raw_b.append(size / raw_s / 1e6)
            ops_b.append((b.size_bytes or 0) / ops_s / 1e6)
            backup_ratios.append(ops_b[-1] / raw_b[-1])

            cp_s = rs_s = 0.0
            restored = 0
            for side in order:
                if side == "raw":
                    cp_dest = scratch / f"cp{i}"
                    t0 = time.monotonic()
                    commands.run(["cp", "-a", Path(b.path) / "data", cp_dest], timeout=3600)
                    cp_s = time.monotonic() - t0
                    shutil.rmtree(cp_dest)
                else:
                    dest = scratch / f"restore{i}"
                    t0 = time.monotonic()
                    res = api.restore_backup("bench", dest, backup_id=b.backup_id)
                    rs_s = time.monotonic() - t0
                    restored = res.size_bytes
                    shutil.rmtree(dest)
            raw_r.append(restored / cp_s / 1e6)
            ops_r.append(restored / rs_s / 1e6)
            restore_ratios.append(ops_r[-1] / raw_r[-1])
            print(
                f"round {i + 1} ({' first, '.join(order)} second): {size / 1e6:,.0f} MB; backup "
                f"raw {raw_b[-1]:.0f} MB/s, opscore {ops_b[-1]:.0f} MB/s; restore cp -a "
                f"{raw_r[-1]:.0f} MB/s, opscore {ops_r[-1]:.0f} MB/s",
                flush=True,
            )
            if i < args.rounds - 1:
                api.delete_backup(b.backup_id)

        def summary(name: str, ratios: list[float]) -> None:
            print(
                f"{name}: opscore/raw median {statistics.median(ratios):.3f} "
                f"(min {min(ratios):.3f}, max {max(ratios):.3f}, {len(ratios)} pairs)"
            )

        summary("backup throughput", backup_ratios)
        summary("restore throughput", restore_ratios)

        commands.run([bin_dir() / "pgbench", "-n", "-T", "10", "-c", "2", dsn], timeout=600)
        full = api.list_backups("bench")[-1]
        t0 = time.monotonic()
        inc = api.take_incremental_backup("bench")
        print(
            f"incremental after 10 s of pgbench: {(inc.size_bytes or 0) / 1e6:,.0f} MB in "
            f"{time.monotonic() - t0:.1f} s (full: {(full.size_bytes or 0) / 1e6:,.0f} MB in "
            f"{full.duration_s:.1f} s)"
        )
        dest = scratch / "chain"
        t0 = time.monotonic()
        res = api.restore_backup("bench", dest, backup_id=inc.backup_id)
        print(
            f"restore of the chain (pg_combinebackup): {res.size_bytes / 1e6:,.0f} MB in "
            f"{time.monotonic() - t0:.1f} s"
        )
    finally:
        srv.destroy()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
