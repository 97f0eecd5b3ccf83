"""Restore a backup into a new data directory, optionally to a point in time.

- A chain (full + incrementals) is combined with ``pg_combinebackup``; a full backup is copied.
- Point-in-time recovery (a time, an LSN or a named restore point) writes the recovery
  settings into ``postgresql.auto.conf`` (``restore_command``, ``recovery_target_*``,
  ``recovery_target_action = 'promote'``) and ``recovery.signal``.
- The WAL the recovery needs is copied from the store's archive into the restored ``pg_wal``,
  a ``.partial`` segment under its complete name: the restored directory recovers on its own,
  whichever OS user runs it and whatever retention later does to the store.
  ``restore_command`` is ``cp "<store>/wal/%f" "%p"``: a constant program and a store path
  checked to hold no shell-special character; ``%f``/``%p`` are filled in by the server.
- Everything is checked before anything is written; the destination must be new or empty and
  is removed again (or emptied) if the restore fails.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from .. import commands
from ..config import get_settings
from ..errors import InvalidInput, NotFound
from . import catalog, wal
from .binaries import major_of, pg_bin
from .catalog import Backup
from .server import chown_tree
from .store import BackupStore, dir_size


@dataclass
class RecoveryTarget:
    time: datetime | None = None
    lsn: str | None = None
    name: str | None = None
    latest: bool = False  # replay all archived WAL (no target)

    @property
    def pitr(self) -> bool:
        return bool(self.time or self.lsn or self.name or self.latest)

    def describe(self) -> str:
        if self.time:
            return f"time {self.time.isoformat()}"
        if self.lsn:
            return f"LSN {self.lsn}"
        if self.name:
            return f"restore point {self.name!r}"
        return "end of the WAL archive" if self.latest else "end of the backup"


@dataclass
class RestoreResult:
    backup_id: str
    chain: list[str]
    destination: str
    recovery_target: str
    wal_segments: int
    settings: dict[str, str]
    duration_s: float
    size_bytes: int
    server_major: int
    os_user: str | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- checks (nothing written)
def check_destination(dest: Path) -> bool:
    """Raise unless ``dest`` is absent or an empty directory; return whether it exists."""
    if dest.exists():
        if not dest.is_dir():
            raise InvalidInput(
                f"The restore destination {dest} exists and is not a directory.",
                "Give a new directory path; nothing was changed.",
            )
        if any(dest.iterdir()):
            raise InvalidInput(
                f"The restore destination {dest} is not empty; opscore restores only into a "
                "new or empty directory.",
                "Give a new directory path (the existing one was not touched).",
            )
        return True
    return False


def resolve_chain(conn: psycopg.Connection, backup: Backup) -> list[Backup]:
    """The backups to combine, full first; each must be usable and present in the store."""
    chain = [backup]
    while chain[0].parent_id:
        chain.insert(0, catalog.get(conn, chain[0].parent_id))
    for b in chain:
        if not b.usable:
            raise InvalidInput(
                f"Backup {b.backup_id} (in the chain of {backup.backup_id}) is {b.status}; it "
                "cannot be restored.",
                "Restore another backup (`opscore backup list --target T`).",
            )
        if not (Path(b.path) / "data" / "backup_manifest").is_file():
            raise NotFound(
                f"The files of backup {b.backup_id} are missing from the store ({b.path}).",
                "Restore another backup; `opscore backup recatalog` re-reads the store.",
            )
    return chain


def choose_backup(
    candidates: list[Backup], target: RecoveryTarget, target_lsn: str | None
) -> Backup:
    """The newest usable physical backup that ends before the recovery target."""
    usable = [b for b in candidates if b.physical and b.usable and b.stop_lsn]
    if target.time:
        usable = [b for b in usable if b.finished_at and b.finished_at <= target.time]
    elif target_lsn:
        usable = [b for b in usable if wal.parse_lsn(b.stop_lsn) <= wal.parse_lsn(target_lsn)]
    if not usable:
        raise InvalidInput(
            f"No usable backup ends before the recovery target ({target.describe()}).",
            "Pick a later target, or check `opscore backup list` for a backup taken earlier.",
        )
    return usable[-1]


def check_target_after_backup(backup: Backup, target: RecoveryTarget, lsn: str | None) -> None:
    if target.time and backup.finished_at and target.time < backup.finished_at:
        raise InvalidInput(
            f"The recovery target time {target.time.isoformat()} is before backup "
            f"{backup.backup_id} finished ({backup.finished_at.isoformat()}); a backup can only "
            "be rolled forward.",
            "Choose a later time, or restore an older backup (omit --backup to let opscore "
            "pick the newest backup before the target). Nothing was changed.",
        )
    if lsn and backup.stop_lsn and wal.parse_lsn(lsn) < wal.parse_lsn(backup.stop_lsn):
        raise InvalidInput(
            f"The recovery target ({target.describe()}, LSN {lsn}) is before the end of backup "
            f"{backup.backup_id} (LSN {backup.stop_lsn}).",
            "Choose a later target or an older backup. Nothing was changed.",
        )


def check_wal_covers(
    contents: wal.ArchiveContents, backup: Backup, lsn: str | None, target: RecoveryTarget
) -> None:
    if not target.pitr or backup.timeline is None or not backup.start_lsn:
        return
    first = wal.segno_of(backup.start_lsn, contents.seg_size)
    last = contents.continuous_from(backup.timeline, first)
    if last is None:
        raise NotFound(
            f"The WAL archive has no WAL from the start of backup {backup.backup_id} "
            f"({backup.start_wal}).",
            "Point-in-time recovery needs archived WAL; run `opscore backup wal receive`.",
        )
    if lsn and wal.segno_of(lsn, contents.seg_size) > last:
        raise NotFound(
            f"The WAL archive ends at segment "
            f"{wal.segment_name(backup.timeline, last, contents.seg_size)}, before the recovery "
            f"target (LSN {lsn}).",
            "Receive more WAL first (`opscore backup wal receive --target T`).",
        )


# ---------------------------------------------------------------- writing
def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def recovery_settings(store: BackupStore, target: RecoveryTarget) -> dict[str, str]:
    store.check_safe_path()
    settings = {
        "restore_command": f'cp "{store.wal_dir}/%f" "%p"',
        "recovery_target_timeline": "latest",
    }
    if target.time:
        settings["recovery_target_time"] = target.time.astimezone(UTC).isoformat(sep=" ")
    elif target.lsn:
        settings["recovery_target_lsn"] = target.lsn
    elif target.name:
        settings["recovery_target_name"] = target.name
    if not target.latest:
        settings["recovery_target_action"] = "promote"
    return settings


# settings a server in recovery must have at least as high as the primary had (pg_controldata)
CONTROL_SETTINGS = {
    "max_connections setting": "max_connections",
    "max_worker_processes setting": "max_worker_processes",
    "max_wal_senders setting": "max_wal_senders",
    "max_prepared_xacts setting": "max_prepared_transactions",
    "max_locks_per_xact setting": "max_locks_per_transaction",
}


def _control_settings(major: int, dest: Path) -> dict[str, str]:
    res = commands.run([pg_bin(major, "pg_controldata"), dest])
    out = {}
    for line in res.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in CONTROL_SETTINGS and value.strip().isdigit():
            out[CONTROL_SETTINGS[key.strip()]] = value.strip()
    return out


def _ensure_config_files(dest: Path, major: int, notes: list[str]) -> None:
    # servers packaged like Debian's keep postgresql.conf/pg_hba.conf outside the data directory
    if not (dest / "postgresql.conf").exists():
        lines = [
            "# written by opscore restore: the backed-up server kept its configuration outside",
            "# its data directory; copy your settings here before using this server.",
            "# Values the primary had (from pg_controldata), needed to recover:",
        ]
        lines += [f"{k} = {v}" for k, v in _control_settings(major, dest).items()]
        (dest / "postgresql.conf").write_text("\n".join(lines) + "\n")
        notes.append("postgresql.conf was not in the backup; a minimal one was written.")
    if not (dest / "pg_hba.conf").exists():
        (dest / "pg_hba.conf").write_text("# written by opscore restore\nlocal all all peer\n")
        notes.append(
            "pg_hba.conf was not in the backup; one allowing local peer login was written."
        )
    if not (dest / "pg_ident.conf").exists():
        (dest / "pg_ident.conf").write_text("")


def restore(
    conn: psycopg.Connection,
    store: BackupStore,
    backup: Backup,
    dest: Path,
    target: RecoveryTarget,
    *,
    os_user: str | None,
    on_line: Any = None,
) -> RestoreResult:
    """Restore ``backup`` (and its chain) into ``dest``; see the module docstring."""
    dest = Path(dest).absolute()
    existed = check_destination(dest)
    if not backup.physical:
        raise InvalidInput(
            f"Backup {backup.backup_id} is a logical dump; restore it with pg_restore.",
            f"pg_restore -d DBNAME {backup.path}/database.dump",
        )
    chain = resolve_chain(conn, backup)
    lsn = target.lsn
    if target.name:
        rp = catalog.get_restore_point(conn, backup.target_id, target.name)
        if rp is None:
            raise NotFound(
                f"There is no restore point named {target.name!r} for this target.",
                "List them with `opscore restore-point list --target T`.",
            )
        lsn = rp.lsn
    if lsn:
        wal.parse_lsn(lsn)
    check_target_after_backup(backup, target, lsn)
    seg_size = backup.wal_segment_size or wal.DEFAULT_SEGMENT_SIZE
    contents = wal.scan(store.wal_dir, seg_size)
    check_wal_covers(contents, backup, lsn, target)
    settings = recovery_settings(store, target) if target.pitr else {}
    major = major_of(backup.server_version_num or 0)
    combine = pg_bin(major, "pg_combinebackup") if len(chain) > 1 else None

    t0 = time.monotonic()
    notes: list[str] = []
    try:
        if combine is not None:
            commands.run(
                [combine, *[Path(b.path) / "data" for b in chain], "-o", dest]
                + ([] if get_settings().backup_sync else ["--no-sync"]),
                on_line=on_line,
            )
        else:
            shutil.copytree(Path(chain[0].path) / "data", dest, dirs_exist_ok=True, symlinks=True)
        (dest / "backup_manifest").unlink(missing_ok=True)
        _ensure_config_files(dest, major, notes)
        copied: list[str] = []
        if target.pitr:
            assert backup.timeline is not None and backup.start_lsn is not None
            copied = wal.collect_for_restore(
                contents,
                store.wal_dir,
                backup.timeline,
                backup.start_lsn,
                dest / "pg_wal",
                upto_lsn=lsn if target.lsn else None,
            )
            with open(dest / "postgresql.auto.conf", "a") as fh:
                fh.write(
                    f"\n# recovery settings written by opscore restore of "
                    f"{backup.backup_id} ({target.describe()})\n"
                )
                for k, v in settings.items():
                    fh.write(f"{k} = {_quote(v)}\n")
            (dest / "recovery.signal").write_text("")
        dest.chmod(0o700)
        chown_tree(dest, os_user)
    except BaseException:
        if existed:
            for child in dest.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        else:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    return RestoreResult(
        backup_id=backup.backup_id,
        chain=[b.backup_id for b in chain],
        destination=str(dest),
        recovery_target=target.describe(),
        wal_segments=len(copied),
        settings=settings,
        duration_s=round(time.monotonic() - t0, 3),
        size_bytes=dir_size(dest),
        server_major=major,
        os_user=os_user,
        notes=notes,
    )
