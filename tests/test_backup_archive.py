"""The WAL archive proven, not assumed: a gap splits the recoverable window and refuses a time
inside it (naming the gap); a flipped byte is caught by verify and refused by restore; a clone
is started, queried and dropped. Real servers, real WAL, pg_waldump."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from ops_core import api
from ops_core.backup import wal
from ops_core.errors import NotFound

from .backup_helpers import (
    drop_slot,
    drop_target,
    fast_backups,  # noqa: F401
    make_target,
    new_dir,
    restored_ids,
)
from .helpers import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fast_backups")]


@pytest.fixture
def bk(repo, pg):
    t = make_target(pg)
    slot = f"opscore_test_{t.dbname[-10:]}"
    api.create_wal_slot(t.name, slot)
    t.slot = slot  # type: ignore[attr-defined]
    try:
        yield t
    finally:
        drop_slot(pg, slot)
        drop_target(pg, t)


def _switch(pg) -> None:
    with pg.admin() as c:
        c.execute("SELECT pg_switch_wal()")


def _segment_of(lsn: str) -> str:
    return wal.segment_name(1, wal.segno_of(lsn))


def test_gap_splits_the_window_and_a_time_inside_it_is_refused_naming_it(bk, pg):
    bk.write(1, 100, "a")
    full1 = api.take_full_backup(bk.name)
    bk.write(101, 200, "b")
    lsn_b = bk.server_lsn()
    _switch(pg)
    with psycopg.connect(bk.dsn) as c:  # one transaction: the time just before its commit
        c.execute("INSERT INTO items SELECT g, 'c', '' FROM generate_series(201, 300) g")
        in_gap = c.execute("SELECT clock_timestamp()").fetchone()[0]
    seg_c = _segment_of(bk.server_lsn())
    _switch(pg)
    bk.write(301, 400, "d")
    api.receive_wal(bk.name, slot=bk.slot)
    full2 = api.take_full_backup(bk.name)
    bk.write(401, 500, "e")
    api.receive_wal(bk.name, slot=bk.slot)

    # lose the segment holding the commit of rows 201-300
    wal_dir = api.backup_store(bk.name).wal_dir
    assert (wal_dir / seg_c).is_file() and (wal_dir / "checksums" / f"{seg_c}.sha256").is_file()
    (wal_dir / seg_c).unlink()
    assert [g.first_missing for g in api.wal_status(bk.name).gaps] == [seg_c]

    # the recoverable window is two pieces, each with what bounds it
    (rep,) = api.backup_report(bk.name)
    windows = rep.recoverability["windows"]
    assert len(windows) == 2, windows
    first, second = windows
    assert first["from"]["backup_id"] == full1.backup_id
    assert first["to"]["ended_by"] == "gap" and seg_c in first["to"]["bound"]
    assert second["from"]["backup_id"] == full2.backup_id
    assert second["to"]["ended_by"] == "end of archive"
    assert wal.parse_lsn(first["to"]["lsn"]) <= wal.parse_lsn(second["from"]["lsn"])
    assert rep.recoverability["latest"]["lsn"] == second["to"]["lsn"]
    cli = run_cli("backup", "report", "--target", bk.name)
    assert cli.returncode == 0 and "2 separate windows" in cli.stdout and seg_c in cli.stdout
    from .test_app import _run, _tables, _text

    at = _run("backup.py", {"target": bk.name})
    assert "split or cut short" in _text(at) and seg_c in _tables(at)
    assert "end of the archived WAL" in _tables(at)

    # a time inside the gap: refused, the gap named, nothing written
    dest = new_dir()
    with pytest.raises(NotFound) as err:
        api.restore_backup(bk.name, dest, backup_id=full1.backup_id, target_time=in_gap)
    assert seg_c in err.value.message and "gap" in err.value.message
    assert not dest.exists()
    # --latest from the first backup cannot cross the gap either
    with pytest.raises(NotFound) as err:
        api.restore_backup(bk.name, dest, backup_id=full1.backup_id, latest=True)
    assert seg_c in err.value.message and not dest.exists()

    # before the gap the first window is usable: proven by starting it and counting rows
    res = api.restore_backup(bk.name, dest, backup_id=full1.backup_id, target_lsn=lsn_b)
    assert res.proof["reached_target"]
    assert restored_ids(dest, pg.major, bk.dbname, res.os_user) == list(range(1, 201))
    shutil.rmtree(dest.parent, ignore_errors=True)


def _flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0xFF]))


def test_flipped_byte_is_caught_by_verify_and_refused_by_restore(bk, pg):
    bk.write(1, 100, "a")
    full = api.take_full_backup(bk.name)
    bk.write(101, 200, "b")
    lsn_b = bk.server_lsn()
    _switch(pg)
    bk.write(201, 300, "c")
    api.receive_wal(bk.name, slot=bk.slot)
    assert api.verify_backup(full.backup_id).ok
    assert api.verify_wal_archive(bk.name).ok

    # one flipped byte inside the WAL that holds rows 101-200
    seg_b = _segment_of(lsn_b)
    wal_dir = api.backup_store(bk.name).wal_dir
    offset = wal.parse_lsn(lsn_b) % wal.DEFAULT_SEGMENT_SIZE - 2000
    _flip_byte(wal_dir / seg_b, offset)

    rep = api.verify_backup(full.backup_id)
    assert not rep.ok
    (walc,) = [c for c in rep.checks if c.kind == "wal_archive"]
    assert not walc.ok and [d["segment"] for d in walc.detail["damaged"]] == [seg_b]
    assert api.get_backup(full.backup_id).backup.status == "verified", (
        "the base backup itself is intact: still restorable to its end"
    )
    cli = run_cli("backup", "verify", full.backup_id)
    assert cli.returncode == 1 and seg_b in cli.stdout
    wv = run_cli("backup", "wal", "verify", "--target", bk.name, "--json")
    assert wv.returncode == 1 and json.loads(wv.stdout)["damaged"][0]["segment"] == seg_b

    # restore refuses to replay it, naming the segment; nothing written
    dest = new_dir()
    for kw in ({"latest": True}, {"target_lsn": bk.server_lsn()}):
        with pytest.raises(NotFound) as err:
            api.restore_backup(bk.name, dest, **kw)
        assert seg_b in err.value.message, err.value.message
        assert not dest.exists()

    # the window shrinks at the damaged segment
    (report,) = api.backup_report(bk.name)
    (window,) = report.recoverability["windows"]
    assert window["to"]["ended_by"] == "damaged" and seg_b in window["to"]["bound"]
    assert wal.parse_lsn(window["to"]["lsn"]) <= wal.segno_of(lsn_b) * wal.DEFAULT_SEGMENT_SIZE
    assert report.wal["damaged"][0]["segment"] == seg_b


def test_clone_started_queried_stopped_and_dropped(bk, pg):
    bk.write(1, 50, "a")
    api.take_full_backup(bk.name)
    dest = new_dir()
    res = run_cli(
        "backup", "restore", "--target", bk.name, "--to", str(dest), "--start",
        "--clone", "bk_clone", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["clone"] == "bk_clone" and out["port"] and "bk_clone" != out["url"]
    try:
        with psycopg.connect(out["url"].replace("/postgres?", f"/{bk.dbname}?")) as c:
            assert c.execute("SELECT count(*) FROM items").fetchone()[0] == 50
            c.execute("INSERT INTO items VALUES (51, 'clone only', '')")  # clones take writes
        (listed,) = [c for c in api.list_clones() if c.clone == "bk_clone"]
        assert listed.running and listed.port == out["port"]
        from .test_app import _run, _tables

        at = _run("backup.py", {"target": bk.name, "bk": "Restore"})
        assert "bk_clone" in _tables(at)
        assert api.stop_clone("bk_clone").running is False
        again = run_cli("backup", "restore", "--target", bk.name, "--to", str(new_dir()),
                        "--start", "--clone", "bk_clone")  # fmt: skip
        assert again.returncode != 0 and "exists already" in again.stderr
    finally:
        dropped = run_cli("clone", "drop", "bk_clone", "--json")
    assert dropped.returncode == 0, dropped.stderr
    assert not dest.exists() and "bk_clone" not in [c.clone for c in api.list_clones()]
    # the production target never saw the clone's write
    with psycopg.connect(bk.dsn) as c:
        assert c.execute("SELECT count(*) FROM items").fetchone()[0] == 50


def test_clone_from_a_backup_in_its_window_listed_dropped_and_refused_outside_it(bk, pg):
    from ops_core.config import get_settings
    from ops_core.errors import InvalidInput, OpsCoreError

    bk.write(1, 60, "a")
    full = api.take_full_backup(bk.name)
    bk.write(61, 120, "b")
    with psycopg.connect(bk.dsn) as c:
        mid = c.execute("SELECT clock_timestamp()").fetchone()[0]
    bk.write(121, 180, "c")  # a commit after `mid`: recovery can tell it reached it
    api.receive_wal(bk.name, slot=bk.slot)
    clones_dir = get_settings().home_dir / "clones"

    def nothing_left(name: str) -> None:
        assert name not in [c.clone for c in api.list_clones()]
        assert not (clones_dir / name).exists()

    # bad input: refused with the reason, nothing made
    before = full.started_at.replace(year=full.started_at.year - 1)
    for when in (before, mid.replace(year=mid.year + 1)):
        with pytest.raises(InvalidInput) as err:
            api.clone_backup(full.backup_id, name="bk_out", time=when)
        msg = err.value.message
        assert "outside the recoverable window of backup " + full.backup_id in msg, msg
        assert full.stop_lsn in msg and full.finished_at.isoformat() in msg, msg
        nothing_left("bk_out")
    with pytest.raises(NotFound):
        api.clone_backup("20000101T000000-F0000", name="bk_out")
    with pytest.raises(OpsCoreError):  # pg_basebackup refuses the rate: a failed record
        api.take_full_backup(bk.name, max_rate="1")
    (failed,) = [b for b in api.list_backups(bk.name) if b.status == "failed"]
    with pytest.raises(InvalidInput, match="only a finished backup"):
        api.clone_backup(failed.backup_id, name="bk_out")
    nothing_left("bk_out")
    from .test_app import _run

    at = _run("backup.py", {"target": bk.name, "bk": "Restore"})  # the page's clone action
    at.selectbox(key="cb_bid").set_value(full.backup_id).run()
    at.text_input(key="cb_time").input(before.isoformat()).run()
    at.button(key="cb_go").click().run()
    at.button(key="cb_pending_yes").click().run()
    assert not at.exception, at.exception
    assert any("outside the recoverable window" in e.value for e in at.error), at.error
    assert full.backup_id not in [c.backup_id for c in api.list_clones()]

    # a clone at a time inside the window (the subprocess path of the CLI)
    res = run_cli("backup", "clone", full.backup_id, "--time", mid.isoformat(),
                  "--clone", "bk_tclone", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    try:
        assert out["clone"] == "bk_tclone" and out["backup_id"] == full.backup_id
        assert out["restore"]["proof"]["reached_target"] is True
        assert out["window"]["from"]["lsn"] == full.stop_lsn
        with psycopg.connect(out["url"].replace("/postgres?", f"/{bk.dbname}?")) as c:
            assert c.execute("SELECT count(*) FROM items").fetchone()[0] == 120
        (listed,) = [c for c in api.list_clones() if c.clone == "bk_tclone"]
        assert listed.running and listed.port == out["port"]
        assert listed.backup_id == full.backup_id and listed.data_dir == out["data_dir"]
    finally:
        api.drop_clone("bk_tclone")
    nothing_left("bk_tclone")
