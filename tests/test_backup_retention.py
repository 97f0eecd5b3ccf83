"""Retention: pure policy evaluation over catalog-shaped data, then a real run on a real store
(dry run deletes nothing; the real run deletes exactly the plan; the kept chain still restores).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ops_core import api
from ops_core.backup import retention, wal
from ops_core.backup.catalog import Backup
from ops_core.errors import InvalidInput

from .backup_helpers import (
    drop_slot,
    drop_target,
    fast_backups,  # noqa: F401
    make_target,
    new_dir,
    restored_ids,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SEG = 16 * 1024 * 1024


def b(
    bid: str,
    kind: str,
    days_ago: float,
    parent: str | None = None,
    status: str = "done",
    seg: int = 0,
) -> Backup:
    t = NOW - timedelta(days=days_ago)
    return Backup(
        backup_id=bid,
        target_id=1,
        kind=kind,
        status=status,
        path=f"/s/{bid}",
        started_at=t,
        finished_at=t + timedelta(minutes=5),
        parent_id=parent,
        timeline=1,
        start_lsn=wal.format_lsn(seg * SEG + 40),
        stop_lsn=wal.format_lsn(seg * SEG + 400),
        database="app" if kind == "logical" else None,
        wal_segment_size=SEG,
    )


def history() -> list[Backup]:
    return [
        b("F1", "full", 20, seg=2),
        b("I1", "incremental", 19, "F1", seg=4),
        b("F2", "full", 13, seg=10),
        b("I2a", "incremental", 12, "F2", seg=12),
        b("I2b", "incremental", 11, "I2a", seg=14),
        b("X", "full", 10.5, status="failed"),
        b("F3", "full", 6, seg=20),
        b("I3", "incremental", 5, "F3", seg=22),
        b("F4", "full", 1, status="corrupt", seg=30),
    ]


def test_redundancy_keeps_whole_chains_and_deletes_children_first():
    archive = wal.ArchiveContents(SEG, complete={1: set(range(2, 32))})
    plan = retention.plan(history(), [retention.Redundancy(2)], NOW, archive)
    assert plan.delete_ids == ["I1", "F1"]  # the incremental before its full
    kept = {k["backup_id"] for k in plan.keep}
    # failed X and corrupt F4 are newer than the oldest kept backup: kept to be seen
    assert kept == {"F2", "I2a", "I2b", "X", "F3", "I3", "F4"}
    assert plan.wal_keep_from == wal.segment_name(1, 10)
    assert plan.wal_delete == [wal.segment_name(1, s) for s in range(2, 10)]


def test_recovery_window_keeps_the_backup_before_the_window_and_its_chain():
    plan = retention.plan(history(), [retention.RecoveryWindow(7)], NOW)
    kept = {k["backup_id"] for k in plan.keep}
    # I2b (11 days ago) is the newest usable before the 7-day window: its chain stays
    assert {"F2", "I2a", "I2b", "F3", "I3"} <= kept
    assert plan.delete_ids == ["I1", "F1"]
    old_failure = [b("Y", "full", 25, status="failed"), *history()]
    assert "Y" in retention.plan(old_failure, [retention.RecoveryWindow(7)], NOW).delete_ids


def test_two_policies_keep_the_union_and_bad_policies_are_refused():
    plan = retention.plan(history(), [retention.Redundancy(1), retention.RecoveryWindow(12.5)], NOW)
    kept = {k["backup_id"] for k in plan.keep}
    assert {"F2", "I2a", "I2b", "F3", "I3"} <= kept and "F1" not in kept
    with pytest.raises(InvalidInput):
        retention.Redundancy(0)
    with pytest.raises(InvalidInput):
        retention.RecoveryWindow(-1)
    with pytest.raises(InvalidInput):
        retention.plan(history(), [], NOW)
    running = [*history(), b("R", "full", 30, status="running")]
    assert "R" not in retention.plan(running, [retention.Redundancy(1)], NOW).delete_ids


pytestmark = pytest.mark.usefixtures("fast_backups")


@pytest.fixture
def bk(repo, pg):
    t = make_target(pg)
    slot = f"opscore_ret_{t.dbname[-10:]}"
    try:
        api.create_wal_slot(t.name, slot)
        yield t, slot
    finally:
        drop_slot(pg, slot)
        drop_target(pg, t)


@pytest.mark.slow
def test_retention_dry_run_then_real_run_on_a_real_store(bk, pg):
    t, slot = bk
    incremental = pg.major >= 17
    t.write(1, 100)
    f1 = api.take_full_backup(t.name)
    t.write(101, 200)
    i1 = api.take_incremental_backup(t.name) if incremental else None
    api.receive_wal(t.name, slot=slot)
    f2 = api.take_full_backup(t.name)
    t.write(201, 300)
    i2 = api.take_incremental_backup(t.name) if incremental else None
    t.write(301, 400)
    api.receive_wal(t.name, slot=slot)
    wal_dir = Path(t.store) / "wal"
    before = sorted(p.name for p in wal_dir.iterdir())

    expected = [i1.backup_id, f1.backup_id] if i1 else [f1.backup_id]
    plan = api.apply_retention(t.name, redundancy=1, dry_run=True)
    assert plan.dry_run and plan.delete_ids == expected
    assert Path(f1.path).exists() and sorted(p.name for p in wal_dir.iterdir()) == before
    keep_seg = wal.segno_of(f2.start_lsn)
    assert plan.wal_delete and all(wal.parse_segment(n)[1] < keep_seg for n in plan.wal_delete)

    done = api.apply_retention(t.name, redundancy=1, dry_run=False)
    assert done.delete_ids == expected
    assert not Path(f1.path).exists() and (not i1 or not Path(i1.path).exists())
    left = [x.backup_id for x in api.list_backups(t.name)]
    assert left == [f2.backup_id] + ([i2.backup_id] if i2 else [])
    after = sorted(p.name for p in wal_dir.iterdir())
    assert sorted(set(before) - set(after)) == sorted(plan.wal_delete)
    assert api.wal_status(t.name).gaps == [], (before, after, f1.as_dict(), f2.as_dict())

    # the kept chain still restores, through the kept WAL, to the newest row
    dest = new_dir()
    res = api.restore_backup(t.name, dest, backup_id=left[-1], latest=True)
    assert restored_ids(dest, pg.major, t.dbname, res.os_user) == list(range(1, 401))
    shutil.rmtree(dest.parent, ignore_errors=True)
