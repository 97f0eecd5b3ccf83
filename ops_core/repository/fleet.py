"""Repository reads and writes of the fleet: every target's state in one query (the fleet
overview) and target tags (the labels `opscore deploy --shard-tag` splits by)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ..model.waits import is_db_time_sql, wait_class_sql
from .ash_tiers import decoding, tiers_sql

__all__ = ["overview", "set_tags"]

_CLS = wait_class_sql("s.state", "s.wait_event_type")
_DBT = is_db_time_sql("s.state", "s.wait_event_type", "s.backend_type")

# One statement for every target: the sampler's status row, the newest snapshot (index on
# (target_id, snapshot_id)), the DB time and top wait class of the window from the raw ASH
# tier (hot rows and raw chunks of the window only), and the open alerts.
_OVERVIEW = """
WITH ash AS (
    SELECT s.target_id, {cls} AS wait_class, sum(s.weight_s) AS db_time_s
    FROM {tiers}
    WHERE {dbt}
    GROUP BY 1, 2
), per_target AS (
    SELECT target_id, sum(db_time_s) AS db_time_s FROM ash GROUP BY 1
), top_class AS (
    SELECT DISTINCT ON (target_id) target_id, wait_class, db_time_s
    FROM ash ORDER BY target_id, db_time_s DESC, wait_class
), alerts AS (
    SELECT target_id, count(*) AS open_alerts,
           count(*) FILTER (WHERE severity = 'critical') AS critical_alerts
    FROM opscore.alerts WHERE status <> 'resolved' GROUP BY 1
)
SELECT t.target_id, t.name, t.tags, now() AS now,
       st.last_sample_time, st.last_flush_at, st.errors AS sampler_errors,
       st.last_error AS sampler_last_error,
       sn.captured_at AS last_snapshot_at, sn.status AS last_snapshot_status,
       sn.error AS last_snapshot_error,
       coalesce(p.db_time_s, 0) AS db_time_s,
       tc.wait_class AS top_wait_class, coalesce(tc.db_time_s, 0) AS top_wait_class_s,
       coalesce(a.open_alerts, 0) AS open_alerts,
       coalesce(a.critical_alerts, 0) AS critical_alerts
FROM opscore.targets t
LEFT JOIN opscore.ash_sampler_status st USING (target_id)
LEFT JOIN LATERAL (
    SELECT x.captured_at, x.status, x.error FROM opscore.snapshots x
    WHERE x.target_id = t.target_id ORDER BY x.snapshot_id DESC LIMIT 1
) sn ON true
LEFT JOIN per_target p USING (target_id)
LEFT JOIN top_class tc USING (target_id)
LEFT JOIN alerts a USING (target_id)
ORDER BY t.name
"""


def overview(conn: psycopg.Connection, window_s: float) -> tuple[datetime, list[dict]]:
    """The repository's ``now()`` and one row per target (see ``_OVERVIEW``), ASH measured
    over the ``window_s`` seconds before now."""
    query = sql.SQL(_OVERVIEW).format(
        cls=_CLS, dbt=_DBT, tiers=tiers_sql(include_history=False, target=None)
    )
    with decoding(conn):  # hash joins to the ASH dictionaries (3-5x faster over an hour)
        end = conn.execute("SELECT now()").fetchone()[0]
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, {"begin": end - timedelta(seconds=window_s), "end": end})
            return end, cur.fetchall()


def set_tags(
    conn: psycopg.Connection, target_id: int, add: dict[str, str], remove: list[str]
) -> dict[str, str]:
    """Set (``add``) and remove tags of a target in one statement; returns its tags after."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE opscore.targets SET tags = (tags - %s::text[]) || %s::jsonb "
            "WHERE target_id = %s RETURNING tags",
            (remove, json.dumps(add), target_id),
        ).fetchone()
    return row[0] if row else {}
