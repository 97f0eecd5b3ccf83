"""Backups in an object store (upload with checksums verified, staging for restores) and
clones (restored servers opscore started). Exported from ``ops_core.api``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .. import repository
from ..backup import catalog, clones, remote, wal
from ..backup.catalog import Backup
from ..backup.clones import Clone
from ..backup.remote import Remote, UploadReport
from ..backup.store import BackupStore, check_backup_id
from ..errors import InvalidInput
from .backup_context import store_for
from .targets import Target, get_target

__all__ = [
    "cloud_providers",
    "Clone",
    "UploadReport",
    "set_backup_remote",
    "backup_remote",
    "upload_backup",
    "upload_wal",
    "list_clones",
    "stop_clone",
    "drop_clone",
]


# ---------------------------------------------------------------- object store copy
def set_backup_remote(
    target: str, url: str | None, options: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Where ``target``'s backups and WAL are uploaded: an fsspec URL (``s3://bucket/prefix``,
    ``gs://``, ``az://``, a local path) with non-secret options (e.g. ``endpoint_url``);
    credentials come from the environment. ``url=None`` removes it."""
    t = get_target(target)
    value = None
    if url:
        remote.Remote(url, options)  # validates the URL, the options and the backend package
        value = {"url": url, "options": options or {}}
    with repository.session() as conn:
        cfg = catalog.get_config(conn, t.target_id)
        cfg.remote = value
        catalog.set_config(conn, cfg)
    return value


def cloud_providers() -> list[dict[str, Any]]:
    """The object stores backups and WAL can be uploaded to (local path, S3 and compatible,
    GCS, Azure), each with the package it needs and whether that is installed here."""
    return remote.providers()


def backup_remote(target: str) -> dict[str, Any] | None:
    """The object store configured for ``target`` ({"url", "options"}) or None."""
    t = get_target(target)
    with repository.session() as conn:
        return catalog.get_config(conn, t.target_id).remote


def _remote_for(conn: Any, target_id: int, name: str) -> Remote:
    cfg = catalog.get_config(conn, target_id)
    if not cfg.remote:
        raise InvalidInput(
            f"Target {name!r} has no object store configured.",
            f"Set one: `opscore backup remote --target {name} s3://bucket/prefix`.",
        )
    return remote.Remote(cfg.remote["url"], cfg.remote.get("options") or {})


def upload_backup(backup_id: str) -> UploadReport:
    """Upload a finished backup to the target's object store; every file is read back and
    checked against its SHA-256 (recorded as an ``upload`` check of the backup)."""
    check_backup_id(backup_id)
    with repository.session() as conn:
        b = catalog.get(conn, backup_id)
        if not b.usable:
            raise InvalidInput(f"Backup {backup_id} is {b.status}; only finished backups upload.")
        rem = _remote_for(conn, b.target_id, b.target or "")
        rep = remote.upload_backup(rem, Path(b.path), backup_id)
        catalog.add_check(conn, backup_id, "upload", True, rep.as_dict(), None, sets_status=False)
        return rep


def upload_wal(target: str) -> UploadReport:
    """Upload the archive's complete WAL segments not yet in the object store (each read back
    and checked against the checksum taken when it was archived)."""
    t = get_target(target)
    with repository.session() as conn:
        rem = _remote_for(conn, t.target_id, t.name)
        store = store_for(conn, t)
        backups = catalog.list_backups(conn, t.target_id)
    seg = next((b.wal_segment_size for b in reversed(backups) if b.wal_segment_size), None)
    return remote.upload_wal(rem, store.wal_dir, seg or wal.DEFAULT_SEGMENT_SIZE)


def stage_from_remote(conn: Any, t: Target, b: Backup) -> tuple[BackupStore, dict[str, Path]]:
    import tempfile

    from ..backup.restore import chain_of

    rem = _remote_for(conn, t.target_id, t.name)
    staging = BackupStore(tempfile.mkdtemp(prefix="opscore-staging-", dir="/tmp")).ensure()
    relocate = {}
    try:
        for x in chain_of(conn, b):
            d = staging.backup_dir(x.backup_id, x.kind)
            remote.download_backup(rem, d.parent.name, x.backup_id, d)
            relocate[x.backup_id] = d
        remote.download_wal(rem, staging.wal_dir)
    except BaseException:
        shutil.rmtree(staging.root, ignore_errors=True)
        raise
    return staging, relocate


# ---------------------------------------------------------------- clones
def list_clones() -> list[Clone]:
    """Clones opscore started (``restore_backup(..., start=True)``), running or stopped."""
    with repository.session() as conn:
        return clones.list_all(conn)


def stop_clone(name: str) -> Clone:
    """Stop a clone (its data directory stays; drop it to delete it)."""
    with repository.session() as conn:
        return clones.stop(conn, name)


def drop_clone(name: str) -> Clone:
    """Stop a clone and delete its data directory and record."""
    with repository.session() as conn:
        return clones.drop(conn, name)
