"""The 5-minute ASH summary: DB time per target and bucket by wait event, by SQL (and wait
class) and by session, stored as compressed arrays (layout: migration 0007).

- :func:`summarize` rebuilds the buckets of a range from the raw tier (hot rows and raw chunks):
  one row of ``opscore.ash_summary_chunks`` per bucket and grouping, replaced as a whole, so a
  repeated or retried rebuild changes nothing. The rows of complete UTC days are also added up
  into ``opscore.ash_summary_days`` (same layout, one row per day and grouping), rebuilt with
  them, so that a long-range read takes a few rows per day.
- :func:`summary_sql` reads one grouping back as a relation of one row per group (and bucket)
  with the columns of :data:`SUMMARY_COLS`, the bucket range pushed down to the tables'
  primary keys.

A group is stored as one key of the per-target dictionaries (``ash_events``, ``ash_queries``,
``ash_sessions``) that decodes to its values. The keys are taken from the samples being
summarized, whose dictionary entries are added (or their ``last_seen`` moved forward) first, so
every entry a bucket references is last seen no earlier than the bucket: retention's trimming of
entries last seen before the oldest kept day cannot remove one a kept bucket needs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from ..model.waits import event_sql, is_db_time_sql, wait_class_sql
from .ash import SUMMARY_BUCKET_S
from .ash_stage import (
    STAGE,
    add_dictionary_entries,
    ensure_stage,
    lock_targets,
)
from .ash_tiers import DICTIONARIES, EVENTS, QUERIES, SESSIONS, decoding, tiers_sql
from .ash_time import DAY_S, EPOCH, bucket_floor, bucket_range, day_starts

SUMMARY_TABLE = "ash_summary_chunks"
DAYS_TABLE = "ash_summary_days"
DAY = timedelta(days=1)

#: the columns :func:`summary_sql` yields (those of a grouping; typed NULLs for the others)
SUMMARY_COLS: dict[str, str] = {
    "target_id": "int",
    "bucket_start": "timestamptz",
    "bucket_s": "int",
    "wait_class": "text",
    "wait_event_type": "text",
    "wait_event": "text",
    "query_id": "bigint",
    "text_hash": "bigint",
    "pid": "int",
    "backend_start": "timestamptz",
    "usename": "text",
    "datname": "text",
    "application_name": "text",
    "backend_type": "text",
    "samples": "int",
    "time_s": "real",
    "db_time_s": "real",
}

# per grouping: (key array, dictionary, alias, {column: expression over the dictionary entry})
_DECODE: dict[str, tuple[str, str, str, dict[str, sql.Composable]]] = {
    "event": (
        "event_key",
        "ash_events",
        "e",
        {
            "wait_class": wait_class_sql("e.state", "e.wait_event_type"),
            "wait_event_type": sql.SQL("e.wait_event_type"),
            "wait_event": event_sql("e.state", "e.wait_event_type", "e.wait_event"),
        },
    ),
    "sql": (
        "query_key",
        "ash_queries",
        "q",
        {
            "wait_class": sql.SQL("u.wait_class"),
            "query_id": sql.SQL("q.query_id"),
            "text_hash": sql.SQL("q.text_hash"),
        },
    ),
    "session": (
        "session_key",
        "ash_sessions",
        "ss",
        {
            c: sql.SQL("ss.{}").format(sql.Identifier(c))
            for c in (
                "pid",
                "backend_start",
                "usename",
                "datname",
                "application_name",
                "backend_type",
            )
        },
    ),
}


_STAGED = (
    "target_id",
    "sample_time",
    "weight_s",
    *(c for d in DICTIONARIES for c in d.names),
)


def summary_sql(
    grouping: str,
    *,
    target: str = "t",
    begin: str = "begin",
    end: str = "end",
    per_bucket: bool = True,
) -> sql.Composable:
    """``(...) s``: the summary entries of one grouping whose bucket starts in [begin, end)
    (named parameters), decoded to :data:`SUMMARY_COLS`.

    Without ``per_bucket`` the range is added up per group before the dictionary join
    (``bucket_start`` and ``bucket_s`` are then NULL), taking the days it covers whole from
    their day rows: a long-range read unnests a row per day instead of 288.
    """
    key, table, alias, exprs = _DECODE[grouping]
    cols = []
    for col, typ in SUMMARY_COLS.items():
        if col in ("target_id", "bucket_start", "bucket_s", "samples", "time_s", "db_time_s"):
            expr: sql.Composable = sql.SQL("u.{}").format(sql.Identifier(col))
        else:
            expr = exprs.get(col, sql.SQL("NULL::" + typ))
        cols.append(sql.SQL("{} AS {}").format(expr, sql.Identifier(col)))
    # unnest() in the select list, in lockstep (a NULL array yields NULL elements): streamed,
    # about twice as fast as unnest(a, b, ...) in FROM, which materializes every array first
    arrays = {"key": key, "wait_class": "wait_class"}
    arrays |= {c: c for c in ("samples", "time_s", "db_time_s")}
    unnested = sql.SQL(", ").join(
        sql.SQL("unnest(c.{}) AS {}").format(sql.Identifier(a), sql.Identifier(n))
        for n, a in arrays.items()
    )
    t, b, e = sql.Placeholder(target), sql.Placeholder(begin), sql.Placeholder(end)
    g = sql.Literal(grouping)

    def decode(table: str, where: sql.Composable) -> sql.Composable:
        # the rows of ``table`` that ``where`` keeps, unnested in a subquery the planner keeps
        # as it is (OFFSET 0); a NULL time_s element is samples * the row's weight, a NULL
        # db_time_s one equals time_s
        return sql.SQL(
            """SELECT u.target_id, u.bucket_start, u.bucket_s, u.key, u.wait_class, u.samples,
                   coalesce(u.time_s, u.samples::real * u.weight_s) AS time_s,
                   coalesce(u.db_time_s, u.time_s, u.samples::real * u.weight_s) AS db_time_s
              FROM (SELECT c.target_id, c.bucket_start, c.bucket_s, c.weight_s, {unnested}
                      FROM opscore.{tbl} c
                     WHERE c.target_id = {t} AND c.grouping = {g} AND c.bucket_start >= {b}
                       AND {where}
                    OFFSET 0) u"""
        ).format(unnested=unnested, tbl=sql.Identifier(table), t=t, g=g, b=b, where=where)

    in_range = sql.SQL("c.bucket_start < {}").format(e)
    if per_bucket:
        elements = decode(SUMMARY_TABLE, in_range)
    else:
        # the days the range covers whole from their day rows, the other buckets as they are
        whole_day = sql.SQL("c.bucket_start + interval '1 day' <= {}").format(e)
        uncovered = sql.SQL(
            """{in_range} AND NOT EXISTS (
                   SELECT 1 FROM opscore.{days} d
                    WHERE d.target_id = c.target_id AND d.grouping = c.grouping
                      AND d.bucket_start = date_bin(interval '1 day', c.bucket_start, {epoch})
                      AND d.bucket_start >= {b} AND d.bucket_start + interval '1 day' <= {e})"""
        ).format(
            in_range=in_range, days=sql.Identifier(DAYS_TABLE), epoch=sql.Literal(EPOCH), b=b, e=e
        )
        elements = sql.SQL(
            """SELECT v.target_id, NULL::timestamptz AS bucket_start, NULL::int AS bucket_s,
                   v.key, v.wait_class, sum(v.samples) AS samples, sum(v.time_s) AS time_s,
                   sum(v.db_time_s) AS db_time_s
              FROM ({buckets} UNION ALL {days}) v
             GROUP BY v.target_id, v.key, v.wait_class"""
        ).format(buckets=decode(SUMMARY_TABLE, uncovered), days=decode(DAYS_TABLE, whole_day))
    # joined to the dictionary by a hash join (decoding(): the planner cannot know how many
    # elements an array holds)
    return sql.SQL(
        """(SELECT {cols}
          FROM ({elements}) u
          JOIN opscore.{dict} {alias}
            ON {alias}.target_id = u.target_id AND {alias}.{key} = u.key) s"""
    ).format(
        cols=sql.SQL(", ").join(cols),
        elements=elements,
        key=sql.Identifier(key),
        dict=sql.Identifier(table),
        alias=sql.Identifier(alias),
    )


def summarize(
    conn: psycopg.Connection,
    target_id: int,
    begin: datetime,
    end: datetime,
    bucket_s: int = SUMMARY_BUCKET_S,
    *,
    wait: bool = True,
) -> int | None:
    """Rebuild the summary buckets overlapping [begin, end) from the raw tier (hot rows and raw
    chunks), in one transaction; a bucket without samples loses its summary. Idempotent.

    Returns the number of summary entries (groups) written, or None if ``wait`` is False and
    another writer (a compaction or a purge) holds the target's dictionaries.
    """
    lo, hi = bucket_range(begin, end, bucket_s)
    if hi <= lo:
        return 0
    params = {"t": target_id, "lo": lo, "hi": hi, "b": bucket_s, "epoch": EPOCH}
    ensure_stage(conn)
    with conn.transaction():
        if not lock_targets(conn, [target_id], wait=wait):
            return None
        with decoding(conn):
            # only what the summary and the dictionaries need
            cols = sql.SQL(", ").join(map(sql.Identifier, _STAGED))
            tiers = tiers_sql(include_history=False, target="t", begin="lo", end="hi")
            conn.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                    sql.Identifier(STAGE), cols, cols, tiers
                ),
                params,
            )
        add_dictionary_entries(conn)
        conn.execute(
            sql.SQL(
                "DELETE FROM opscore.{} WHERE target_id = %(t)s "
                "AND bucket_start >= %(lo)s AND bucket_start < %(hi)s"
            ).format(sql.Identifier(SUMMARY_TABLE)),
            params,
        )
        # hash joins to the small dictionaries (see ash_chunks.write_chunks)
        conn.execute("SET LOCAL enable_nestloop = off")
        conn.execute("SET LOCAL enable_mergejoin = off")
        cur = conn.execute(_summary_insert(), params)
        written = sum(r[0] for r in cur.fetchall())
        conn.execute("RESET enable_nestloop")
        conn.execute("RESET enable_mergejoin")
        conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(STAGE)))
        # the day rows of the days touched: rebuilt if there is one, or built once the range
        # reaches the end of a past day (the sampler's first rebuild after midnight); a day
        # changed mid-day without one gets it from the next purge
        now = datetime.now(UTC)
        days = [
            d
            for d in day_starts(lo, hi)
            if _day_exists(conn, target_id, d) or (d + DAY <= min(hi, now))
        ]
        rebuild_days(conn, target_id, days)
    return written


def _insert_encoded(table: str) -> sql.Composable:
    """``INSERT ... SELECT`` one row per (target, b, grouping) of a relation ``e`` (target_id,
    b, grouping, cls, key, samples, time_s, db_time_s, w: the weight of every sample of the row
    or NULL), the elements in key order (sql: by wait class first, whose runs then compress
    to little). Returns the groups of each row written."""
    order = sql.SQL("CASE WHEN e.grouping = 'sql' THEN e.cls END, e.key")

    def arr(expr: str, only: str | None = None) -> sql.Composable:
        agg = sql.SQL("array_agg(" + expr + " ORDER BY {})").format(order)
        if only is None:
            return agg
        return sql.SQL("CASE WHEN e.grouping = {} THEN {} END").format(sql.Literal(only), agg)

    return sql.SQL(
        """
        INSERT INTO opscore.{tbl} (target_id, bucket_start, grouping, bucket_s, groups,
                                   weight_s, event_key, query_key, wait_class, session_key,
                                   samples, time_s, db_time_s)
        SELECT e.target_id, e.b, e.grouping, %(b)s, count(*), min(e.w),
               {event_key}, {query_key}, {wait_class}, {session_key}, {samples},
               {time_s}, {db_time_s}
          FROM e
         GROUP BY e.target_id, e.b, e.grouping
        RETURNING groups
        """
    ).format(
        tbl=sql.Identifier(table),
        event_key=arr("e.key", "event"),
        query_key=arr("e.key", "sql"),
        wait_class=arr("e.cls", "sql"),
        session_key=arr("e.key", "session"),
        samples=arr("e.samples"),
        # NULL: samples * the row's weight (exactly: the same real arithmetic decodes it)
        time_s=arr("CASE WHEN e.time_s = e.samples::real * e.w THEN NULL ELSE e.time_s END"),
        db_time_s=arr("CASE WHEN e.db_time_s = e.time_s THEN NULL ELSE e.db_time_s END"),
    )


def _summary_insert() -> sql.Composable:
    """INSERT the summary rows of the staged samples (every bucket and grouping they have)."""
    return sql.SQL(
        """
        WITH k AS (
            SELECT date_bin(make_interval(secs => %(b)s), s.sample_time, %(epoch)s) AS b,
                   {cls} AS cls, s.wait_event_type, {ev} AS ev, s.query_id, s.text_hash,
                   s.pid, s.backend_start, s.usename, s.datname, s.application_name,
                   s.backend_type, s.weight_s, {dbt} AS dbt, ss.session_key, ee.event_key
              FROM {stage} s
              JOIN opscore.ash_sessions ss ON {s_same}
              JOIN opscore.ash_events ee ON {e_same}),
        g AS (
            SELECT %(t)s::int AS target_id, b,
                   CASE WHEN GROUPING(ev) = 0 THEN 'event' WHEN GROUPING(query_id) = 0 THEN 'sql'
                        ELSE 'session' END AS grouping,
                   cls, query_id, min(text_hash) AS text_hash, min(event_key) AS event_key,
                   min(session_key) AS session_key, count(*)::int AS samples,
                   sum(weight_s) AS time_s,
                   coalesce(sum(weight_s) FILTER (WHERE dbt), 0) AS db_time_s,
                   min(weight_s) AS w_lo, max(weight_s) AS w_hi
              FROM k
             GROUP BY GROUPING SETS (
                   (b, cls, wait_event_type, ev),
                   (b, query_id, cls),
                   (b, pid, backend_start, usename, datname, application_name, backend_type))),
        e AS (
            -- the sql group's key: the entry of its query_id and smallest text hash
            SELECT g.target_id, g.b, g.grouping, g.cls,
                   CASE g.grouping WHEN 'event' THEN g.event_key WHEN 'sql' THEN q.query_key
                        ELSE g.session_key END AS key,
                   g.samples, g.time_s, g.db_time_s,
                   CASE WHEN min(g.w_lo) OVER w = max(g.w_hi) OVER w THEN min(g.w_lo) OVER w
                   END AS w
              FROM g LEFT JOIN opscore.ash_queries q ON g.grouping = 'sql' AND {q_same}
            WINDOW w AS (PARTITION BY g.b, g.grouping))
        {insert}
        """
    ).format(
        cls=wait_class_sql("s.state", "s.wait_event_type"),
        ev=event_sql("s.state", "s.wait_event_type", "s.wait_event"),
        dbt=is_db_time_sql("s.state", "s.wait_event_type", "s.backend_type"),
        stage=sql.Identifier(STAGE),
        s_same=SESSIONS.same("ss", "s"),
        e_same=EVENTS.same("ee", "s"),
        q_same=QUERIES.same("q", "g"),
        insert=_insert_encoded(SUMMARY_TABLE),
    )


def rebuild_days(conn: psycopg.Connection, target_id: int, days: list[datetime]) -> int:
    """Replace the day rows of ``days`` (UTC day starts) by the sum of their 5-minute rows (none
    for a day without); the caller holds the target's lock. Returns the day rows written."""
    written = 0
    for day in days:
        params = {"t": target_id, "day": day, "next": day + DAY, "b": DAY_S}
        conn.execute(
            sql.SQL(
                "DELETE FROM opscore.{} WHERE target_id = %(t)s AND bucket_start = %(day)s"
            ).format(sql.Identifier(DAYS_TABLE)),
            params,
        )
        cur = conn.execute(
            sql.SQL(
                """
                WITH u AS (
                    SELECT c.target_id, c.grouping, c.weight_s,
                           unnest(CASE c.grouping WHEN 'event' THEN c.event_key
                                  WHEN 'sql' THEN c.query_key ELSE c.session_key END) AS key,
                           unnest(c.wait_class) AS cls, unnest(c.samples) AS samples,
                           unnest(c.time_s) AS time_s, unnest(c.db_time_s) AS db_time_s
                      FROM opscore.{tbl} c
                     WHERE c.target_id = %(t)s AND c.bucket_start >= %(day)s
                       AND c.bucket_start < %(next)s),
                w AS (
                    -- the day's weight: the one every 5-minute row of the grouping had
                    SELECT c.grouping, CASE WHEN count(*) = count(c.weight_s)
                                             AND min(c.weight_s) = max(c.weight_s)
                                            THEN min(c.weight_s) END AS w
                      FROM opscore.{tbl} c
                     WHERE c.target_id = %(t)s AND c.bucket_start >= %(day)s
                       AND c.bucket_start < %(next)s
                     GROUP BY c.grouping),
                e AS (
                    SELECT u.target_id, %(day)s::timestamptz AS b, u.grouping, u.cls, u.key,
                           sum(u.samples)::int AS samples,
                           sum(coalesce(u.time_s, u.samples::real * u.weight_s)) AS time_s,
                           sum(coalesce(u.db_time_s, u.time_s, u.samples::real * u.weight_s))
                             AS db_time_s,
                           min(w.w) AS w
                      FROM u JOIN w ON w.grouping = u.grouping
                     GROUP BY u.target_id, u.grouping, u.cls, u.key)
                {insert}
                """
            ).format(tbl=sql.Identifier(SUMMARY_TABLE), insert=_insert_encoded(DAYS_TABLE)),
            params,
        )
        written += len(cur.fetchall())
    return written


def _day_exists(conn: psycopg.Connection, target_id: int, day: datetime) -> bool:
    query = sql.SQL(
        "SELECT EXISTS (SELECT 1 FROM opscore.{} WHERE target_id = %s AND bucket_start = %s)"
    )
    return conn.execute(query.format(sql.Identifier(DAYS_TABLE)), (target_id, day)).fetchone()[0]


def build_missing_days(conn: psycopg.Connection, since: datetime, before: datetime) -> int:
    """Day rows for the complete days in [since, before) that have 5-minute rows but no day row
    (a day last rebuilt mid-day), every target; the caller holds the targets' locks. Returns
    the day rows written."""
    lo = bucket_floor(since, DAY_S)
    if lo < since:
        lo += DAY  # only whole days
    hi = bucket_floor(before, DAY_S)
    todo = conn.execute(
        sql.SQL(
            """
            SELECT DISTINCT c.target_id, date_bin(interval '1 day', c.bucket_start, %(epoch)s)
              FROM opscore.{tbl} c
             WHERE c.bucket_start >= %(lo)s AND c.bucket_start < %(hi)s
               AND NOT EXISTS (
                   SELECT 1 FROM opscore.{days} d
                    WHERE d.target_id = c.target_id
                      AND d.bucket_start = date_bin(interval '1 day', c.bucket_start, %(epoch)s))
             ORDER BY 1, 2
            """
        ).format(tbl=sql.Identifier(SUMMARY_TABLE), days=sql.Identifier(DAYS_TABLE)),
        {"lo": lo, "hi": hi, "epoch": EPOCH},
    ).fetchall()
    return sum(rebuild_days(conn, t, [day]) for t, day in todo)


def trim(conn: psycopg.Connection, before: datetime) -> int:
    """Delete the summary buckets that start before ``before``, and the day rows of their days;
    returns the 5-minute entries deleted."""
    # a day row of a day partly before ``before`` goes too: it no longer equals its buckets
    conn.execute(
        sql.SQL("DELETE FROM opscore.{} WHERE bucket_start < %s").format(
            sql.Identifier(DAYS_TABLE)
        ),
        (before,),
    )
    row = conn.execute(
        sql.SQL(
            "WITH d AS (DELETE FROM opscore.{} WHERE bucket_start < %s RETURNING groups) "
            "SELECT coalesce(sum(groups), 0) FROM d"
        ).format(sql.Identifier(SUMMARY_TABLE)),
        (before,),
    ).fetchone()
    return int(row[0])


def oldest_bucket(conn: psycopg.Connection) -> datetime | None:
    """The start of the oldest summary row (5-minute or day) of any target (per target from the
    primary keys)."""
    row = conn.execute(
        sql.SQL(
            "SELECT min(x.m) FROM opscore.targets t CROSS JOIN LATERAL "
            "(SELECT least((SELECT min(c.bucket_start) FROM opscore.{} c "
            "               WHERE c.target_id = t.target_id), "
            "              (SELECT min(d.bucket_start) FROM opscore.{} d "
            "               WHERE d.target_id = t.target_id)) AS m) x"
        ).format(sql.Identifier(SUMMARY_TABLE), sql.Identifier(DAYS_TABLE))
    ).fetchone()
    return row[0] if row else None
