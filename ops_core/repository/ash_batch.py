"""ASH of a fleet in the repository: many targets' samples in ONE COPY per flush, the leases of
many targets on ONE repository connection, the sampler status of many targets in one statement.

The per-target writer (``ash.AshWriter``) stays the reference: a batch that hits a duplicate
(a retry after a lost commit) or a missing day partition falls back to it, target by target,
so the rules for those cases live in one place.

The leases are the same as ``ash_lease.AshLease`` (the session advisory lock
``pg_advisory_lock(16723, target_id)`` and a row in ``opscore.ash_sampler_lease``); a fleet
sampler takes all of them on one connection instead of one connection per target, so 200
targets cost one repository session, not 200.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import date, datetime

import psycopg
from psycopg import sql

from .ash import COLUMNS, AshRow, AshWriter, day_of, ensure_partitions, text_hash
from .ash_lease import LOCK_CLASS, SamplerBusy, describe_process
from .ash_tiers import HOT_TABLE

__all__ = ["FleetLease", "FleetWriter", "report_status"]


def _copy_types(conn: psycopg.Connection) -> list[str]:
    """The column types of the hot table in COPY order, read from the catalog (so this module
    follows the table's definition instead of repeating it)."""
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
        (f"opscore.{HOT_TABLE}",),
    ).fetchall()
    types = dict(rows)
    return [types[c] for c in COLUMNS]


class FleetWriter:
    """Writes the sample batches of many targets: one transaction and one COPY per flush."""

    def __init__(self) -> None:
        self.writers: dict[int, AshWriter] = {}  # per target: the fallback path, partitions
        self._days: set[date] = set()
        self._texts: dict[tuple[int, int], date] = {}  # (target, text hash) -> day stored
        self._types: list[str] | None = None

    def _writer(self, target_id: int) -> AshWriter:
        w = self.writers.get(target_id)
        if w is None:
            w = self.writers[target_id] = AshWriter(target_id)
        return w

    def ensure_days(self, conn: psycopg.Connection, days: Iterable[date]) -> None:
        todo = set(days) - self._days
        if todo:
            ensure_partitions(conn, HOT_TABLE, todo)
            self._days |= todo

    def write(
        self,
        conn: psycopg.Connection,
        batches: dict[int, Sequence[AshRow]],
        weights: dict[int, float],
    ) -> dict[int, int]:
        """Write every target's rows (all or nothing); return rows written per target."""
        batches = {t: rows for t, rows in batches.items() if rows}
        if not batches:
            return {}
        if self._types is None:
            self._types = _copy_types(conn)
        times = {r.sample_time for rows in batches.values() for r in rows}
        days = {ts: day_of(ts) for ts in times}
        self.ensure_days(conn, set(days.values()))
        out: list[tuple] = []
        texts: list[tuple[int, int, str, datetime, datetime]] = []
        for tid, rows in batches.items():
            weight = weights[tid]
            hashes: dict[str, int] = {}
            new: dict[int, list] = {}
            for r in rows:
                h = None
                if r.query:
                    h = hashes.get(r.query)
                    if h is None:
                        h = hashes[r.query] = text_hash(r.query)
                    t = r.sample_time
                    if self._texts.get((tid, h)) != days[t]:
                        seen = new.get(h)
                        if seen is None:
                            new[h] = [r.query, t, t]
                        else:
                            seen[1], seen[2] = min(seen[1], t), max(seen[2], t)
                # COLUMNS order: target_id, sample_time, weight_s, the AshRow fields with the
                # query text replaced by its hash
                out.append((tid, r[0], weight, *r[1:13], h, *r[14:]))
            texts.extend((tid, h, q, f, la) for h, (q, f, la) in new.items())
        try:
            self._write(conn, out, texts)
        except (psycopg.errors.UniqueViolation, psycopg.errors.CheckViolation):
            # a retry after a lost commit, or a day partition retention dropped: the
            # per-target writer knows both cases; it takes the batch target by target
            self._days.clear()
            return {
                tid: self._writer(tid).write(conn, rows, weights[tid])
                for tid, rows in batches.items()
            }
        for tid, h, _q, _f, last in texts:
            self._texts[(tid, h)] = day_of(last)
        return {tid: len(rows) for tid, rows in batches.items()}

    def _write(self, conn: psycopg.Connection, out: list[tuple], texts: list[tuple]) -> None:
        cols = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        with conn.transaction(), conn.cursor() as cur:
            if texts:
                cur.executemany(
                    "INSERT INTO opscore.ash_query_texts AS t "
                    "(target_id, text_hash, query_text, first_seen, last_seen) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (target_id, text_hash) DO UPDATE "
                    "SET last_seen = greatest(t.last_seen, excluded.last_seen)",
                    texts,
                )
            copy_sql = sql.SQL("COPY opscore.{} ({}) FROM STDIN (FORMAT BINARY)").format(
                sql.Identifier(HOT_TABLE), cols
            )
            with cur.copy(copy_sql) as cp:
                cp.set_types(self._types or [])
                for row in out:
                    cp.write_row(row)


def report_status(
    conn: psycopg.Connection,
    status: Sequence[tuple[int, datetime | None, int, str | None]],
) -> None:
    """The sampler status of many targets in one statement: (target_id, last sample time,
    errors, last error) each; ``last_sample_time`` only moves forward."""
    if not status:
        return
    ids, times, errors, messages = (list(x) for x in zip(*status, strict=True))
    conn.execute(
        "INSERT INTO opscore.ash_sampler_status AS s (target_id, last_sample_time, "
        "last_flush_at, errors, last_error) "
        "SELECT t, st, now(), e, m FROM unnest(%s::int[], %s::timestamptz[], %s::int8[], "
        "%s::text[]) AS u(t, st, e, m) "
        "ON CONFLICT (target_id) DO UPDATE SET last_sample_time = "
        "greatest(s.last_sample_time, excluded.last_sample_time), "
        "last_flush_at = excluded.last_flush_at, errors = excluded.errors, "
        "last_error = excluded.last_error",
        (ids, times, errors, messages),
    )


class FleetLease:
    """The ASH leases of many targets held on one repository connection (see the module
    docstring). ``take`` refuses a target another sampler holds; ``keep`` checks the
    connection and, after a repository outage, takes the leases again."""

    def __init__(self, holder: str | None = None):
        self.holder = holder or describe_process()
        self.conn: psycopg.Connection | None = None
        self.held: dict[int, str] = {}  # target_id -> name
        self.lost: dict[int, SamplerBusy] = {}  # taken by another sampler during an outage

    def _connect(self) -> psycopg.Connection:
        from . import check_schema, connect

        if self.conn is None or self.conn.closed or self.conn.broken:
            conn = connect()
            try:
                check_schema(conn)
            except BaseException:
                conn.close()
                raise
            self.conn = conn
        return self.conn

    def _busy(self, conn: psycopg.Connection, target_id: int, name: str) -> SamplerBusy:
        row = conn.execute(
            "SELECT l.holder, l.acquired_at FROM opscore.ash_sampler_lease l "
            "WHERE l.target_id = %s",
            (target_id,),
        ).fetchone()
        who = f"{row[0]}, since {row[1]:%Y-%m-%d %H:%M:%S %Z}" if row else "another sampler"
        return SamplerBusy(
            f"Target {name!r} is already sampled by {who}. One ASH sampler per target: a "
            "second one would count every session twice.",
            "Use the running sampler (its samples are in the repository), or stop it first.",
        )

    def take(self, target_id: int, name: str, wait_s: float = 0.0) -> None:
        """Take one target's lease (waiting up to ``wait_s``); raise SamplerBusy if held."""
        if target_id in self.held:
            return
        conn = self._connect()
        deadline = time.monotonic() + wait_s
        while not conn.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, target_id)
        ).fetchone()[0]:  # type: ignore[index]
            if time.monotonic() >= deadline:
                raise self._busy(conn, target_id, name)
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        conn.execute(
            "INSERT INTO opscore.ash_sampler_lease AS l (target_id, holder, backend_pid) "
            "VALUES (%s, %s, pg_backend_pid()) ON CONFLICT (target_id) DO UPDATE SET "
            "holder = excluded.holder, backend_pid = excluded.backend_pid, acquired_at = now()",
            (target_id, self.holder),
        )
        self.held[target_id] = name

    def keep(self) -> dict[int, SamplerBusy]:
        """Check the leases are still ours. After the connection was lost, take each again;
        returns the targets another sampler took meanwhile (they must stop being sampled
        here). A repository still down keeps everything (samples stay buffered)."""
        conn = self.conn
        if conn is not None and not conn.closed and not conn.broken:
            try:
                conn.execute("SELECT 1")
                return {}
            except psycopg.Error:
                pass
        held, self.held = dict(self.held), {}
        self.conn = None
        lost: dict[int, SamplerBusy] = {}
        try:
            for tid, name in held.items():
                try:
                    self.take(tid, name)
                except SamplerBusy as exc:
                    lost[tid] = exc
        except psycopg.Error:
            self.held = {**held, **self.held}
            self.conn = None
            return {}
        self.lost.update(lost)
        return lost

    def release(self, target_ids: Iterable[int] | None = None) -> None:
        ids = list(self.held) if target_ids is None else [t for t in target_ids if t in self.held]
        conn = self.conn
        for tid in ids:
            self.held.pop(tid, None)
        if conn is None or conn.closed or conn.broken:
            return
        try:
            if ids:
                conn.execute(
                    "DELETE FROM opscore.ash_sampler_lease WHERE target_id = ANY(%s) "
                    "AND backend_pid = pg_backend_pid()",
                    (ids,),
                )
                conn.execute(
                    "SELECT pg_advisory_unlock(%s, t) FROM unnest(%s::int[]) t", (LOCK_CLASS, ids)
                )
        except psycopg.Error:
            pass

    def close(self) -> None:
        self.release()
        if self.conn is not None:
            self.conn.close()
            self.conn = None
