"""ASH sampler: pg_stat_activity of one target, sampled every ``interval_s``, written with COPY.

- :class:`AshCollector` owns the ONE monitoring connection to the target (read-only,
  ``application_name=opscore``, statement/lock timeouts) and runs the sample query as a prepared
  statement. A sample is one statement, so all its rows share one ``now()``.
- :class:`AshSampler` loops (foreground with :meth:`AshSampler.run`, or in a thread with
  :meth:`start`/:meth:`stop` for a Prefect flow), buffers rows and flushes them to the repository
  every ``flush_interval_s`` or ``flush_rows`` rows, then refreshes the 5-minute summary of the
  buckets that are complete and compacts them into compressed chunks. A flush that fails keeps
  its rows for the next one (bounded by ``max_buffer_rows``, oldest dropped first and counted);
  the buffer is flushed on stop, on the end of the duration and on Ctrl-C.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources

import psycopg

from .. import repository
from ..errors import OpsCoreError
from ..repository import ash as repo_ash
from ..repository import ash_chunks, ash_summary
from ..repository.ash import AshRow
from ..repository.ash_lease import AshLease
from ..targets import connection
from .scrub import scrub, scrub_message

log = logging.getLogger("opscore.ash")

#: the shortest sampling interval a target is asked for (10 samples a second)
MIN_INTERVAL_S = 0.1

#: minimum server version -> SQL file; the highest not above the server's is used
SAMPLE_SQL = {140000: "ash_sample_140000.sql"}


def sample_sql(version_num: int) -> str:
    """The sample query for a server version (PostgreSQL 14+)."""
    usable = [v for v in SAMPLE_SQL if v <= version_num]
    if not usable:
        from ..errors import NotSupported

        raise NotSupported(
            f"ASH needs PostgreSQL 14 or later (pg_stat_activity.query_id); the target runs "
            f"{version_num // 10000}.",
            "Monitor a PostgreSQL 14+ server.",
        )
    name = SAMPLE_SQL[max(usable)]
    return resources.files("ops_core.collectors").joinpath("sql", name).read_text()


_QUERY = AshRow._fields.index("query")


class AshCollector:
    """Reads samples of pg_stat_activity over one monitoring connection (reconnects lazily)."""

    def __init__(self, dsn: str, *, include_opscore: bool = False, text_max: int = 2048):
        self.dsn = dsn
        self.params = {"text_max": text_max, "include_opscore": include_opscore}
        self.conn: psycopg.Connection | None = None
        self._sql: str | None = None

    def connect(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = connection.connect(self.dsn)
            version = self.conn.info.server_version
            self._sql = sample_sql(version)
        return self.conn

    def sample(self) -> tuple[datetime, list[AshRow]]:
        """One sample: its time (the target's clock, UTC) and the sessions kept."""
        conn = self.connect()
        try:
            cur = conn.execute(self._sql, self.params, prepare=True)  # type: ignore[arg-type]
            rows = cur.fetchall()
        except psycopg.OperationalError:
            self.close()
            raise
        # the running text is scrubbed before it is buffered (passwords of ALTER ROLE, conninfo)
        return rows[0][0], [
            AshRow(*r)._replace(query=scrub(r[_QUERY])) for r in rows if r[1] is not None
        ]

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


@dataclass
class AshRunStats:
    """What a sampler did: samples taken, rows written, health."""

    target: str
    interval_s: float
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    samples: int = 0
    rows_sampled: int = 0
    rows_written: int = 0
    rows_buffered: int = 0
    rows_dropped: int = 0
    flushes: int = 0
    last_sample_time: datetime | None = None
    last_sessions: int = 0
    errors: int = 0
    last_error: str | None = None
    elapsed_s: float = 0.0
    #: time spent in the sample query, round trip included (mean = sample_seconds / samples)
    sample_seconds: float = 0.0
    interrupted: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


class AshSampler:
    """The ASH sampler of one target (one target connection, one repository connection)."""

    def __init__(
        self,
        target_name: str,
        target_id: int,
        dsn: str,
        *,
        interval_s: float = 1.0,
        flush_interval_s: float = 10.0,
        flush_rows: int = 10_000,
        max_buffer_rows: int = 1_000_000,
        include_opscore: bool = False,
        text_max: int = 2048,
        on_flush: Callable[[AshRunStats], None] | None = None,
        on_sample: Callable[[AshRunStats], None] | None = None,
        holder: str | None = None,
    ):
        self.target_name = target_name
        #: one sampler per target: taken by run()/start(), released by close()
        self.lease = AshLease(target_id, target_name, holder)
        self.interval_s = float(interval_s)
        self.flush_interval_s = flush_interval_s
        self.flush_rows = flush_rows
        self.max_buffer_rows = max_buffer_rows
        self.on_flush = on_flush
        self.on_sample = on_sample
        self.collector = AshCollector(dsn, include_opscore=include_opscore, text_max=text_max)
        self.writer = repo_ash.AshWriter(target_id)
        self.target_id = target_id
        self.stats = AshRunStats(target_name, self.interval_s)
        self._buffer: list[AshRow] = []
        self._lock = threading.Lock()  # guards the buffer
        self._write_lock = threading.Lock()  # one flush at a time
        self._repo: psycopg.Connection | None = None
        self._last_flush = time.monotonic()
        self._summarized_until: datetime | None = None
        self._compacted_until: datetime | None = None
        self._last_written: datetime | None = None
        self._partial_bucket = False  # written rows whose bucket the summary lacks
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._unreported = False
        self._lost = False

    # ------------------------------------------------------------------ one step
    def _error(self, where: str, exc: BaseException) -> None:
        text = scrub_message(exc.message if isinstance(exc, OpsCoreError) else str(exc).strip())
        self.stats.errors += 1
        message = f"{where}: {text}"
        if message != self.stats.last_error:  # log a new error once, not every second
            log.warning("ASH %s %s", self.target_name, message)
        self.stats.last_error = message

    def sample_once(self) -> int:
        """Take one sample into the buffer; return the sessions seen (-1 on error)."""
        t0 = time.perf_counter()
        try:
            sample_time, rows = self.collector.sample()
        except (psycopg.Error, OpsCoreError) as exc:
            self._error("sample", exc)
            return -1
        self.stats.sample_seconds += time.perf_counter() - t0
        with self._lock:
            self._buffer.extend(rows)
            overflow = len(self._buffer) - self.max_buffer_rows
            if overflow > 0:
                del self._buffer[:overflow]
                self.stats.rows_dropped += overflow
            self.stats.rows_buffered = len(self._buffer)
        self.stats.samples += 1
        self.stats.rows_sampled += len(rows)
        self.stats.last_sessions = len(rows)
        self.stats.last_sample_time = sample_time.astimezone(UTC)
        self._unreported = True
        if self.on_sample:
            self.on_sample(self.stats)
        return len(rows)

    def _repo_conn(self) -> psycopg.Connection:
        if self._repo is None or self._repo.closed:
            conn = repository.connect()
            try:
                repository.check_schema(conn)
                self.writer.create_ahead(conn)
            except BaseException:
                conn.close()
                raise
            self._repo = conn
        return self._repo

    def flush(self, *, final: bool = False) -> int:
        """Write the buffered rows (one transaction) and refresh the summary; return rows written.

        On failure the rows stay buffered for the next flush and the error is recorded.
        """
        with self._write_lock:
            with self._lock:
                # every sample taken until now is in the batch or written: samples before its
                # bucket are complete (the sample times of a target only grow)
                seen = self.stats.last_sample_time
                batch = list(self._buffer)
            self._last_flush = time.monotonic()
            if not batch and not self._unreported and not (final and self._partial_bucket):
                return 0
            try:
                conn = self._repo_conn()
                written = self.writer.write(conn, batch, self.interval_s)
                if self._unreported:
                    self._report_status(conn)
            except (psycopg.Error, OpsCoreError) as exc:
                self._error("write", exc)
                if self._repo is not None and self._repo.broken:
                    self._repo = None
                return 0
            with self._lock:
                del self._buffer[: len(batch)]
                self.stats.rows_buffered = len(self._buffer)
            self.stats.rows_written += written
            self.stats.flushes += 1
            if batch:
                first = min(r.sample_time for r in batch)
                self._last_written = max(r.sample_time for r in batch)
                self._summarize(conn, first, self._last_written, final)
            elif final and self._partial_bucket and self._last_written is not None:
                # the last partial bucket of a run whose rows were all flushed already
                self._summarize(conn, self._last_written, self._last_written, final)
            if seen is not None:  # also when idle: a crashed run's leftovers, our last bucket
                self._compact(conn, min([seen, *(r.sample_time for r in batch)]), seen)
            if self.on_flush:
                self.on_flush(self.stats)
            return written

    def _report_status(self, conn: psycopg.Connection) -> None:
        conn.execute(
            "INSERT INTO opscore.ash_sampler_status AS s (target_id, last_sample_time, "
            "last_flush_at, errors, last_error) VALUES (%s, %s, now(), %s, %s) "
            "ON CONFLICT (target_id) DO UPDATE SET last_sample_time = "
            "greatest(s.last_sample_time, excluded.last_sample_time), "
            "last_flush_at = excluded.last_flush_at, errors = excluded.errors, "
            "last_error = excluded.last_error",
            (self.target_id, self.stats.last_sample_time, self.stats.errors, self.stats.last_error),
        )
        self._unreported = False

    def _summarize(
        self, conn: psycopg.Connection, first: datetime, last: datetime, final: bool
    ) -> None:
        bucket = repo_ash.SUMMARY_BUCKET_S
        start = self._summarized_until or first
        start = min(start, first)
        # buckets before the last sample's bucket are complete (samples arrive in order)
        last_bucket = ash_chunks.bucket_floor(last, bucket)
        end = last + timedelta(microseconds=1) if final else last_bucket
        if end <= start:
            self._partial_bucket = True
            return
        try:
            # never waits for a purge or compaction that holds the target: retried next flush
            if ash_summary.summarize(conn, self.target_id, start, end, wait=False) is None:
                self._partial_bucket = True
                return
            self._summarized_until = last_bucket
            # the bucket of the last sample is complete only once summarized by a final flush
            self._partial_bucket = not final
        except psycopg.Error as exc:
            self._partial_bucket = True
            self._error("summary", exc)

    def _compact(self, conn: psycopg.Connection, first: datetime, last: datetime) -> None:
        """Move complete buckets from the hot table into compressed chunks.

        The first compaction of a run also takes what an earlier run left behind (a crash, or a
        stop mid-bucket) and rebuilds its summary. Never waits for a purge that holds the target:
        the buckets are then compacted by a later flush.
        """
        bucket = ash_chunks.RAW_CHUNK_S
        cutoff = ash_chunks.bucket_floor(last, bucket)  # the last sample's bucket is not complete
        try:
            if self._compacted_until is None:
                earlier = ash_chunks.bucket_floor(first, bucket)
                done = ash_chunks.compact(conn, self.target_id, earlier, wait=False, summarize=True)
                if done is None:
                    return
                self._compacted_until = earlier
            if cutoff > self._compacted_until:
                if ash_chunks.compact(conn, self.target_id, cutoff, wait=False) is not None:
                    self._compacted_until = cutoff
        except psycopg.Error as exc:
            self._error("compact", exc)

    def maybe_flush(self) -> int:
        due = time.monotonic() - self._last_flush >= self.flush_interval_s
        if due or len(self._buffer) >= self.flush_rows:
            if not self.lease.keep():  # another sampler took the target during an outage
                self._lost = True
                self._error("lease", self.lease.lost_to or RuntimeError("lease lost"))
                return 0
            return self.flush()
        return 0

    # ------------------------------------------------------------------ loops
    def run(
        self,
        duration_s: float | None = None,
        stop: threading.Event | None = None,
        lease_wait_s: float = 0.0,
    ) -> AshRunStats:
        """Sample every ``interval_s`` until ``duration_s`` elapsed, ``stop`` is set or Ctrl-C;
        always flush before returning. Raises ``SamplerBusy`` when another sampler holds the
        target (after waiting up to ``lease_wait_s`` for it to finish)."""
        stop = stop or self._stop
        self.lease.acquire(lease_wait_s)
        t0 = time.monotonic()
        tick = 0
        try:
            while not stop.is_set() and not self._lost:
                self.sample_once()
                self.maybe_flush()
                tick += 1
                now = time.monotonic()
                if duration_s is not None and now - t0 + self.interval_s > duration_s + 1e-6:
                    break
                next_at = t0 + tick * self.interval_s
                if next_at < now:  # overran: skip the missed ticks, never burst
                    tick = int((now - t0) // self.interval_s) + 1
                    next_at = t0 + tick * self.interval_s
                if stop.wait(next_at - now):
                    break
        except KeyboardInterrupt:
            self.stats.interrupted = True
        finally:
            self._final_flush()
            self.stats.elapsed_s = time.monotonic() - t0
        return self.stats

    def _final_flush(self) -> None:
        for _ in range(2):
            try:
                self.flush(final=True)
                if not self._buffer:
                    return
            except KeyboardInterrupt:
                self.stats.interrupted = True

    def start(self) -> None:
        """Sample in a background thread (for a Prefect flow or an app); see :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.lease.acquire()  # refused here, in the caller, when the target is sampled already
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run,
            kwargs={"stop": self._stop},
            name=f"ash-{self.target_name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> AshRunStats:
        """Stop the background thread (it flushes what is buffered) and close the connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        else:
            self.flush(final=True)
        self.close()
        return self.stats

    def close(self) -> None:
        self.lease.release()
        self.collector.close()
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def __enter__(self) -> AshSampler:
        return self

    def __exit__(self, *exc) -> None:
        self.flush(final=True)
        self.close()
