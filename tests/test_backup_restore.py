"""Backups proven by restoring them: full + incrementals, PITR (restore point, time, LSN), bad
input. Real servers only: the test server (embedded 18 or OPSCORE_TEST_DSN's 15)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from ops_core import api
from ops_core.errors import InvalidInput, NotFound, NotSupported

from .backup_helpers import (
    drop_slot,
    drop_target,
    fast_backups,  # noqa: F401
    make_target,
    new_dir,
    restored_ids,
)


@pytest.fixture
def bk(repo, pg):
    t = make_target(pg)
    try:
        yield t
    finally:
        drop_target(pg, t)


@pytest.mark.slow
def test_full_and_two_incrementals_restore_the_chain(bk, pg):
    if pg.major < 17:
        with pytest.raises(NotSupported) as err:
            api.take_incremental_backup(bk.name)
        assert "PostgreSQL 17" in err.value.message
        pytest.skip(f"incremental backups need PostgreSQL 17+, the test server is {pg.major}")
    bk.write(1, 1000, "a")
    progress: list[tuple[int, int]] = []
    full = api.take_full_backup(bk.name, on_progress=lambda d, t: progress.append((d, t)))
    bk.write(1001, 2000, "b")
    inc1 = api.take_incremental_backup(bk.name)
    with psycopg.connect(bk.dsn, autocommit=True) as c:
        c.execute("UPDATE items SET tag = 'updated' WHERE id <= 10")
        c.execute("DELETE FROM items WHERE id BETWEEN 11 AND 20")
    bk.write(2001, 3000, "c")
    inc2 = api.take_incremental_backup(bk.name)
    bk.write(3001, 4000, "after")  # after the last backup: must not come back

    assert progress and progress[-1][0] > 0
    assert full.status == "done" and full.kind == "full" and full.parent_id is None
    assert inc1.parent_id == full.backup_id and inc2.parent_id == inc1.backup_id
    for b in (full, inc1, inc2):
        assert b.size_bytes > 0 and b.duration_s > 0 and b.timeline == 1
        assert b.start_lsn and b.stop_lsn and b.start_wal and b.stop_wal
    detail = api.get_backup(inc2.backup_id)
    assert detail.chain == [full.backup_id, inc1.backup_id, inc2.backup_id]

    dest = new_dir()
    res = api.restore_backup(bk.name, dest, backup_id=inc2.backup_id)
    assert res.chain == detail.chain and res.recovery_target == "end of the backup"
    ids = restored_ids(dest, pg.major, bk.dbname, res.os_user)
    expected = [i for i in range(1, 3001) if not 11 <= i <= 20]
    assert ids == expected
    shutil.rmtree(dest.parent, ignore_errors=True)


@pytest.fixture
def wal_slot(bk, pg):
    # a slot keeps the server from recycling WAL before it is received (the shared PostgreSQL
    # 15 of CI checkpoints under other tests' load)
    slot = f"opscore_test_{bk.dbname[-10:]}"
    api.create_wal_slot(bk.name, slot)
    try:
        yield slot
    finally:
        drop_slot(pg, slot)


@pytest.mark.slow
@pytest.mark.usefixtures("fast_backups")
def test_pitr_by_name_time_lsn_and_latest_each_proved_by_starting_it(bk, pg, wal_slot):
    bk.write(1, 100, "a")
    api.take_full_backup(bk.name)
    bk.write(101, 200, "b")
    with psycopg.connect(bk.dsn, autocommit=True) as c:
        lsn_b = c.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
        time_b = c.execute("SELECT clock_timestamp()").fetchone()[0]
    rp = api.create_restore_point(bk.name, "before_c")
    assert rp.name == "before_c" and rp.lsn
    assert [p.name for p in api.list_restore_points(bk.name)] == ["before_c"]
    bk.write(201, 300, "c")
    bk.write(301, 400, "d")
    status = api.receive_wal(bk.name, slot=wal_slot)
    assert status.complete_segments + status.partial_segments >= 1
    assert status.gaps == []
    assert wal_slot in [sl["slot"] for sl in status.slots]

    for kind, kw, expected in [
        ("name", {"target_name": "before_c"}, 200),
        ("time", {"target_time": time_b}, 200),
        ("lsn", {"target_lsn": lsn_b}, 200),
        ("latest", {"latest": True}, 400),
    ]:
        dest = new_dir()
        # the proving server stops (latest), or stays up as a clone whose rows are counted
        # (one server start instead of two)
        keep = {} if kind == "latest" else {"start": True, "clone": f"pitr_{kind}"}
        res = api.restore_backup(bk.name, dest, **kw, **keep)
        assert res.wal_segments >= 1, kind
        # proven against the archive, then started, recovered to the target and stopped
        assert res.coverage and res.coverage["wal"]["ended_by"] == "end of archive", kind
        assert res.proof["started"] and res.proof["reached_target"], kind
        if kind == "latest":
            assert res.proof["last_completed_transaction"], res.proof
        else:
            assert res.settings["recovery_target_action"] == "promote"
            assert res.proof["recovery_stopping"], res.proof
        if kind == "time":
            # the time maps to the first commit after it: the insert of rows 201-300
            assert (
                res.coverage["target_lsn"]
                and "recovery stopping before commit" in (res.proof["recovery_stopping"])
            )
        if keep:
            try:
                url = res.clone["url"].replace("/postgres?", f"/{bk.dbname}?")
                with psycopg.connect(url) as c:
                    ids = [r[0] for r in c.execute("SELECT id FROM items ORDER BY id")]
            finally:
                api.drop_clone(keep["clone"])
        else:
            assert not (dest / "postmaster.pid").exists(), "the proving server must be stopped"
            ids = restored_ids(dest, pg.major, bk.dbname, res.os_user)
        assert ids == list(range(1, expected + 1)), f"PITR to {kind}: {len(ids)} rows"
        shutil.rmtree(dest.parent, ignore_errors=True)

    # a time after the newest archived commit cannot be proven reached: refused, not "restored"
    with psycopg.connect(bk.dsn, autocommit=True) as c:
        too_late = c.execute("SELECT clock_timestamp()").fetchone()[0] + timedelta(hours=1)
    dest = new_dir()
    with pytest.raises(NotFound) as err:
        api.restore_backup(bk.name, dest, target_time=too_late)
    assert "No transaction that committed after" in err.value.message
    assert "--latest" in err.value.hint
    assert not dest.exists()


@pytest.mark.usefixtures("fast_backups")
def test_bad_input_is_refused_and_nothing_is_touched(bk, pg):
    bk.write(1, 10)
    full = api.take_full_backup(bk.name)

    # restore into a non-empty directory
    busy = new_dir()
    busy.mkdir()
    (busy / "keep.txt").write_text("precious")
    with pytest.raises(InvalidInput) as err:
        api.restore_backup(bk.name, busy, backup_id=full.backup_id)
    assert "not empty" in err.value.message
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    assert (busy / "keep.txt").read_text() == "precious"

    # unknown and malformed backup ids
    dest = new_dir()
    with pytest.raises(NotFound):
        api.restore_backup(bk.name, dest, backup_id="20000101T000000-F0000")
    with pytest.raises(InvalidInput):
        api.get_backup("no-such-backup")
    with pytest.raises(NotFound):
        api.verify_backup("20000101T000000-F0000")

    # recovery target time before the backup
    with pytest.raises(InvalidInput) as err:
        api.restore_backup(
            bk.name,
            dest,
            backup_id=full.backup_id,
            target_time=full.started_at - timedelta(hours=1),
        )
    assert "before" in err.value.message
    with pytest.raises(InvalidInput):  # no backup at all before that time
        api.restore_backup(bk.name, dest, target_time=full.started_at - timedelta(hours=1))
    with pytest.raises(NotFound):
        api.restore_backup(bk.name, dest, target_name="never-created")
    with pytest.raises(InvalidInput):
        api.restore_backup(bk.name, dest, target_lsn="not-an-lsn")
    assert not dest.exists()
    shutil.rmtree(busy.parent)
    shutil.rmtree(dest.parent)


def test_incremental_without_a_full_is_refused(bk, pg):
    with pytest.raises((InvalidInput, NotSupported)) as err:
        api.take_incremental_backup(bk.name)
    if pg.major >= 17:
        assert isinstance(err.value, InvalidInput)
        assert "no full backup" in err.value.message
    else:
        assert isinstance(err.value, NotSupported)
    assert api.list_backups(bk.name) == []
    assert not any(Path(bk.store, "base").glob("*")) if Path(bk.store, "base").exists() else True
