"""Index advice side by side: opscore's SQL Tuning Advisor vs pg_qualstats' index advisor (the
advisor PoWA shows: predicates weighted by how often they filtered rows, costed with hypopg),
on the same PostgreSQL 15 server, schema and workload.

The schema is generated (four tables, no secondary index) and the workload is 12 statements
whose predicates, joins and ORDER BY want indexes that are missing. Steps:

1. one warm-up pass of the workload (it feeds pg_stat_statements and pg_qualstats), between two
   opscore snapshots; then the baseline pass, timed per statement;
2. each advisor is run and timed: opscore ``create_tuning_task(top=N)`` +
   ``execute_tuning_task`` (hypopg is created in the database, so index advice is costed with
   it; read-only statements are executed in rolled-back transactions), and
   ``pg_qualstats_index_advisor()`` with its defaults (PoWA's);
3. per advisor: its indexes are costed together with hypopg (the estimated total: each
   statement's baseline time scaled by its cost after / cost before), then built for real,
   analysed, and the same workload pass (same parameter values) is timed; then dropped.

Printed per advisor: advisor run time, index count, statements improved (measured 2x or
better), the estimated and measured total time of the workload.

Set-up (Debian, as root, once): ``bench/sqltune-bench-setup`` (a cluster of its own on port
5497 with pg_stat_statements, pg_qualstats and hypopg; the test suite's cluster is left alone).

    PYTHONPATH=. python bench/bench_sqltune_vs_qualstats.py [--calls 20] [--scale 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ops_core.collectors.live import create_plan_role

ADMIN = "host=/var/run/postgresql port=5497 user=postgres dbname=postgres"
DB = "bench_sqltune"
REPO_DB = "opscore_sqltune_bench"
TARGET = "sqltune_bench"

SCHEMA = [
    "CREATE TABLE customers (id int PRIMARY KEY, email text, city int, segment int, created date)",
    "INSERT INTO customers SELECT g, 'c' || g || '@example.com', g % 50, (g / 50) % 10, "
    "date '2020-01-01' + g % 1500 FROM generate_series(1, 100000 * %(s)s) g",
    "CREATE TABLE orders (id int PRIMARY KEY, customer_id int, status int, created_at "
    "timestamptz, total numeric, ref text)",
    "INSERT INTO orders SELECT g, 1 + (g::bigint * 7919) % (100000 * %(s)s), g % 5, "
    "timestamptz '2024-01-01 00:00+00' + g * interval '1 minute', (g % 997) / 3.0, "
    "'R' || lpad(g::text, 9, '0') FROM generate_series(1, 300000 * %(s)s) g",
    "CREATE TABLE events (id int PRIMARY KEY, account int, kind int, at timestamptz, payload text)",
    "INSERT INTO events SELECT g, g % 20000, g % 17, timestamptz '2024-01-01 00:00+00' "
    "+ g * interval '10 seconds', md5(g::text) FROM generate_series(1, 300000 * %(s)s) g",
    "CREATE TABLE products (id int PRIMARY KEY, sku text, category int, price numeric)",
    "INSERT INTO products SELECT g, 'SKU-' || g, g % 200, (g % 1000) / 7.0 "
    "FROM generate_series(1, 50000 * %(s)s) g",
    "VACUUM ANALYZE",
]


def _c(r: random.Random, s: int) -> int:
    return r.randint(1, 100000 * s)


#: name -> (SQL with %s, parameters drawn from a seeded generator)
WORKLOAD = {
    "customer_by_email": (
        "SELECT id, city FROM customers WHERE email = %s",
        lambda r, s: (f"c{_c(r, s)}@example.com",),
    ),
    "orders_of_customer": (
        "SELECT id, total FROM orders WHERE customer_id = %s",
        lambda r, s: (_c(r, s),),
    ),
    "order_by_ref": (
        "SELECT id, status FROM orders WHERE ref = %s",
        lambda r, s: (f"R{r.randint(1, 300000 * s):09d}",),
    ),
    "orders_in_hour": (
        "SELECT sum(total) FROM orders WHERE created_at >= %s AND created_at < %s",
        lambda r, s: ("2024-03-01 00:00+00", f"2024-03-01 0{r.randint(1, 3)}:00+00"),
    ),
    "account_events_of_kind": (
        "SELECT id FROM events WHERE account = %s AND kind = %s",
        lambda r, s: (r.randint(0, 19999), r.randint(0, 16)),
    ),
    "latest_events": (
        "SELECT id, at FROM events WHERE account = %s ORDER BY at DESC LIMIT 10",
        lambda r, s: (r.randint(0, 19999),),
    ),
    "product_by_sku": (
        "SELECT id, price FROM products WHERE sku = %s",
        lambda r, s: (f"SKU-{r.randint(1, 50000 * s)}",),
    ),
    "cheap_in_category": (
        "SELECT id FROM products WHERE category = %s AND price < %s",
        lambda r, s: (r.randint(0, 199), 20),
    ),
    "customers_in_city_segment": (
        "SELECT count(*) FROM customers WHERE city = %s AND segment = %s",
        lambda r, s: (r.randint(0, 49), r.randint(0, 9)),
    ),
    "orders_by_email": (
        "SELECT o.id, o.total FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE c.email = %s",
        lambda r, s: (f"c{_c(r, s)}@example.com",),
    ),
    "customers_created": (
        "SELECT count(*) FROM customers WHERE created = %s",
        lambda r, s: (f"2022-0{r.randint(1, 9)}-1{r.randint(0, 9)}",),
    ),
    "open_orders_of_customer": (
        "SELECT id FROM orders WHERE customer_id = %s AND status = %s",
        lambda r, s: (_c(r, s), r.randint(0, 4)),
    ),
}


@dataclass
class Outcome:
    advisor: str
    run_s: float
    indexes: list[str]
    estimated_ms: float = 0.0
    measured_ms: float = 0.0
    improved: int = 0
    notes: list[str] = field(default_factory=list)


def _params(calls: int, scale: int) -> dict[str, list[tuple]]:
    r = random.Random(42)
    return {k: [gen(r, scale) for _ in range(calls)] for k, (_, gen) in WORKLOAD.items()}


def run_pass(dsn: str, params: dict[str, list[tuple]]) -> dict[str, float]:
    """The workload once (the given parameter values): total ms per statement."""
    out = {}
    with psycopg.connect(dsn, autocommit=True, application_name="bench-app") as c:
        for name, (text, _) in WORKLOAD.items():
            t0 = time.perf_counter()
            for p in params[name]:
                c.execute(text, p).fetchall()
            out[name] = (time.perf_counter() - t0) * 1000
    return out


def _cost(c: psycopg.Connection, text: str, p: tuple) -> float:
    """The planner's total cost of ``text`` with parameters ``p`` (EXPLAIN, not executed)."""
    q = sql.SQL("EXPLAIN (FORMAT JSON) ") + sql.SQL(text)  # type: ignore[arg-type]
    return float(c.execute(q, p).fetchone()[0][0]["Plan"]["Total Cost"])


def estimate(dsn: str, ddls: list[str], params: dict, base: dict[str, float]) -> float:
    """The workload's time estimated with the advisor's indexes made hypothetical (hypopg):
    each statement's baseline scaled by its cost after / before."""
    total = 0.0
    with psycopg.connect(dsn, autocommit=True) as c:
        before = {n: _cost(c, WORKLOAD[n][0], params[n][0]) for n in WORKLOAD}
        for d in ddls:
            c.execute("SELECT * FROM hypopg_create_index(%s)", (d.replace(" CONCURRENTLY", ""),))
        try:
            for n in WORKLOAD:
                after = _cost(c, WORKLOAD[n][0], params[n][0])
                total += base[n] * min(1.0, after / before[n]) if before[n] else base[n]
        finally:
            c.execute("SELECT hypopg_reset()")
    return total


def apply_and_measure(
    dsn: str, o: Outcome, params: dict, base: dict[str, float], rounds: int
) -> None:
    names = []
    with psycopg.connect(dsn, autocommit=True) as c:
        for i, d in enumerate(o.indexes):
            # named by the bench so it can drop them (the advisors' own names may clash)
            name = f"bench_{o.advisor}_{i}"
            on = d.split(" ON ", 1)[1]
            # the name quoted as an identifier; the rest is the advisor's DDL tail as it gave
            # it, run on the bench's own database
            c.execute(sql.SQL("CREATE INDEX {} ON ").format(sql.Identifier(name)) + sql.SQL(on))
            names.append(name)
        c.execute("ANALYZE")
    try:
        runs = [run_pass(dsn, params) for _ in range(rounds)]
        per = {n: statistics.median(r[n] for r in runs) for n in WORKLOAD}
        o.measured_ms = sum(per.values())
        o.improved = sum(1 for n in WORKLOAD if per[n] * 2 <= base[n])
    finally:
        with psycopg.connect(dsn, autocommit=True) as c:
            for name in names:
                c.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))


def opscore_advice(dsn: str, admin: str, top: int) -> tuple[Outcome, int, int]:
    from ops_core import api

    t0 = time.perf_counter()
    task = api.create_tuning_task(TARGET, top=top)
    api.execute_tuning_task(task.task_id, runs=1, timeout_ms=20000)
    run_s = time.perf_counter() - t0
    recs = [r for r in api.tuning_recommendations(task.task_id) if r.type == "index"]
    # an index covered by a wider one of the same task (its why_not says so) is not built
    ddls = list(dict.fromkeys(r.sql for r in recs if r.sql and "covered_by" not in r.evidence))
    o = Outcome("opscore", run_s, ddls)
    o.notes.append(
        f"task {task.task_id}: {len(api.get_tuning_task(task.task_id).statements)} statements, "
        f"methods {sorted({r.method or '-' for r in recs})}"
    )
    return o, task.task_id, len(recs)


def qualstats_advice(dsn: str) -> Outcome:
    with psycopg.connect(dsn, autocommit=True) as c:
        t0 = time.perf_counter()
        doc = c.execute("SELECT pg_qualstats_index_advisor()").fetchone()[0]
        run_s = time.perf_counter() - t0
    doc = doc if isinstance(doc, dict) else json.loads(doc)
    # the advisor can give the same index twice (from two quals): built once
    ddls = list(
        dict.fromkeys(i["ddl"] if isinstance(i, dict) else i for i in doc.get("indexes") or [])
    )
    o = Outcome("qualstats", run_s, ddls)
    o.notes.append(f"unoptimised quals: {len(doc.get('unoptimised') or [])}")
    return o


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--admin-dsn", default=ADMIN)
    ap.add_argument("--calls", type=int, default=20, help="executions per statement per pass")
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="timed passes per configuration")
    args = ap.parse_args()
    dsn = make_conninfo(args.admin_dsn, dbname=DB)
    with psycopg.connect(args.admin_dsn, autocommit=True) as c:
        v = c.execute("SHOW server_version").fetchone()[0]
        for db in (DB, REPO_DB):
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        # the README's set-up SQL: opscore plans and executes as this least-privilege role
        create_plan_role(c)
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as c:
        for ext in ("pg_stat_statements", "pg_qualstats", "hypopg"):
            c.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(ext)))
        for stmt in SCHEMA:
            c.execute(stmt.replace("%(s)s", str(args.scale)))
        c.execute("SELECT pg_stat_statements_reset(), pg_qualstats_reset()")
    print(f"PostgreSQL {v}; schema built in {time.perf_counter() - t0:.1f} s")
    os.environ.setdefault("OPSCORE_HOME", "/tmp/opscore-sqltune-bench")
    os.environ["OPSCORE_REPOSITORY_DSN"] = make_conninfo(args.admin_dsn, dbname=REPO_DB)
    os.environ["OPSCORE_SNAPSHOT_DATABASES"] = f'["{DB}"]'
    from ops_core import api

    api.init_repository()
    api.add_target(TARGET, dsn)
    params = _params(args.calls, args.scale)
    api.take_snapshot(TARGET)
    run_pass(dsn, params)  # warm-up: what both advisors learn from
    api.take_snapshot(TARGET)
    runs = [run_pass(dsn, params) for _ in range(args.rounds)]
    base = {n: statistics.median(r[n] for r in runs) for n in WORKLOAD}
    base_total = sum(base.values())
    print(f"workload: {len(WORKLOAD)} statements x {args.calls} calls; baseline "
          f"{base_total:,.0f} ms (median of {args.rounds} passes per statement)")  # fmt: skip
    # pg_qualstats first: opscore's verification runs would add to what pg_qualstats sampled
    qs = qualstats_advice(dsn)
    ops, task_id, _ = opscore_advice(dsn, args.admin_dsn, top=len(WORKLOAD) + 5)
    for o in (ops, qs):
        o.estimated_ms = estimate(dsn, o.indexes, params, base)
        apply_and_measure(dsn, o, params, base, args.rounds)
    print()
    print(f"{'advisor':<10} {'run s':>8} {'indexes':>8} {'improved':>9} "
          f"{'estimated ms':>13} {'measured ms':>12}")  # fmt: skip
    print(f"{'baseline':<10} {'':>8} {0:>8} {'':>9} {base_total:>13,.0f} {base_total:>12,.0f}")
    for o in (ops, qs):
        print(f"{o.advisor:<10} {o.run_s:>8.2f} {len(o.indexes):>8} "
              f"{o.improved:>5}/{len(WORKLOAD):<3} {o.estimated_ms:>13,.0f} "
              f"{o.measured_ms:>12,.0f}")  # fmt: skip
    for o in (ops, qs):
        print(f"\n{o.advisor}: " + "; ".join(o.notes))
        for d in o.indexes:
            print(f"  {d}")


if __name__ == "__main__":
    main()
