"""A workload with known properties for the report tests (and manual report checks).

Between two snapshots, with the ASH sampler running in a thread:
- ``SELECT pg_sleep(0.5) AS rpt_sleeper`` run SLEEP_CALLS times (SLEEP_CALLS * 0.5 s elapsed);
- a row lock held by a blocker for LOCK_HOLD_S seconds while a waiter updates the same row;
- a sort of 100,000 md5 strings with work_mem = 64kB, which spills to temp (``rpt_spill``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from ops_core import api

from .helpers import WAIT_S

#: the workload's sessions (their statistics are flushed once they are gone)
APPS = ("rpt-setup", "rpt-sleeper", "rpt-blocker", "rpt-waiter", "rpt-spill")

SLEEP_S = 0.5
SLEEP_CALLS = 8
LOCK_HOLD_S = 2.5
SPILL_SQL = (
    "SELECT count(*) AS rpt_spill FROM (SELECT g, md5(g::text) AS h "
    "FROM generate_series(1, 100000) g ORDER BY h) s"
)


@dataclass
class Facts:
    target: str
    begin_id: int
    end_id: int
    begin_at: datetime
    end_at: datetime
    blocker_pid: int
    waiter_pid: int
    sleep_total_ms: float
    lock_hold_s: float


def _wait_for(dsn: str, query: str, params: tuple, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True, application_name="rpt-poll") as c:
        while time.monotonic() < deadline:
            if c.execute(query, params).fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {query} {params}")


def stats_flushed(dsn: str, apps: tuple[str, ...] = APPS) -> None:
    """Wait until the sessions named ``apps`` are gone: a backend flushes its table and
    database statistics to the shared stats as it exits, before it leaves pg_stat_activity."""
    _wait_for(
        dsn,
        "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = ANY(%s)",
        (list(apps),),
    )


def run(dsn: str, target: str, *, ash_interval_s: float = 0.5) -> Facts:
    """Run the workload on ``dsn`` (registered as ``target``) between two snapshots."""
    with psycopg.connect(dsn, autocommit=True, application_name="rpt-setup") as c:
        c.execute("CREATE TABLE IF NOT EXISTS rpt_t (id int PRIMARY KEY, v int)")
        c.execute("INSERT INTO rpt_t VALUES (1, 0) ON CONFLICT DO NOTHING")
    s1 = api.take_snapshot(target)
    begin_at = datetime.now(UTC)
    stop = threading.Event()
    sampler = threading.Thread(
        target=api.run_ash,
        kwargs={
            "target": target,
            "interval_s": ash_interval_s,
            "stop": stop,
            "flush_interval_s": 1.0,
        },
        daemon=True,
    )
    sampler.start()
    errors: list[BaseException] = []

    def sleeper() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True, application_name="rpt-sleeper") as c:
                for _ in range(SLEEP_CALLS):
                    c.execute("SELECT pg_sleep(%s) AS rpt_sleeper", (SLEEP_S,))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    blocker = psycopg.connect(dsn, application_name="rpt-blocker")
    blocker.execute("UPDATE rpt_t SET v = v + 1 WHERE id = 1")
    waiter = psycopg.connect(dsn, autocommit=True, application_name="rpt-waiter")
    waiter.execute("SET lock_timeout = '30s'")
    waiter_pid = waiter.info.backend_pid

    def wait() -> None:
        try:
            waiter.execute("UPDATE rpt_t SET v = v + 10 WHERE id = 1 RETURNING v AS rpt_waiter")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sleeper), threading.Thread(target=wait)]
    for t in threads:
        t.start()
    _wait_for(
        dsn,
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
        (waiter_pid,),
    )
    time.sleep(LOCK_HOLD_S)
    blocker_pid = blocker.info.backend_pid
    blocker.commit()
    blocker.close()
    with psycopg.connect(dsn, autocommit=True, application_name="rpt-spill") as c:
        c.execute("SET work_mem = '64kB'")
        for _ in range(2):
            c.execute(SPILL_SQL)
    for t in threads:
        t.join(WAIT_S)
    assert not any(t.is_alive() for t in threads), "the workload did not finish"
    waiter.close()
    time.sleep(max(1.0, 2 * ash_interval_s))  # the sampler sees the end of the workload
    stop.set()
    sampler.join(WAIT_S)
    assert not sampler.is_alive(), "the ASH sampler did not stop"
    if errors:
        raise errors[0]
    end_at = datetime.now(UTC)
    stats_flushed(dsn)
    s2 = api.take_snapshot(target)
    return Facts(
        target=target,
        begin_id=s1.snapshot_id,
        end_id=s2.snapshot_id,
        begin_at=begin_at,
        end_at=end_at,
        blocker_pid=blocker_pid,
        waiter_pid=waiter_pid,
        sleep_total_ms=SLEEP_S * SLEEP_CALLS * 1000.0,
        lock_hold_s=LOCK_HOLD_S,
    )
