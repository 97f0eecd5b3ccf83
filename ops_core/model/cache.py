"""A bounded, versioned result cache with single flight (no I/O: the caller supplies the
version and the computation).

An entry is ``key -> (version, value)``. A lookup with the same key and the same version is a
hit; any other version is a miss that replaces the entry (the version is what the data the
answer came from looks like now, e.g. a target's last snapshot and last ASH sample, so a new
snapshot makes every older answer of that target unreachable). Entries also expire after
``ttl_s`` (a bound on staleness for changes the version does not see) and the least recently
used go first when the cache holds more than ``max_entries`` or ``max_bytes``.

Concurrent lookups of one (key, version) compute once: the first caller computes, the others
wait for its answer (or its exception, which is not cached). Every caller gets its own deep
copy, so a caller that changes its answer (a DataFrame's columns, attrs) cannot change what
the next one reads.
"""

from __future__ import annotations

import copy
import os
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CacheStats", "ResultCache", "RESULTS", "approx_size"]


def approx_size(value: Any) -> int:
    """Bytes a value holds, roughly (a DataFrame's memory usage; anything else pickled)."""
    usage = getattr(value, "memory_usage", None)
    if callable(usage) and hasattr(value, "columns"):
        try:
            return int(usage(deep=True).sum())
        except Exception:  # noqa: BLE001 - fall back to the pickled size
            pass
    try:
        return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # noqa: BLE001 - unpicklable: count it as large-ish, never fail
        return 64 * 1024


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    shared: int = 0  # lookups answered by another caller's computation (single flight)
    evictions: int = 0
    entries: int = 0
    bytes: int = 0


@dataclass
class _Entry:
    version: Hashable
    value: Any
    stored: float
    size: int


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class ResultCache:
    """See the module docstring. ``max_bytes`` 0 disables the cache (every lookup computes)."""

    def __init__(
        self,
        *,
        max_entries: int = 512,
        max_bytes: int = 64 * 1024 * 1024,
        ttl_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._flights: dict[tuple[Hashable, Hashable], _Flight] = {}
        self._bytes = 0
        self._stats = CacheStats()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.max_entries > 0

    def stats(self) -> CacheStats:
        with self._lock:
            s = copy.copy(self._stats)
            s.entries, s.bytes = len(self._entries), self._bytes
            return s

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def get(self, key: Hashable, version: Hashable, compute: Callable[[], Any]) -> Any:
        """The answer for ``key`` at ``version``: cached, another caller's, or computed now."""
        if not self.enabled:
            return compute()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                if entry.version == version and self._clock() - entry.stored < self.ttl_s:
                    self._entries.move_to_end(key)
                    self._stats.hits += 1
                    value = entry.value
                    flight = None
                else:
                    self._drop(key)
                    entry = None
            if entry is None:
                flight = self._flights.get((key, version))
                leader = flight is None
                if leader:
                    flight = self._flights[(key, version)] = _Flight()
                    self._stats.misses += 1
                else:
                    self._stats.shared += 1
        if flight is None:  # a hit
            return copy.deepcopy(value)
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return copy.deepcopy(flight.value)
        try:
            value = compute()
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            flight.value = copy.deepcopy(value)  # never handed out: waiters copy it
            self._store(key, version, flight.value)
            return value
        finally:
            with self._lock:
                self._flights.pop((key, version), None)
            flight.done.set()

    def _store(self, key: Hashable, version: Hashable, stored: Any) -> None:
        size = approx_size(stored)
        if size > self.max_bytes // 4:  # one answer may not push out most of the others
            return
        with self._lock:
            self._drop(key)
            self._entries[key] = _Entry(version, stored, self._clock(), size)
            self._bytes += size
            while self._entries and (
                len(self._entries) > self.max_entries or self._bytes > self.max_bytes
            ):
                old = next(iter(self._entries))
                self._drop(old)
                self._stats.evictions += 1

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size


def _from_env() -> ResultCache:
    mb = os.environ.get("OPSCORE_RESULT_CACHE_MB", "").strip()
    ttl = os.environ.get("OPSCORE_RESULT_CACHE_TTL_S", "").strip()
    return ResultCache(
        max_bytes=int(float(mb) * 1024 * 1024) if mb else 64 * 1024 * 1024,
        ttl_s=float(ttl) if ttl else 600.0,
    )


#: the process's cache of the service layer's expensive reads (``OPSCORE_RESULT_CACHE_MB``: its
#: bound, 0 turns it off; ``OPSCORE_RESULT_CACHE_TTL_S``: the longest an answer is reused)
RESULTS = _from_env()
