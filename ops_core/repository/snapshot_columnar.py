"""Columnar detail tables (statements, tables, indexes) and their daily rollups.

A snapshot stores its per-statement (per-table, per-index) deltas as ONE row with one array
per column. Reading a range unnests those rows and sums them. For long ranges, every complete
UTC day inside the range is read from a daily rollup (``*_day`` tables: the same arrays,
already summed over the day), built on first use and rebuilt when the day's snapshots change
(checked by first/last snapshot id and count), so a 7-day range reads ~7 rows per table
instead of ~700.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg

from ..model.sources import SOURCES

MIN_ROLLUP_SNAPSHOTS = 4  # a day with fewer snapshots is read raw


@dataclass(frozen=True)
class Columnar:
    table: str
    group: tuple[str, ...]  # row-level columns (not arrays) besides snapshot_id
    key: tuple[str, ...]
    counters: tuple[str, ...]
    gauges: tuple[str, ...]
    types: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def cols(self) -> list[str]:
        return [*self.key, *self.counters, *self.gauges]


def _spec(table: str, source: str, group: tuple[str, ...], key: tuple[str, ...]) -> Columnar:
    src = SOURCES[source]
    counters = tuple(src.of_kind("counter"))
    gauges = tuple(c.name for c in src.columns if c.kind in ("gauge", "key") and c.name not in key)
    types = {c.name: c.pgtype for c in src.columns}
    types["stmt_id"] = "int4"
    return Columnar(table, group, key, counters, gauges, types)


STATEMENTS = Columnar(
    "snap_statements",
    (),
    ("stmt_id",),
    tuple(SOURCES["pg_stat_statements"].of_kind("counter")),
    (),
    {**{c.name: c.pgtype for c in SOURCES["pg_stat_statements"].columns}, "stmt_id": "int4"},
)
TABLES = _spec("snap_tables", "tables", ("datname",), ("relid",))
INDEXES = _spec("snap_indexes", "indexes", ("datname",), ("indexrelid",))
ALL = (STATEMENTS, TABLES, INDEXES)

_CAST = {
    c.name: ("int8" if c.pgtype == "int8" else "float8")
    for src in ("pg_stat_statements", "pg_stat_database", "tables", "indexes", "pg_stat_io")
    for c in SOURCES[src].columns
}


def sums(cols: list[str] | tuple[str, ...], alias: str = "x") -> str:
    """Sums of deltas (NULL = 0), typed: integers stay exact integers."""
    return ", ".join(f"COALESCE(sum({alias}.{c}), 0)::{_CAST[c]} AS {c}" for c in cols)


def latest(col: str, alias: str = "u", order: str = "u.ord") -> str:
    return (
        f"(array_agg({alias}.{col} ORDER BY {order} DESC) "
        f"FILTER (WHERE {alias}.{col} IS NOT NULL))[1] AS {col}"
    )


@dataclass
class RangePlan:
    """Which snapshots to read raw and which complete days to read from rollups."""

    target_id: int
    ids: list[int]  # every successful snapshot of the range
    raw: list[int]
    days: list[date] = field(default_factory=list)

    @classmethod
    def single(cls, target_id: int, snapshot_id: int) -> RangePlan:
        return cls(target_id, [snapshot_id], [snapshot_id], [])

    def params(self) -> dict[str, Any]:
        return {"raw": self.raw, "tid": self.target_id, "days": self.days}


def _rows_sql(c: Columnar) -> str:
    """Rows (ord, intervals, group..., key..., counters..., gauges...) of raw snapshots
    (%(raw)s) and of daily rollups (%(tid)s, %(days)s)."""
    cols = c.cols
    group = "".join(f"x.{g}, " for g in c.group)
    arrays = ", ".join(f"x.{col}" for col in cols)
    ucols = ", ".join(f"u.{col}" for col in cols)
    raw = (
        f"SELECT x.snapshot_id AS ord, 1 AS intervals, {group}{ucols} "
        f"FROM opscore.{c.table} x CROSS JOIN LATERAL unnest({arrays}) "
        f"AS u({', '.join(cols)}) WHERE x.snapshot_id = ANY(%(raw)s)"
    )
    day = (
        f"SELECT x.last_snapshot_id, u.intervals, {group}{ucols} "
        f"FROM opscore.{c.table}_day x CROSS JOIN LATERAL unnest(x.intervals, {arrays}) "
        f"AS u(intervals, {', '.join(cols)}) "
        "WHERE x.target_id = %(tid)s AND x.day = ANY(%(days)s::date[])"
    )
    return f"{raw} UNION ALL {day}"


def agg_sql(c: Columnar) -> str:
    """Per key: summed counters, latest gauges, number of intervals."""
    keys = [*(f"u.{g}" for g in c.group), *(f"u.{k}" for k in c.key)]
    select = [
        *keys,
        "sum(u.intervals)::int AS intervals",
        sums(c.counters, "u"),
        *(latest(g) for g in c.gauges),
    ]
    return f"SELECT {', '.join(select)} FROM ({_rows_sql(c)}) u GROUP BY {', '.join(keys)}"


def _build_day(
    conn: psycopg.Connection,
    target_id: int,
    day: date,
    first: int,
    last: int,
    n: int,
    ids: list[int],
) -> None:
    for c in ALL:
        conn.execute(
            f"DELETE FROM opscore.{c.table}_day WHERE target_id = %s AND day = %s",
            (target_id, day),
        )
        group = [*c.group]
        aggs = ", ".join(f"array_agg(g.{col})" for col in ["intervals", *c.cols])
        names = ", ".join(
            [
                "target_id",
                "day",
                *group,
                "first_snapshot_id",
                "last_snapshot_id",
                "snapshots",
                "intervals",
                *c.cols,
            ]
        )
        conn.execute(
            f"INSERT INTO opscore.{c.table}_day ({names}) "
            f"SELECT %(tid)s, %(day)s, {''.join(f'g.{x}, ' for x in group)}"
            f"%(first)s, %(last)s, %(n)s, {aggs} FROM ({agg_sql(c)}) g "
            + (f"GROUP BY {', '.join('g.' + x for x in group)}" if group else ""),
            {
                "tid": target_id,
                "day": day,
                "first": first,
                "last": last,
                "n": n,
                "raw": ids,
                "days": [],
            },
        )


def plan(conn: psycopg.Connection, target_id: int, ids: list[int]) -> RangePlan:
    """Split a range into raw snapshots and complete days, building missing or stale rollups."""
    out = RangePlan(target_id, ids, [], [])
    if not ids:
        return out
    rows = conn.execute(
        "SELECT snapshot_id, (captured_at AT TIME ZONE 'UTC')::date FROM opscore.snapshots "
        "WHERE snapshot_id = ANY(%s) ORDER BY snapshot_id",
        (ids,),
    ).fetchall()
    by_day: dict[date, list[int]] = {}
    for sid, day in rows:
        by_day.setdefault(day, []).append(sid)
    latest_day = conn.execute(
        "SELECT (max(captured_at) AT TIME ZONE 'UTC')::date FROM opscore.snapshots "
        "WHERE target_id = %s",
        (target_id,),
    ).fetchone()[0]  # type: ignore[index]
    stats = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT (captured_at AT TIME ZONE 'UTC')::date AS day, count(*), min(snapshot_id), "
            "max(snapshot_id) FROM opscore.snapshots WHERE target_id = %s AND status <> 'failed' "
            "AND (captured_at AT TIME ZONE 'UTC')::date = ANY(%s::date[]) GROUP BY 1",
            (target_id, list(by_day)),
        )
    }
    existing = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT day, snapshots, first_snapshot_id, last_snapshot_id "
            "FROM opscore.snap_statements_day WHERE target_id = %s AND day = ANY(%s::date[])",
            (target_id, list(by_day)),
        )
    }
    for day, dids in sorted(by_day.items()):
        n, first, last = stats.get(day, (0, None, None))
        complete = day < latest_day and len(dids) == n and n >= MIN_ROLLUP_SNAPSHOTS
        if not complete:
            out.raw.extend(dids)
            continue
        if existing.get(day) != (n, first, last):
            with conn.transaction():
                _build_day(conn, target_id, day, first, last, n, dids)
        out.days.append(day)
    return out


def drop_stale(conn: psycopg.Connection) -> None:
    """Remove rollups whose last snapshot is gone (after delete or purge)."""
    for c in ALL:
        conn.execute(
            f"DELETE FROM opscore.{c.table}_day d WHERE NOT EXISTS (SELECT 1 FROM "
            "opscore.snapshots s WHERE s.snapshot_id = d.last_snapshot_id)"
        )


def insert_arrays(
    conn: psycopg.Connection,
    c: Columnar,
    fixed: dict[str, Any],
    cols: list[str],
    rows: list[dict[str, Any]],
) -> None:
    """One row holding one array per column (element i of each array = row i)."""
    names = [*fixed, *cols]
    marks = ["%s"] * len(fixed) + [f"%s::{c.types[col]}[]" for col in cols]
    values = [*fixed.values(), *[[r.get(col) for r in rows] for col in cols]]
    conn.execute(
        f"INSERT INTO opscore.{c.table} ({', '.join(names)}) VALUES ({', '.join(marks)})", values
    )


def roll_previous_day(conn: psycopg.Connection, target_id: int) -> list[date]:
    """After a capture: build the rollup of the target's last complete day if it has none
    (once a day, so reads of long ranges never pay for it)."""
    row = conn.execute(
        "SELECT (max(captured_at) AT TIME ZONE 'UTC')::date FROM opscore.snapshots "
        "WHERE target_id = %s",
        (target_id,),
    ).fetchone()
    if not row or row[0] is None:
        return []
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT snapshot_id FROM opscore.snapshots WHERE target_id = %s AND status <> 'failed' "
            "AND (captured_at AT TIME ZONE 'UTC')::date = %s - 1",
            (target_id, row[0]),
        )
    ]
    return plan(conn, target_id, ids).days if ids else []
