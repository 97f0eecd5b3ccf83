"""The backup CLI, schedules (API + CLI), the catalog report, recatalog from the store, and the
Prefect flow functions calling the API (run directly, without a Prefect server)."""

from __future__ import annotations

import json
import shutil

import pytest

from ops_core import api
from ops_core.errors import InvalidInput

from .backup_helpers import (
    drop_target,
    fast_backups,  # noqa: F401
    make_target,
    new_dir,
)
from .helpers import invoke_cli, run_cli

pytestmark = pytest.mark.usefixtures("fast_backups")


@pytest.fixture
def bk(repo, pg):
    t = make_target(pg)
    try:
        yield t
    finally:
        drop_target(pg, t)


def cli_json(*args: str):
    """A command's JSON answer, run in this process (each test keeps real `opscore` runs)."""
    res = invoke_cli(*args, "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.slow
def test_cli_backup_list_show_report_restore_points_delete(bk, pg):
    bk.write(1, 10)
    full = cli_json("backup", "full", "--target", bk.name)
    assert full["status"] == "done" and full["kind"] == "full"
    listed = cli_json("backup", "list", "--target", bk.name)
    assert [b["backup_id"] for b in listed] == [full["backup_id"]]
    shown = cli_json("backup", "show", full["backup_id"])
    assert shown["chain"] == [full["backup_id"]] and shown["stop_lsn"] == full["stop_lsn"]

    rp = cli_json("restore-point", "create", "--target", bk.name, "cli_point")
    assert rp["name"] == "cli_point"
    assert [p["name"] for p in cli_json("restore-point", "list", "--target", bk.name)] == [
        "cli_point"
    ]
    dup = invoke_cli("restore-point", "create", "--target", bk.name, "cli_point")
    assert dup.returncode != 0 and "already has a restore point" in dup.stderr

    (rep,) = cli_json("backup", "report", "--target", bk.name)
    assert rep["recoverability"]["earliest"]["backup_id"] == full["backup_id"]
    assert rep["chains"][0]["members"] == [full["backup_id"]]
    assert rep["totals"]["by_status"] == {"done": 1}

    bad = run_cli("backup", "show", "20000101T000000-F0000")
    assert bad.returncode != 0 and "no backup with id" in bad.stderr
    assert "Traceback" not in bad.stderr
    busy = invoke_cli("backup", "restore", "--target", bk.name, "--to", str(bk.store))
    assert busy.returncode != 0 and "not empty" in busy.stderr
    dest = new_dir()
    done = run_cli("backup", "restore", "--target", bk.name, "--to", str(dest))
    assert done.returncode == 0, done.stderr
    assert "proven by starting it" in done.stdout and "restored" in done.stdout
    shutil.rmtree(dest.parent, ignore_errors=True)

    assert cli_json("backup", "delete", full["backup_id"]) == {"deleted": [full["backup_id"]]}
    assert api.list_backups(bk.name) == []


def test_recatalog_rebuilds_a_lost_catalog(bk, repo):
    bk.write(1, 10)
    b = api.take_full_backup(bk.name)
    assert api.verify_backup(b.backup_id).ok
    api.create_restore_point(bk.name, "rc_point")
    repo.execute("DELETE FROM opscore.backups")
    repo.execute("DELETE FROM opscore.restore_points")
    assert api.list_backups(bk.name) == []
    assert api.recatalog(bk.name) == [b.backup_id]
    again = api.get_backup(b.backup_id).backup
    assert (again.stop_lsn, again.size_bytes, again.kind) == (b.stop_lsn, b.size_bytes, "full")
    assert again.status == "verified" and again.verified_at is not None
    assert [p.name for p in api.list_restore_points(bk.name)] == ["rc_point"]
    assert api.recatalog(bk.name) == []  # idempotent


def test_schedule_api_and_cli_validate(bk):
    s = api.set_backup_schedule(bk.name, {"full": "0 2 * * 0", "wal": "every 10m"}, redundancy=2)
    assert s.jobs == {"full": "0 2 * * 0", "wal": "every 10m"}
    assert api.get_backup_schedule(bk.name).retention == {"redundancy": 2}
    for bad in (
        {"full": "61 * * * *"},
        {"full": "often"},
        {"wal": "every 5s"},
        {"backup": "0 1 * * *"},
    ):
        with pytest.raises(InvalidInput):
            api.set_backup_schedule(bk.name, bad)
    with pytest.raises(InvalidInput):
        api.set_backup_schedule(bk.name, redundancy=0)
    assert api.get_backup_schedule(bk.name).jobs == s.jobs  # nothing changed
    s = api.set_backup_schedule(bk.name, {"wal": None}, defaults=True)
    assert s.jobs["incremental"] and "wal" not in s.jobs and s.next_runs()["full"]

    # in this process: the real `opscore backup` processes are in the slow CLI test above
    res = invoke_cli("backup", "schedule", "--target", bk.name, "--full", "0 25 * * *")
    assert res.returncode != 0 and "not a valid cron" in res.stderr
    got = cli_json("backup", "schedule", "--target", bk.name, "--incremental", "every 1d")
    assert got["jobs"]["incremental"] == "every 1d" and got["next_runs"]["incremental"]


@pytest.mark.slow
def test_flow_functions_call_the_api(bk):
    from flows.backup import backup_deployments, backup_flow, backup_verify_flow

    bk.write(1, 10)
    out = backup_flow.fn(bk.name, "full")
    assert out["status"] == "done" and api.list_backups(bk.name)[0].backup_id == out["backup_id"]
    reports = backup_verify_flow.fn(bk.name, test_restore=False)
    assert [r["ok"] for r in reports] == [True]
    assert api.get_backup(out["backup_id"]).backup.status == "verified"
    with pytest.raises(InvalidInput):  # the stream runs for its interval: no cron
        api.set_backup_schedule(bk.name, {"stream": "0 1 * * *"})
    api.set_backup_schedule(
        bk.name, {"full": "0 1 * * 0", "verify": "every 1d", "stream": "every 1h"}
    )
    deps = {d.name: d for d in backup_deployments([bk.name])}
    assert sorted(deps) == [f"backup-{j}-{bk.name}" for j in ("full", "stream", "verify")]
    assert deps[f"backup-stream-{bk.name}"].parameters["duration_s"] == 3600
