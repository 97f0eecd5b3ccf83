"""The result cache of the service layer's expensive reads (day-range analyses: load profile,
top SQL, ASH DB time), shared by the HTTP API, the CLI, the app and the flows of one process.

An answer is cached under (repository, operation, target, its arguments) and valid for the
target's data version (``repository.data_version``: its snapshots and newest ASH samples), so
a repeated read costs one index lookup until a new snapshot or sample lands; concurrent
identical reads compute once. Bounds: ``OPSCORE_RESULT_CACHE_MB`` (default 64, 0 turns it off)
and ``OPSCORE_RESULT_CACHE_TTL_S`` (default 600): see ``ops_core.model.cache``.

Also the repository connection pool such a process opts into (:func:`use_repository_pool`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import asdict
from typing import Any, TypeVar

import psycopg

from .. import repository
from ..model.cache import RESULTS
from ..repository.data_version import target_version

__all__ = ["cached_read", "result_cache_stats", "clear_result_cache", "use_repository_pool"]

T = TypeVar("T")


def cached_read(
    repo: psycopg.Connection,
    operation: str,
    target_id: int,
    arguments: Hashable,
    compute: Callable[[], T],
) -> T:
    """``compute()``'s answer, reused while the target's data version is unchanged.
    ``arguments`` must hold everything the answer depends on besides the target's data
    (resolved defaults included)."""
    if not RESULTS.enabled:
        return compute()
    info = repo.info
    key = ((info.host, info.port, info.dbname), operation, target_id, arguments)
    return RESULTS.get(key, target_version(repo, target_id), compute)


def result_cache_stats() -> dict[str, Any]:
    """Hits, misses, shared (single-flight) answers, evictions, entries and bytes held."""
    return asdict(RESULTS.stats())


def clear_result_cache() -> None:
    RESULTS.clear()


def use_repository_pool(*, min_size: int = 2, max_size: int = 20) -> None:
    """From now on this process borrows repository connections from a pool (a long-lived
    server opening many short sessions: the HTTP API); see ``ops_core.repository.pool``."""
    repository.use_pool(min_size=min_size, max_size=max_size)
