"""Prefect flows run for real (Prefect's test harness, real repository, real targets)."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import psycopg
import pytest

from ops_core import api
from ops_core.config import Settings
from ops_core.errors import ConfigError, UnknownTarget

from .helpers import running_statement


@pytest.fixture
def two_targets(repo, target_db):
    api.add_target("good", target_db)
    api.add_target("down", "postgresql://postgres@127.0.0.1:1/nothing", verify=False)
    yield target_db


def test_snapshot_flow_one_target_down(prefect_harness, two_targets):
    from flows.snapshot import snapshot_flow

    state = snapshot_flow(targets=["good", "down"], retries=0, return_state=True)
    assert state.is_failed()
    assert "down" in state.message and "good" not in state.message.split("for ")[1].split(" (")[0]
    good = api.list_snapshots("good")
    down = api.list_snapshots("down")
    assert [s.status for s in good] == ["ok"]
    assert [s.status for s in down] == ["failed"]
    assert "connect" in down[0].error.lower() or "refused" in down[0].error.lower()


def test_snapshot_flow_all_good(prefect_harness, repo, target_db):
    from flows.snapshot import snapshot_flow

    api.add_target("only", target_db)
    results = snapshot_flow()
    assert [r["target"] for r in results] == ["only"]
    assert results[0]["status"] == "ok" and results[0]["snapshot_id"]


def test_ash_flow_samples_and_stops(prefect_harness, repo, target_db):
    from flows.ash import ash_flow

    api.add_target("ashy", target_db)

    # a session active from before the flow starts until it ends, however long that takes
    with running_statement(target_db, "SELECT pg_sleep(600)", application_name="flow-sleeper"):
        result = ash_flow("ashy", duration_s=2.0, interval_s=0.2)
    assert result["samples"] >= 5
    assert result["rows_written"] >= 1
    assert api.last_ash_sample("ashy") is not None


def test_retention_flow_deletes_exactly_what_is_old(prefect_harness, repo, target_db, tmp_path):
    from flows.retention import retention_flow

    api.add_target("ret", target_db)
    ids = [api.take_snapshot("ret").snapshot_id for _ in range(3)]
    repo.execute(
        "UPDATE opscore.snapshots SET captured_at = captured_at - interval '10 days' "
        "WHERE snapshot_id = ANY(%s)",
        (ids[:2],),
    )
    old = tmp_path / "ret" / "awr-1-2.html"
    new = tmp_path / "ret" / "awr-2-3.html"
    old.parent.mkdir()
    old.write_text("old")
    new.write_text("new")
    os.utime(old, (time.time() - 40 * 86400,) * 2)
    os.environ["OPSCORE_REPORTS_DIR"] = str(tmp_path)
    from ops_core.config import reset_settings_cache

    reset_settings_cache()
    try:
        result = retention_flow(snapshot_days=7, report_days=30)
    finally:
        os.environ.pop("OPSCORE_REPORTS_DIR")
        reset_settings_cache()
    assert result["snapshots_deleted"] == 2
    assert [s.snapshot_id for s in api.list_snapshots("ret")] == [ids[2]]
    assert not old.exists() and new.exists()
    assert result["reports_deleted"] == 1


def test_deployments_have_configured_schedules(repo, target_db):
    from flows.serve import build_deployments

    api.add_target("sched", target_db)
    api.set_backup_schedule("sched", defaults=True, redundancy=2)
    deps = {
        d.name: d
        for d in build_deployments(
            Settings(snapshot_interval_minutes=5, ash_window_minutes=10, retention_cron="0 4 * * *")
        )
    }
    assert {"snapshot", "ash-sched", "retention", "reports"} <= set(deps)
    assert any(n.startswith("backup-full-sched") for n in deps)
    assert deps["snapshot"].schedules[0].schedule.interval == timedelta(minutes=5)
    assert deps["ash-sched"].schedules[0].schedule.interval == timedelta(minutes=10)
    assert deps["ash-sched"].parameters == {"target": "sched", "duration_s": 595}
    assert deps["retention"].schedules[0].schedule.cron == "0 4 * * *"
    cron = {d.name: d for d in build_deployments(Settings(snapshot_cron="*/10 * * * *"))}
    assert cron["snapshot"].schedules[0].schedule.cron == "*/10 * * * *"

    with pytest.raises(ConfigError) as err:
        build_deployments(Settings(snapshot_cron="every ten minutes"))
    assert "snapshot_cron" in err.value.message
    with pytest.raises(ConfigError):
        build_deployments(Settings(retention_cron="61 * * * *"))
    with pytest.raises(UnknownTarget):
        build_deployments(targets=["nope"])


@pytest.mark.slow
def test_serve_rejects_bad_schedule_and_unknown_target(repo):
    from .helpers import run_cli

    res = run_cli("serve", "--check", env={"OPSCORE_SNAPSHOT_CRON": "every ten minutes"})
    assert res.returncode != 0 and "Invalid cron expression" in res.stderr
    assert "Traceback" not in res.stderr
    res = run_cli("serve", "--check", "--target", "nope")
    assert res.returncode != 0 and "no target named 'nope'" in res.stderr


def test_addm_and_report_flows(prefect_harness, repo, target_db, tmp_path):
    from flows.reports import reports_flow
    from flows.snapshot import snapshot_flow

    api.add_target("diag", target_db)
    first = snapshot_flow(targets=["diag"])[0]["snapshot_id"]
    with psycopg.connect(target_db, application_name="flow-load") as c:
        for _ in range(5):
            c.execute("SELECT pg_sleep(0.05) AS addm_flow_marker")
    second = snapshot_flow(targets=["diag"])[0]["snapshot_id"]  # chains the ADDM flow
    analyses = api.list_addm("diag")
    assert len(analyses) == 1
    assert (analyses[0].begin_snapshot_id, analyses[0].end_snapshot_id) == (first, second)

    os.environ["OPSCORE_REPORTS_DIR"] = str(tmp_path)
    from ops_core.config import reset_settings_cache

    reset_settings_cache()
    try:
        out = reports_flow(
            targets=["diag"], kinds=["awr"], begin_snapshot=first, end_snapshot=second
        )
    finally:
        os.environ.pop("OPSCORE_REPORTS_DIR")
        reset_settings_cache()
    assert len(out) == 1 and "error" not in out[0], out
    html = tmp_path / "diag" / f"awr-{first}-{second}.html"
    assert str(html) == out[0]["html"] and html.exists()
    assert "addm_flow_marker" in html.read_text()
    # the Prefect UI gets the report's headline and the file's path, not a file:// link
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["awr-report-diag"]))
        )
    assert arts, "no report artifact"
    md = arts[0].data
    assert arts[0].type == "markdown" and "file://" not in md
    assert "DB time" in md and str(html) in md
    assert "Top SQL by elapsed time" in md and "addm_flow_marker" in md


def test_a_stopped_serve_leaves_no_run_running_nor_scheduled(prefect_harness, repo, target_db):
    """What `opscore serve` does on its way out (Ctrl-C): its deployments' runs still Running
    end Crashed, their Scheduled runs are gone (they would turn Late); other runs untouched."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Running

    from flows.retention import retention_flow
    from flows.serve import settle_runs

    dep = retention_flow.to_deployment(name="settle-test")
    other = retention_flow.to_deployment(name="settle-other")
    dep_id, other_id = dep.apply(), other.apply()
    with get_client(sync_client=True) as client:
        running = client.create_flow_run_from_deployment(dep_id)
        client.set_flow_run_state(running.id, Running(), force=True)
        scheduled = client.create_flow_run_from_deployment(dep_id)
        untouched = client.create_flow_run_from_deployment(other_id)
        client.set_flow_run_state(untouched.id, Running(), force=True)

        changed = settle_runs([f"{dep.flow_name}/settle-test"])

        assert set(changed) == {str(running.id), str(scheduled.id)}
        assert client.read_flow_run(running.id).state.type.value == "CRASHED"
        assert "serve stopped" in client.read_flow_run(running.id).state.message
        with pytest.raises(ObjectNotFound):
            client.read_flow_run(scheduled.id)
        assert client.read_flow_run(untouched.id).state.type.value == "RUNNING"
