"""The ASH tiers as one relation: hot rows, raw chunks and history chunks read back as samples.

Two tiers of samples, by resolution: **raw** (:data:`RAW_TIER`) is every sample, stored as hot
rows (``opscore.ash_samples``, the buckets not compacted yet) and raw chunks
(``opscore.ash_chunks``); **history** (:data:`HISTORY_TIER`) is one sample in 10, weighted, in
history chunks (``opscore.ash_history_chunks``). A UTC day is in one tier, never both.

Every reader (``ash_read``, ``ash_summary.summarize``, retention) selects from
:func:`tiers_sql`, which yields exactly the columns of a stored sample (:data:`STORED_COLUMNS`,
those of ``opscore.ash_samples``) plus ``tier`` ('raw' or 'history'). Chunks are decoded with
a multi-argument ``unnest`` joined to the per-target dictionaries; the time range is pushed
down to the chunk level (``chunk_start`` predicates that partition pruning and the primary key
use), so a short range unnests only the few chunks that overlap it.

Layout and encoding: migration ``0006_ash_compact.sql``; the writer is ``ash_chunks``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from .ash_time import BUCKET_S

#: the raw tier's rows not compacted yet, one row per session-sample
HOT_TABLE = "ash_samples"
#: the raw tier's chunks and the history tier's
RAW_CHUNKS = "ash_chunks"
HISTORY_CHUNKS = "ash_history_chunks"
#: the ``tier`` of a sample read back: every sample (hot rows, raw chunks) or 1 in 10 (history)
RAW_TIER = "raw"
HISTORY_TIER = "history"

#: chunk lengths (seconds): raw = the summary bucket, history longer (it holds 1 sample in 10).
#: t_off is int4 microseconds, so a chunk is at most 2,147 s long.
RAW_CHUNK_S = BUCKET_S
HISTORY_CHUNK_S = 1800
CHUNK_S = {RAW_CHUNKS: RAW_CHUNK_S, HISTORY_CHUNKS: HISTORY_CHUNK_S}

#: the columns of a stored sample (the hot table's, in its order), as every tier yields them
STORED_COLUMNS: tuple[str, ...] = (
    "target_id",
    "sample_time",
    "weight_s",
    "pid",
    "leader_pid",
    "backend_type",
    "usename",
    "datname",
    "application_name",
    "client_addr",
    "backend_start",
    "state",
    "wait_event_type",
    "wait_event",
    "query_id",
    "text_hash",
    "query_start",
    "xact_start",
    "state_change",
    "xid_age",
    "xmin_age",
    "blocking_pids",
)

#: the per-row arrays of a chunk, in unnest order (blk_pids is not per row)
ARRAYS: tuple[str, ...] = (
    "t_off",
    "weight_s",
    "session_key",
    "event_key",
    "query_key",
    "query_start",
    "xact_start",
    "state_change",
    "xid_age",
    "xmin_age",
    "blk_at",
    "blk_n",
)
#: timestamps stored as int8 microseconds before the sample time
OFFSET_COLS: tuple[str, ...] = ("query_start", "xact_start", "state_change")


@dataclass(frozen=True)
class Dictionary:
    """A per-target dictionary: value columns (with a same-typed stand-in for NULL, used to
    compare NULL-safely with hashable equalities) mapped to an int4 key."""

    table: str
    key: str
    cols: tuple[tuple[str, str | None], ...]  # (column, NULL stand-in; None: NOT NULL)

    @property
    def names(self) -> list[str]:
        return [c for c, _ in self.cols]

    def same(self, a: str, b: str) -> sql.Composable:
        """``a`` and ``b`` hold the same values (NULL equal to NULL), as equalities a hash join
        can use (``IS NOT DISTINCT FROM`` cannot be hashed)."""
        ta, tb = sql.Identifier(a, "target_id"), sql.Identifier(b, "target_id")
        parts = [sql.SQL("{} = {}").format(ta, tb)]
        for col, null in self.cols:
            x = sql.Identifier(a, col)
            y = sql.Identifier(b, col)
            if null is None:
                parts.append(sql.SQL("{} = {}").format(x, y))
            else:
                n = sql.SQL(null)
                same = "coalesce({x}, {n}) = coalesce({y}, {n}) AND ({x} IS NULL) = ({y} IS NULL)"
                parts.append(sql.SQL(same).format(x=x, y=y, n=n))
        return sql.SQL(" AND ").join(parts)


SESSIONS = Dictionary(
    "ash_sessions",
    "session_key",
    (
        ("pid", None),
        ("leader_pid", "0"),
        ("backend_type", "''"),
        ("usename", "''"),
        ("datname", "''"),
        ("application_name", "''"),
        ("client_addr", "'0.0.0.0'::inet"),
        ("backend_start", "'-infinity'::timestamptz"),
    ),
)
EVENTS = Dictionary(
    "ash_events",
    "event_key",
    (("state", "''"), ("wait_event_type", "''"), ("wait_event", "''")),
)
QUERIES = Dictionary("ash_queries", "query_key", (("query_id", "0"), ("text_hash", "0")))
DICTIONARIES: tuple[Dictionary, ...] = (SESSIONS, EVENTS, QUERIES)

_US = sql.SQL("interval '1 microsecond'")


def _param(name: str) -> sql.Composable:
    return sql.Placeholder(name)


def chunk_rows_sql(
    table: str,
    *,
    tier: str,
    target: str | None,
    begin: str,
    end: str,
    source: sql.Composable | None = None,
) -> sql.Composable:
    """SELECT the samples of the chunks of ``opscore.<table>`` overlapping [begin, end) (named
    parameters; ``target`` None: every target), decoded to :data:`STORED_COLUMNS` + tier.

    ``source`` replaces the chunk table (a relation with its columns, e.g. a CTE) and then the
    predicates are the caller's.
    """
    chunk = CHUNK_S[table]
    sample_time = sql.SQL("u.chunk_start + u.t_off * {}").format(_US)
    decoded = {
        "target_id": sql.SQL("u.target_id"),
        "sample_time": sample_time,
        "weight_s": sql.SQL("u.weight_s"),
        "state": sql.SQL("e.state"),
        "wait_event_type": sql.SQL("e.wait_event_type"),
        "wait_event": sql.SQL("e.wait_event"),
        "query_id": sql.SQL("q.query_id"),
        "text_hash": sql.SQL("q.text_hash"),
        "xid_age": sql.SQL("u.xid_age"),
        "xmin_age": sql.SQL("u.xmin_age"),
        "blocking_pids": sql.SQL("u.blocking_pids"),
    }
    for col in SESSIONS.names:
        decoded[col] = sql.SQL("ss.{}").format(sql.Identifier(col))
    for col in OFFSET_COLS:
        decoded[col] = sql.SQL("u.chunk_start + (u.t_off - u.{}) * {}").format(
            sql.Identifier(col), _US
        )
    select = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(decoded[c], sql.Identifier(c)) for c in STORED_COLUMNS
    )
    arrays = sql.SQL(", ").join(sql.SQL("c.") + sql.Identifier(a) for a in ARRAYS)
    names = sql.SQL(", ").join(map(sql.Identifier, ARRAYS))
    rows = sql.SQL("")
    if source is None:
        where = [
            sql.SQL("c.chunk_start < {}").format(_param(end)),
            # chunk_end > begin, said on chunk_start so that pruning and the key can use it
            sql.SQL("c.chunk_start > {} - make_interval(secs => {})").format(
                _param(begin), sql.Literal(chunk)
            ),
        ]
        if target is not None:
            where.insert(0, sql.SQL("c.target_id = {}").format(_param(target)))
        source = sql.SQL("(SELECT c.* FROM opscore.{} c WHERE {}) c").format(
            sql.Identifier(table), sql.SQL(" AND ").join(where)
        )
        t = sql.SQL("c.chunk_start + x.t_off * {}").format(_US)
        rows = sql.SQL("WHERE {t} >= {b} AND {t} < {e}").format(t=t, b=_param(begin), e=_param(end))
    # The chunks are unnested first, in a subquery the planner keeps as it is (OFFSET 0), and
    # only then joined to the dictionaries: left to itself, the planner (which cannot know that
    # a chunk holds thousands of elements) joins chunks to the dictionaries first and unnests
    # every chunk once per dictionary entry.
    return sql.SQL(
        """SELECT {select}, {tier}::text AS tier
          FROM (SELECT c.target_id, c.chunk_start, x.*,
                       CASE WHEN x.blk_n IS NOT NULL
                            THEN c.pids[x.blk_at : x.blk_at + x.blk_n - 1] END AS blocking_pids
                  -- the flattened pids detoasted once per chunk, not once per row
                  FROM (SELECT c.*, c.blk_pids || '{{}}'::int[] AS pids FROM {source} OFFSET 0) c
                 CROSS JOIN LATERAL unnest({arrays}) AS x({names})
                 {rows}
                OFFSET 0) u
          JOIN opscore.ash_sessions ss
            ON ss.target_id = u.target_id AND ss.session_key = u.session_key
          JOIN opscore.ash_events e ON e.target_id = u.target_id AND e.event_key = u.event_key
          JOIN opscore.ash_queries q ON q.target_id = u.target_id AND q.query_key = u.query_key"""
    ).format(
        select=select,
        tier=sql.Literal(tier),
        source=source,
        arrays=arrays,
        names=names,
        rows=rows,
    )


@contextmanager
def decoding(conn: psycopg.Connection) -> Iterator[None]:
    """A transaction in which a statement over :func:`tiers_sql` gets a sane plan.

    The planner cannot know that a chunk unnests into thousands of samples (it guesses 10), so
    it joins the decoded rows to the dictionaries with nested loops, probing a dictionary once
    per sample (minutes for a day). Hash joins over the small dictionaries are what fits: nested
    loops are disabled for the statement (the unnest of each chunk stays one, as it must).
    """
    with conn.transaction():
        conn.execute("SET LOCAL enable_nestloop = off")
        yield
        conn.execute("RESET enable_nestloop")


def row_table_sql(
    table: str, *, tier: str, target: str | None, begin: str, end: str
) -> sql.Composable:
    """SELECT the samples of a row-per-sample table (the hot table) in [begin, end)."""
    cols = sql.SQL(", ").join(sql.SQL("h.") + sql.Identifier(c) for c in STORED_COLUMNS)
    where = [sql.SQL("h.sample_time >= {}").format(_param(begin))]
    where.append(sql.SQL("h.sample_time < {}").format(_param(end)))
    if target is not None:
        where.insert(0, sql.SQL("h.target_id = {}").format(_param(target)))
    query = "SELECT {cols}, {tier}::text AS tier FROM opscore.{table} h WHERE {where}"
    return sql.SQL(query).format(
        cols=cols,
        tier=sql.Literal(tier),
        table=sql.Identifier(table),
        where=sql.SQL(" AND ").join(where),
    )


def tiers_sql(
    include_history: bool = True,
    *,
    target: str | None = "t",
    begin: str = "begin",
    end: str = "end",
) -> sql.Composable:
    """``(...) s``: every sample of the raw tier (and of history, with ``include_history``) in
    [begin, end) as one relation (named parameters ``target``, ``begin``, ``end``; ``target``
    None reads every target)."""
    kw = {"target": target, "begin": begin, "end": end}
    parts = [
        row_table_sql(HOT_TABLE, tier=RAW_TIER, **kw),
        chunk_rows_sql(RAW_CHUNKS, tier=RAW_TIER, **kw),
    ]
    if include_history:
        parts.append(chunk_rows_sql(HISTORY_CHUNKS, tier=HISTORY_TIER, **kw))
    return sql.SQL("({}) s").format(sql.SQL("\n UNION ALL\n").join(parts))
