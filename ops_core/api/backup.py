"""Backup and recovery: physical (full/incremental) and logical backups, the catalog,
verification, restore and point-in-time recovery. The WAL archive and restore points are in
``backup_wal``, retention, schedules and the report in ``backup_policy``, the object-store copy
and clones in ``backup_remote`` (all exported from ``ops_core.api``).

Every function takes target names / backup ids and returns dataclasses with ``as_dict()``.
Writes to a target are explicit: ``create_restore_point`` (a WAL record, through an admin
session) and ``restore_logical_backup`` (a NEW database, never an existing one); backups and WAL
archiving use replication connections and read.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import repository
from ..backup import catalog, clones, logical, physical, runner, wal
from ..backup.catalog import Backup, Check, RestorePoint
from ..backup.logical import LogicalRestore
from ..backup.restore import (
    RecoveryTarget,
    RestoreResult,
    remove_restored,
    restore,
    start_and_check,
)
from ..backup.server import server_os_user
from ..backup.store import MANIFEST, BackupStore, check_backup_id
from ..backup.verify import VerifyReport, verify
from ..errors import InvalidInput, NotFound
from ..targets import connection
from .backup_context import store_for, target_context
from .targets import get_target

__all__ = [
    "Backup",
    "BackupDetail",
    "LogicalRestore",
    "RestorePoint",
    "RestoreResult",
    "VerifyReport",
    "backup_store",
    "set_backup_store",
    "take_full_backup",
    "take_incremental_backup",
    "take_logical_backup",
    "list_backups",
    "get_backup",
    "delete_backup",
    "verify_backup",
    "restore_backup",
    "restore_logical_backup",
    "recatalog",
]

ProgressFn = Callable[[int, int], None]


def backup_store(target: str) -> BackupStore:
    """The store of ``target`` (configured path or ``$OPSCORE_HOME/backups/<target>``)."""
    t = get_target(target)
    with repository.session() as conn:
        return store_for(conn, t)


def set_backup_store(target: str, path: str | Path) -> BackupStore:
    """Configure where ``target``'s backups go (existing backups stay where they are)."""
    t = get_target(target)
    store = BackupStore(path)
    store.check_safe_path()
    with repository.session() as conn:
        cfg = catalog.get_config(conn, t.target_id)
        cfg.store_path = str(store.root)
        catalog.set_config(conn, cfg)
    return store


# ---------------------------------------------------------------- taking backups
def take_full_backup(
    target: str, *, on_progress: ProgressFn | None = None, max_rate: str | None = None
) -> Backup:
    """A full physical backup (pg_basebackup, plain, manifest with checksums, WAL streamed)."""
    with repository.session() as conn:
        ctx = target_context(conn, target)
        runner.reap_stale(conn, ctx.target_id)
        return physical.take_backup(conn, ctx, "full", on_progress=on_progress, max_rate=max_rate)


def take_incremental_backup(
    target: str, *, on_progress: ProgressFn | None = None, max_rate: str | None = None
) -> Backup:
    """An incremental backup against the newest usable backup (PostgreSQL 17+)."""
    with repository.session() as conn:
        ctx = target_context(conn, target)
        runner.reap_stale(conn, ctx.target_id)
        return physical.take_backup(
            conn, ctx, "incremental", on_progress=on_progress, max_rate=max_rate
        )


def take_logical_backup(target: str, database: str | None = None) -> Backup:
    """``pg_dump -Fc`` of one database (default: the target DSN's database)."""
    with repository.session() as conn:
        ctx = target_context(conn, target)
        runner.reap_stale(conn, ctx.target_id)
        db = database or connection.parse_dsn(ctx.dsn).get("dbname") or "postgres"
        return logical.take_logical(conn, ctx, db)


def restore_logical_backup(
    backup_id: str,
    database: str,
    *,
    target: str | None = None,
    jobs: int = 2,
    no_owner: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> LogicalRestore:
    """Restore a logical backup (``pg_dump -Fc``) into a NEW database ``database`` on
    ``target`` (default: the target the dump was taken from), with ``jobs`` parallel
    pg_restore workers. An existing database is refused; a failed restore drops what it
    created."""
    check_backup_id(backup_id)
    with repository.session() as conn:
        b = catalog.get(conn, backup_id)
        ctx = target_context(conn, target or b.target or "")
    return logical.restore_logical(ctx, b, database, jobs=jobs, no_owner=no_owner, on_line=on_line)


# ---------------------------------------------------------------- catalog reads
@dataclass
class BackupDetail:
    backup: Backup
    chain: list[str]
    children: list[str]
    checks: list[Check] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.backup.as_dict(),
            "chain": self.chain,
            "children": self.children,
            "checks": [c.as_dict() for c in self.checks],
        }


def list_backups(target: str) -> list[Backup]:
    """Backups of ``target``, oldest first (a backup whose opscore process was killed is
    marked failed first, see :func:`ops_core.backup.runner.reap_stale`)."""
    t = get_target(target)
    with repository.session() as conn:
        runner.reap_stale(conn, t.target_id)
        return catalog.list_backups(conn, t.target_id)


def get_backup(backup_id: str) -> BackupDetail:
    check_backup_id(backup_id)
    with repository.session() as conn:
        b = catalog.get(conn, backup_id)
        chain = [b.backup_id]
        cur = b
        while cur.parent_id:
            cur = catalog.get(conn, cur.parent_id)
            chain.insert(0, cur.backup_id)
        children = [
            x.backup_id
            for x in catalog.list_backups(conn, b.target_id)
            if x.parent_id == b.backup_id
        ]
        return BackupDetail(b, chain, children, catalog.checks(conn, backup_id))


def delete_backup(backup_id: str, *, cascade: bool = False) -> list[str]:
    """Delete a backup's files and catalog row. A backup that incrementals depend on is only
    deleted with ``cascade`` (which deletes them too). Returns the ids deleted."""
    check_backup_id(backup_id)
    with repository.session() as conn:
        runner.reap_stale(conn)
        b = catalog.get(conn, backup_id)
        all_b = catalog.list_backups(conn, b.target_id)
        doomed = [b]
        while True:
            ids = {x.backup_id for x in doomed}
            more = [x for x in all_b if x.parent_id in ids and x.backup_id not in ids]
            if not more:
                break
            doomed += more
        if len(doomed) > 1 and not cascade:
            raise InvalidInput(
                f"Backup {backup_id} is the base of incremental backups "
                f"{', '.join(x.backup_id for x in doomed[1:])}; deleting it would break them.",
                "Delete those first, or pass --cascade to delete the whole chain from here.",
            )
        if b.status == "running":
            raise InvalidInput(f"Backup {backup_id} is still running.")
        for x in reversed(doomed):
            path = Path(x.path)
            # the backup's own store (it may predate a change of the target's store path)
            if (path / MANIFEST).is_file() or path.is_dir():
                BackupStore(path.parent.parent).remove(path)
        catalog.delete(conn, [x.backup_id for x in reversed(doomed)])
        return [x.backup_id for x in doomed]


# ---------------------------------------------------------------- verification and restore
def verify_backup(backup_id: str, *, test_restore: bool = False) -> VerifyReport:
    """pg_verifybackup (or pg_restore -l for a dump); with ``test_restore`` also restore it into
    a temp dir, start it, run amcheck. The result is recorded and sets the status."""
    check_backup_id(backup_id)
    with repository.session() as conn:
        runner.reap_stale(conn)
        b = catalog.get(conn, backup_id)
        store = store_for(conn, get_target(b.target or ""))
        report = verify(conn, store, b, test_restore_too=test_restore, os_user=server_os_user())
        # the manifest beside the backup follows its status, so recatalog keeps it
        after = catalog.get(conn, backup_id)
        if Path(after.path).is_dir():
            store.write_manifest(Path(after.path), after.as_dict())
        return report


def restore_backup(
    target: str,
    destination: str | Path,
    *,
    backup_id: str | None = None,
    target_time: datetime | str | None = None,
    target_lsn: str | None = None,
    target_name: str | None = None,
    latest: bool = False,
    os_user: str | None = None,
    start: bool = False,
    clone: str | None = None,
    port: int | None = None,
    from_remote: bool = False,
) -> RestoreResult:
    """Restore into a new (or empty) directory; with one of ``target_time`` / ``target_lsn`` /
    ``target_name`` / ``latest``, point-in-time recovery from the WAL archive.

    Every recovery target is first proven against the archive (WAL checksums and pg_waldump
    readability from the backup's start to the target; a time is mapped to the commit where
    recovery stops) or refused with the reason. The restore is successful only once the
    restored server has been started on a free port, reached its target and (unless ``start``)
    been stopped again; otherwise the destination is removed and the error says why.

    With ``from_remote`` the backup (chain) and the WAL are read from the target's object
    store into a private staging directory, every file checked against its upload checksum.
    With ``start`` the server stays up as a clone owned by opscore (``clone`` names it,
    ``port`` picks its port): see :func:`list_clones`, :func:`stop_clone`, :func:`drop_clone`.
    Without ``backup_id`` the newest backup that ends before the target is used. The restored
    directory is owned by ``os_user`` (default: the embedded server's user when root).
    """
    if clone is not None or port is not None:
        if not start:
            raise InvalidInput("--clone and --port need --start (they name and place a clone).")
    if start:
        clone = clones.check_new(clone or clones.default_name(target), port)
    given = [x for x in (target_time, target_lsn, target_name) if x] + ([1] if latest else [])
    if len(given) > 1:
        raise InvalidInput(
            "Give at most one recovery target (time, LSN, restore point name or latest)."
        )
    if isinstance(target_time, str):
        try:
            target_time = datetime.fromisoformat(target_time)
        except ValueError:
            raise InvalidInput(
                f"{target_time!r} is not a time.", "Use ISO 8601, e.g. 2026-11-25T17:30:00+00:00"
            ) from None
    if target_time is not None and target_time.tzinfo is None:
        target_time = target_time.replace(tzinfo=UTC)
    if target_lsn:
        wal.parse_lsn(target_lsn)
    rt = RecoveryTarget(time=target_time, lsn=target_lsn, name=target_name, latest=latest)
    t = get_target(target)
    with repository.session() as conn:
        store = store_for(conn, t)
        if backup_id:
            check_backup_id(backup_id)
            b = catalog.get(conn, backup_id)
            if b.target_id != t.target_id:
                raise InvalidInput(f"Backup {backup_id} belongs to target {b.target!r}.")
        else:
            lsn = target_lsn
            if target_name:
                rp = catalog.get_restore_point(conn, t.target_id, target_name)
                if rp is None:
                    raise NotFound(
                        f"There is no restore point named {target_name!r} for {target!r}.",
                        f"List them with `opscore restore-point list --target {target}`.",
                    )
                lsn = rp.lsn
            from ..backup.restore import choose_backup

            b = choose_backup(catalog.list_backups(conn, t.target_id), rt, lsn)
        user = os_user if os_user is not None else server_os_user()
        staging = None
        relocate = None
        try:
            if from_remote:
                from .backup_remote import stage_from_remote

                staging, relocate = stage_from_remote(conn, t, b)
                store = staging
            res = restore(conn, store, b, Path(destination), rt, os_user=user, relocate=relocate)
        finally:
            if staging is not None:
                shutil.rmtree(staging.root, ignore_errors=True)
        try:
            srv = start_and_check(res, rt, keep_running=start, port=port)
        except BaseException:
            remove_restored(Path(res.destination))
            raise
        if srv is not None and clone is not None:
            res.clone = clones.register(conn, clone, t.target_id, b.backup_id, res, srv)
        return res


# ---------------------------------------------------------------- recatalog
def recatalog(target: str) -> list[str]:
    """Re-read the store's manifests (and restore-points.json) into the catalog: what a lost
    repository needs. Returns the backup ids that were added."""
    t = get_target(target)
    added = []
    with repository.session() as conn:
        store = store_for(conn, t)
        manifests = sorted(store.manifests(), key=lambda m: m.get("started_at", ""))
        for m in manifests:
            b = Backup.from_dict({**m, "target_id": t.target_id})
            if b.status == "running":
                continue
            if catalog.upsert(conn, b):
                added.append(b.backup_id)
        for p in store.restore_points():
            catalog.add_restore_point(
                conn,
                t.target_id,
                p["name"],
                p["lsn"],
                p.get("timeline"),
                datetime.fromisoformat(p["created_at"]) if p.get("created_at") else None,
            )
    return added
