"""The backup store: one directory per target holding backups, the WAL archive and manifests.

Layout::

    <store>/
      base/<backup_id>/data/                  pg_basebackup output (plain format)
      base/<backup_id>/opscore-backup.json    the catalog row of this backup (for recatalog)
      logical/<backup_id>/<database>.dump     pg_dump -Fc
      logical/<backup_id>/opscore-backup.json
      wal/                                    archived WAL segments, .partial, .history
      restore-points.json                     restore points created through opscore

Physical backups are kept in plain format, uncompressed: ``pg_combinebackup`` only combines
plain-format backups, ``pg_verifybackup`` before 18 only reads plain format, and a restore is
then a copy. (A store on a compressing filesystem gets compression without that cost.)
Logical dumps are compressed by ``pg_dump -Fc`` itself.

The manifest JSON beside each backup holds everything the catalog row holds, so the catalog can
be rebuilt from the store (``recatalog``) if the repository is lost.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import get_settings
from ..errors import InvalidInput

MANIFEST = "opscore-backup.json"
RESTORE_POINTS = "restore-points.json"
KIND_LETTER = {"full": "F", "incremental": "I", "logical": "L"}
BACKUP_ID_RE = re.compile(r"^[0-9]{8}T[0-9]{6}-[FIL][0-9a-f]{4}$")
# characters allowed in a store path: it ends up in restore_command, run by a shell
SAFE_PATH_RE = re.compile(r"^[A-Za-z0-9_./@+-]+$")


def default_store_path(target_name: str) -> Path:
    s = get_settings()
    root = Path(s.backup_dir).expanduser() if s.backup_dir else s.home_dir / "backups"
    return root / target_name


def check_backup_id(backup_id: str) -> str:
    if not BACKUP_ID_RE.match(backup_id or ""):
        raise InvalidInput(
            f"{backup_id!r} is not a backup id (they look like 20261125T172100-F3a9c).",
            "List backups with `opscore backup list --target T`.",
        )
    return backup_id


class BackupStore:
    """One target's store directory."""

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().absolute()
        self.base_dir = self.root / "base"
        self.logical_dir = self.root / "logical"
        self.wal_dir = self.root / "wal"

    def ensure(self) -> BackupStore:
        for d in (self.base_dir, self.logical_dir, self.wal_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self

    def check_safe_path(self) -> None:
        if not SAFE_PATH_RE.match(str(self.root)):
            raise InvalidInput(
                f"The backup store path {self.root} contains characters that are not safe in "
                "a restore_command (allowed: letters, digits, _ . / @ + -).",
                "Move the store to a plain path (`opscore backup store --target T PATH`).",
            )

    # ---------------------------------------------------------------- backups
    @staticmethod
    def new_backup_id(kind: str, now: datetime | None = None) -> str:
        ts = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
        return f"{ts}-{KIND_LETTER[kind]}{secrets.token_hex(2)}"

    def backup_dir(self, backup_id: str, kind: str) -> Path:
        return (self.logical_dir if kind == "logical" else self.base_dir) / backup_id

    def data_dir(self, backup_id: str) -> Path:
        return self.base_dir / backup_id / "data"

    def write_manifest(self, directory: Path, data: dict[str, Any]) -> None:
        """Write atomically (temp file, fsync, rename): a crash never leaves half a manifest."""
        tmp = directory / (MANIFEST + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=2, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(directory / MANIFEST)

    def manifests(self) -> list[dict[str, Any]]:
        out = []
        for parent in (self.base_dir, self.logical_dir):
            if not parent.is_dir():
                continue
            for d in sorted(parent.iterdir()):
                f = d / MANIFEST
                if f.is_file():
                    try:
                        out.append(json.loads(f.read_text()))
                    except (OSError, json.JSONDecodeError):
                        continue
        return out

    def remove(self, directory: Path) -> None:
        """Remove a backup directory (only ever one under this store)."""
        directory = Path(directory)
        if not directory.is_relative_to(self.root) or directory == self.root:
            raise InvalidInput(f"Refusing to remove {directory}: it is not inside {self.root}.")
        shutil.rmtree(directory, ignore_errors=True)

    def free_bytes(self) -> int:
        probe = self.root
        while not probe.exists():
            probe = probe.parent
        return shutil.disk_usage(probe).free

    # ---------------------------------------------------------------- restore points
    def add_restore_point(self, entry: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        points = self.restore_points()
        points = [p for p in points if p.get("name") != entry["name"]] + [entry]
        tmp = self.root / (RESTORE_POINTS + ".tmp")
        tmp.write_text(json.dumps(points, indent=2, default=str))
        tmp.replace(self.root / RESTORE_POINTS)

    def restore_points(self) -> list[dict[str, Any]]:
        f = self.root / RESTORE_POINTS
        if not f.is_file():
            return []
        try:
            return list(json.loads(f.read_text()))
        except (OSError, json.JSONDecodeError):
            return []


def dir_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
