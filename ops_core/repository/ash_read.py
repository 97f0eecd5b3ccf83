"""Reads of ASH from the repository: samples, DB time by dimension, blocking samples.

Hot rows, raw chunks and history chunks are read together as one relation of samples
(``ash_tiers.tiers_sql``: ``UNION ALL``; the tiers never overlap in time) and every aggregate
sums ``weight_s``, so DB time is right whichever tier a row comes from.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import psycopg
from psycopg import sql

from ..errors import InvalidInput
from ..model.waits import event_sql, is_background_sql, is_db_time_sql, wait_class_sql
from .ash import SUMMARY_BUCKET_S
from .ash_summary import summary_sql
from .ash_tiers import HISTORY_CHUNKS, HOT_TABLE, RAW_CHUNKS, decoding, tiers_sql
from .ash_time import EPOCH, bucket_floor

_CLS = wait_class_sql("s.state", "s.wait_event_type")
_EV = event_sql("s.state", "s.wait_event_type", "s.wait_event")
_DBT = is_db_time_sql("s.state", "s.wait_event_type", "s.backend_type")
# background processes working: background activity, not DB time (one definition: model.waits)
_BG = is_background_sql("s.state", "s.wait_event_type", "s.backend_type")

# name -> (expression over samples "s", expression over the decoded summary "s" (ash_summary.
# summary_sql) or None)
DIMENSIONS: dict[str, tuple[sql.Composable, sql.Composable | None]] = {
    "wait_class": (_CLS, sql.SQL("s.wait_class")),
    "wait_event_type": (sql.SQL("s.wait_event_type"), sql.SQL("s.wait_event_type")),
    "event": (_EV, sql.SQL("s.wait_event")),
    "query_id": (sql.SQL("s.query_id"), sql.SQL("s.query_id")),
    "pid": (sql.SQL("s.pid"), sql.SQL("s.pid")),
    "backend_start": (sql.SQL("s.backend_start"), sql.SQL("s.backend_start")),
    "usename": (sql.SQL("s.usename"), sql.SQL("s.usename")),
    "datname": (sql.SQL("s.datname"), sql.SQL("s.datname")),
    "application_name": (sql.SQL("s.application_name"), sql.SQL("s.application_name")),
    "backend_type": (sql.SQL("s.backend_type"), sql.SQL("s.backend_type")),
    "state": (sql.SQL("s.state"), None),
    "client_addr": (sql.SQL("s.client_addr"), None),
    "minute": (sql.SQL("date_trunc('minute', s.sample_time)"), None),
    "hour": (
        sql.SQL("date_trunc('hour', s.sample_time)"),
        sql.SQL("date_trunc('hour', s.bucket_start)"),
    ),
}
ALIASES: dict[str, list[str]] = {
    "user": ["usename"],
    "database": ["datname"],
    "db": ["datname"],
    "application": ["application_name"],
    "app": ["application_name"],
    "wait_event": ["event"],
    "sql": ["query_id"],
    "queryid": ["query_id"],
    "session": ["pid", "backend_start", "usename", "application_name"],
}

# the groupings kept in the summary: a DB-time question is answered from the summary when one
# grouping holds every dimension and filter it needs (hour comes from the 5-minute bucket)
SUMMARY_GROUPINGS: dict[str, frozenset[str]] = {
    "event": frozenset({"wait_class", "wait_event_type", "event"}),
    "sql": frozenset({"query_id", "wait_class"}),
    "session": frozenset(
        {"pid", "backend_start", "usename", "datname", "application_name", "backend_type"}
    ),
}
_TIME_DIMS = frozenset({"hour"})
_FILTER_DIMS = {
    "wait_class": "wait_class",
    "query_id": "query_id",
    "user": "usename",
    "database": "datname",
    "application": "application_name",
}


def summary_grouping(dims: list[str], filters: dict) -> str | None:
    """The summary grouping that can answer ``dims`` with ``filters``, or None."""
    needed = set(dims) - _TIME_DIMS
    needed |= {_FILTER_DIMS[k] for k, v in filters.items() if v is not None}
    for name, cols in SUMMARY_GROUPINGS.items():
        if needed <= cols:
            return name
    return None


SAMPLE_COLUMNS = [
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
    "wait_class",
    "wait_event_type",
    "wait_event",
    "event",
    "db_time",
    "query_id",
    "query",
    "query_start",
    "xact_start",
    "state_change",
    "xid_age",
    "xmin_age",
    "blocking_pids",
    "tier",
]


def normalize_dimensions(by: list[str] | tuple[str, ...] | str) -> list[str]:
    """Canonical dimension names (aliases expanded, order kept, duplicates dropped)."""
    items = [by] if isinstance(by, str) else list(by)
    out: list[str] = []
    for raw in items:
        name = (raw or "").strip().lower()
        names = ALIASES.get(name, [name])
        for n in names:
            if n not in DIMENSIONS:
                valid = sorted(set(DIMENSIONS) | set(ALIASES))
                raise InvalidInput(
                    f"{raw!r} is not an ASH dimension.", "Use one of: " + ", ".join(valid) + "."
                )
            if n not in out:
                out.append(n)
    return out


def _tiers(include_history: bool) -> sql.Composable:
    # hot rows, raw chunks (and history) as one relation ``s`` of samples; the readers below
    # all bind %(t)s, %(begin)s and %(end)s, which bound the chunks read
    return tiers_sql(include_history, target="t", begin="begin", end="end")


def _where(
    target_id: int,
    begin: datetime,
    end: datetime,
    *,
    time_col: str | None,
    wait_class_expr: sql.Composable,
    wait_class: str | None = None,
    query_id: int | None = None,
    user: str | None = None,
    database: str | None = None,
    application: str | None = None,
) -> tuple[sql.Composable, dict]:
    parts = [sql.SQL("s.target_id = %(t)s")]
    if time_col is not None:  # None: the source bounds itself by %(begin)s and %(end)s
        time = sql.SQL("s.{c} >= %(begin)s AND s.{c} < %(end)s")
        parts.append(time.format(c=sql.Identifier(time_col)))
    params: dict = {"t": target_id, "begin": begin, "end": end}
    if wait_class is not None:
        parts.append(sql.SQL("{} = %(wait_class)s").format(wait_class_expr))
        params["wait_class"] = wait_class
    for key, col, value in (
        ("query_id", "query_id", query_id),
        ("user", "usename", user),
        ("database", "datname", database),
        ("application", "application_name", application),
    ):
        if value is not None:
            parts.append(sql.SQL("s.{} = %({})s").format(sql.Identifier(col), sql.SQL(key)))
            params[key] = value
    return sql.SQL(" AND ").join(parts), params


_INT_OIDS = {20, 21, 23}  # int8, int2, int4


def _frame(cur: psycopg.Cursor, columns: list[str] | None = None) -> pd.DataFrame:
    names = [d.name for d in cur.description] if cur.description else (columns or [])
    rows = cur.fetchall()
    df = pd.DataFrame(rows, columns=names)
    # an integer column with NULLs (query_id) would become float64 and lose precision (a 64-bit
    # query id does not fit a double): keep such columns exact, as nullable Int64
    for i, d in enumerate(cur.description or []):
        if d.type_code in _INT_OIDS and df[d.name].dtype == "float64":
            df[d.name] = pd.array([r[i] for r in rows], dtype="Int64")
    for col in df.columns:  # timestamps in UTC whatever the session's TimeZone
        if isinstance(df[col].dtype, pd.DatetimeTZDtype):
            df[col] = df[col].dt.tz_convert("UTC")
    return df


def query_samples(
    conn: psycopg.Connection,
    target_id: int,
    begin: datetime,
    end: datetime,
    *,
    include_history: bool = True,
    limit: int | None = None,
    **filters,
) -> pd.DataFrame:
    """Samples in [begin, end), oldest first, with wait class, event name and query text."""
    where, params = _where(
        target_id, begin, end, time_col="sample_time", wait_class_expr=_CLS, **filters
    )
    query = sql.SQL(
        """
        SELECT s.sample_time, s.weight_s, s.pid, s.leader_pid, s.backend_type, s.usename,
               s.datname, s.application_name, host(s.client_addr) AS client_addr,
               s.backend_start, s.state, {cls} AS wait_class, s.wait_event_type, s.wait_event,
               {ev} AS event, {dbt} AS db_time, s.query_id, q.query_text AS query,
               s.query_start, s.xact_start, s.state_change, s.xid_age, s.xmin_age,
               s.blocking_pids, s.tier
          FROM {tiers}
          LEFT JOIN opscore.ash_query_texts q
                 ON q.target_id = s.target_id AND q.text_hash = s.text_hash
         WHERE {where}
         ORDER BY s.sample_time, s.pid
         {limit}
        """
    ).format(
        cls=_CLS,
        ev=_EV,
        dbt=_DBT,
        tiers=_tiers(include_history),
        where=where,
        limit=sql.SQL("LIMIT %(limit)s") if limit else sql.SQL(""),
    )
    if limit:
        params["limit"] = limit
    with decoding(conn), conn.cursor() as cur:
        cur.execute(query, params)
        return _frame(cur, SAMPLE_COLUMNS)


def db_time(
    conn: psycopg.Connection,
    target_id: int,
    begin: datetime,
    end: datetime,
    by: list[str],
    *,
    include_history: bool = True,
    use_summary: bool = False,
    bucket_s: int | None = None,
    **filters,
) -> pd.DataFrame:
    """DB time (seconds) grouped by ``by`` (canonical names), largest first.

    With ``bucket_s`` the first column is ``bucket_start`` (time buckets of that many seconds,
    aligned on ``ash_time.EPOCH``; a multiple of the summary bucket when reading the summary)
    and rows are ordered by time.

    Columns: the dimensions, ``db_time_s`` (running on CPU or in non-idle waits), ``time_s``
    (all sampled time, idle-in-transaction waits included), ``samples``, and ``query`` (a text of
    the query_id) when grouping by query_id. With ``use_summary`` it reads the 5-minute summary
    (buckets overlapping [begin, end), so whole buckets at the edges) instead of the samples.
    """
    pos = 1 if use_summary else 0
    grouping = summary_grouping(by, filters) if use_summary else None
    if use_summary and grouping is None:
        raise InvalidInput(
            f"The ASH summary cannot answer DB time by {', '.join(by) or 'total'} with these "
            "filters (it keeps wait events, SQL by wait class, and sessions separately).",
            "Use source='samples' (or 'auto').",
        )
    dims = [sql.SQL("{} AS {}").format(DIMENSIONS[n][pos], sql.Identifier(n)) for n in by]
    order = sql.SQL("agg.db_time_s DESC, agg.time_s DESC")
    if bucket_s is not None:
        time_col = sql.SQL("s.bucket_start" if use_summary else "s.sample_time")
        dims.insert(
            0,
            sql.SQL(
                "date_bin(make_interval(secs => %(bucket_s)s), {}, %(epoch)s) AS bucket_start"
            ).format(time_col),
        )
        order = sql.SQL("agg.bucket_start, agg.db_time_s DESC")
    group = (
        sql.SQL("GROUP BY ") + sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(dims)))
        if dims
        else sql.SQL("")
    )
    if use_summary:
        # buckets overlapping [begin, end): bucket granularity at the edges
        begin = bucket_floor(begin, SUMMARY_BUCKET_S)
        where, params = _where(
            target_id, begin, end, time_col=None, wait_class_expr=sql.SQL("s.wait_class"), **filters
        )
        # the grouping's arrays decoded, the bucket range pushed down to the summary rows;
        # added up per group before decoding unless the buckets are asked for
        per_bucket = bucket_s is not None or "hour" in by
        source = summary_sql(grouping, target="t", begin="begin", end="end", per_bucket=per_bucket)
        measures = sql.SQL(
            "sum(s.samples)::bigint AS samples, sum(s.time_s)::float8 AS time_s, "
            "sum(s.db_time_s)::float8 AS db_time_s, min(s.text_hash) AS text_hash"
        )
    else:
        where, params = _where(
            target_id, begin, end, time_col="sample_time", wait_class_expr=_CLS, **filters
        )
        source = _tiers(include_history)
        measures = sql.SQL(
            "count(*) AS samples, sum(s.weight_s)::float8 AS time_s, "
            "coalesce(sum(s.weight_s) FILTER (WHERE {dbt}), 0)::float8 AS db_time_s, "
            "min(s.text_hash) AS text_hash"
        ).format(dbt=_DBT)
    select = sql.SQL(", ").join([*dims, measures])
    query = sql.SQL(
        """
        WITH agg AS (SELECT {select} FROM {source} WHERE {where} {group})
        SELECT agg.*, q.query_text AS query
          FROM agg LEFT JOIN opscore.ash_query_texts q
               ON q.target_id = %(t)s AND q.text_hash = agg.text_hash
         ORDER BY {order}
        """
    ).format(select=select, source=source, where=where, group=group, order=order)
    if bucket_s is not None:
        params.update(bucket_s=bucket_s, epoch=EPOCH)
    with decoding(conn), conn.cursor() as cur:
        cur.execute(query, params)
        df = _frame(cur)
    df = df.drop(columns=["text_hash"])
    if "query_id" not in by:
        df = df.drop(columns=["query"])
    if not by and len(df) == 1 and pd.isna(df.loc[0, "time_s"]):
        df.loc[0, ["samples", "time_s", "db_time_s"]] = [0, 0.0, 0.0]
    return df


def blocking_samples(
    conn: psycopg.Connection,
    target_id: int,
    begin: datetime,
    end: datetime,
    *,
    include_history: bool = True,
) -> pd.DataFrame:
    """Every sampled session at the sample times where at least one session was blocked."""
    query = sql.SQL(
        """
        WITH s AS (SELECT * FROM {tiers}
                    WHERE s.target_id = %(t)s AND s.sample_time >= %(begin)s
                      AND s.sample_time < %(end)s),
             bt AS (SELECT DISTINCT sample_time FROM s WHERE cardinality(blocking_pids) > 0)
        SELECT s.sample_time, s.weight_s, s.pid, s.backend_start, s.usename, s.datname,
               s.application_name, s.state, s.wait_event_type, s.wait_event, s.query_id,
               q.query_text AS query, s.xact_start, s.blocking_pids
          FROM s JOIN bt USING (sample_time)
          LEFT JOIN opscore.ash_query_texts q
                 ON q.target_id = s.target_id AND q.text_hash = s.text_hash
         ORDER BY s.sample_time, s.pid
        """
    ).format(tiers=_tiers(include_history))
    with decoding(conn), conn.cursor() as cur:
        cur.execute(query, {"t": target_id, "begin": begin, "end": end})
        return _frame(cur)


def last_sample_time(conn: psycopg.Connection, target_id: int) -> datetime | None:
    """Newest sample time of a target: the sampler's last report, or the newest stored row."""
    newest_chunk = (
        "(SELECT c.chunk_start + c.t_off[array_upper(c.t_off, 1)] * interval '1 microsecond' "
        " FROM opscore.{} c WHERE c.target_id = %(t)s ORDER BY c.chunk_start DESC LIMIT 1)"
    )
    newest_row = "(SELECT max(sample_time) FROM opscore.{} WHERE target_id = %(t)s)"
    status = "(SELECT last_sample_time FROM opscore.ash_sampler_status WHERE target_id = %(t)s)"
    parts = [sql.SQL(status)]
    parts.append(sql.SQL(newest_row).format(sql.Identifier(HOT_TABLE)))
    parts += [sql.SQL(newest_chunk).format(sql.Identifier(t)) for t in (RAW_CHUNKS, HISTORY_CHUNKS)]
    query = sql.SQL("SELECT greatest({})").format(sql.SQL(", ").join(parts))
    row = conn.execute(query, {"t": target_id}).fetchone()
    return row[0].astimezone(UTC) if row and row[0] is not None else None


def background_time(
    conn: psycopg.Connection,
    target_id: int,
    begin: datetime,
    end: datetime,
    *,
    include_history: bool = True,
) -> pd.DataFrame:
    """Background activity of [begin, end): sampled time of background processes
    (checkpointer, autovacuum, WAL writer, background writer, I/O workers...) working or in a
    non-idle wait, by backend type, wait class and event, largest first. Not DB time.

    Columns: backend_type, wait_class, event, time_s, samples."""
    where, params = _where(target_id, begin, end, time_col="sample_time", wait_class_expr=_CLS)
    query = sql.SQL(
        """
        SELECT s.backend_type, {cls} AS wait_class, {ev} AS event,
               sum(s.weight_s)::float8 AS time_s, count(*) AS samples
          FROM {tiers}
         WHERE {where} AND {bg}
         GROUP BY 1, 2, 3
         ORDER BY time_s DESC, 1, 2, 3
        """
    ).format(cls=_CLS, ev=_EV, bg=_BG, tiers=_tiers(include_history), where=where)
    with decoding(conn), conn.cursor() as cur:
        cur.execute(query, params)
        df = _frame(cur)
    if df.empty:
        df = pd.DataFrame(columns=["backend_type", "wait_class", "event", "time_s", "samples"])
    return df
