"""One ASH sampler process for many targets.

:class:`FleetSampler` samples pg_stat_activity of N targets every ``interval_s`` from one
process, one monitoring connection per target, in one of three modes that
``bench/fleet_bench.py`` measures side by side:

- ``burst`` (the default): one thread sends the prepared sample query to every due target
  (libpq's asynchronous send, nothing read in between), then reads the answers as they arrive
  (``ash_fleet_burst.py``). At 200 targets, in one run at load 29-38 on this 2-core machine:
  CPU 3.5 % of a core against 8.7 % for the event loop, skew p50/p99 88/431 ms against
  182/989 ms (the last query of a tick left p99 409 against 969 ms after it); 10 targets 3/10
  against 7/44 ms.
- ``async``: one asyncio event loop with psycopg's async connections, a task per sample.
- ``threads``: a small thread pool over blocking connections (at 200 targets its 8 workers
  could not keep up: 695 ticks missed in 20 s).

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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from .. import repository
from ..errors import OpsCoreError
from ..repository import ash_batch
from ..repository.ash import AshRow
from ..repository.ash_lease import SamplerBusy
from .ash_fleet_async import AsyncLoop
from .ash_fleet_burst import BurstLoop
from .ash_fleet_stats import FleetStats, FleetTarget, TargetStats
from .ash_fleet_threads import ThreadLoop
from .ash_fleet_upkeep import Upkeep
from .scrub import scrub_message

log = logging.getLogger("opscore.ash.fleet")

__all__ = ["FleetSampler", "FleetStats", "FleetTarget", "TargetStats", "MODES"]

MODES = ("async", "threads", "burst")


class FleetSampler(AsyncLoop, ThreadLoop, BurstLoop):
    """The ASH sampler of many targets in one process (see the module docstring)."""

    def __init__(
        self,
        targets: list[FleetTarget],
        *,
        interval_s: float = 1.0,
        flush_interval_s: float = 10.0,
        mode: str = "burst",
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
        self.upkeep = {t.target_id: Upkeep(t.target_id) for t in targets}
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
        """Flush every ``flush_interval_s``, started a third of an interval after a tick: the
        flush's Python work (COPY rows, status, summaries) then runs while the samples of the
        tick are answered, not while the next tick's queries are being sent (the flusher
        shares the interpreter with the sampling loop)."""
        while True:
            at = time.time() + self.flush_interval_s
            i = self.interval_s
            at = (math.floor(at / i) + (1.0 / 3.0)) * i if i <= self.flush_interval_s else at
            if stop.wait(max(0.0, at - time.time())):
                return
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
            elif self.mode == "burst":
                self._run_burst(stop, until)
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
