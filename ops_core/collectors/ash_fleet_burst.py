"""The fleet sampler's burst mode: at each tick ONE thread sends the prepared sample query to
every due target (libpq's asynchronous send, a few microseconds per target, nothing read in
between), then reads the answers as they arrive (a selector over the targets' sockets).

Why: in the event-loop mode each sample is an asyncio task whose ``execute`` costs Python
work before its query leaves; at 200 targets the last query of a tick left ~0.5 s after the
tick (bench/fleet_bench.py: skew p99 511 ms, query sent p99 515 ms). Sending all queries first
takes the Python work of reading results out of the send path, so the skew of the last target
is the send loop's length, not the sum of every target's round trip.

The connections are ordinary monitoring connections (``targets.connection.connect``: named,
read-only, statement/lock timeouts); the sample query is prepared once per connection with this
run's parameters bound in, and its rows are loaded by psycopg's own adapters (the same types as
the other modes). Connecting (first and after a failure) runs on a small thread pool so a target
that is slow to connect never holds up a tick. A target whose answer has not come after its
statement timeout and a grace period is closed and counted failed (backoff as in every mode).
"""

from __future__ import annotations

import selectors
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer

from ..errors import OpsCoreError
from ..repository.ash import AshRow
from ..targets import connection
from .ash import sample_sql
from .ash_fleet_stats import FleetTarget
from .scrub import scrub

__all__ = ["BurstLoop"]

_QUERY = AshRow._fields.index("query")
_STMT = b"opscore_ash_sample"


class _NoAnswer(OpsCoreError):
    pass


class _Conn:
    """One target's monitoring connection with its prepared sample query."""

    __slots__ = ("conn", "pgconn", "fd", "sent_at", "results", "tx")

    def __init__(self, conn: psycopg.Connection, query: str):
        self.conn = conn
        self.pgconn = conn.pgconn
        res = self.pgconn.prepare(_STMT, query.encode(conn.info.encoding or "utf-8"))
        if res.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(res, encoding=conn.info.encoding)
        self.fd = self.pgconn.socket
        self.sent_at = 0.0
        self.results: list[pq.abc.PGresult] = []
        self.tx = Transformer(conn)

    def send(self) -> None:
        self.results = []
        self.pgconn.send_query_prepared(_STMT, None)

    def read(self) -> bool:
        """Take what arrived; True once the whole answer is in."""
        pg = self.pgconn
        pg.consume_input()
        while not pg.is_busy():
            res = pg.get_result()
            if res is None:
                return True
            self.results.append(res)
        return False

    def rows(self) -> list[tuple]:
        for res in self.results:
            if res.status != pq.ExecStatus.TUPLES_OK:
                raise psycopg.errors.error_from_result(res, encoding=self.conn.info.encoding)
        res = self.results[-1]
        self.tx.set_pgresult(res)
        return self.tx.load_rows(0, res.ntuples, tuple)

    def close(self) -> None:
        try:
            self.conn.close()
        except psycopg.Error:
            pass


class BurstLoop:
    """The ``mode="burst"`` loop of :class:`~.ash_fleet.FleetSampler` (a mixin: it uses the
    sampler's ``_due``, ``_took``, ``_failed`` and ``_next_tick``)."""

    def _burst_connect(self, t: FleetTarget) -> _Conn:
        conn = connection.connect(t.dsn)
        try:
            version = conn.info.server_version
            query = self._sql.get(version)
            if query is None:
                query = psycopg.ClientCursor(conn).mogrify(sample_sql(version), self.params)
                self._sql[version] = query
            return _Conn(conn, query)
        except BaseException:
            conn.close()
            raise

    def _run_burst(self, stop: threading.Event, until: float | None) -> None:
        conns: dict[int, _Conn] = {}
        connecting: dict[int, Future] = {}
        waiting: dict[int, float] = {}  # target -> its tick, for every query sent, not answered
        sel = selectors.DefaultSelector()
        pool = ThreadPoolExecutor(min(8, self.workers), thread_name_prefix="ash-fleet-connect")
        lim = connection.SessionLimits.from_settings()
        answer_s = lim.statement_timeout_ms / 1000.0 + 5.0

        def drop(tid: int, where: str, exc: BaseException) -> None:
            c = conns.pop(tid, None)
            if c is not None:
                if tid in waiting:
                    sel.unregister(c.fd)
                c.close()
            waiting.pop(tid, None)
            self._inflight.discard(tid)
            self._failed(tid, where, exc)

        def connected() -> None:
            for tid, fut in list(connecting.items()):
                if not fut.done():
                    continue
                del connecting[tid]
                if fut.cancelled():  # the run ended first (shutdown cancels pending connects)
                    continue
                try:
                    conns[tid] = fut.result()
                except (psycopg.Error, OpsCoreError) as exc:
                    self._failed(tid, "connect", exc)

        def answered(tid: int) -> None:
            c = conns[tid]
            tick = waiting.pop(tid)
            sel.unregister(c.fd)
            self._inflight.discard(tid)
            try:
                rows = c.rows()
            except (psycopg.Error, OpsCoreError) as exc:
                drop(tid, "sample", exc)
                return
            self._took(
                tid,
                tick,
                rows[0][0],
                [AshRow(*r)._replace(query=scrub(r[_QUERY])) for r in rows if r[1] is not None],
            )

        def receive(until_t: float) -> None:
            """Read answers until ``until_t`` (epoch seconds) or every answer is in."""
            while waiting:
                timeout = until_t - time.time()
                if timeout <= 0:
                    return
                for key, _ in sel.select(timeout):
                    tid = key.data
                    try:
                        done = conns[tid].read()
                    except psycopg.Error as exc:
                        drop(tid, "sample", exc)
                        continue
                    if done:
                        answered(tid)

        try:
            for t in self._active():  # every connection before the first tick
                connecting[t.target_id] = pool.submit(self._burst_connect, t)
            for fut in list(connecting.values()):
                try:
                    fut.result()
                except (psycopg.Error, OpsCoreError):
                    pass
            connected()
            while not stop.is_set():
                tick = self._next_tick()
                if until is not None and tick > until:
                    break
                receive(tick)  # answers still due from the previous tick
                delay = tick - time.time()
                if delay > 0 and stop.wait(delay):
                    break
                if stop.is_set():
                    break
                self.stats.ticks += 1
                self.stats.dispatch_ms.append((time.time() - tick) * 1000.0)
                connected()
                mono = time.monotonic()
                for tid in list(waiting):  # no answer for too long: drop it
                    if mono - conns[tid].sent_at > answer_s:
                        drop(tid, "sample", _NoAnswer(f"no answer in {answer_s:.0f} s"))
                for t in self._due(mono):
                    tid = t.target_id
                    c = conns.get(tid)
                    if c is None:
                        if tid not in connecting:
                            connecting[tid] = pool.submit(self._burst_connect, t)
                        continue
                    try:
                        c.send()
                    except psycopg.Error as exc:
                        drop(tid, "sample", exc)
                        continue
                    self.stats.send_ms.append((time.time() - tick) * 1000.0)
                    c.sent_at = mono
                    waiting[tid] = tick
                    self._inflight.add(tid)
                    sel.register(c.fd, selectors.EVENT_READ, tid)
            receive(time.time() + max(5.0, 2 * self.interval_s))  # the last tick's answers
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            connected()
            sel.close()
            for c in conns.values():
                c.close()
