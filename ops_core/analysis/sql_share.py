"""A statement's share of DB time, one figure for the AWR report and the Performance Hub.

pg_stat_statements keeps one row per (query id, database, user, top level); ASH knows which
database and user each sample ran as. A row's share is the ASH DB time of its own (query id,
database, user) over the range's DB time, so the rows of one query id run by two users each
get their own part and the shares of all rows add up to at most 100 % (they used to each get
the query id's whole share). Rows of one key (top-level and nested rows of the same
statement) split the key's time in proportion to their execution time.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

#: the ASH dimensions that identify a pg_stat_statements row (ash_read.db_time ``by``)
ASH_KEYS = ["query_id", "datname", "usename"]


def _key(q: object, d: object, u: object) -> tuple[int, str | None, str | None] | None:
    if q is None or pd.isna(q):
        return None
    return (int(q), None if pd.isna(d) else str(d), None if pd.isna(u) else str(u))


def db_time_shares(
    statements: pd.DataFrame, ash_by_sql: pd.DataFrame | None, total_db_s: float
) -> list[float | None]:
    """Per row of ``statements`` (queryid, datname, username, total_exec_time): its share of
    DB time in %, 0.0 when ASH never sampled it, None without a query id or without ASH DB
    time. ``ash_by_sql`` is ASH DB time by :data:`ASH_KEYS` (by query id alone it is split
    over the query id's rows in proportion to their execution time)."""
    n = len(statements)
    if total_db_s <= 0 or ash_by_sql is None or ash_by_sql.empty:
        return [None] * n
    per_user = "datname" in ash_by_sql.columns and "usename" in ash_by_sql.columns
    ash: dict[tuple, float] = defaultdict(float)
    for rec in ash_by_sql.to_dict("records"):
        q = rec.get("query_id")
        if q is None or pd.isna(q):
            continue
        k = _key(q, rec.get("datname"), rec.get("usename")) if per_user else (int(q),)
        ash[k] += float(rec["db_time_s"])
    # ASH's grouped sums can exceed the range's total by a rounding (float4 sample weights):
    # the larger is the 100 %, so the shares never add up past it
    total_db_s = max(total_db_s, sum(ash.values()))
    keys = [
        _key(q, d, u) if per_user else (None if pd.isna(q) else (int(q),))
        for q, d, u in zip(
            statements["queryid"], statements["datname"], statements["username"], strict=True
        )
    ]
    weight = [
        max(float(w), 0.0) if pd.notna(w) else 0.0
        for w in pd.to_numeric(statements["total_exec_time"], errors="coerce")
    ]
    w_sum: dict[tuple, float] = defaultdict(float)
    count: dict[tuple, int] = defaultdict(int)
    for k, w in zip(keys, weight, strict=True):
        if k is not None:
            w_sum[k] += w
            count[k] += 1
    # ASH time of a key no row has (a statement run under SET ROLE: ASH sees the session's
    # user, pg_stat_statements the current one) goes to the query id's rows, by their time
    left: dict[int, float] = defaultdict(float)
    for k, v in ash.items():
        if k not in w_sum:
            left[k[0]] += v
    q_sum: dict[int, float] = defaultdict(float)
    q_count: dict[int, int] = defaultdict(int)
    for k, w in w_sum.items():
        q_sum[k[0]] += w
        q_count[k[0]] += count[k]
    out: list[float | None] = []
    for k, w in zip(keys, weight, strict=True):
        if k is None:
            out.append(None)
            continue
        own = ash.get(k, 0.0) * (w / w_sum[k] if w_sum[k] > 0 else 1.0 / count[k])
        q = k[0]
        rest = left.get(q, 0.0) * (w / q_sum[q] if q_sum[q] > 0 else 1.0 / q_count[q])
        out.append((own + rest) / total_db_s * 100.0)
    return out


__all__ = ["ASH_KEYS", "db_time_shares"]
