"""A pool of repository connections for a long-lived process that opens many short sessions
(the HTTP API: every request is one or more ``repository.session()``).

Off by default (the CLI, the app and the flows connect per session). :func:`enable` turns it on
for this process: ``repository.session()`` then borrows a connection instead of opening one
(connecting cost ~20 ms of wall time and a server backend per session under the API's burst;
a borrowed one ~0.1 ms). The schema is checked once, when the pool opens. A returned
connection is reset (settings, temporary tables, advisory locks, autocommit) before the next
borrower; a broken one is replaced. The pool serves only the repository it was opened for: a
process whose settings point elsewhere later connects directly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

__all__ = ["enable", "disable", "borrow", "enabled"]

_lock = threading.Lock()
_pool = None  # psycopg_pool.ConnectionPool
_key: object = None  # what the pool serves: (repository_dsn, home, database) of the settings


def _reset(conn: psycopg.Connection) -> None:
    if not conn.autocommit:
        conn.autocommit = True
    conn.execute("RESET ALL; DISCARD TEMP; SELECT pg_advisory_unlock_all() /* opscore */")


def enable(
    key: object, dsn: str, *, min_size: int = 2, max_size: int = 20, application_name: str
) -> None:
    """Open the process's pool on ``dsn`` for the settings ``key`` (replacing another)."""
    from psycopg_pool import ConnectionPool

    global _pool, _key
    with _lock:
        if _pool is not None and _key == key:
            return
        old, _pool, _key = _pool, None, None
        if old is not None:
            old.close()
        pool = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "application_name": application_name},
            reset=_reset,
            check=ConnectionPool.check_connection,
            name="opscore-repository",
            open=False,
        )
        pool.open(wait=True, timeout=30)
        _pool, _key = pool, key


def disable() -> None:
    global _pool, _key
    with _lock:
        old, _pool, _key = _pool, None, None
    if old is not None:
        old.close()


def enabled() -> bool:
    return _pool is not None


@contextmanager
def borrow(key: object) -> Iterator[psycopg.Connection | None]:
    """A pooled connection when the pool is open for the settings ``key`` (None: connect
    directly)."""
    pool = _pool
    if pool is None or key != _key:
        yield None
        return
    with pool.connection() as conn:
        yield conn
