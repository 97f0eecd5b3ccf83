"""Repository side of auto-indexing: its configuration per target and every index it
recommended, created, kept or dropped (migrations 0025, 0026: INCLUDE, partial, clone)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

__all__ = ["IndexingConfig", "AutoIndex", "config", "set_config", "record", "update", "indexes"]


@dataclass
class IndexingConfig:
    target: str
    #: storage the indexes auto-indexing adds may take, in MB (estimated sizes)
    budget_mb: float = 1024.0
    #: CREATE INDEX CONCURRENTLY builds per cycle at most
    max_builds: int = 2
    #: maintenance window, UTC hours [start, end) (None: any time)
    window_start_hour: int | None = None
    window_end_hour: int | None = None
    #: snapshots over this period after a build judge it (statement times before/after)
    validation_hours: float = 24.0
    #: an index auto-indexing created and nobody used for this long is dropped
    unused_days: float = 14.0
    #: a candidate must save at least this % of its statements' time (net of write overhead)
    min_gain_pct: float = 10.0
    #: the clone (``opscore clone list``) candidates are costed on when there is no hypopg
    clone: str | None = None
    updated_by: str = "opscore"
    updated_at: datetime | None = None
    #: the target's auto_indexing mode (off / report_only / implement; kept with the policies)
    mode: str = "off"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AutoIndex:
    autoindex_id: int
    target_id: int
    schema_name: str
    table_name: str
    index_name: str
    columns: list[str]
    ddl: str
    #: recommended / verifying / kept / regressed / unused / failed / refused
    status: str
    created: bool
    recorded_at: datetime
    created_at: datetime | None
    last_used_at: datetime | None
    idx_scan: int | None
    dropped_at: datetime | None
    action_id: int | None
    drop_action_id: int | None
    est_saved_ms: float | None
    est_write_ms: float | None
    est_bytes: float | None
    evidence: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    include: list[str] = field(default_factory=list)
    predicate: dict[str, Any] | None = None

    @property
    def key(self) -> tuple:
        pred = (self.predicate["column"], self.predicate["value"]) if self.predicate else None
        return (self.schema_name, self.table_name, tuple(self.columns), tuple(self.include), pred)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_CFG = [
    "budget_mb",
    "max_builds",
    "window_start_hour",
    "window_end_hour",
    "validation_hours",
    "unused_days",
    "min_gain_pct",
    "clone",
]


def config(conn: psycopg.Connection, target_id: int, target: str) -> IndexingConfig:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT " + ", ".join(_CFG) + ", updated_by, updated_at "
            "FROM opscore.autoindex_config WHERE target_id = %s",
            (target_id,),
        ).fetchone()
    return IndexingConfig(target, **row) if row else IndexingConfig(target)


def set_config(conn: psycopg.Connection, target_id: int, cfg: IndexingConfig, by: str) -> None:
    values = [getattr(cfg, k) for k in _CFG]
    with conn.transaction():
        conn.execute(
            "INSERT INTO opscore.autoindex_config (target_id, " + ", ".join(_CFG) + ", updated_by)"
            " VALUES (%s, " + ", ".join(["%s"] * len(_CFG)) + ", %s) "
            "ON CONFLICT (target_id) DO UPDATE SET "
            + ", ".join(f"{k} = EXCLUDED.{k}" for k in _CFG)
            + ", updated_by = EXCLUDED.updated_by, updated_at = now()",
            (target_id, *values, by),
        )


_JSON = ("evidence", "verification", "predicate")


def record(conn: psycopg.Connection, **row: Any) -> int:
    cols = list(row)
    vals = [Jsonb(row[c]) if c in _JSON and row[c] is not None else row[c] for c in cols]
    with conn.transaction():
        got = conn.execute(
            "INSERT INTO opscore.autoindex_indexes ("
            + ", ".join(cols)
            + ") VALUES ("
            + ", ".join(["%s"] * len(cols))
            + ") RETURNING autoindex_id",
            vals,
        ).fetchone()
    assert got is not None
    return int(got[0])


def update(conn: psycopg.Connection, autoindex_id: int, **values: Any) -> None:
    cols = list(values)
    vals = [Jsonb(values[c]) if c in _JSON and values[c] is not None else values[c] for c in cols]
    with conn.transaction():
        conn.execute(
            "UPDATE opscore.autoindex_indexes SET "
            + ", ".join(f"{c} = %s" for c in cols)
            + " WHERE autoindex_id = %s",
            (*vals, autoindex_id),
        )


def indexes(
    conn: psycopg.Connection,
    target_id: int,
    statuses: tuple[str, ...] | None = None,
    *,
    created: bool | None = None,
    dropped: bool | None = None,
    limit: int = 200,
) -> list[AutoIndex]:
    """Rows of a target, newest first, filtered by status, by whether opscore built the index
    and by whether it has been dropped."""
    where, params = ["target_id = %s"], [target_id]
    if statuses is not None:
        where.append("status = ANY(%s)")
        params.append(list(statuses))
    if created is not None:
        where.append("created = %s")
        params.append(created)
    if dropped is not None:
        where.append("dropped_at IS " + ("NOT NULL" if dropped else "NULL"))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM opscore.autoindex_indexes WHERE "
            + " AND ".join(where)
            + " ORDER BY autoindex_id DESC LIMIT %s",
            (*params, limit),
        ).fetchall()
    return [AutoIndex(**r) for r in rows]
