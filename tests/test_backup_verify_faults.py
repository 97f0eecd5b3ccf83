"""Verification catches corruption (and names the file), a test restore of a good backup passes;
faults (target stopped mid-backup, store full) leave a failed record and no partial files."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import psycopg
import pytest

from ops_core import api
from ops_core.backup.context import StoreFull
from ops_core.errors import CommandFailed, InvalidInput
from ops_core.targets.embedded import EmbeddedServer

from .backup_helpers import (
    drop_target,
    fast_backups,  # noqa: F401
    make_target,
)

pytestmark = pytest.mark.usefixtures("fast_backups")


@pytest.fixture
def bk(repo, pg):
    t = make_target(pg)
    try:
        yield t
    finally:
        drop_target(pg, t)


@pytest.mark.slow
def test_verify_names_the_corrupted_file_and_test_restore_passes(bk, pg):
    bk.write(1, 2000)
    with psycopg.connect(bk.dsn, autocommit=True) as c:
        relpath = c.execute("SELECT pg_relation_filepath('items')").fetchone()[0]
    good = api.take_full_backup(bk.name)
    bad = api.take_full_backup(bk.name)

    victim = Path(bad.path) / "data" / relpath
    raw = bytearray(victim.read_bytes())
    assert len(raw) > 9000
    for i in range(8200, 8210):  # flip bytes in the second page
        raw[i] ^= 0xFF
    victim.write_bytes(bytes(raw))

    report = api.verify_backup(bad.backup_id)
    assert not report.ok
    assert relpath in report.bad_files
    assert api.get_backup(bad.backup_id).backup.status == "corrupt"

    report = api.verify_backup(good.backup_id, test_restore=True)
    assert report.ok, report.as_dict()
    kinds = [c.kind for c in report.checks]
    assert kinds == ["verifybackup", "wal_archive", "test_restore"]
    tr = report.checks[-1].detail
    assert tr["indexes_checked"] > 0 and bk.dbname in tr["databases"]
    detail = api.get_backup(good.backup_id)
    assert detail.backup.status == "verified" and len(detail.checks) == 3


def test_logical_backup_and_its_verification(bk, pg):
    bk.write(1, 50)
    b = api.take_logical_backup(bk.name)
    assert b.kind == "logical" and b.database == bk.dbname and b.size_bytes > 0
    assert api.verify_backup(b.backup_id).ok
    dump = Path(b.path) / "database.dump"
    dump.write_bytes(dump.read_bytes()[:200])  # truncated dump
    rep = api.verify_backup(b.backup_id)
    assert not rep.ok and api.get_backup(b.backup_id).backup.status == "corrupt"


@pytest.mark.slow
def test_logical_restore_into_a_new_database_and_refusals(bk, pg):
    bk.write(1, 120, tag="restored")
    b = api.take_logical_backup(bk.name)
    new_db = f"{bk.dbname}_r"
    try:
        res = api.restore_logical_backup(b.backup_id, new_db, no_owner=True)
        assert res.database == new_db and res.tables_in_dump == 1 and res.tables_restored == 1
        with psycopg.connect(pg.dsn(new_db)) as c:
            assert c.execute("SELECT count(*), min(tag) FROM items").fetchone() == (120, "restored")
            assert c.execute("SELECT to_regclass('items_tag') IS NOT NULL").fetchone()[0]
        # never overwrite: the database exists now, so a second restore is refused untouched
        bk.write(121, 130)
        with pytest.raises(InvalidInput, match="already exists"):
            api.restore_logical_backup(b.backup_id, new_db)
        with psycopg.connect(pg.dsn(new_db)) as c:
            assert c.execute("SELECT count(*) FROM items").fetchone()[0] == 120
        # a physical backup is not a dump
        full = api.take_full_backup(bk.name)
        with pytest.raises(InvalidInput, match="not a dump"):
            api.restore_logical_backup(full.backup_id, f"{bk.dbname}_x")
        # a damaged dump fails before a database is created
        dump = Path(b.path) / "database.dump"
        dump.write_bytes(dump.read_bytes()[:200])
        with pytest.raises(CommandFailed):
            api.restore_logical_backup(b.backup_id, f"{bk.dbname}_y")
        with pg.admin() as c:
            left = c.execute(
                "SELECT count(*) FROM pg_database WHERE datname IN (%s, %s)",
                (f"{bk.dbname}_x", f"{bk.dbname}_y"),
            ).fetchone()[0]
        assert left == 0
    finally:
        pg.drop_database(pg.dsn(new_db))


def test_logical_restore_failing_midway_drops_what_it_created(bk, pg):
    """pg_restore stops at the first error (a role of the dump missing here): the database the
    restore created is dropped again and the error names the cause."""
    role = f"r_{bk.dbname}"[:60]
    with pg.admin() as c:
        c.execute(f'CREATE ROLE "{role}"')
    with psycopg.connect(bk.dsn, autocommit=True) as c:
        c.execute(f'ALTER TABLE items OWNER TO "{role}"')
    b = api.take_logical_backup(bk.name)
    with psycopg.connect(bk.dsn, autocommit=True) as c:
        c.execute("ALTER TABLE items OWNER TO CURRENT_USER")
    with pg.admin() as c:
        c.execute(f'DROP ROLE "{role}"')
    new_db = f"{bk.dbname}_m"
    with pytest.raises(CommandFailed, match="dropped again") as err:
        api.restore_logical_backup(b.backup_id, new_db)
    assert role in err.value.stderr
    with pg.admin() as c:
        assert not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (new_db,)).fetchone()
    res = api.restore_logical_backup(b.backup_id, new_db, no_owner=True)  # the way around it
    try:
        assert res.tables_restored == 1
    finally:
        pg.drop_database(pg.dsn(new_db))


@pytest.fixture
def victim_server(repo):
    """A dedicated embedded server that the test may stop (never the shared test server)."""
    home = Path(tempfile.mkdtemp(prefix="ops-victim-", dir=tempfile.gettempdir()))
    srv = EmbeddedServer(home)
    srv.start()
    try:
        yield srv
    finally:
        srv.destroy()
        shutil.rmtree(home, ignore_errors=True)


def test_target_stopped_during_backup_marks_it_failed(victim_server):
    srv = victim_server
    with psycopg.connect(srv.conninfo(), autocommit=True) as c:
        c.execute(
            "CREATE TABLE filler AS SELECT g, repeat('x', 500) AS pad "
            "FROM generate_series(1, 20000) g"
        )
    store = srv.home / "store"
    api.add_target("victim", srv.conninfo())
    api.set_backup_store("victim", store)
    stopper: list[threading.Thread] = []

    def on_progress(done_kb: int, total_kb: int) -> None:
        if done_kb > 0 and not stopper:
            stopper.append(threading.Thread(target=srv.stop))
            stopper[0].start()

    with pytest.raises(CommandFailed) as err:
        api.take_full_backup("victim", on_progress=on_progress, max_rate="2M")
    stopper[0].join(timeout=120)
    assert "failed" in err.value.message and "Partial files were removed" in err.value.message
    backups = api.list_backups("victim")
    assert [b.status for b in backups] == ["failed"]
    assert backups[0].error and backups[0].finished_at is not None
    assert list((store / "base").iterdir()) == []


def test_store_full_is_a_clear_failure(bk):
    mnt = Path(tempfile.mkdtemp(prefix="ops-tiny-", dir=tempfile.gettempdir()))
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        shutil.rmtree(mnt, ignore_errors=True)
        pytest.skip(f"cannot mount a tiny tmpfs here ({res.stderr.strip() or 'not root'})")
    try:
        api.set_backup_store(bk.name, mnt / "store")
        with pytest.raises(StoreFull) as err:
            api.take_full_backup(bk.name)
        assert "full" in err.value.message and str(mnt) in err.value.message
        backups = api.list_backups(bk.name)
        assert [b.status for b in backups] == ["failed"]
        assert "No space left" in (backups[0].error or "")
        assert list((mnt / "store" / "base").iterdir()) == []
        assert os.statvfs(mnt).f_bfree > 0  # partial files were removed
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        shutil.rmtree(mnt, ignore_errors=True)
