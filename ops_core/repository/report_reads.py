"""Repository reads that only the reports need: ASH activity over time in fixed buckets, and
the first and last sample of each session (for the AWR DB-time cross-check).

Everything else the reports use comes from the snapshot and ASH reads of their areas.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import psycopg
from psycopg import sql

from .ash_read import _CLS, _DBT, _tiers, _where
from .ash_tiers import decoding

#: bucket sizes for activity charts (seconds); the smallest giving at most MAX_BUCKETS is used
BUCKETS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
MAX_BUCKETS = 150


def bucket_for(begin: datetime, end: datetime, min_s: float = 1.0) -> int:
    span = (end - begin).total_seconds()
    for b in BUCKETS_S:
        if b >= min_s and span / b <= MAX_BUCKETS:
            return b
    return BUCKETS_S[-1]


def ash_activity(
    conn: psycopg.Connection,
    target_id: int,
    begin: datetime,
    end: datetime,
    bucket_s: int,
    *,
    include_history: bool = True,
    **filters,
) -> pd.DataFrame:
    """DB time per time bucket and wait class: columns bucket, wait_class, db_time_s, samples.

    Buckets start at ``begin`` (``date_bin``); only DB time (running or non-idle waits)."""
    where, params = _where(
        target_id, begin, end, time_col="sample_time", wait_class_expr=_CLS, **filters
    )
    params["bucket"] = bucket_s
    query = sql.SQL(
        """
        SELECT date_bin(make_interval(secs => %(bucket)s), s.sample_time, %(begin)s) AS bucket,
               {cls} AS wait_class,
               sum(s.weight_s)::float8 AS db_time_s, count(*) AS samples
          FROM {tiers}
         WHERE {where} AND {dbt}
         GROUP BY 1, 2
         ORDER BY 1, 2
        """
    ).format(cls=_CLS, dbt=_DBT, tiers=_tiers(include_history), where=where)
    with decoding(conn), conn.cursor() as cur:
        cur.execute(query, params)
        names = [d.name for d in cur.description] if cur.description else []
        return pd.DataFrame(
            cur.fetchall(), columns=names or ["bucket", "wait_class", "db_time_s", "samples"]
        )


def ash_sample_count(
    conn: psycopg.Connection, target_id: int, begin: datetime, end: datetime
) -> tuple[int, datetime | None, datetime | None]:
    """How many sample rows a range holds (both tiers), and the first and last sample time."""
    query = sql.SQL(
        "SELECT count(*), min(s.sample_time), max(s.sample_time) FROM {tiers} "
        "WHERE s.target_id = %(t)s AND s.sample_time >= %(begin)s AND s.sample_time < %(end)s"
    ).format(tiers=_tiers(True))  # the tiers bind %(t)s, %(begin)s and %(end)s too
    with decoding(conn):
        row = conn.execute(query, {"t": target_id, "begin": begin, "end": end}).fetchone()
    assert row is not None
    return int(row[0]), row[1], row[2]


def ash_session_edges(
    conn: psycopg.Connection, target_id: int, begin: datetime, end: datetime
) -> pd.DataFrame:
    """Per sampled session (pid, backend_start) of [begin, end): backend type, first and last
    sample, the ``state_change`` and DB-time flag at each, its ASH DB time, and the DB time of
    its last stretch (samples sharing the last ``state_change``: the statement it was last seen
    in). What the AWR DB-time cross-check needs to say why ASH and active_time differ."""
    query = sql.SQL(
        """
        WITH s AS (
          SELECT s.pid, s.backend_start, s.backend_type, s.application_name, s.sample_time,
                 s.state_change, s.weight_s, {dbt} AS dbt,
                 last_value(s.state_change) OVER w AS last_change
            FROM {tiers}
           WHERE s.target_id = %(t)s AND s.sample_time >= %(begin)s AND s.sample_time < %(end)s
          WINDOW w AS (PARTITION BY s.pid, s.backend_start ORDER BY s.sample_time
                       ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
        )
        SELECT pid, backend_start, max(backend_type) AS backend_type,
               max(application_name) AS application_name,
               min(sample_time) AS first_sample, max(sample_time) AS last_sample,
               (array_agg(state_change ORDER BY sample_time))[1] AS first_change,
               max(last_change) AS last_change,
               (array_agg(dbt ORDER BY sample_time))[1] AS first_db,
               (array_agg(dbt ORDER BY sample_time DESC))[1] AS last_db,
               coalesce(sum(weight_s) FILTER (WHERE dbt), 0)::float8 AS db_time_s,
               coalesce(sum(weight_s) FILTER (
                 WHERE dbt AND state_change IS NOT DISTINCT FROM last_change), 0)::float8
                 AS last_stretch_db_s,
               count(*) FILTER (WHERE dbt AND state_change IS NOT DISTINCT FROM last_change)
                 AS last_stretch_samples,
               max(weight_s)::float8 AS weight_s
          FROM s
         GROUP BY pid, backend_start
        """
    ).format(dbt=_DBT, tiers=_tiers(True))
    cols = [
        "pid", "backend_start", "backend_type", "application_name", "first_sample",
        "last_sample", "first_change", "last_change", "first_db", "last_db", "db_time_s",
        "last_stretch_db_s", "last_stretch_samples", "weight_s",
    ]  # fmt: skip
    with conn.cursor() as cur:
        cur.execute(query, {"t": target_id, "begin": begin, "end": end})
        return pd.DataFrame(cur.fetchall(), columns=cols)


def latest_index_sizes(
    conn: psycopg.Connection, target_id: int, end_id: int
) -> tuple[datetime | None, pd.DataFrame]:
    """Index sizes (datname, indexrelid, index_bytes) from the target's newest snapshot at or
    before ``end_id`` that measured relation sizes, and when it did; (None, empty) when none.
    The AWR report fills the sizes its range did not measure from it."""
    from . import snapshot_columnar as columnar
    from . import snapshot_reads

    row = conn.execute(
        "SELECT snapshot_id, captured_at FROM opscore.snapshots WHERE target_id = %s "
        "AND with_sizes AND status <> 'failed' AND snapshot_id <= %s "
        "ORDER BY snapshot_id DESC LIMIT 1",
        (target_id, end_id),
    ).fetchone()
    empty = pd.DataFrame(columns=["datname", "indexrelid", "index_bytes"])
    if row is None:
        return None, empty
    df = snapshot_reads.indexes_frame(conn, columnar.RangePlan.single(target_id, row[0]))
    if df.empty or "index_bytes" not in df.columns:
        return None, empty
    df = df.loc[df["index_bytes"].notna(), ["datname", "indexrelid", "index_bytes"]]
    return (row[1] if len(df) else None), df.reset_index(drop=True)
