"""The recoverable window of one backup: from the end of the backup (the first consistent
point) through the readable WAL that follows it without a gap or a damaged segment.

Used to check a recovery target before anything is restored (a clone at a time outside the
window is refused naming the window). The restore still proves its own target against the
archive (``restore.prove_coverage``); this is the early, readable refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import InvalidInput
from . import wal, walcheck
from .catalog import Backup


@dataclass
class Window:
    backup_id: str
    from_time: datetime | None  # the backup's end
    from_lsn: str
    to_time: datetime | None  # the last readable commit (None: no archived WAL after it)
    to_lsn: str
    bound: str  # what ends it: a gap, a damaged segment, the end of the archive

    def describe(self) -> str:
        def when(t: datetime | None, lsn: str) -> str:
            return f"{t.isoformat()} (LSN {lsn})" if t else f"LSN {lsn}"

        return (
            f"the recoverable window of backup {self.backup_id} is "
            f"{when(self.from_time, self.from_lsn)} -> {when(self.to_time, self.to_lsn)}, "
            f"ended by the {self.bound}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "from": {
                "time": self.from_time.isoformat() if self.from_time else None,
                "lsn": self.from_lsn,
            },
            "to": {"time": self.to_time.isoformat() if self.to_time else None, "lsn": self.to_lsn},
            "bound": self.bound,
        }


def window_of(backup: Backup, check: walcheck.ArchiveCheck | None) -> Window:
    """``backup``'s window in the checked archive (just its end when no WAL follows it)."""
    assert backup.stop_lsn is not None
    end_only = Window(
        backup.backup_id,
        backup.finished_at,
        backup.stop_lsn,
        backup.finished_at,
        backup.stop_lsn,
        "end of the backup (no readable archived WAL after it)",
    )
    if check is None or backup.timeline is None or not backup.start_lsn:
        return end_only
    run = check.run_for(backup.timeline, wal.segno_of(backup.start_lsn, check.seg_size))
    if run is None or run.end_lsn < wal.parse_lsn(backup.stop_lsn):
        return end_only
    last = run.last_xact_time()
    return Window(
        backup.backup_id,
        backup.finished_at,
        backup.stop_lsn,
        last if last and (not backup.finished_at or last > backup.finished_at) else None,
        wal.format_lsn(run.end_lsn),
        run.end_detail,
    )


def check_in_window(
    w: Window, *, time: datetime | None = None, lsn: str | None = None, what: str = ""
) -> None:
    """Refuse (naming the window) a time or LSN outside ``w``. A time must fall before the
    window's last commit: recovery knows it reached a time only by seeing a later commit."""
    label = what or (f"time {time.isoformat()}" if time else f"LSN {lsn}")
    outside = False
    if time is not None:
        if w.from_time is not None and time < w.from_time:
            outside = True
        elif w.to_time is None or time >= w.to_time:
            outside = True
    if lsn is not None:
        value = wal.parse_lsn(lsn)
        if value < wal.parse_lsn(w.from_lsn) or value >= wal.parse_lsn(w.to_lsn):
            outside = True
    if outside:
        raise InvalidInput(
            f"The recovery target ({label}) is outside {w.describe()}.",
            "Pick a point inside that window (`opscore backup report --target T` shows every "
            "window), or another backup. Nothing was changed.",
        )
