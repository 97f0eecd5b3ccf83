"""Benchmark: opscore's auto-indexing vs Dexter-style advice on the same workload and server.

Prints figures, asserts nothing. The workload (one fresh database on the server given):

- "Orders" (``--rows``): 300 lookups by ``customer_id`` and 300 by ``status`` plus a
  ``created_at`` range (no index serves either: two known missing indexes);
- "Items" (``--rows``/2): 300 lookups by ``order_id`` (missing index);
- "Events" (``--rows``/2): ``--inserts`` single-row INSERTs (batched in transactions) and 3
  lookups by ``ref``: an index on ``ref`` is the harmful one — each lookup gets much cheaper,
  so a rule that looks only at a query's cost (Dexter: keep a hypothetical index when the
  planner's cost of a query drops >= 50 %) adds it, while every insert now maintains it.

Three measured rounds of the same workload (time from pg_stat_statements between snapshots,
the workload's statements only): **before**; **after opscore's cycle** (implement mode: its
chosen set built with CREATE INDEX CONCURRENTLY through the actions module and verified by
execution; the cycle's wall time printed); **after Dexter-style advice** (opscore's indexes
dropped, then, from the same candidate list and the same costs — hypopg where installed, else
opscore's labelled estimate — for each statement the candidate with the lowest cost if it
drops the cost >= 50 %, no write cost, no budget). Also: the greedy choice vs the exact best
subset (enumeration) on this case — the optimality gap.

Usage (the machine's PostgreSQL 15 has hypopg; the repository is a fresh database there)::

    python bench/bench_autoindex.py [--dsn "host=/var/run/postgresql user=postgres"]
        [--rows 200000] [--inserts 60000] [--keep]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid

import psycopg
from psycopg import sql

WORKLOAD_TAG = "aixbench"


def _setup(dsn: str, rows: int) -> bool:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        hyp = c.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone()
        if hyp:
            c.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
        c.execute(
            'CREATE TABLE "Orders" (id bigint PRIMARY KEY, customer_id int, status text, '
            "created_at timestamptz, amount numeric)"
        )
        c.execute(
            "INSERT INTO \"Orders\" SELECT g, (g * 7919) %% %s, (ARRAY['new','paid',"
            "'shipped','void'])[1 + g %% 4], now() - g * interval '1 minute', g %% 1000 "
            "FROM generate_series(1, %s) g",
            (rows // 20, rows),
        )
        c.execute('CREATE TABLE "Items" (id bigint PRIMARY KEY, order_id bigint, sku text)')
        c.execute(
            'INSERT INTO "Items" SELECT g, (g::bigint * 104729) %% %s, md5(g::text) '
            "FROM generate_series(1, %s) g",
            (rows, rows // 2),
        )
        c.execute('CREATE TABLE "Events" (id bigserial PRIMARY KEY, ref int, payload text)')
        c.execute(
            'INSERT INTO "Events" (ref, payload) SELECT g %% 50000, md5(g::text) '
            "FROM generate_series(1, %s) g",
            (rows // 2,),
        )
        for t in ("Orders", "Items", "Events"):
            c.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(t)))
    return bool(hyp)


def _workload(dsn: str, rows: int, inserts: int) -> None:
    with psycopg.connect(dsn, autocommit=True, application_name=WORKLOAD_TAG) as c:
        for i in range(300):
            c.execute(
                'SELECT id, amount FROM "Orders" WHERE customer_id = %s', ((i * 37) % (rows // 20),)
            ).fetchall()
            c.execute(
                'SELECT count(*) FROM "Orders" WHERE status = %s AND created_at > '
                "now() - %s::interval",
                (("new", "paid", "shipped", "void")[i % 4], f"{30 + i % 60} minutes"),
            ).fetchall()
            c.execute('SELECT sku FROM "Items" WHERE order_id = %s', ((i * 13) % rows,)).fetchall()
        for i in range(3):
            c.execute('SELECT id FROM "Events" WHERE ref = %s', (i,)).fetchall()
    with psycopg.connect(dsn, application_name=WORKLOAD_TAG) as c:
        for b in range(0, inserts, 500):
            with c.cursor() as cur:
                cur.executemany(
                    'INSERT INTO "Events" (ref, payload) VALUES (%s, %s)',
                    [(i % 50000, "x") for i in range(b, min(b + 500, inserts))],
                )
            c.commit()


def _round(api, target: str, dsn: str, rows: int, inserts: int) -> dict:
    a = api.take_snapshot(target)
    _workload(dsn, rows, inserts)
    b = api.take_snapshot(target)
    df = api.top_statements(target, a.snapshot_id, b.snapshot_id, limit=200)
    db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    df = df[(df["datname"] == db) & df["query"].str.contains('"Orders"|"Items"|"Events"')]
    reads = df[df["query"].str.lstrip().str.upper().str.startswith("SELECT")]
    writes = df[df["query"].str.lstrip().str.upper().str.startswith("INSERT")]
    return {
        "total_ms": float(df["total_ms"].sum()),
        "read_ms": float(reads["total_ms"].sum()),
        "write_ms": float(writes["total_ms"].sum()),
        "mean_ms": {int(q): float(m) for q, m in zip(df["queryid"], df["mean_ms"], strict=True)},
        "range": (a.snapshot_id, b.snapshot_id),
    }


def _apply(dsn: str, ddls: list[str]) -> None:
    """Only these indexes (besides primary keys) on the three tables (the bench owns them)."""
    with psycopg.connect(dsn, autocommit=True) as c:
        for (name,) in c.execute(
            "SELECT indexrelid::regclass::text FROM pg_index i JOIN pg_class t ON t.oid = "
            "i.indrelid WHERE t.relname IN ('Orders','Items','Events') AND NOT i.indisprimary"
        ).fetchall():
            c.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))  # regclass text: quoted
        for d in ddls:
            c.execute(sql.SQL(d.replace("CONCURRENTLY ", "").rstrip(";")))  # type: ignore[arg-type]
        for t in ("Orders", "Items", "Events"):
            c.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(t)))


def _reset(dsn: str, events_max: int) -> None:
    """Back to the same "Events" size after a round's inserts."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute('DELETE FROM "Events" WHERE id > %s', (events_max,))
        c.execute('VACUUM "Events"')


def _median(rounds: list[dict]) -> dict:
    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    qids = set.intersection(*(set(r["mean_ms"]) for r in rounds))
    return {
        "total_ms": med([r["total_ms"] for r in rounds]),
        "read_ms": med([r["read_ms"] for r in rounds]),
        "write_ms": med([r["write_ms"] for r in rounds]),
        "mean_ms": {q: med([r["mean_ms"][q] for r in rounds]) for q in qids},
    }


def _indexes(dsn: str) -> list[tuple[str, int]]:
    with psycopg.connect(dsn) as c:
        return c.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname IN ('Orders','Items','Events')"
            " AND NOT i.indisprimary ORDER BY 1"
        ).fetchall()


def _improved(before: dict, after: dict) -> int:
    return sum(
        1
        for q, m in before["mean_ms"].items()
        if q in after["mean_ms"] and after["mean_ms"][q] < 0.8 * m
    )


def _line(name: str, r: dict, before: dict, idx: list[tuple[str, int]]) -> str:
    return (
        f"{name:<22} total {r['total_ms']:9.1f} ms  reads {r['read_ms']:9.1f}  writes "
        f"{r['write_ms']:8.1f}  improved {_improved(before, r)}/{len(before['mean_ms'])}  "
        f"indexes {len(idx)} ({sum(s for _, s in idx) / 2**20:.1f} MB)"
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dsn", default="host=/var/run/postgresql port=5432 user=postgres")
    p.add_argument("--rows", type=int, default=200000)
    p.add_argument("--inserts", type=int, default=60000)
    p.add_argument("--rounds", type=int, default=3, help="alternated rounds per configuration")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    tag = uuid.uuid4().hex[:8]
    admin = psycopg.conninfo.make_conninfo(args.dsn, dbname="postgres")
    tdb, rdb = f"aixbench_{tag}", f"aixbench_repo_{tag}"
    with psycopg.connect(admin, autocommit=True) as c:
        for d in (tdb, rdb):
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(d)))
    dsn = psycopg.conninfo.make_conninfo(args.dsn, dbname=tdb)
    os.environ["OPSCORE_REPOSITORY_DSN"] = psycopg.conninfo.make_conninfo(args.dsn, dbname=rdb)
    os.environ.setdefault("OPSCORE_HOME", tempfile.mkdtemp(prefix="aixbench-"))
    from ops_core import api
    from ops_core.analysis import autoindex as ai
    from ops_core.analysis import autoindex_choice as choice
    from ops_core.collectors import live

    try:
        with psycopg.connect(admin, autocommit=True) as c:
            live.create_plan_role(c)
        hyp = _setup(dsn, args.rows)
        api.add_target("aixbench", dsn)
        with psycopg.connect(dsn, autocommit=True) as c:
            version = c.execute("SHOW server_version").fetchone()[0]
        print(f"PostgreSQL {version}, hypopg {'yes' if hyp else 'no'}; {args.rows} rows, "
              f"{args.inserts} inserts per round")  # fmt: skip
        with psycopg.connect(dsn) as c:
            events_max = c.execute('SELECT max(id) FROM "Events"').fetchone()[0]
        _workload(dsn, args.rows, args.inserts)  # warm-up (caches, pg_stat_statements entries)
        _reset(dsn, events_max)
        before = _round(api, "aixbench", dsn, args.rows, args.inserts)
        _reset(dsn, events_max)
        # opscore's cycle
        api.set_indexing_config("aixbench", mode="implement", max_builds=10,
                                validation_hours=24, unused_days=365)  # fmt: skip
        t0 = time.monotonic()
        run = api.run_indexing("aixbench", begin_id=before["range"][0], end_id=before["range"][1])
        cycle_s = time.monotonic() - t0
        cands = run.candidates
        est_saved = sum(c.saved_ms for c in cands.chosen)
        greedy = choice.net_of(cands.chosen)
        try:
            _, exact = choice.choose_exact(cands.candidates, cands.budget_mb * 2**20)
            gap = f"{100 * (exact - greedy) / exact:.1f} %" if exact > 0 else "n/a"
        except ValueError as exc:
            exact, gap = float("nan"), str(exc)
        # Dexter-style: per statement, the lowest-cost candidate if the cost drops >= 50 %
        dexter: dict[tuple, ai.IndexCandidate] = {}
        best: dict[int, tuple[float, ai.IndexCandidate]] = {}
        for c in cands.candidates:
            for s in c.statements:
                if s.get("cost_before") and s.get("cost_after") is not None and s.get("used"):
                    ratio = s["cost_after"] / s["cost_before"]
                    q = int(s["queryid"])
                    if ratio <= 0.5 and (q not in best or ratio < best[q][0]):
                        best[q] = (ratio, c)
        for _, c in best.values():
            dexter[c.key] = c
        sets = {"before": [], "after opscore": [c.ddl for c in cands.chosen],
                "after Dexter-style": [d.ddl for d in dexter.values()]}  # fmt: skip
        results: dict[str, list[dict]] = {k: [] for k in sets}
        sizes: dict[str, list[tuple[str, int]]] = {}
        for _ in range(args.rounds):  # alternate the three configurations, medians below
            for name, ddls in sets.items():
                _apply(dsn, ddls)
                sizes[name] = _indexes(dsn)
                results[name].append(_round(api, "aixbench", dsn, args.rows, args.inserts))
                _reset(dsn, events_max)
        med = {k: _median(v) for k, v in results.items()}
        print(f"opscore chose {len(cands.chosen)} of {len(cands.candidates)} candidates "
              f"({cands.method}): " + ", ".join(c.label
                                                 for c in cands.chosen))  # fmt: skip
        print("  not chosen: " + "; ".join(f"{c.label}: {c.verdict}"
                                           for c in cands.candidates if not c.chosen))  # fmt: skip
        print("  steps: " + "; ".join(f"{s.action} {s.index} {s.outcome}" for s in run.steps))
        print(f"Dexter-style chose {len(dexter)}: " + ", ".join(c.label for c in dexter.values()))
        print(f"measured: median of {args.rounds} alternated rounds per configuration")
        for name in sets:
            print(_line(name, med[name], med["before"], sizes[name]))
        print(f"opscore cycle: {cycle_s:.1f} s; estimated saving of its set {est_saved:.1f} ms "
              f"per round; greedy net {greedy:.1f} ms vs exact best {exact:.1f} ms "
              f"(gap {gap})")  # fmt: skip
    finally:
        if not args.keep:
            try:
                api.remove_target("aixbench")
            except Exception:  # noqa: BLE001 - best effort clean-up
                pass
            with psycopg.connect(admin, autocommit=True) as c:
                for d in (tdb, rdb):
                    c.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(d))
                    )


if __name__ == "__main__":
    main()
