"""Live locks and deadlocks of a target (now, not ASH history): pg_locks with the sessions
holding and waiting, the blocking tree (pg_blocking_pids), and deadlocks from the
pg_stat_database counters plus the log's "deadlock detected" entries when the log is
readable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from ..analysis.locktree import blocking_tree
from ..collectors import locks as reads
from .common import opscore_shown, utc_time
from .logs import read_log_entries
from .targets import resolve_target, target_session

__all__ = ["LiveLocks", "Deadlocks", "live_locks", "deadlocks"]


@dataclass
class LiveLocks:
    target: str
    at: datetime
    waiting: int  # lock requests not granted
    blocked_sessions: int
    root_blockers: list[int]  # pids at the top of a blocking tree
    tree: pd.DataFrame  # blocking tree, depth first (root, depth, pid, blocked_by, query...)
    locks: pd.DataFrame  # pg_locks rows with their sessions


@dataclass
class Deadlocks:
    target: str
    total: int  # pg_stat_database.deadlocks over every database, since each one's reset
    by_database: pd.DataFrame  # database, deadlocks, stats_reset
    log_readable: bool
    log_reason: str | None
    #: "deadlock detected" log entries (time, pid, database, user, message, detail, statement)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)


def live_locks(
    target: str | None = None, all_locks: bool = False, include_opscore: bool | None = None
) -> LiveLocks:
    """Locks now: by default the ones in conflict (requests waiting, and the locks of the
    sessions blocking them), ``all_locks`` for every row of pg_locks; and who blocks whom."""
    t = resolve_target(target)
    with target_session(t) as conn:
        df = reads.locks(conn, all_locks=all_locks, include_opscore=opscore_shown(include_opscore))
        sessions = reads.blocking_sessions(conn)
        now = reads.server_now(conn)
    tree = blocking_tree(sessions)
    cols = ["root", "depth", "pid", "blocked_by", "waiters", "total_waiters", "in_cycle",
            "usename", "database", "application_name", "state", "wait_event_type", "wait_event",
            "waiting_s", "xact_age_s", "query"]  # fmt: skip
    tree_df = pd.DataFrame(tree, columns=cols)
    return LiveLocks(
        target=t.name,
        at=now,
        waiting=int((~df["granted"]).sum()) if len(df) else 0,
        blocked_sessions=sum(1 for s in sessions if s["blocked_by"]),
        root_blockers=[r["pid"] for r in tree if r["depth"] == 0],
        tree=tree_df,
        locks=df,
    )


def deadlocks(target: str | None = None, since: datetime | str | None = None) -> Deadlocks:
    """Deadlocks: the counters of pg_stat_database (every database) and, when the server log is
    readable, its "deadlock detected" entries (since ``since``) with the processes and
    statements involved."""
    t = resolve_target(target)
    b = utc_time(since, "since") if since is not None else None
    with target_session(t) as conn:
        counters = reads.deadlock_counters(conn)
    by_db = pd.DataFrame(counters, columns=["database", "deadlocks", "stats_reset"])
    src, entries, _ = read_log_entries(t, 16 * 1024 * 1024)
    found = [
        x
        for x in entries
        if "deadlock detected" in (x["message"] or "")
        and (b is None or (x["time"] is not None and x["time"] >= b))
    ]
    cols = ["time", "pid", "database", "user", "message", "detail", "statement"]
    return Deadlocks(
        target=t.name,
        total=int(by_db["deadlocks"].sum()) if len(by_db) else 0,
        by_database=by_db,
        log_readable=src.path is not None,
        log_reason=src.reason,
        events=pd.DataFrame(found, columns=cols),
    )
