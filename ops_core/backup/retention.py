"""Retention policies: small pure classes evaluated over catalog metadata (no server needed).

- ``Redundancy(n)``: keep the ``n`` newest usable full backups and the incrementals built on
  them (per database for logical dumps: the ``n`` newest).
- ``RecoveryWindow(days)``: keep what is needed to restore to any point of the last ``days``:
  every backup finished inside the window plus the newest usable backup finished before it.

Chain-aware: keeping an incremental keeps every backup it is built on. WAL older than the start
of the oldest kept physical backup goes; nothing a kept backup needs to recover does. Backups
still running are never touched. With two policies a backup is kept if either keeps it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from ..errors import InvalidInput
from . import wal
from .catalog import Backup


class Policy(Protocol):
    def keep(self, backups: list[Backup], now: datetime) -> dict[str, str]:
        """backup_id -> why it is kept (before chain closure)."""
        ...

    def describe(self) -> str: ...


def _sorted(backups: list[Backup]) -> list[Backup]:
    return sorted(backups, key=lambda b: (b.finished_at or b.started_at, b.backup_id))


@dataclass(frozen=True)
class Redundancy:
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise InvalidInput(
                f"Redundancy must keep at least 1 full backup (got {self.count}).",
                "Use --redundancy 1 or more.",
            )

    def describe(self) -> str:
        return f"redundancy {self.count} (keep the {self.count} newest full backups)"

    def keep(self, backups: list[Backup], now: datetime) -> dict[str, str]:
        fulls = [b for b in _sorted(backups) if b.kind == "full" and b.usable]
        kept = {
            b.backup_id: f"one of the {self.count} newest full backups"
            for b in fulls[-self.count :]
        }
        # incrementals built (directly or not) on a kept full
        changed = True
        while changed:
            changed = False
            for b in backups:
                if b.kind == "incremental" and b.parent_id in kept and b.backup_id not in kept:
                    kept[b.backup_id] = f"incremental on kept backup {b.parent_id}"
                    changed = True
        by_db: dict[str, list[Backup]] = {}
        for b in _sorted(backups):
            if b.kind == "logical" and b.usable:
                by_db.setdefault(b.database or "", []).append(b)
        for db, dumps in by_db.items():
            for b in dumps[-self.count :]:
                kept[b.backup_id] = f"one of the {self.count} newest dumps of {db}"
        return kept


@dataclass(frozen=True)
class RecoveryWindow:
    days: float

    def __post_init__(self) -> None:
        if self.days <= 0:
            raise InvalidInput(
                f"The recovery window must be positive (got {self.days} days).",
                "Use --recovery-window-days 1 or more.",
            )

    def describe(self) -> str:
        return f"recovery window {self.days:g} days"

    def keep(self, backups: list[Backup], now: datetime) -> dict[str, str]:
        cutoff = now - timedelta(days=self.days)
        kept: dict[str, str] = {}
        groups: dict[str, list[Backup]] = {}
        for b in _sorted(backups):
            if b.usable:
                key = "physical" if b.physical else f"logical:{b.database}"
                groups.setdefault(key, []).append(b)
        for items in groups.values():
            before = [b for b in items if (b.finished_at or b.started_at) < cutoff]
            for b in items:
                if (b.finished_at or b.started_at) >= cutoff:
                    kept[b.backup_id] = "inside the recovery window"
            if before:
                kept[before[-1].backup_id] = "newest backup before the window (its start)"
        return kept


@dataclass
class RetentionPlan:
    policy: str
    keep: list[dict[str, str]] = field(default_factory=list)
    delete: list[dict[str, str]] = field(default_factory=list)
    wal_keep_from: str | None = None
    wal_delete: list[str] = field(default_factory=list)
    dry_run: bool = True

    @property
    def delete_ids(self) -> list[str]:
        return [d["backup_id"] for d in self.delete]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(
    backups: list[Backup],
    policies: list[Policy],
    now: datetime,
    archive: wal.ArchiveContents | None = None,
) -> RetentionPlan:
    """What each policy keeps, closed over chains; everything else goes (children first)."""
    if not policies:
        raise InvalidInput(
            "No retention policy given.",
            "Give --redundancy N and/or --recovery-window-days D (or configure them with "
            "`opscore backup schedule --target T --redundancy N`).",
        )
    by_id = {b.backup_id: b for b in backups}
    kept: dict[str, str] = {}
    for p in policies:
        for bid, why in p.keep(backups, now).items():
            kept.setdefault(bid, why)
    # chain closure: a kept incremental keeps everything it is built on
    for bid in list(kept):
        cur = by_id[bid]
        while cur.parent_id and cur.parent_id in by_id:
            parent = by_id[cur.parent_id]
            kept.setdefault(parent.backup_id, f"base of kept incremental {bid}")
            cur = parent
    kept_physical = [by_id[i] for i in kept if by_id[i].physical and by_id[i].start_lsn]
    oldest = min(kept_physical, key=lambda b: wal.parse_lsn(b.start_lsn or "0/0"), default=None)
    out = RetentionPlan(" + ".join(p.describe() for p in policies))
    for b in _sorted(backups):
        if b.status == "running":
            kept.setdefault(b.backup_id, "still running")
        if b.backup_id in kept:
            out.keep.append({"backup_id": b.backup_id, "kind": b.kind, "reason": kept[b.backup_id]})
            continue
        if b.status in ("failed", "corrupt") and oldest and (b.started_at > oldest.started_at):
            out.keep.append(
                {"backup_id": b.backup_id, "kind": b.kind, "reason": f"{b.status}, recent"}
            )
            continue
        why = "failed" if b.status == "failed" else f"not kept by {out.policy}"
        out.delete.append({"backup_id": b.backup_id, "kind": b.kind, "reason": why})
    # children before parents, so a chain is never broken half-way
    depth = {b.backup_id: _depth(b, by_id) for b in backups}
    out.delete.sort(key=lambda d: -depth[d["backup_id"]])
    if oldest is not None and archive is not None:
        seg = oldest.wal_segment_size or archive.seg_size
        first = wal.segno_of(oldest.start_lsn or "0/0", seg)
        out.wal_keep_from = wal.segment_name(oldest.timeline or 1, first, seg)
        out.wal_delete = wal.removable_segments(archive, (oldest.timeline or 1, first))
    return out


def _depth(b: Backup, by_id: dict[str, Backup]) -> int:
    d = 0
    while b.parent_id and b.parent_id in by_id:
        b = by_id[b.parent_id]
        d += 1
    return d


def policies_from(config: dict[str, Any]) -> list[Policy]:
    out: list[Policy] = []
    if config.get("redundancy") is not None:
        out.append(Redundancy(int(config["redundancy"])))
    if config.get("recovery_window_days") is not None:
        out.append(RecoveryWindow(float(config["recovery_window_days"])))
    return out
