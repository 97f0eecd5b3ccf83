"""The fleet sampler's event-loop mode: one asyncio loop, one psycopg async connection per
target, every target asked at each whole-second tick without waiting for the others."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import psycopg

from ..errors import OpsCoreError
from ..repository.ash import AshRow
from ..targets.connection import APPLICATION_NAME, SessionLimits, parse_dsn
from .ash import sample_sql
from .ash_fleet_stats import FleetTarget
from .scrub import scrub

__all__ = ["AsyncLoop"]

_QUERY = AshRow._fields.index("query")


def _async_kwargs() -> dict[str, Any]:
    """The monitoring session of ``targets.connection.connect``, for an async connection."""
    lim = SessionLimits.from_settings()
    return {
        "application_name": APPLICATION_NAME,
        "connect_timeout": lim.connect_timeout_s,
        "autocommit": True,
        "options": (
            f"-c statement_timeout={lim.statement_timeout_ms} "
            f"-c lock_timeout={lim.lock_timeout_ms} "
            "-c idle_in_transaction_session_timeout=60000 -c default_transaction_read_only=on"
        ),
    }


class AsyncLoop:
    """The ``mode="async"`` loop of :class:`~.ash_fleet.FleetSampler` (a mixin: it uses the
    sampler's ``_due``, ``_took``, ``_failed`` and ``_next_tick``)."""

    async def _connect_async(self, t: FleetTarget, conns: dict) -> psycopg.AsyncConnection:
        conn = conns.get(t.target_id)
        if conn is None or conn.closed:
            conns.pop(t.target_id, None)
            try:
                parse_dsn(t.dsn)
                conn = await psycopg.AsyncConnection.connect(t.dsn, **_async_kwargs())
            except psycopg.OperationalError as exc:
                from ..targets.connection import _classify

                raise _classify(exc, t.dsn) from None
            conns[t.target_id] = conn
        return conn

    def _query(self, conn: psycopg.AsyncConnection) -> str:
        """The sample query of the server's version with this run's parameters bound in as
        literals by psycopg (once per version): each tick then sends a prepared statement
        without converting parameters, ~200 times a second at 200 targets."""
        version = conn.info.server_version
        query = self._sql.get(version)
        if query is None:
            bound = psycopg.AsyncClientCursor(conn).mogrify(sample_sql(version), self.params)
            query = self._sql[version] = bound
        return query

    async def _sample_async(self, t: FleetTarget, conns: dict, tick: float) -> None:
        try:
            conn = await self._connect_async(t, conns)
            query = self._query(conn)
            self.stats.send_ms.append((time.time() - tick) * 1000.0)
            cur = await conn.execute(query, prepare=True)
            rows = await cur.fetchall()
        except (psycopg.Error, OpsCoreError) as exc:
            bad = conns.pop(t.target_id, None)
            if bad is not None:
                await bad.close()
            self._failed(t.target_id, "sample", exc)
            return
        finally:
            self._inflight.discard(t.target_id)
        self._took(
            t.target_id,
            tick,
            rows[0][0],
            [AshRow(*r)._replace(query=scrub(r[_QUERY])) for r in rows if r[1] is not None],
        )

    async def _connect_all(self, conns: dict) -> None:
        """Open every target's connection before the first tick (a target that fails starts
        in backoff), so the first samples are not late by the connection set-up."""

        async def one(t: FleetTarget) -> None:
            try:
                await self._connect_async(t, conns)
            except (psycopg.Error, OpsCoreError) as exc:
                self._failed(t.target_id, "connect", exc)

        await asyncio.gather(*(one(t) for t in self._active()))

    async def _run_async(self, stop: threading.Event, until: float | None) -> None:
        conns: dict[int, psycopg.AsyncConnection] = {}
        tasks: set[asyncio.Task] = set()
        try:
            await self._connect_all(conns)
            while not stop.is_set():
                tick = self._next_tick()
                if until is not None and tick > until:
                    break
                delay = tick - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if stop.is_set():
                    break
                self.stats.ticks += 1
                self.stats.dispatch_ms.append((time.time() - tick) * 1000.0)
                for t in self._due(time.monotonic()):
                    self._inflight.add(t.target_id)
                    task = asyncio.ensure_future(self._sample_async(t, conns, tick))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            if tasks:  # the last tick's samples: wait for them (bounded by statement_timeout)
                await asyncio.wait(tasks, timeout=max(5.0, 2 * self.interval_s))
        finally:
            for task in tasks:
                task.cancel()
            for c in conns.values():
                try:
                    await c.close()
                except psycopg.Error:
                    pass
