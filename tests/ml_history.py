"""Synthetic but realistic snapshot history written through the repository's real write path
(``repository.snapshots.store``, what ``take_snapshot`` uses), as bench/bench_report.py does:
cumulative counters advanced one interval at a time, so deltas, rates and sizes are derived by
opscore exactly as for a captured server.

The load has a daily shape (busy 08-18 UTC), quieter weekends, a known quiet window (Wednesday
03:00-04:00 UTC: almost no statement time), a database growing by ``growth`` bytes per hour,
and optional incidents (``spikes``: {step number: factor} multiplying the statement time)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from ops_core import api, repository
from ops_core.collectors.capture import Capture
from ops_core.collectors.catalog import SOURCES
from ops_core.repository import snapshots as writes

QUIET = (2, 3)  # Wednesday, 03:00 UTC


def _row(source: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SOURCES[source].names)
    row.update(values)
    return row


def aas_at(at: datetime, rng: random.Random) -> float:
    """Average active sessions the synthetic server has at ``at``."""
    if (at.weekday(), at.hour) == QUIET:
        return 0.05 * rng.uniform(0.8, 1.2)
    day = (
        1.0 + 3.0 * max(0.0, math.sin(math.pi * (at.hour - 7) / 12)) if 7 <= at.hour <= 19 else 1.0
    )
    if at.weekday() >= 5:
        day *= 0.6
    return day * rng.uniform(0.9, 1.1)


class History:
    """A synthetic server's snapshot history, written step by step through the repository's
    write path; its counters carry over, so :meth:`append` continues it (a later interval,
    another incident, a flat or growing size)."""

    def __init__(
        self,
        target: str,
        *,
        start: datetime,
        step: timedelta = timedelta(hours=1),
        growth: float = 50e6,
        seed: int = 7,
        max_connections: int | None = 100,
        dsn: str = "host=/nonexistent dbname=ml",
        reserved_connections: int = 0,
    ):
        self.rng = random.Random(seed)
        self.t = api.add_target(target, dsn, verify=False)
        self.reset = datetime(2026, 1, 1, tzinfo=UTC)
        self.start, self.step, self.growth = start, step, growth
        #: None: snapshots taken before opscore captured the connection limits
        self.max_connections = max_connections
        self.reserved_connections = reserved_connections  # PostgreSQL 16+ (for pg_use_...)
        self.i = 0
        self.stmt = dict.fromkeys(SOURCES["pg_stat_statements"].of_kind("counter"), 0)
        self.db = dict.fromkeys(SOURCES["pg_stat_database"].of_kind("counter"), 0)
        self.wal = dict.fromkeys(SOURCES["pg_stat_wal"].of_kind("counter"), 0)
        self.size = 5e9
        self.connections = 10.0  # added to the load-driven sessions (grow it: a leak)

    def append(
        self, steps: int, spikes: dict[int, float] | None = None
    ) -> list[tuple[int, datetime]]:
        """``steps`` more snapshots (the very first one is the baseline); ``spikes``: {step
        number (counted from the history's start): factor on the statement time}."""
        ids = []
        with repository.session() as repo:
            for _ in range(steps):
                ids.append(self._one(repo, (spikes or {}).get(self.i, 1.0)))
                self.i += 1
        return ids

    def _one(self, repo: Any, factor: float) -> tuple[int, datetime]:
        rng, step, i = self.rng, self.step, self.i
        stmt, db, wal = self.stmt, self.db, self.wal
        at = self.start + i * step
        secs = step.total_seconds()
        if i:
            aas = aas_at(at - step / 2, rng) * factor
            calls = int(aas * secs * 200)
            stmt["calls"] += calls
            stmt["total_exec_time"] += aas * secs * 1000.0
            stmt["rows"] += calls * 3
            stmt["shared_blks_hit"] += calls * 10
            stmt["shared_blks_read"] += calls // 20
            db["xact_commit"] += calls
            db["blks_hit"] += calls * 10
            db["blks_read"] += calls // 20
            wal["wal_bytes"] += int(calls * 300)
            wal["wal_records"] += calls
            self.size += self.growth * secs / 3600 * rng.uniform(0.8, 1.2)
        cap = Capture(
            target_id=self.t.target_id,
            captured_at=at,
            server_version_num=180001,
            postmaster_start=self.reset,
            datname="ml",
            with_sizes=True,
        )
        cap.rows["pg_stat_statements_info"] = [{"dealloc": 0, "stats_reset": self.reset}]
        cap.rows["pg_stat_statements"] = [
            _row(
                "pg_stat_statements",
                userid=10,
                dbid=16384,
                toplevel=True,
                queryid=42,
                stats_since=self.reset,
                **stmt,
            )
        ]
        if i == 0:
            cap.texts = [
                {
                    "queryid": 42,
                    "dbid": 16384,
                    "userid": 10,
                    "toplevel": True,
                    "datname": "ml",
                    "username": "app",
                    "query": "SELECT * FROM orders WHERE id = $1",
                }
            ]
        cap.rows["pg_stat_database"] = [
            _row(
                "pg_stat_database",
                datid=16384,
                datname="ml",
                numbackends=int(self.connections + 10 * aas_at(at, rng)),
                size_bytes=int(self.size),
                stats_reset=self.reset,
                **db,
            )
        ]
        cap.rows["pg_stat_wal"] = [_row("pg_stat_wal", stats_reset=self.reset, **wal)]
        cap.rows["settings"] = []  # every setting at its default
        if self.max_connections is not None:
            cap.rows["limits"] = [
                {
                    "max_connections": self.max_connections,
                    "superuser_reserved_connections": 3,
                    "reserved_connections": self.reserved_connections,
                }
            ]
        cap.sources = {k: "ok" for k in cap.rows}
        sid, _ = writes.store(repo, cap)
        return sid, at


def history_start(days: float) -> datetime:
    """Where ``days`` of history start so that they end at the last Thursday noon (UTC)."""
    # the history ends at the same point of the week whenever the suite runs (the last Thursday
    # 12:00 UTC before now): its weekly edges then fall on the same hours of the model, so what
    # the detector sees does not depend on the day and hour of the run (ending "now", the same
    # test failed on a Saturday evening: its 04:00 drops alerted)
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    back = (noon.weekday() - 3) % 7 or (7 if noon > datetime.now(UTC) else 0)
    return noon - timedelta(days=back) - timedelta(days=days)


def write_history(
    target: str,
    *,
    days: float,
    step: timedelta = timedelta(hours=1),
    spikes: dict[int, float] | None = None,
    growth: float = 50e6,
    seed: int = 7,
) -> list[tuple[int, datetime]]:
    """Register ``target`` (no server behind it) and store ``days`` of snapshots ending at the
    last Thursday noon (UTC); (snapshot id, captured_at) of each snapshot."""
    h = History(target, start=history_start(days), step=step, growth=growth, seed=seed)
    return h.append(int(timedelta(days=days) / step) + 1, spikes)
