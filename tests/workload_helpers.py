"""Small server-side readings shared by the workload and fault tests (no fixtures)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg

from .helpers import WAIT_S


def one(dsn: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(dsn, autocommit=True, application_name="opscore-tests") as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def pgss(dsn: str, pattern: str, column: str = "calls") -> int:
    """Sum of a pg_stat_statements column over this database's statements LIKE pattern."""
    return int(
        one(
            dsn,
            f"SELECT coalesce(sum({column}), 0) FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = current_database() AND s.query LIKE %s",
            (pattern,),
        )
    )


def eventually(check: Callable[[], Any], timeout: float = WAIT_S, step: float = 0.2) -> Any:
    """Poll until check() is truthy (statistics reach the views with a delay of ~1 s, many
    more on a busy machine). The deadline is at least WAIT_S whatever ``timeout`` says: the
    callers hold their fault or load until the check is done, so a long deadline costs
    nothing when things go right, and a short one fails when the machine is busy."""
    deadline = time.monotonic() + max(timeout, WAIT_S)
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(step)
        value = check()
    return value


def alive(dsn: str, pids: list[int]) -> int:
    return int(one(dsn, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)))
