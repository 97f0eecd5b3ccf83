"""The staging table every ASH chunk writer goes through (compaction, downsampling, the
5-minute summary), the per-target writer lock and the dictionary upkeep of staged rows.

Below both ash_chunks and ash_summary, so neither imports the other's internals back.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from .ash_tiers import DICTIONARIES, STORED_COLUMNS

__all__ = [
    "COMPACT_LOCK",
    "STAGE",
    "add_dictionary_entries",
    "ensure_stage",
    "lock_targets",
    "stage_insert_sql",
]

#: advisory lock class of chunk writers (two-key form: class, target_id)
COMPACT_LOCK = 0x6F617368  # "oash"
STAGE = "ash_chunk_stage"


def lock_targets(conn: psycopg.Connection, target_ids: Iterable[int], *, wait: bool = True) -> bool:
    """Take the chunk-writer lock of each target (sorted: no deadlock between two callers) for
    the current transaction; with ``wait=False`` return False at once if one is held."""
    for t in sorted(set(target_ids)):
        if wait:
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (COMPACT_LOCK, t))
        elif not conn.execute(
            "SELECT pg_try_advisory_xact_lock(%s, %s)", (COMPACT_LOCK, t)
        ).fetchone()[0]:
            return False
    return True


def ensure_stage(conn: psycopg.Connection) -> None:
    """The session's staging table (emptied at every commit)."""
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE opscore.ash_samples, "
            "prio int NOT NULL DEFAULT 1) ON COMMIT DELETE ROWS"
        ).format(sql.Identifier(STAGE))
    )


def stage_insert_sql() -> sql.Composable:
    """``INSERT INTO <stage> (<sample columns>)``: append a SELECT of the sample columns."""
    cols = sql.SQL(", ").join(map(sql.Identifier, STORED_COLUMNS))
    return sql.SQL("INSERT INTO {} ({}) ").format(sql.Identifier(STAGE), cols)


def add_dictionary_entries(conn: psycopg.Connection) -> None:
    """Dictionary entries for the staged samples: new values get the next keys of their target,
    and ``last_seen`` of known ones moves forward to the newest staged sample (the caller holds
    the targets' locks)."""
    stage = sql.Identifier(STAGE)
    for d in DICTIONARIES:
        cols = sql.SQL(", ").join(map(sql.Identifier, d.names))
        ncols = sql.SQL(", ").join(sql.Identifier("n", c) for c in d.names)
        distinct = sql.SQL(
            "(SELECT target_id, {cols}, max(sample_time) AS last_seen FROM {stage} "
            "GROUP BY target_id, {cols}) n"
        ).format(cols=cols, stage=stage)
        table = sql.Identifier(d.table)
        key = sql.Identifier(d.key)
        conn.execute(
            sql.SQL(
                """
                UPDATE opscore.{table} d SET last_seen = n.last_seen FROM {distinct}
                 WHERE {same} AND d.last_seen < n.last_seen
                """
            ).format(table=table, distinct=distinct, same=d.same("d", "n"))
        )
        conn.execute(
            sql.SQL(
                """
                INSERT INTO opscore.{table} (target_id, {key}, {cols}, last_seen)
                SELECT n.target_id,
                       coalesce((SELECT max(x.{key}) FROM opscore.{table} x
                                  WHERE x.target_id = n.target_id), 0)
                         + row_number() OVER (PARTITION BY n.target_id),
                       {ncols}, n.last_seen
                  FROM {distinct}
                 WHERE NOT EXISTS (SELECT 1 FROM opscore.{table} d WHERE {same})
                """
            ).format(
                table=table,
                key=key,
                cols=cols,
                ncols=ncols,
                distinct=distinct,
                same=d.same("d", "n"),
            )
        )
