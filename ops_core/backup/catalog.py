"""Reads and writes of the backup catalog in the repository (tables of migration 0004).

Every write is one transaction. A backup row is inserted as ``running`` before any file is
written and finished (``done``/``failed``) in one UPDATE: the catalog never shows a backup as
usable that is not complete in the store.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import NotFound
from .store import BackupStore, default_store_path

STATUSES = ("running", "done", "failed", "verified", "corrupt")
USABLE = ("done", "verified")  # a backup one may restore from


@dataclass
class Backup:
    backup_id: str
    target_id: int
    kind: str
    status: str
    path: str
    started_at: datetime
    parent_id: str | None = None
    database: str | None = None
    server_version_num: int | None = None
    system_identifier: str | None = None
    timeline: int | None = None
    start_lsn: str | None = None
    stop_lsn: str | None = None
    start_wal: str | None = None
    stop_wal: str | None = None
    wal_segment_size: int | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    size_bytes: int | None = None
    error: str | None = None
    verified_at: datetime | None = None
    # while running: who runs it (see runner.py); None once finished
    runner: dict[str, Any] | None = None
    target: str | None = None  # target name (joined, not stored)

    @property
    def usable(self) -> bool:
        return self.status in USABLE

    @property
    def physical(self) -> bool:
        return self.kind in ("full", "incremental")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, datetime):
                d[k] = v.isoformat()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Backup:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in ("started_at", "finished_at", "verified_at"):
            if isinstance(kw.get(k), str):
                kw[k] = datetime.fromisoformat(kw[k])
        return cls(**kw)


_STORED = [f.name for f in fields(Backup) if f.name != "target"]
_SELECT = (
    "SELECT "
    + ", ".join(f"b.{c}" + ("::text" if c in ("start_lsn", "stop_lsn") else "") for c in _STORED)
    + ", t.name AS target FROM opscore.backups b JOIN opscore.targets t USING (target_id)"
)


def _row(r: dict[str, Any]) -> Backup:
    return Backup(**r)


def _db(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict) else value


def insert(conn: psycopg.Connection, b: Backup) -> None:
    cols = [c for c in _STORED]
    values = [_db(getattr(b, c)) for c in cols]
    with conn.transaction():
        conn.execute(
            f"INSERT INTO opscore.backups ({', '.join(cols)}) "
            f"VALUES ({', '.join(['%s'] * len(cols))})",
            values,
        )


def upsert(conn: psycopg.Connection, b: Backup) -> bool:
    """Insert a backup found in the store (recatalog); return False if it was known."""
    cols = [c for c in _STORED]
    with conn.transaction():
        cur = conn.execute(
            f"INSERT INTO opscore.backups ({', '.join(cols)}) "
            f"VALUES ({', '.join(['%s'] * len(cols))}) ON CONFLICT (backup_id) DO NOTHING",
            [_db(getattr(b, c)) for c in cols],
        )
        return cur.rowcount == 1


def update(conn: psycopg.Connection, backup_id: str, **values: Any) -> None:
    bad = set(values) - set(_STORED)
    if bad:
        raise ValueError(f"unknown backup columns {bad}")
    sets = ", ".join(f"{k} = %s" for k in values)
    with conn.transaction():
        conn.execute(
            f"UPDATE opscore.backups SET {sets} WHERE backup_id = %s",
            [*map(_db, values.values()), backup_id],
        )


def get(conn: psycopg.Connection, backup_id: str) -> Backup:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_SELECT + " WHERE b.backup_id = %s", (backup_id,))
        row = cur.fetchone()
    if row is None:
        raise NotFound(
            f"There is no backup with id {backup_id!r}.",
            "List backups with `opscore backup list --target T` (ids look like "
            "20261125T172100-F3a9c).",
        )
    return _row(row)


def list_backups(
    conn: psycopg.Connection, target_id: int, kinds: tuple[str, ...] | None = None
) -> list[Backup]:
    q = _SELECT + " WHERE b.target_id = %s"
    params: list[Any] = [target_id]
    if kinds:
        q += " AND b.kind = ANY(%s)"
        params.append(list(kinds))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q + " ORDER BY b.started_at, b.backup_id", params)
        return [_row(r) for r in cur.fetchall()]


def delete(conn: psycopg.Connection, backup_ids: list[str]) -> None:
    with conn.transaction():
        conn.execute("DELETE FROM opscore.backups WHERE backup_id = ANY(%s)", (backup_ids,))


# ---------------------------------------------------------------- checks (verification)
@dataclass
class Check:
    backup_id: str
    kind: str
    ok: bool
    detail: dict[str, Any]
    checked_at: datetime
    duration_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checked_at"] = self.checked_at.isoformat()
        return d


def add_check(
    conn: psycopg.Connection,
    backup_id: str,
    kind: str,
    ok: bool,
    detail: dict[str, Any],
    duration_s: float | None,
    sets_status: bool = True,
) -> Check:
    """Record a verification and set the backup's status (verified/corrupt) in one go. A check
    of the WAL archive (``sets_status=False``) is recorded without judging the backup itself:
    a damaged archive limits PITR, the backup still restores to its end."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "INSERT INTO opscore.backup_checks (backup_id, kind, ok, detail, duration_s) "
            "VALUES (%s, %s, %s, %s, %s) "
            "RETURNING backup_id, kind, ok, detail, checked_at, duration_s",
            (backup_id, kind, ok, json.dumps(detail, default=str), duration_s),
        )
        row = cur.fetchone()
        assert row is not None
        if sets_status:
            cur.execute(
                "UPDATE opscore.backups SET status = %s, verified_at = %s "
                "WHERE backup_id = %s AND status <> 'running'",
                ("verified" if ok else "corrupt", row["checked_at"], backup_id),
            )
    return Check(**row)


def checks(conn: psycopg.Connection, backup_id: str) -> list[Check]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT backup_id, kind, ok, detail, checked_at, duration_s "
            "FROM opscore.backup_checks WHERE backup_id = %s ORDER BY checked_at",
            (backup_id,),
        )
        return [Check(**r) for r in cur.fetchall()]


# ---------------------------------------------------------------- restore points
@dataclass
class RestorePoint:
    name: str
    lsn: str
    timeline: int | None
    created_at: datetime
    target: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        return d


_RP = (
    "SELECT r.name, r.lsn::text AS lsn, r.timeline, r.created_at, t.name AS target "
    "FROM opscore.restore_points r JOIN opscore.targets t USING (target_id)"
)


def add_restore_point(
    conn: psycopg.Connection,
    target_id: int,
    name: str,
    lsn: str,
    timeline: int | None,
    created_at: datetime | None = None,
) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO opscore.restore_points (target_id, name, lsn, timeline, created_at) "
            "VALUES (%s, %s, %s, %s, coalesce(%s, now())) ON CONFLICT (target_id, name) DO NOTHING",
            (target_id, name, lsn, timeline, created_at),
        )


def restore_points(conn: psycopg.Connection, target_id: int) -> list[RestorePoint]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_RP + " WHERE r.target_id = %s ORDER BY r.lsn", (target_id,))
        return [RestorePoint(**r) for r in cur.fetchall()]


def get_restore_point(conn: psycopg.Connection, target_id: int, name: str) -> RestorePoint | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_RP + " WHERE r.target_id = %s AND r.name = %s", (target_id, name))
        row = cur.fetchone()
    return RestorePoint(**row) if row else None


# ---------------------------------------------------------------- per-target configuration
@dataclass
class BackupConfig:
    target_id: int
    store_path: str | None = None
    schedule: dict[str, Any] = field(default_factory=dict)
    retention: dict[str, Any] = field(default_factory=dict)
    remote: dict[str, Any] | None = None  # {"url": ..., "options": {...}} (no secrets)


def get_config(conn: psycopg.Connection, target_id: int) -> BackupConfig:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT target_id, store_path, schedule, retention, remote FROM opscore.backup_config "
            "WHERE target_id = %s",
            (target_id,),
        )
        row = cur.fetchone()
    return BackupConfig(**row) if row else BackupConfig(target_id)


def store_for(conn: psycopg.Connection, target_id: int, target_name: str) -> BackupStore:
    """A target's backup store: the configured path, else the default under OPSCORE_HOME
    (the one rule every backup operation uses)."""
    cfg = get_config(conn, target_id)
    return BackupStore(cfg.store_path or default_store_path(target_name))


def set_config(conn: psycopg.Connection, cfg: BackupConfig) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO opscore.backup_config "
            "(target_id, store_path, schedule, retention, remote) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (target_id) DO UPDATE SET "
            "store_path = EXCLUDED.store_path, schedule = EXCLUDED.schedule, "
            "retention = EXCLUDED.retention, remote = EXCLUDED.remote, updated_at = now()",
            (
                cfg.target_id,
                cfg.store_path,
                json.dumps(cfg.schedule),
                json.dumps(cfg.retention),
                None if cfg.remote is None else json.dumps(cfg.remote),
            ),
        )
