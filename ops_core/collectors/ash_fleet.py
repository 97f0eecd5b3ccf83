"""One ASH sampler process for many targets.

:class:`FleetSampler` samples pg_stat_activity of N targets every ``interval_s`` from one
process: one monitoring connection per target, driven by one asyncio event loop with psycopg's
async connections (``mode="async"``, the default) or by a small thread pool over blocking
connections (``mode="threads"``). ``bench/fleet_bench.py`` measures both: on this 2-core
machine (shared, load average 26-36) the thread pool used less CPU per target (0.044 against
0.097 % of a core at 10 targets, 0.022 against 0.030 at 200) and had the lower skew up to 100
targets, but at 200 its 8 workers could not keep up (695 ticks missed in 20 s, against 7 for
the event loop), which is the scale this sampler is for; so the event loop is the default.
Ticks fall on whole multiples of the interval of the wall clock, so sample times stay on the
second; the skew (target's ``now()`` minus the tick) is recorded.

- Every target's rows go into one buffer; a flusher thread writes all of them in ONE COPY
  per flush (``repository.ash_batch.FleetWriter``), reports every target's status in one
  statement, then keeps each target's 5-minute summary and compaction up to date.
- A target that fails (down, auth, timeout) costs the others nothing: its error is recorded
  (``ash_sampler_status.last_error``), and it is retried with exponential backoff (1 s, 2 s,
  4 s ... up to ``max_backoff_s``). A target whose previous sample has not answered yet is not
  asked again (the tick is counted as missed for it).
- One sampler per target: the leases of all targets are held on one repository connection
  (``ash_batch.FleetLease``); a target another sampler holds is skipped and reported.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from .. import repository
from ..errors import OpsCoreError
from ..repository import ash_batch, ash_chunks, ash_summary
from ..repository.ash import SUMMARY_BUCKET_S, AshRow
from ..repository.ash_lease import SamplerBusy
from ..targets.connection import APPLICATION_NAME, SessionLimits, parse_dsn
from .ash import AshCollector, sample_sql
from .scrub import scrub, scrub_message

log = logging.getLogger("opscore.ash.fleet")

__all__ = ["FleetSampler", "FleetStats", "FleetTarget", "TargetStats", "MODES"]

MODES = ("async", "threads")
_QUERY = AshRow._fields.index("query")
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FleetTarget:
    target_id: int
    name: str
    dsn: str


@dataclass
class TargetStats:
    """One target's share of a fleet run."""

    target: str
    samples: int = 0
    rows_sampled: int = 0
    rows_written: int = 0
    rows_dropped: int = 0
    missed: int = 0  # ticks skipped: the previous sample had not answered yet
    errors: int = 0
    last_error: str | None = None
    last_sample_time: datetime | None = None
    state: str = "starting"  # sampling | backoff | busy (another sampler) | lost
    failures: int = 0  # consecutive
    retry_at: float = 0.0  # monotonic time of the next attempt while in backoff

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "retry_at"}
        return d


@dataclass
class FleetStats:
    """What a fleet run did, in total and per target, with the sample-time skew."""

    mode: str
    interval_s: float
    targets: dict[str, TargetStats] = field(default_factory=dict)
    ticks: int = 0
    flushes: int = 0
    copies: int = 0
    rows_written: int = 0
    flush_errors: int = 0
    rows_unwritten: int = 0  # still buffered when the run ended (the repository was down)
    last_flush_error: str | None = None
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # CPU of this process while the run lasted
    #: the sampling part of the run (ticks and periodic flushes, not the final flush)
    sampling_s: float = 0.0
    sampling_cpu_s: float = 0.0
    interrupted: bool = False
    skew_ms: deque = field(default_factory=lambda: deque(maxlen=200_000), repr=False)
    #: how late this process started each tick (its own scheduling delay, part of the skew)
    dispatch_ms: deque = field(default_factory=lambda: deque(maxlen=100_000), repr=False)

    def skew(self, q: float) -> float | None:
        """Quantile ``q`` of the sample-time skew in ms (sample time minus its tick)."""
        return _quantile(self.skew_ms, q)

    def dispatch(self, q: float) -> float | None:
        """Quantile ``q`` of the tick dispatch delay in ms."""
        return _quantile(self.dispatch_ms, q)

    @property
    def samples(self) -> int:
        return sum(t.samples for t in self.targets.values())

    @property
    def errors(self) -> int:
        return sum(t.errors for t in self.targets.values()) + self.flush_errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "interval_s": self.interval_s,
            "targets": {k: v.as_dict() for k, v in self.targets.items()},
            "ticks": self.ticks,
            "samples": self.samples,
            "flushes": self.flushes,
            "copies": self.copies,
            "rows_written": self.rows_written,
            "errors": self.errors,
            "flush_errors": self.flush_errors,
            "rows_unwritten": self.rows_unwritten,
            "last_flush_error": self.last_flush_error,
            "elapsed_s": self.elapsed_s,
            "cpu_s": self.cpu_s,
            "sampling_s": self.sampling_s,
            "sampling_cpu_s": self.sampling_cpu_s,
            "skew_p50_ms": self.skew(0.5),
            "skew_p99_ms": self.skew(0.99),
            "dispatch_p99_ms": self.dispatch(0.99),
            "interrupted": self.interrupted,
        }


def _quantile(values, q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


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


class _Upkeep:
    """A target's 5-minute summary and compaction after its rows are written (the same rules
    as ``collectors.ash.AshSampler``: complete buckets only, never waiting for a purge)."""

    def __init__(self, target_id: int):
        self.target_id = target_id
        self.summarized_until: datetime | None = None
        self.compacted_until: datetime | None = None
        self.last_written: datetime | None = None
        self.partial = False

    def after_write(
        self, conn: psycopg.Connection, first: datetime | None, last: datetime | None, final: bool
    ) -> None:
        if first is not None and last is not None:
            self.last_written = last
            self._summarize(conn, first, last, final)
        elif final and self.partial and self.last_written is not None:
            self._summarize(conn, self.last_written, self.last_written, final)
        if last is not None:
            self._compact(conn, first or last, last)

    def _summarize(
        self, conn: psycopg.Connection, first: datetime, last: datetime, final: bool
    ) -> None:
        start = min(self.summarized_until or first, first)
        bucket = SUMMARY_BUCKET_S
        last_bucket = _EPOCH + timedelta(
            seconds=((last - _EPOCH).total_seconds() // bucket) * bucket
        )
        end = last + timedelta(microseconds=1) if final else last_bucket
        if end <= start:
            self.partial = True
            return
        if ash_summary.summarize(conn, self.target_id, start, end, wait=False) is None:
            self.partial = True
            return
        self.summarized_until = last_bucket
        self.partial = not final

    def _compact(self, conn: psycopg.Connection, first: datetime, last: datetime) -> None:
        cutoff = ash_chunks.bucket_floor(last, ash_chunks.RAW_CHUNK_S)
        if self.compacted_until is None:
            earlier = ash_chunks.bucket_floor(first, ash_chunks.RAW_CHUNK_S)
            if (
                ash_chunks.compact(conn, self.target_id, earlier, wait=False, summarize=True)
                is None
            ):
                return
            self.compacted_until = earlier
        if cutoff > self.compacted_until:
            if ash_chunks.compact(conn, self.target_id, cutoff, wait=False) is not None:
                self.compacted_until = cutoff


class FleetSampler:
    """The ASH sampler of many targets in one process (see the module docstring)."""

    def __init__(
        self,
        targets: list[FleetTarget],
        *,
        interval_s: float = 1.0,
        flush_interval_s: float = 10.0,
        mode: str = "async",
        workers: int = 8,
        include_opscore: bool = False,
        text_max: int = 2048,
        max_buffer_rows: int = 100_000,
        max_backoff_s: float = 60.0,
        holder: str | None = None,
        on_flush: Callable[[FleetStats], None] | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        names = [t.name for t in targets]
        if len(set(names)) != len(names) or len({t.target_id for t in targets}) != len(targets):
            raise ValueError("each target once")
        self.targets = {t.target_id: t for t in targets}
        self.interval_s = float(interval_s)
        self.flush_interval_s = flush_interval_s
        self.mode = mode
        self.workers = max(1, workers)
        self.params = {"text_max": text_max, "include_opscore": include_opscore}
        self.max_buffer_rows = max_buffer_rows
        self.max_backoff_s = max_backoff_s
        self.on_flush = on_flush
        self.stats = FleetStats(mode, self.interval_s)
        self.st: dict[int, TargetStats] = {}
        for t in targets:
            self.st[t.target_id] = self.stats.targets[t.name] = TargetStats(t.name)
        self.lease = ash_batch.FleetLease(holder)
        self.writer = ash_batch.FleetWriter()
        self.upkeep = {t.target_id: _Upkeep(t.target_id) for t in targets}
        self._buffers: dict[int, list[AshRow]] = {t.target_id: [] for t in targets}
        self._unreported: set[int] = set()
        self._lock = threading.Lock()  # buffers, stats
        self._flush_lock = threading.Lock()
        self._inflight: set[int] = set()
        self._sql: dict[int, str] = {}  # server version -> sample query
        self._repo: psycopg.Connection | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ results
    def _active(self) -> list[FleetTarget]:
        return [self.targets[t] for t, s in self.st.items() if s.state in ("starting", "sampling")]

    def _due(self, now: float) -> list[FleetTarget]:
        """Targets to ask at this tick: sampling ones not still answering the previous tick,
        and those whose backoff is over."""
        out = []
        for tid, s in self.st.items():
            if s.state in ("busy", "lost"):
                continue
            if s.state == "backoff" and now < s.retry_at:
                continue
            if tid in self._inflight:
                s.missed += 1
                continue
            out.append(self.targets[tid])
        return out

    def _took(self, tid: int, tick: float, sample_time: datetime, rows: list[AshRow]) -> None:
        s = self.st[tid]
        with self._lock:
            buf = self._buffers[tid]
            buf.extend(rows)
            overflow = len(buf) - self.max_buffer_rows
            if overflow > 0:
                del buf[:overflow]
                s.rows_dropped += overflow
            s.samples += 1
            s.rows_sampled += len(rows)
            s.last_sample_time = sample_time.astimezone(UTC)
            if s.state != "sampling" and s.failures:
                log.info("ASH %s: sampling again after %s failures", s.target, s.failures)
            s.state, s.failures = "sampling", 0
            self.stats.skew_ms.append((sample_time.timestamp() - tick) * 1000.0)
            self._unreported.add(tid)

    def _failed(self, tid: int, where: str, exc: BaseException, *, backoff: bool = True) -> None:
        """Record a target's error; a sampling error puts the target in backoff (1 interval,
        then doubling up to ``max_backoff_s``)."""
        s = self.st[tid]
        text = exc.message if isinstance(exc, OpsCoreError) else str(exc).strip()
        message = f"{where}: {scrub_message(text.splitlines()[0] if text else repr(exc))}"
        with self._lock:
            s.errors += 1
            if message != s.last_error:
                log.warning("ASH %s %s", s.target, message)
            s.last_error = message
            self._unreported.add(tid)
            if backoff:
                s.failures += 1
                s.state = "backoff"
                delay = min(self.max_backoff_s, self.interval_s * 2 ** (s.failures - 1))
                s.retry_at = time.monotonic() + delay

    # ------------------------------------------------------------------ async mode
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

    async def _sample_async(self, t: FleetTarget, conns: dict, tick: float) -> None:
        try:
            conn = await self._connect_async(t, conns)
            version = conn.info.server_version
            query = self._sql.get(version)
            if query is None:
                query = self._sql[version] = sample_sql(version)
            cur = await conn.execute(query, self.params, prepare=True)
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

    # ------------------------------------------------------------------ thread mode
    def _sample_sync(self, t: FleetTarget, collectors: dict[int, AshCollector], tick: float):
        col = collectors[t.target_id]
        try:
            sample_time, rows = col.sample()
        except (psycopg.Error, OpsCoreError) as exc:
            col.close()
            self._failed(t.target_id, "sample", exc)
            return
        finally:
            self._inflight.discard(t.target_id)
        self._took(t.target_id, tick, sample_time, rows)

    def _run_threads(self, stop: threading.Event, until: float | None) -> None:
        collectors = {
            tid: AshCollector(t.dsn, **self.params)  # type: ignore[arg-type]
            for tid, t in self.targets.items()
        }
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ash-fleet")

        def connect(t: FleetTarget) -> None:
            try:
                collectors[t.target_id].connect()
            except (psycopg.Error, OpsCoreError) as exc:
                self._failed(t.target_id, "connect", exc)

        try:
            list(pool.map(connect, self._active()))  # before the first tick
            while not stop.is_set():
                tick = self._next_tick()
                if until is not None and tick > until:
                    break
                if stop.wait(max(0.0, tick - time.time())):
                    break
                self.stats.ticks += 1
                self.stats.dispatch_ms.append((time.time() - tick) * 1000.0)
                for t in self._due(time.monotonic()):
                    self._inflight.add(t.target_id)
                    pool.submit(self._sample_sync, t, collectors, tick)
        finally:
            pool.shutdown(wait=True)
            for c in collectors.values():
                c.close()

    # ------------------------------------------------------------------ flushing
    def _next_tick(self) -> float:
        i = self.interval_s
        return (math.floor(time.time() / i) + 1) * i

    def _repo_conn(self) -> psycopg.Connection:
        if self._repo is None or self._repo.closed or self._repo.broken:
            conn = repository.connect()
            try:
                repository.check_schema(conn)
                self.writer.ensure_days(
                    conn, {datetime.now(UTC).date(), (datetime.now(UTC) + timedelta(1)).date()}
                )
            except BaseException:
                conn.close()
                raise
            self._repo = conn
        return self._repo

    def flush(self, *, final: bool = False) -> int:
        """Write every target's buffered rows in one COPY, report their status, keep their
        summaries; on failure the rows stay buffered for the next flush. Returns rows written."""
        with self._flush_lock:
            lost = self.lease.keep()
            for tid, exc in lost.items():
                self._failed(tid, "lease", exc, backoff=False)
                self.st[tid].state = "lost"
            with self._lock:
                batches = {tid: list(b) for tid, b in self._buffers.items() if b}
                report = sorted(self._unreported)
                status = [
                    (
                        tid,
                        self.st[tid].last_sample_time,
                        self.st[tid].errors,
                        self.st[tid].last_error,
                    )
                    for tid in report
                ]
            if not batches and not status and not final:
                return 0
            try:
                conn = self._repo_conn()
                with conn.transaction():
                    written = self.writer.write(
                        conn, batches, {tid: self.interval_s for tid in batches}
                    )
                    ash_batch.report_status(conn, status)
            except (psycopg.Error, OpsCoreError) as exc:
                text = exc.message if isinstance(exc, OpsCoreError) else str(exc).strip()
                self.stats.flush_errors += 1
                self.stats.last_flush_error = scrub_message(text)
                log.warning("ASH fleet flush failed: %s", self.stats.last_flush_error)
                if self._repo is not None and self._repo.broken:
                    self._repo = None
                return 0
            with self._lock:
                for tid, rows in batches.items():
                    del self._buffers[tid][: len(rows)]
                    self.st[tid].rows_written += written.get(tid, 0)
                self._unreported.difference_update(report)
            self.stats.flushes += 1
            self.stats.copies += 1 if batches else 0
            total = sum(written.values())
            self.stats.rows_written += total
            for tid, up in self.upkeep.items():
                rows = batches.get(tid)
                first = min(r.sample_time for r in rows) if rows else None
                last = max(r.sample_time for r in rows) if rows else None
                if rows is None and not (final and up.partial):
                    continue
                try:
                    up.after_write(conn, first, last, final)
                except psycopg.Error as exc:
                    self._failed(tid, "summary", exc, backoff=False)
            if self.on_flush:
                self.on_flush(self.stats)
            return total

    def _flusher(self, stop: threading.Event) -> None:
        while not stop.wait(self.flush_interval_s):
            self.flush()

    # ------------------------------------------------------------------ the run
    def take_leases(self, wait_s: float = 0.0) -> list[str]:
        """Take every target's lease; a target held by another sampler is marked busy and left
        out. Returns the names left out. Raises SamplerBusy when no target is left."""
        busy = []
        deadline = time.monotonic() + wait_s
        for tid, t in self.targets.items():
            try:
                self.lease.take(tid, t.name, max(0.0, deadline - time.monotonic()))
            except SamplerBusy as exc:
                s = self.st[tid]
                s.state, s.last_error = "busy", exc.message
                busy.append(t.name)
        if busy and len(busy) == len(self.targets):
            self.lease.close()
            raise SamplerBusy(
                f"Every target is already sampled by another sampler ({', '.join(busy[:5])}"
                + (" ..." if len(busy) > 5 else "")
                + ").",
                "Stop the other sampler first, or sample other targets.",
            )
        return busy

    def run(
        self,
        duration_s: float | None = None,
        stop: threading.Event | None = None,
        lease_wait_s: float = 0.0,
    ) -> FleetStats:
        """Sample every target until ``duration_s`` elapsed, ``stop`` is set or Ctrl-C; always
        flush before returning."""
        stop = stop or self._stop
        self.take_leases(lease_wait_s)
        t0, cpu0 = time.monotonic(), time.process_time()
        until = time.time() + duration_s if duration_s is not None else None
        flush_stop = threading.Event()
        flusher = threading.Thread(
            target=self._flusher, args=(flush_stop,), name="ash-fleet-flush", daemon=True
        )
        flusher.start()
        try:
            if self.mode == "async":
                asyncio.run(self._run_async(stop, until))
            else:
                self._run_threads(stop, until)
        except KeyboardInterrupt:
            self.stats.interrupted = True
        finally:
            self.stats.sampling_s = time.monotonic() - t0
            self.stats.sampling_cpu_s = time.process_time() - cpu0
            flush_stop.set()
            flusher.join()
            for _ in range(2):
                try:
                    self.flush(final=True)
                    if not any(self._buffers.values()):
                        break
                except KeyboardInterrupt:
                    self.stats.interrupted = True
            self.stats.rows_unwritten = sum(len(b) for b in self._buffers.values())
            self.stats.elapsed_s = time.monotonic() - t0
            self.stats.cpu_s = time.process_time() - cpu0
            self.close()
        return self.stats

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.lease.close()
        if self._repo is not None:
            self._repo.close()
            self._repo = None
