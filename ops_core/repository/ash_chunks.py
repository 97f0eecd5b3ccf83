"""Compaction of ASH samples into compressed chunks (layout: migration 0006, reads: ash_tiers).

- :func:`compact` moves the hot rows (``opscore.ash_samples``) of complete 5-minute buckets
  into ``opscore.ash_chunks`` — chunk inserted and hot rows deleted in ONE transaction.
- :func:`write_chunks` is the encoder every chunk goes through (compaction, and retention's
  downsampling into history): it takes rows staged in the temporary table
  ``ash_chunk_stage`` (the columns of a sample), merges them with the chunks that already exist
  for their buckets (a late row, a retried or repeated compaction: a (target, sample_time, pid)
  already in a chunk is kept once, the chunk's copy wins), extends the dictionaries and rewrites
  those chunks.

Writers of one target's chunks are serialised by a per-target advisory lock; the sampler only
tries it (a purge in progress is never waited for: the bucket is compacted by a later flush).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from .ash import ensure_partitions
from .ash_stage import STAGE, add_dictionary_entries, ensure_stage, lock_targets, stage_insert_sql
from .ash_summary import summarize as summarize_range
from .ash_tiers import (
    ARRAYS,
    CHUNK_S,
    EVENTS,
    HOT_TABLE,
    OFFSET_COLS,
    QUERIES,
    RAW_CHUNK_S,
    RAW_CHUNKS,
    SESSIONS,
    STORED_COLUMNS,
    chunk_rows_sql,
    decoding,
)
from .ash_time import EPOCH, bucket_floor, day_of, day_start

# bucket_floor is ash_time's, importable from here as before (the sampler and tests use it)
__all__ = ["RAW_CHUNK_S", "add_dictionary_entries", "bucket_floor", "compact", "write_chunks"]


def _us(expr: sql.Composable, typ: str) -> sql.Composable:
    # extract(epoch FROM interval) is numeric (PostgreSQL 14+): exact to the microsecond
    return sql.SQL("(extract(epoch FROM {}) * 1000000)::" + typ).format(expr)


def write_chunks(conn: psycopg.Connection, table: str) -> int:
    """Encode the staged rows into chunks of ``opscore.<table>`` (inside the caller's
    transaction, which holds the targets' locks); return the session-samples now in the
    rewritten chunks. The chunk partitions of the staged days must exist."""
    chunk = CHUNK_S[table]
    stage = sql.Identifier(STAGE)
    tbl = sql.Identifier(table)
    params = {"chunk": timedelta(seconds=chunk), "epoch": EPOCH}
    bucket = sql.SQL("date_bin(%(chunk)s, {}, %(epoch)s)")
    # 1. merge: the chunks that exist for the staged buckets are decoded into the stage
    #    (priority 0: their copy of a sample wins) and deleted
    keys = sql.SQL(
        "(c.target_id, c.chunk_start) IN (SELECT DISTINCT s.target_id, {b} FROM {stage} s)"
    ).format(b=bucket.format(sql.SQL("s.sample_time")), stage=stage)
    existing = sql.SQL("(SELECT c.* FROM opscore.{tbl} c WHERE {keys}) c").format(
        tbl=tbl, keys=keys
    )
    decoded = chunk_rows_sql(table, tier="", target=None, begin="", end="", source=existing)
    cols = sql.SQL(", ").join(map(sql.Identifier, STORED_COLUMNS))
    with decoding(conn):
        conn.execute(
            sql.SQL("INSERT INTO {stage} ({cols}, prio) SELECT {cols}, 0 FROM ({dec}) x").format(
                stage=stage, cols=cols, dec=decoded
            ),
            params,
        )
    conn.execute(
        sql.SQL("DELETE FROM opscore.{tbl} c WHERE {keys}").format(tbl=tbl, keys=keys), params
    )
    # 2. dictionaries
    add_dictionary_entries(conn)
    # 3. one chunk per (target, bucket): rows encoded (k), then aggregated in row order (a)
    enc = {
        "t_off": _us(sql.SQL("r.sample_time - r.b"), "int4"),
        "weight_s": sql.SQL("r.weight_s"),
        "session_key": sql.SQL("ss.session_key"),
        "event_key": sql.SQL("e.event_key"),
        "query_key": sql.SQL("q.query_key"),
        "xid_age": sql.SQL("r.xid_age"),
        "xmin_age": sql.SQL("r.xmin_age"),
        "blk_at": sql.SQL(
            "CASE WHEN r.blocking_pids IS NOT NULL THEN "
            "sum(coalesce(cardinality(r.blocking_pids), 0)) OVER w"
            " - cardinality(r.blocking_pids) + 1 END"
        ),
        "blk_n": sql.SQL("cardinality(r.blocking_pids)"),
    }
    for col in OFFSET_COLS:
        enc[col] = _us(sql.SQL("r.sample_time - r.{}").format(sql.Identifier(col)), "int8")
    names = sql.SQL(", ").join(map(sql.Identifier, ARRAYS))
    # the dictionary joins are equalities on many nullable columns: the planner, multiplying
    # their selectivities, expects one row and picks nested loops (6,000 index probes per
    # bucket); hash joins over the small dictionaries are what fits, so ask for them here
    conn.execute("SET LOCAL enable_nestloop = off")
    conn.execute("SET LOCAL enable_mergejoin = off")
    cur = conn.execute(
        sql.SQL(
            """
            WITH r AS (
                SELECT DISTINCT ON (s.target_id, s.sample_time, s.pid) s.*, {b} AS b
                  FROM {stage} s
                 ORDER BY s.target_id, s.sample_time, s.pid, s.prio),
            k AS (
                SELECT r.target_id, r.b, r.sample_time, r.pid, {encoded}
                  FROM r
                  JOIN opscore.ash_sessions ss ON {s_same}
                  JOIN opscore.ash_events e ON {e_same}
                  JOIN opscore.ash_queries q ON {q_same}
                WINDOW w AS (PARTITION BY r.target_id, r.b ORDER BY r.sample_time, r.pid)),
            a AS (
                SELECT k.target_id, k.b, count(*) AS samples, {arrays}
                  FROM k GROUP BY k.target_id, k.b),
            p AS (
                SELECT r.target_id, r.b,
                       array_agg(x.bp ORDER BY r.sample_time, r.pid, x.n) AS pids
                  FROM r CROSS JOIN LATERAL unnest(r.blocking_pids) WITH ORDINALITY AS x(bp, n)
                 GROUP BY r.target_id, r.b)
            INSERT INTO opscore.{tbl} (target_id, chunk_start, chunk_end, samples, {names},
                                       blk_pids)
            SELECT a.target_id, a.b, a.b + %(chunk)s, a.samples, {a_names},
                   coalesce(p.pids, '{{}}')
              FROM a LEFT JOIN p ON p.target_id = a.target_id AND p.b = a.b
            RETURNING samples
            """
        ).format(
            b=bucket.format(sql.SQL("s.sample_time")),
            stage=stage,
            encoded=sql.SQL(", ").join(
                sql.SQL("{} AS {}").format(enc[c], sql.Identifier(c)) for c in ARRAYS
            ),
            s_same=SESSIONS.same("ss", "r"),
            e_same=EVENTS.same("e", "r"),
            q_same=QUERIES.same("q", "r"),
            arrays=sql.SQL(", ").join(
                sql.SQL("array_agg(k.{c} ORDER BY k.sample_time, k.pid) AS {c}").format(
                    c=sql.Identifier(c)
                )
                for c in ARRAYS
            ),
            tbl=tbl,
            names=names,
            a_names=sql.SQL(", ").join(sql.Identifier("a", c) for c in ARRAYS),
        ),
        params,
    )
    written = sum(r[0] for r in cur.fetchall())
    conn.execute("RESET enable_nestloop")
    conn.execute("RESET enable_mergejoin")
    # several writes can share one transaction (retention): the stage is emptied by each
    conn.execute(sql.SQL("DELETE FROM {}").format(stage))
    return written


def compact(
    conn: psycopg.Connection,
    target_id: int,
    before: datetime,
    *,
    wait: bool = True,
    summarize: bool = False,
) -> int | None:
    """Move the target's hot rows older than the bucket holding ``before`` into raw chunks, one
    UTC day per transaction (chunks written and hot rows deleted together). Idempotent.

    With ``summarize`` the 5-minute summary of the compacted buckets is rebuilt too (leftovers
    of a crashed sampler may never have been summarized). Returns the hot rows moved, or None
    if ``wait`` is False and another writer holds the target.
    """
    cutoff = bucket_floor(before, CHUNK_S[RAW_CHUNKS])
    moved = 0
    ensure_stage(conn)
    while True:
        with conn.transaction():
            if not lock_targets(conn, [target_id], wait=wait):
                return None
            first = conn.execute(
                sql.SQL(
                    "SELECT min(sample_time) FROM opscore.{} WHERE target_id = %s "
                    "AND sample_time < %s"
                ).format(sql.Identifier(HOT_TABLE)),
                (target_id, cutoff),
            ).fetchone()[0]
            if first is None:
                return moved
            day = day_of(first)
            lo = day_start(day)
            hi = min(lo + timedelta(days=1), cutoff)
            ensure_partitions(conn, RAW_CHUNKS, [day])
            # the rows are moved by one statement (deleted and staged together), so a sample
            # that a writer commits meanwhile stays in the hot table for the next compaction
            cols = sql.SQL(", ").join(map(sql.Identifier, STORED_COLUMNS))
            move = sql.SQL(
                """
                WITH d AS (DELETE FROM opscore.{hot} h
                            WHERE h.target_id = %(t)s AND h.sample_time >= %(lo)s
                              AND h.sample_time < %(hi)s
                        RETURNING h.*),
                     i AS ({stage} SELECT {cols} FROM d RETURNING sample_time)
                SELECT count(*), min(sample_time), max(sample_time) FROM i
                """
            ).format(hot=sql.Identifier(HOT_TABLE), stage=stage_insert_sql(), cols=cols)
            params = {"t": target_id, "lo": lo, "hi": hi}
            n, lo_t, hi_t = conn.execute(move, params).fetchone()
            write_chunks(conn, RAW_CHUNKS)
            moved += n
            if summarize and n:  # the buckets of these rows only
                summarize_range(conn, target_id, lo_t, hi_t + timedelta(microseconds=1))
