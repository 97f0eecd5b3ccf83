"""A real workload for the app and Performance Hub tests: a distinct statement run N times
between two real snapshots, with the ASH sampler running in a thread during its pg_sleep."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import psycopg

from ops_core import api

from .helpers import reset_repository

#: the workload's own top statement: pg_sleep makes it dominate DB time and ASH
TOP_SQL = "SELECT count(*), max(amount), pg_sleep(%s) FROM apptest_orders WHERE customer = %s"
#: a statement without constants: explainable on every version
PLAIN_SQL = "SELECT count(*) FROM apptest_orders"


@dataclass
class Workload:
    target: str
    dsn: str
    top_queryid: int
    plain_queryid: int
    begin_id: int
    end_id: int
    ash_rows: int


def _queryid(dsn: str, like: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(
            "SELECT queryid FROM pg_stat_statements WHERE query LIKE %s "
            "AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY calls DESC LIMIT 1",
            (like,),
        ).fetchone()
    assert row, f"no pg_stat_statements entry like {like!r}"
    return int(row[0])


def run_workload(
    dsn: str, target: str = "shop", n: int = 40, sleep_s: float = 0.05, workers: int = 2
) -> Workload:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE apptest_orders (id int PRIMARY KEY, customer int, amount numeric)")
        c.execute(
            "INSERT INTO apptest_orders SELECT g, g % 100, g * 1.5 FROM generate_series(1, 5000) g"
        )
        c.execute("ANALYZE apptest_orders")
    api.add_target(target, dsn)
    s1 = api.take_snapshot(target)
    sampler = api.ash_sampler(target, interval_s=0.1, flush_interval_s=0.5)
    sampler.start()

    def work(k: int) -> None:
        with psycopg.connect(dsn, autocommit=True, application_name=f"apptest-{k}") as c:
            for i in range(n):
                c.execute(TOP_SQL, (sleep_s, i % 100))
            for _ in range(5):
                c.execute(PLAIN_SQL)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = sampler.stop()
    sampler.close()
    s2 = api.take_snapshot(target)
    return Workload(
        target=target,
        dsn=dsn,
        top_queryid=_queryid(dsn, "%apptest_orders WHERE customer%"),
        plain_queryid=_queryid(dsn, "SELECT count(*) FROM apptest_orders"),
        begin_id=s1.snapshot_id,
        end_id=s2.snapshot_id,
        ash_rows=stats.rows_written,
    )


def fresh_repository() -> None:
    """An empty, current repository (a clone of the session's migrated template)."""
    reset_repository()
