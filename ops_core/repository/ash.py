"""ASH in the repository: day partitions, and COPY ingest into the hot table.

Layout (migrations 0003, 0006 and 0007; the tiers: ``ash_tiers``):

- ``opscore.ash_samples``: the hot table, one row per session per sample, range-partitioned by
  UTC day (``ash_samples_pYYYYMMDD``); the writer creates the partition of every day it writes
  (and today's and tomorrow's ahead). Complete 5-minute buckets leave it for
  ``opscore.ash_chunks`` (compressed arrays, ``ash_chunks.compact``); both are the raw tier.
- ``opscore.ash_history_chunks``: every 10th raw sample in 30-minute chunks (``weight_s`` = the
  sampled seconds it stands for), written by retention (``ash_retention.purge``).
- ``opscore.ash_query_texts``: distinct (truncated) query texts by 64-bit hash.
- ``opscore.ash_summary_chunks``: DB time per target and 5-minute bucket by wait event, by
  query (and wait class) and by session, as compressed arrays, and ``ash_summary_days``, the
  same per complete UTC day (``ash_summary``).

Every reader sees the tiers as one relation of samples: ``ash_tiers.tiers_sql``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import psycopg
from psycopg import sql

from .ash_tiers import HOT_TABLE, STORED_COLUMNS
from .ash_time import BUCKET_S, day_of, day_start

__all__ = [
    "COLUMNS",
    "DOWNSAMPLE",
    "PARTITION_LOCK",
    "SUMMARY_BUCKET_S",
    "AshRow",
    "AshWriter",
    "create_partition",
    "day_of",
    "day_start",
    "ensure_partitions",
    "list_partitions",
    "partition_name",
    "text_hash",
]

#: one raw sample in DOWNSAMPLE is kept in history
DOWNSAMPLE = 10
#: serialises partition DDL between concurrent writers and purge
PARTITION_LOCK = 0x6F707361736870  # "opsashp"
#: the summary's bucket: 5 minutes (long-range reports; short ranges read the samples)
SUMMARY_BUCKET_S = BUCKET_S

#: the hot table's columns in COPY order (``ash_tiers.STORED_COLUMNS``; the name of before)
COLUMNS: tuple[str, ...] = STORED_COLUMNS
_COPY_TYPES = [
    "int4",
    "timestamptz",
    "float4",
    "int4",
    "int4",
    "text",
    "text",
    "text",
    "text",
    "inet",
    "timestamptz",
    "text",
    "text",
    "text",
    "int8",
    "int8",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "int4",
    "int4",
    "int4[]",
]


class AshRow(NamedTuple):
    """One session in one sample, as read from pg_stat_activity (``query`` truncated)."""

    sample_time: datetime
    pid: int
    leader_pid: int | None
    backend_type: str | None
    usename: str | None
    datname: str | None
    application_name: str | None
    client_addr: object | None
    backend_start: datetime | None
    state: str | None
    wait_event_type: str | None
    wait_event: str | None
    query_id: int | None
    query: str | None
    query_start: datetime | None
    xact_start: datetime | None
    state_change: datetime | None
    xid_age: int | None
    xmin_age: int | None
    blocking_pids: list[int] | None


def text_hash(text: str) -> int:
    """Stable signed 64-bit hash of a query text (the key of ash_query_texts)."""
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True
    )


# ------------------------------------------------------------------------------ partitions
def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def list_partitions(conn: psycopg.Connection, table: str) -> dict[date, str]:
    """Day partitions of ``opscore.<table>``: {day: partition name}."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s)",
        (f"opscore.{table}",),
    ).fetchall()
    out: dict[date, str] = {}
    for (name,) in rows:
        m = re.fullmatch(rf"{table}_p(\d{{8}})", name)
        if m:
            out[datetime.strptime(m.group(1), "%Y%m%d").date()] = name
    return out


def create_partition(conn: psycopg.Connection, table: str, day: date) -> None:
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS opscore.{part} PARTITION OF opscore.{parent} "
            "FOR VALUES FROM ({lo}) TO ({hi})"
        ).format(
            part=sql.Identifier(partition_name(table, day)),
            parent=sql.Identifier(table),
            lo=sql.Literal(day_start(day)),
            hi=sql.Literal(day_start(day + timedelta(days=1))),
        )
    )


def ensure_partitions(conn: psycopg.Connection, table: str, days: Iterable[date]) -> list[str]:
    """Create the day partitions that are missing; return the names created."""
    wanted = sorted(set(days))
    existing = list_partitions(conn, table)
    missing = [d for d in wanted if d not in existing]
    if not missing:
        return []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
        for d in missing:
            create_partition(conn, table, d)
    return [partition_name(table, d) for d in missing]


# ------------------------------------------------------------------------------ writing
class AshWriter:
    """Writes sample batches of one target: one transaction per batch, COPY for the rows.

    Keeps, per writer, the days whose partition exists and the texts already stored today, so a
    steady 1 Hz stream costs one COPY per batch and almost nothing else.
    """

    def __init__(self, target_id: int):
        self.target_id = target_id
        self._days: set[date] = set()
        self._texts: dict[int, date] = {}

    def ensure_days(self, conn: psycopg.Connection, days: Iterable[date]) -> None:
        todo = set(days) - self._days
        if todo:
            ensure_partitions(conn, HOT_TABLE, todo)
            self._days |= todo

    def create_ahead(self, conn: psycopg.Connection, now: datetime | None = None) -> None:
        """Create today's and tomorrow's partitions before the first sample needs them."""
        today = day_of(now or datetime.now(UTC))
        self.ensure_days(conn, [today, today + timedelta(days=1)])

    def write(self, conn: psycopg.Connection, rows: Sequence[AshRow], weight_s: float) -> int:
        """Write one batch (all or nothing); a batch already written is not duplicated."""
        if not rows:
            return 0
        # rows of one sample share their time and most share a text: convert/hash each once
        days = {ts: day_of(ts) for ts in {r.sample_time for r in rows}}
        self.ensure_days(conn, set(days.values()))
        tid = self.target_id
        hashes: dict[str, int] = {}
        new_texts: dict[int, tuple[str, datetime, datetime]] = {}
        out = []
        for r in rows:
            h = None
            if r.query:
                h = hashes.get(r.query)
                if h is None:
                    h = hashes[r.query] = text_hash(r.query)
                t = r.sample_time
                if self._texts.get(h) != days[t]:
                    if h in new_texts:
                        q, first, last = new_texts[h]
                        if t < first or t > last:
                            new_texts[h] = (q, min(first, t), max(last, t))
                    else:
                        new_texts[h] = (r.query, t, t)
            # STORED_COLUMNS order: the AshRow fields with target_id and weight_s added and the
            # query text replaced by its hash
            out.append((tid, r[0], weight_s, *r[1:13], h, *r[14:]))
        try:
            self._write(conn, out, new_texts, dedupe=False)
        except psycopg.errors.UniqueViolation:
            # the batch (or part of it) is already there: a retry after a lost commit
            self._write(conn, out, new_texts, dedupe=True)
        except psycopg.errors.CheckViolation:
            # no partition for a row: retention dropped a past day's emptied hot partition
            # that this writer had seen; late samples of that day get it back
            self._days.clear()
            self.ensure_days(conn, set(days.values()))
            self._write(conn, out, new_texts, dedupe=False)
        for h, (_q, _first, last) in new_texts.items():
            self._texts[h] = day_of(last)
        return len(out)

    def _write(
        self,
        conn: psycopg.Connection,
        out: list[tuple],
        texts: dict[int, tuple[str, datetime, datetime]],
        dedupe: bool,
    ) -> None:
        cols = sql.SQL(", ").join(map(sql.Identifier, STORED_COLUMNS))
        with conn.transaction(), conn.cursor() as cur:
            if texts:
                cur.executemany(
                    "INSERT INTO opscore.ash_query_texts AS t "
                    "(target_id, text_hash, query_text, first_seen, last_seen) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (target_id, text_hash) DO UPDATE "
                    "SET last_seen = greatest(t.last_seen, excluded.last_seen)",
                    [(self.target_id, h, q, f, la) for h, (q, f, la) in texts.items()],
                )
            if not dedupe:
                copy_sql = sql.SQL("COPY opscore.ash_samples ({}) FROM STDIN (FORMAT BINARY)")
                with cur.copy(copy_sql.format(cols)) as cp:
                    cp.set_types(_COPY_TYPES)
                    for row in out:
                        cp.write_row(row)
                return
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS ash_stage "
                "(LIKE opscore.ash_samples) ON COMMIT DELETE ROWS"
            )
            copy_sql = sql.SQL("COPY ash_stage ({}) FROM STDIN (FORMAT BINARY)")
            with cur.copy(copy_sql.format(cols)) as cp:
                cp.set_types(_COPY_TYPES)
                for row in out:
                    cp.write_row(row)
            cur.execute(
                sql.SQL(
                    "INSERT INTO opscore.ash_samples ({c}) SELECT {c} FROM ash_stage "
                    "ON CONFLICT DO NOTHING"
                ).format(c=cols)
            )
