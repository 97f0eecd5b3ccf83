"""Clone from a backup: restore backup {id} (optionally to a time, LSN or restore point inside
its recoverable window) into ``$OPSCORE_HOME/clones/<name>`` and keep it running on a free
port as a clone opscore owns (listed, stopped and dropped like any clone). Exported from
``ops_core.api``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import repository
from ..backup import binaries, catalog, clones, wal, walcheck
from ..backup.restore import RestoreResult
from ..backup.store import check_backup_id
from ..backup.window import Window, check_in_window, window_of
from ..config import get_settings
from ..errors import InvalidInput, NotFound
from .backup import restore_backup
from .backup_context import store_for
from .common import utc_time
from .targets import get_target

__all__ = ["BackupClone", "clone_backup"]


@dataclass
class BackupClone:
    clone: str
    url: str
    port: int
    data_dir: str
    backup_id: str
    target: str
    recovery_target: str
    window: dict[str, Any]  # the backup's recoverable window the target was checked against
    restore: RestoreResult  # what was restored, and the proof from starting it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _window(conn: Any, backup: catalog.Backup, full: bool) -> Window:
    store = store_for(conn, get_target(backup.target or ""))
    major = binaries.major_of(backup.server_version_num or 0)
    check = None
    if store.wal_dir.is_dir():
        seg = backup.wal_segment_size or wal.DEFAULT_SEGMENT_SIZE
        tool = binaries.pg_bin(major, "pg_waldump")
        check = walcheck.check_archive(store.wal_dir, seg, tool, major, full=full)
    return window_of(backup, check)


def clone_backup(
    backup_id: str,
    *,
    name: str | None = None,
    time: datetime | str | None = None,
    lsn: str | None = None,
    restore_point: str | None = None,
) -> BackupClone:
    """Start a clone from backup ``backup_id``: restored (a chain combined), recovered to
    ``time`` / ``lsn`` / ``restore_point`` when one is given (else to the end of the backup),
    started on a free port and registered (see :func:`list_clones`, :func:`stop_clone`,
    :func:`drop_clone`). Its data directory is ``$OPSCORE_HOME/clones/<name>``.

    Refused before anything is written: an unknown or unusable backup, a logical dump, more
    than one recovery target, a taken name, a target outside the backup's recoverable window
    (the message names the window). A restore that fails later removes what it wrote."""
    check_backup_id(backup_id)
    given = [x for x in (time, lsn, restore_point) if x]
    if len(given) > 1:
        raise InvalidInput(
            "Give at most one recovery target (time, LSN or restore point).",
            "Nothing was changed.",
        )
    when = utc_time(time, "time") if time else None
    with repository.session() as conn:
        b = catalog.get(conn, backup_id)
        if not b.physical:
            raise InvalidInput(
                f"Backup {backup_id} is a logical dump; a clone starts from a physical backup.",
                "Pick a full or incremental backup (`opscore backup list --target T`). "
                "Nothing was changed.",
            )
        if not b.usable or not b.stop_lsn:
            raise InvalidInput(
                f"Backup {backup_id} is {b.status}; only a finished backup can be cloned.",
                "Pick a usable backup (`opscore backup list --target T`). Nothing was changed.",
            )
        target = b.target or ""
        clone = clones.check_new(name or clones.default_name(target), None)
        window = None
        if when or lsn or restore_point:
            window = _window(conn, b, full=False)
            if restore_point:
                rp = catalog.get_restore_point(conn, b.target_id, restore_point)
                if rp is None:
                    raise NotFound(
                        f"There is no restore point named {restore_point!r} for {target!r}.",
                        f"List them with `opscore restore-point list --target {target}`. "
                        "Nothing was changed.",
                    )
                check_in_window(window, lsn=rp.lsn, what=f"restore point {restore_point!r}")
            else:
                check_in_window(window, time=when, lsn=lsn)
    dest = get_settings().home_dir / "clones" / clone
    if dest.exists():
        raise InvalidInput(
            f"The clone directory {dest} exists already (not a clone opscore knows).",
            "Pick another name, or move that directory away. Nothing was changed.",
        )
    parent_made = not dest.parent.exists()
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        res = restore_backup(
            target,
            dest,
            backup_id=backup_id,
            target_time=when,
            target_lsn=lsn,
            target_name=restore_point,
            start=True,
            clone=clone,
        )
    except BaseException:
        if parent_made and dest.parent.is_dir() and not any(dest.parent.iterdir()):
            dest.parent.rmdir()
        raise
    assert res.clone is not None
    return BackupClone(
        clone=clone,
        url=res.clone["url"],
        port=res.clone["port"],
        data_dir=str(Path(res.destination)),
        backup_id=backup_id,
        target=target,
        recovery_target=res.recovery_target,
        window=window.as_dict() if window else {},
        restore=res,
    )
