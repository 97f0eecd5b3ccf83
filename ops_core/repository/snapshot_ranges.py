"""Snapshot ranges: validation, range aggregates (sum of deltas between two snapshots of one
target), deletion, retention and baselines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import psycopg

from ..errors import InvalidInput, NotFound
from ..model.serialize import frame_records
from . import snapshot_columnar as columnar
from . import snapshot_reads as reads
from .snapshot_reads import SnapshotInfo


@dataclass
class RangeAggregate:
    """Everything that happened on one target between snapshots ``begin`` and ``end``:
    the sum of the deltas of the snapshots in (begin, end]."""

    target: str
    begin: SnapshotInfo
    end: SnapshotInfo
    elapsed_s: float
    snapshot_ids: list[int]  # successful snapshots whose deltas are summed
    statements: pd.DataFrame
    databases: pd.DataFrame
    tables: pd.DataFrame
    indexes: pd.DataFrame
    io: pd.DataFrame | None  # None: pg_stat_io not available on this server
    cluster: dict[str, dict[str, Any]]  # pg_stat_wal / checkpointer / pg_stat_archiver / host
    settings_changes: pd.DataFrame
    resets: list[dict[str, Any]] = field(default_factory=list)  # new baselines inside the range
    failed: list[int] = field(default_factory=list)  # failed captures inside the range
    include_opscore: bool = False

    @property
    def xact_total(self) -> int:
        if self.databases.empty:
            return 0
        return int(self.databases["xact_commit"].sum() + self.databases["xact_rollback"].sum())

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "begin": self.begin.as_dict(),
            "end": self.end.as_dict(),
            "elapsed_s": self.elapsed_s,
            "snapshot_ids": self.snapshot_ids,
            "resets": self.resets,
            "failed": self.failed,
            "statements": frame_records(self.statements),
            "databases": frame_records(self.databases),
            "tables": frame_records(self.tables),
            "indexes": frame_records(self.indexes),
            "io": frame_records(self.io),
            "cluster": self.cluster,
            "settings_changes": frame_records(self.settings_changes),
        }


def validate_range(
    conn: psycopg.Connection, target_id: int, target: str, begin_id: int, end_id: int
) -> tuple[SnapshotInfo, SnapshotInfo]:
    """Both ids exist, belong to ``target``, are usable (not failed) and begin < end."""
    if begin_id == end_id:
        raise InvalidInput(
            f"The range {begin_id}..{end_id} is empty: begin and end are the same snapshot.",
            "Give two different snapshots, begin before end (`opscore snapshot list`).",
        )
    if begin_id > end_id:
        raise InvalidInput(
            f"The range {begin_id}..{end_id} is reversed: begin comes after end.",
            f"Swap them: --begin {end_id} --end {begin_id}.",
        )
    infos = []
    for sid in (begin_id, end_id):
        info = reads.get_info(conn, sid)
        if info.target_id != target_id:
            raise InvalidInput(
                f"Snapshot {sid} belongs to target {info.target!r}, not {target!r}.",
                f"List the snapshots of {target} with `opscore snapshot list --target {target}`.",
            )
        if info.status == "failed":
            raise InvalidInput(
                f"Snapshot {sid} is a failed capture ({info.error}); it holds no data.",
                "Pick a successful snapshot as the range bound.",
            )
        infos.append(info)
    return infos[0], infos[1]


def range_snapshots(
    conn: psycopg.Connection, target_id: int, begin_id: int, end_id: int
) -> list[tuple[int, str, Any, int | None]]:
    return conn.execute(
        "SELECT snapshot_id, status, resets, prev_snapshot_id FROM opscore.snapshots "
        "WHERE target_id = %s AND snapshot_id > %s AND snapshot_id <= %s ORDER BY snapshot_id",
        (target_id, begin_id, end_id),
    ).fetchall()


@dataclass
class RangeRead:
    """A validated range of one target: its bounds, the successful snapshots in it and the
    plan to read their details (raw snapshots plus daily rollups)."""

    begin: SnapshotInfo
    end: SnapshotInfo
    ids: list[int]
    plan: columnar.RangePlan


def range_read(
    conn: psycopg.Connection, target_id: int, target: str, begin_id: int, end_id: int
) -> RangeRead:
    begin, end = validate_range(conn, target_id, target, begin_id, end_id)
    rows = range_snapshots(conn, target_id, begin_id, end_id)
    ids = [r[0] for r in rows if r[1] != "failed"]
    return RangeRead(begin, end, ids, columnar.plan(conn, target_id, ids))


def range_aggregate(
    conn: psycopg.Connection,
    target_id: int,
    target: str,
    begin_id: int,
    end_id: int,
    include_opscore: bool = False,
) -> RangeAggregate:
    begin, end = validate_range(conn, target_id, target, begin_id, end_id)
    rows = range_snapshots(conn, target_id, begin_id, end_id)
    ids = [r[0] for r in rows if r[1] != "failed"]
    failed = [r[0] for r in rows if r[1] == "failed"]
    resets: list[dict[str, Any]] = []
    for sid, status, rs, prev in rows:
        if status == "failed":
            continue
        if prev is None:
            resets.append(
                {"snapshot_id": sid, "source": "all", "reason": "new baseline (no deltas)"}
            )
        for r in rs or []:
            resets.append({"snapshot_id": sid, **r})
    plan = columnar.plan(conn, target_id, ids)
    has_io = any(
        "pg_stat_io" in (i.sources or {}) and i.sources["pg_stat_io"] == "ok" for i in (begin, end)
    )
    return RangeAggregate(
        target=target,
        begin=begin,
        end=end,
        elapsed_s=(end.captured_at - begin.captured_at).total_seconds(),
        snapshot_ids=ids,
        statements=reads.statements_frame(conn, plan, include_opscore),
        databases=reads.databases_frame(conn, ids, include_opscore),
        tables=reads.tables_frame(conn, plan),
        indexes=reads.indexes_frame(conn, plan),
        io=reads.io_frame(conn, ids) if has_io else None,
        cluster=reads.cluster_sums(conn, ids),
        settings_changes=reads.settings_changes(conn, begin_id, end_id),
        resets=resets,
        failed=failed,
        include_opscore=include_opscore,
    )


# ------------------------------------------------------------------ delete, purge, baselines
def _protected_ranges(conn: psycopg.Connection, target_id: int | None = None) -> list[tuple]:
    return conn.execute(
        "SELECT name, target_id, begin_snapshot_id, end_snapshot_id FROM opscore.baselines "
        "WHERE %(t)s::int IS NULL OR target_id = %(t)s",
        {"t": target_id},
    ).fetchall()


def delete_range(
    conn: psycopg.Connection, target_id: int, target: str, begin_id: int, end_id: int
) -> int:
    if begin_id > end_id:
        raise InvalidInput(
            f"The range {begin_id}..{end_id} is reversed: begin comes after end.",
            f"Swap them: --begin {end_id} --end {begin_id}.",
        )
    for sid in (begin_id, end_id):
        info = reads.get_info(conn, sid)
        if info.target_id != target_id:
            raise InvalidInput(
                f"Snapshot {sid} belongs to target {info.target!r}, not {target!r}.",
                f"List the snapshots of {target} with `opscore snapshot list --target {target}`.",
            )
    for name, _, b, e in _protected_ranges(conn, target_id):
        if b <= end_id and e >= begin_id:
            raise InvalidInput(
                f"Snapshots {begin_id}..{end_id} overlap baseline {name!r} ({b}..{e}); "
                "nothing was deleted.",
                f"Delete the baseline first (`opscore baseline delete {name}`) or pick "
                "another range.",
            )
    with conn.transaction():
        cur = conn.execute(
            "DELETE FROM opscore.snapshots WHERE target_id = %s AND snapshot_id BETWEEN %s AND %s",
            (target_id, begin_id, end_id),
        )
        columnar.drop_stale(conn)
        return cur.rowcount


def purge(conn: psycopg.Connection, retention_days: int) -> int:
    """Delete snapshots older than the retention, except those inside a baseline and the
    latest snapshot of each target (the base of its next delta)."""
    if retention_days < 1:
        raise InvalidInput(
            f"Retention must be at least 1 day (got {retention_days}).",
            "Give --days 1 or more.",
        )
    with conn.transaction():
        cur = conn.execute(
            """
            DELETE FROM opscore.snapshots s
             WHERE s.captured_at < now() - make_interval(days => %s)
               AND NOT EXISTS (SELECT 1 FROM opscore.baselines b
                                WHERE b.target_id = s.target_id
                                  AND s.snapshot_id BETWEEN b.begin_snapshot_id
                                                        AND b.end_snapshot_id)
               AND s.snapshot_id <> (SELECT max(l.snapshot_id) FROM opscore.snapshots l
                                      WHERE l.target_id = s.target_id)
            """,
            (retention_days,),
        )
        columnar.drop_stale(conn)
        return cur.rowcount


@dataclass
class Baseline:
    name: str
    target: str
    begin_snapshot_id: int
    end_snapshot_id: int
    begin_at: Any
    end_at: Any
    created_at: Any

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("begin_at", "end_at", "created_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


def create_baseline(
    conn: psycopg.Connection, name: str, target_id: int, target: str, begin_id: int, end_id: int
) -> Baseline:
    validate_range(conn, target_id, target, begin_id, end_id)
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO opscore.baselines (name, target_id, begin_snapshot_id, "
                "end_snapshot_id) VALUES (%s, %s, %s, %s)",
                (name, target_id, begin_id, end_id),
            )
    except psycopg.errors.UniqueViolation:
        raise InvalidInput(
            f"A baseline named {name!r} already exists.",
            f"Pick another name or `opscore baseline delete {name}` first.",
        ) from None
    except psycopg.errors.CheckViolation:
        raise InvalidInput(
            f"{name!r} is not a valid baseline name.",
            "Use 1-63 letters, digits, '_', '.', '-', starting with a letter or digit.",
        ) from None
    return get_baseline(conn, name)


_BASELINE_SQL = (
    "SELECT b.name, t.name, b.begin_snapshot_id, b.end_snapshot_id, sb.captured_at, "
    "se.captured_at, b.created_at FROM opscore.baselines b JOIN opscore.targets t USING "
    "(target_id) LEFT JOIN opscore.snapshots sb ON sb.snapshot_id = b.begin_snapshot_id "
    "LEFT JOIN opscore.snapshots se ON se.snapshot_id = b.end_snapshot_id "
)


def get_baseline(conn: psycopg.Connection, name: str) -> Baseline:
    row = conn.execute(_BASELINE_SQL + "WHERE b.name = %s", (name,)).fetchone()
    if row is None:
        known = [b.name for b in list_baselines(conn)]
        raise NotFound(
            f"There is no baseline named {name!r} (known: {', '.join(known) or 'none'}).",
            "List baselines with `opscore baseline list`.",
        )
    return Baseline(*row)


def list_baselines(conn: psycopg.Connection, target_id: int | None = None) -> list[Baseline]:
    rows = conn.execute(
        _BASELINE_SQL + "WHERE %(t)s::int IS NULL OR b.target_id = %(t)s ORDER BY b.name",
        {"t": target_id},
    ).fetchall()
    return [Baseline(*r) for r in rows]


def delete_baseline(conn: psycopg.Connection, name: str) -> Baseline:
    b = get_baseline(conn, name)
    with conn.transaction():
        conn.execute("DELETE FROM opscore.baselines WHERE name = %s", (name,))
    return b
