"""Reading snapshots: lists, one snapshot's deltas, range aggregates, deletion, retention,
baselines. Range aggregates are the building block of reports, compare and ADDM."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import psycopg
from psycopg.rows import dict_row

from ..errors import NotFound
from ..model.sources import SOURCES
from . import snapshot_columnar as columnar
from .snapshot_columnar import RangePlan

_INFO_COLS = (
    "s.snapshot_id, t.name AS target, s.target_id, s.captured_at, s.status, s.error, "
    "s.prev_snapshot_id, s.interval_s, s.server_version_num, s.with_sizes, s.own_datname, "
    "s.sources, s.resets, s.target_ms, s.total_ms, s.statements"
)


@dataclass
class SnapshotInfo:
    snapshot_id: int
    target: str
    target_id: int
    captured_at: datetime
    status: str  # ok | partial | failed
    error: str | None
    prev_snapshot_id: int | None
    interval_s: float | None
    server_version_num: int | None
    with_sizes: bool
    own_datname: str | None
    sources: dict[str, str] = field(default_factory=dict)
    resets: list[dict[str, str]] = field(default_factory=list)
    target_ms: float | None = None
    total_ms: float | None = None
    statements: int | None = None
    created: bool = True  # False when this capture had already been stored

    @property
    def is_baseline(self) -> bool:
        """The first snapshot of a target (or after a gap): values only, no deltas."""
        return self.status != "failed" and self.prev_snapshot_id is None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["captured_at"] = self.captured_at.isoformat()
        d["is_baseline"] = self.is_baseline
        return d


def _info(row: dict[str, Any]) -> SnapshotInfo:
    return SnapshotInfo(**row)


def list_snapshots(
    conn: psycopg.Connection, target_id: int | None = None, limit: int = 100
) -> list[SnapshotInfo]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_INFO_COLS} FROM opscore.snapshots s JOIN opscore.targets t USING "
            "(target_id) WHERE (%(t)s::int IS NULL OR s.target_id = %(t)s) "
            "ORDER BY s.captured_at DESC, s.snapshot_id DESC LIMIT %(n)s",
            {"t": target_id, "n": limit},
        )
        return [_info(r) for r in cur.fetchall()]


def get_info(conn: psycopg.Connection, snapshot_id: int) -> SnapshotInfo:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_INFO_COLS} FROM opscore.snapshots s JOIN opscore.targets t USING "
            "(target_id) WHERE s.snapshot_id = %s",
            (snapshot_id,),
        )
        row = cur.fetchone()
    if row is None:
        raise NotFound(
            f"There is no snapshot {snapshot_id}.",
            "List snapshots with `opscore snapshot list` (add --target NAME).",
        )
    return _info(row)


# ---------------------------------------------------------------------------- aggregates
DB_COUNTERS = SOURCES["pg_stat_database"].of_kind("counter")
IO_COUNTERS = SOURCES["pg_stat_io"].of_kind("counter")


def _sums(cols: list[str], alias: str = "x") -> str:
    return columnar.sums(cols, alias)


def _latest(col: str, alias: str = "x") -> str:
    return columnar.latest(col, alias, f"{alias}.snapshot_id")


def _frame(conn: psycopg.Connection, query: str, params: dict[str, Any]) -> pd.DataFrame:
    with conn.cursor() as cur:  # tuples: much cheaper than dict rows for wide frames
        cur.execute(query, params)
        rows = cur.fetchall()
        names = [d.name for d in cur.description or []]
    return pd.DataFrame(rows, columns=names)


def statements_frame(
    conn: psycopg.Connection, plan: RangePlan, include_opscore: bool
) -> pd.DataFrame:
    """Per-statement sums over the planned snapshots (deltas), with text and mean time."""
    counters = columnar.STATEMENTS.counters
    df = _frame(
        conn,
        "SELECT st.stmt_id, st.queryid, st.datname, st.username, st.toplevel, st.own, "
        f"st.query, a.intervals, {', '.join('a.' + c for c in counters)} "
        f"FROM ({columnar.agg_sql(columnar.STATEMENTS)}) a "
        "JOIN opscore.statements st ON st.stmt_id = a.stmt_id "
        "WHERE %(own)s OR NOT st.own",
        {**plan.params(), "own": include_opscore},
    )
    for c in counters:
        df[c] = pd.to_numeric(df[c]) if len(df) else pd.Series(dtype="float64")
    calls = df["calls"].where(df["calls"] != 0) if len(df) else df["calls"]
    df["mean_exec_time"] = (df["total_exec_time"] / calls).astype("float64")
    return df.sort_values("total_exec_time", ascending=False).reset_index(drop=True)


def databases_frame(
    conn: psycopg.Connection, ids: list[int], include_opscore: bool
) -> pd.DataFrame:
    return _frame(
        conn,
        f"SELECT x.datid, x.datname, bool_or(x.own) AS own, {_latest('numbackends', 'x')}, "
        f"{_latest('size_bytes', 'x')}, {_sums(DB_COUNTERS)} FROM opscore.snap_databases x "
        "WHERE x.snapshot_id = ANY(%(ids)s) AND (%(own)s OR NOT x.own) "
        "GROUP BY x.datid, x.datname ORDER BY x.datname",
        {"ids": ids, "own": include_opscore},
    )


def _sorted(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    if df.empty:
        return df
    activity = sum(df[c] for c in cols)
    return df.loc[activity.sort_values(ascending=False).index].reset_index(drop=True)


def tables_frame(conn: psycopg.Connection, plan: RangePlan) -> pd.DataFrame:
    return _sorted(
        _frame(conn, columnar.agg_sql(columnar.TABLES), plan.params()),
        ["seq_tup_read", "idx_tup_fetch", "n_tup_ins", "n_tup_upd", "n_tup_del"],
    )


def indexes_frame(conn: psycopg.Connection, plan: RangePlan) -> pd.DataFrame:
    return _sorted(
        _frame(conn, columnar.agg_sql(columnar.INDEXES), plan.params()),
        ["idx_scan", "idx_blks_read", "idx_blks_hit"],
    )


def io_frame(conn: psycopg.Connection, ids: list[int]) -> pd.DataFrame:
    return _sorted(
        _frame(
            conn,
            f"SELECT x.backend_type, x.object, x.context, {_sums(IO_COUNTERS)} "
            "FROM opscore.snap_io x WHERE x.snapshot_id = ANY(%(ids)s) "
            "GROUP BY 1, 2, 3",
            {"ids": ids},
        ),
        ["reads", "writes", "extends"],
    )


def cluster_sums(conn: psycopg.Connection, ids: list[int]) -> dict[str, dict[str, Any]]:
    """Sum of one-row counter sources (wal, checkpointer, archiver, host) over the snapshots;
    gauges from the latest snapshot. ``_latest`` holds the newest snapshot's raw row of each
    source: the host's gauges (CPU count, memory, load) are read there, not from the sums."""
    out: dict[str, dict[str, Any]] = {}
    rows = conn.execute(
        "SELECT source, data FROM opscore.snap_cluster WHERE snapshot_id = ANY(%s) "
        "AND source IN ('pg_stat_wal', 'checkpointer', 'pg_stat_archiver', 'host') "
        "ORDER BY snapshot_id",
        (ids,),
    ).fetchall()
    for source, data in rows:
        acc = out.setdefault(source, {})
        if isinstance(data.get("values"), dict):
            acc["_latest"] = data["values"]  # ordered by snapshot_id: the newest wins
        for k, v in (data.get("deltas") or {}).items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                acc[k] = acc.get(k, 0) + v
        for k, v in (data.get("values") or {}).items():
            if k not in acc or not isinstance(acc.get(k), int | float):
                acc.setdefault("_values", {})[k] = v
    return out


def cluster_data(conn: psycopg.Connection, snapshot_id: int) -> dict[str, Any]:
    """Every cluster-wide source of one snapshot (pg_stat_wal, checkpointer, ...) by name."""
    rows = conn.execute(
        "SELECT source, data FROM opscore.snap_cluster WHERE snapshot_id = %s", (snapshot_id,)
    ).fetchall()
    return {source: data for source, data in rows}


def latest_usable_ids(conn: psycopg.Connection, target_id: int, n: int = 2) -> list[int]:
    """The ids of the target's ``n`` newest snapshots that did not fail, newest first."""
    rows = conn.execute(
        "SELECT snapshot_id FROM opscore.snapshots WHERE target_id = %s AND status <> 'failed' "
        "ORDER BY captured_at DESC, snapshot_id DESC LIMIT %s",
        (target_id, n),
    ).fetchall()
    return [r[0] for r in rows]


def cluster_values(conn: psycopg.Connection, snapshot_id: int, source: str) -> Any:
    row = conn.execute(
        "SELECT data FROM opscore.snap_cluster WHERE snapshot_id = %s AND source = %s",
        (snapshot_id, source),
    ).fetchone()
    return row[0] if row else None


def settings_changes(conn: psycopg.Connection, begin_id: int, end_id: int) -> pd.DataFrame:
    """Settings (changed from default) that differ between two snapshots."""
    a = cluster_values(conn, begin_id, "settings") or {"values": []}
    b = cluster_values(conn, end_id, "settings") or {"values": []}
    va = {r["name"]: r for r in a["values"]}
    vb = {r["name"]: r for r in b["values"]}
    rows = []
    for name in sorted(set(va) | set(vb)):
        x, y = va.get(name), vb.get(name)
        sx = x["setting"] if x else None
        sy = y["setting"] if y else None
        if sx != sy:
            unit = (y or x or {}).get("unit")
            rows.append({"name": name, "before": sx, "after": sy, "unit": unit})
    return pd.DataFrame(rows, columns=["name", "before", "after", "unit"])
