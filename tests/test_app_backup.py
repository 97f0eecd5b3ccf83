"""The Backup and recovery page, headless (AppTest) against a real target: each write asks
first and then really happens (a dump taken, verified, restored into a new database, a restore
point created); the retention dry run deletes nothing."""

from __future__ import annotations

import psycopg
import pytest

from ops_core import api

from .app_workload import fresh_repository
from .backup_helpers import drop_target, fast_backups, make_target  # noqa: F401
from .test_app import _run, _tables, _text

pytestmark = pytest.mark.usefixtures("fast_backups")


@pytest.fixture
def bk(pg, opscore_env):
    fresh_repository()
    t = make_target(pg, name="bk")
    t.write(1, 40, tag="app")
    try:
        yield t
    finally:
        drop_target(pg, t)


@pytest.mark.slow
def test_backup_page_take_verify_restore_and_restore_point(bk, pg):
    at = _run("backup.py", {"target": "bk"})
    assert "No backups of bk yet" in _text(at) and at.metric[0].value == "0"

    at = _run("backup.py", {"target": "bk", "bk": "Take a backup"})
    at.radio(key="bk_kind").set_value("logical").run()
    at.button(key="bk_take").click().run()
    assert api.list_backups("bk") == []  # nothing before confirming
    at.button(key="bk_take_pending_yes").click().run()
    assert not at.exception, at.exception
    (dump,) = api.list_backups("bk")
    assert dump.kind == "logical" and dump.status == "done"
    assert any(dump.backup_id in s.value for s in at.success)

    at = _run("backup.py", {"target": "bk"})
    assert dump.backup_id in _tables(at) and at.metric[0].value == "1"
    at.button(key="bk_verify_quick").click().run()
    at.button(key="bk_verify_pending_yes").click().run()
    assert not at.exception, at.exception
    assert api.get_backup(dump.backup_id).backup.status == "verified"

    newdb = f"{bk.dbname}_app"
    try:
        at = _run("backup.py", {"target": "bk", "bk": "Restore"})
        at.text_input(key="rd_db").input(newdb).run()
        at.checkbox(key="rd_no").check().run()
        at.button(key="rd_go").click().run()
        at.button(key="rd_pending_yes").click().run()
        assert not at.exception, at.exception
        with psycopg.connect(pg.dsn(newdb)) as c:
            assert c.execute("SELECT count(*) FROM items WHERE tag = 'app'").fetchone()[0] == 40
        assert any(newdb in s.value for s in at.success)
        at.button(key="rd_go").click().run()  # again: the database exists now
        at.button(key="rd_pending_yes").click().run()
        assert any("already exists" in e.value for e in at.error)
    finally:
        pg.drop_database(pg.dsn(newdb))

    at = _run("backup.py", {"target": "bk", "bk": "Restore points"})
    at.text_input(key="rp_name").input("before_app_test").run()
    at.button(key="rp_go").click().run()
    at.button(key="rp_pending_yes").click().run()
    assert not at.exception, at.exception
    assert [p.name for p in api.list_restore_points("bk")] == ["before_app_test"]
    # no WAL is being archived for bk: the page says the point cannot be reached yet
    assert any("not being archived" in w.value for w in at.warning)

    at = _run("backup.py", {"target": "bk", "bk": "Schedule and retention"})
    assert "No retention policy" in _text(at)
    at.text_input(key="sch_full").input("every 1x").run()  # bad input: refused, nothing stored
    at.button(key="sch_go").click().run()
    at.button(key="sch_pending_yes").click().run()
    assert any("Schedule not saved" in e.value for e in at.error)
    assert api.get_backup_schedule("bk").jobs == {}
    at.text_input(key="sch_full").input("0 2 * * 0").run()
    at.button(key="sch_go").click().run()
    at.button(key="sch_pending_yes").click().run()
    assert api.get_backup_schedule("bk").jobs == {"full": "0 2 * * 0"}
    at.number_input(key="rt_red").set_value(1).run()
    assert "would be deleted" in _text(at)
    assert len(api.list_backups("bk")) == 1  # a dry run
