"""The catalog and the operation registry: every row registered, the service layer's exports
explicit, and every served operation CALLED against a real server with real data, its answer
validated against the operation's response model."""

from __future__ import annotations

import ast
import csv
import importlib
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from ops_core import api, catalog
from ops_core.api.registry import EFFECTS, REGISTRY
from ops_core.errors import NotSupported
from tests import report_workload
from tests.backup_helpers import drop_target, fast_backups, make_target, new_dir  # noqa: F401

SHARED = Path(__file__).resolve().parents[2] / "shared" / "catalog"
API = Path(api.__file__).parent


def test_registry_holds_every_catalog_row():
    assert len(api.REGISTRY) == len(catalog.operations()) == 163
    cov = REGISTRY.coverage()
    assert cov["operations"] == cov["served"] + cov["not_available"] + cov["not_yet"]
    for op in REGISTRY:
        assert (
            op.status == "served"
            or op.status == "not yet"
            or (op.status.startswith("not available: ") and len(op.status) > 20)
        ), op
        if op.served:
            assert callable(getattr(api, op.function, None)), op
            assert op.function in EFFECTS, f"{op.function}: say what it reads and writes"
            assert issubclass(op.request, BaseModel) and issubclass(op.response, BaseModel)
            assert set(op.reads + op.writes) <= {"repository", "target", "filesystem"}


def test_catalog_matches_shared_copy():
    if not SHARED.exists():
        pytest.skip("shared/catalog not beside the checkout")
    for name, key in (("endpoints.tsv", "path"), ("graphql.tsv", "operation")):
        theirs = [r[key] for r in csv.DictReader(open(SHARED / name), delimiter="\t")]
        ours = [r[key] for r in catalog._read(name)]
        assert ours == theirs


def test_api_exports_are_explicit():
    """No star import in ops_core.api, every area declares __all__, and no area imports a
    private name (``_x``) of another area."""
    init = ast.parse((API / "__init__.py").read_text())
    for node in ast.walk(init):
        if isinstance(node, ast.ImportFrom):
            assert all(a.name != "*" for a in node.names), f"star import from {node.module}"
    assert sorted(api.__all__) == sorted(set(api.__all__))
    for name in api.__all__:
        assert hasattr(api, name), name
    for path in sorted(API.glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        assigned = {
            t.id
            for n in tree.body
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        assert "__all__" in assigned, f"{path.name} has no __all__"
        area = importlib.import_module(f"ops_core.api.{path.stem}")
        exported = getattr(area, "__all__", []) if path.stem != "registry" else ["REGISTRY"]
        missing = [n for n in exported if n not in api.__all__]
        assert not missing, f"ops_core.api does not export {missing} of {path.name}"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from .{node.module}"


def test_catalog_command_lists_the_registry():
    from tests.helpers import invoke_cli, run_cli

    r = run_cli("catalog", "--json")
    assert r.returncode == 0, r.stderr
    import json

    rows = json.loads(r.stdout)
    assert len(rows) == len(REGISTRY)
    assert {"kind", "name", "status", "function", "cli", "app_page", "flow"} <= set(rows[0])
    statuses = {row["status"].split(":")[0] for row in rows}
    assert statuses <= {"served", "not available", "not yet"} and "served" in statuses
    assert all(
        row["status"].split(":")[0] in {"served", "not yet"} or ":" in row["status"] for row in rows
    )  # a "not available" row says why
    snap = next(
        x for x in rows if x["name"] == "/api/v1/workload/snapshots" and x["kind"] == "POST"
    )
    assert snap["function"] == "take_snapshot" and snap["writes"] == ["repository"]
    text = invoke_cli("catalog")
    assert text.returncode == 0 and "/api/v1/workload/snapshots" in text.stdout, text.stdout
    # the function column is shown, or named as left out when the terminal is too narrow
    assert "take_snapshot" in text.stdout or "function not" in " ".join(text.stdout.split())


# ------------------------------------------------------------ calling every served operation

#: results that must hold data after the workload (an empty answer would validate trivially)
NOT_EMPTY = {
    "list_snapshots",
    "top_statements",
    "load_profile",
    "query_ash",
    "ash_top",
    "live_sessions",
    "targets_status",
    "list_baselines",
    "list_addm",
    "list_backups",
    "list_restore_points",
    "backup_report",
    "list_alert_rules",
    "list_alerts",
    "target_metrics",
    "list_quotas",
    "list_dashboards",
}


def _call(called: dict[str, Any], function: str, **kw: Any) -> Any:
    ops = [op for op in REGISTRY.served() if op.function == function]
    assert ops, f"{function} serves no catalog row"
    result, model = ops[0].call(**kw)
    if function in NOT_EMPTY:
        dumped = model.model_dump()
        assert dumped, f"{function} answered nothing"
    called[function] = model
    return result


@pytest.fixture
def world(repo, target_db):
    """A target with a real workload between two snapshots and the ASH sampler running."""
    api.add_target("cov", target_db)
    facts = report_workload.run(target_db, "cov")
    facts.dsn = target_db  # type: ignore[attr-defined]
    return facts


def _not_backup(function: str) -> bool:
    return not any(w in function for w in ("backup", "restore", "verify")) and function not in (
        "backup_report",
        "cloud_providers",
    )


def test_every_served_operation_answers_with_its_model(world, tmp_path):
    f = world
    t = f.target
    called: dict[str, Any] = {}
    third = _call(called, "take_snapshot", target=t)
    assert third.snapshot_id > f.end_id
    snaps = _call(called, "list_snapshots", target=t)
    assert len(snaps) >= 3
    _call(called, "get_snapshot", snapshot_id=f.end_id)
    _call(
        called,
        "compare_periods",
        target=t,
        begin1=f.begin_id,
        end1=f.end_id,
        begin2=f.end_id,
        end2=third.snapshot_id,
    )
    _call(
        called, "create_baseline", name="cov_base", target=t, begin_id=f.begin_id, end_id=f.end_id
    )
    _call(called, "list_baselines", target=t)
    assert api.targets_status()  # the overview's rows (the health/full row is health_full's)
    with psycopg.connect(f.dsn, application_name="cov-idle") as idle:
        idle.execute("SELECT 1")  # a session idle in a transaction: live views show it
        sessions = _call(called, "live_sessions", target=t)
        assert "cov-idle" in set(sessions["application_name"])
    _call(called, "live_summary", target=t)
    top = _call(called, "top_statements", target=t, begin_id=f.begin_id, end_id=f.end_id)
    assert api.explain_statement(t, int(top.iloc[0]["queryid"])).query  # no row of its own now
    for fn in ("load_profile", "load_trends", "object_io"):
        _call(called, fn, target=t, begin_id=f.begin_id, end_id=f.end_id)
    rng = {"target": t, "begin": f.begin_at, "end": f.end_at}
    for fn in ("query_ash", "ash_top", "ash_report"):
        _call(called, fn, **rng)
    analysis = _call(called, "run_addm", target=t, begin_id=f.begin_id, end_id=f.end_id)
    _call(called, "list_addm", target=t)
    _call(called, "get_addm", analysis_id=analysis.analysis_id)
    _call(called, "addm_findings", analysis_id=analysis.analysis_id)
    _call(called, "addm_recommendations", analysis_id=analysis.analysis_id)
    reports = tmp_path / "reports"
    for kind in ("awr", "ash"):  # the AWR and the ASH report rows
        out = _call(
            called,
            "render_report",
            kind=kind,
            target=t,
            begin=f.begin_id if kind == "awr" else f.begin_at,
            end=f.end_id if kind == "awr" else f.end_at,
            reports_dir=reports,
        )
        assert Path(out.html).stat().st_size > 1000
    # workload ML and capacity over the (short) captured history: they answer, and say so
    model = _call(called, "train_ml", target=t)
    assert model.version >= 1 and model.notes  # three intervals: too little history, said
    _call(called, "ml_anomalies", target=t)
    rep = _call(called, "capacity_forecasts", target=t, horizon_days=7)
    assert {f.metric for f in rep.forecasts} >= {"database_size", "connections"}
    _call(called, "capacity_alerts", target=t)
    _call(called, "storage_growth", target=t)
    win = _call(called, "maintenance_windows", target=t)
    assert not win.enough_history and "not enough history" in win.note
    assert _call(called, "ml_patterns", target=t).statements > 0
    assert not _call(called, "ml_classifications", target=t).empty
    _call(called, "ml_predictions", target=t)
    _call(called, "response_time_forecasts", target=t, horizon_days=1)
    _call(called, "delete_addm", analysis_id=analysis.analysis_id)
    # alerts (a rule that holds on any server: connections >= 0), metrics, health
    rule = _call(called, "create_alert_rule", name="cov_rule", metric="connections", value=1e9)
    _call(called, "list_alert_rules", target=t)
    _call(called, "get_alert_rule", rule=rule.rule_id)
    _call(called, "update_alert_rule", rule="cov_rule", value=0, op=">=", target=t)
    assert api.evaluate_alerts(t).fired == 1
    alerts = _call(called, "list_alerts", target=t)
    _call(called, "ack_alert", alert_id=alerts[0].alert_id)
    _call(called, "target_metrics", target=t)
    assert "opscore_target_up" in _call(called, "prometheus_metrics", target=t)
    for fn in ("health_liveness", "health_startup", "health_readiness", "health_full"):
        _call(called, fn)
    _call(called, "delete_alert_rule", rule="cov_rule")
    # resource groups (a group role on the target, journaled) and quotas
    grp = f"cov_grp_{uuid.uuid4().hex[:10]}"
    _call(called, "create_resource_group", name=grp, target=t, statement_timeout="10s")
    _call(called, "list_resource_groups", target=t)
    _call(called, "get_resource_group", name=grp, target=t)
    _call(called, "update_resource_group", name=grp, target=t, work_mem="8MB")
    _call(called, "resource_group_stats", name=grp, target=t, since="10m")
    _call(called, "delete_resource_group", name=grp, target=t)
    _call(called, "set_quota", name="cov_q", scope="database", object="postgres",
          metric="size_bytes", soft_limit="1TB", target=t)  # fmt: skip
    assert api.evaluate_quotas(t).quotas == 1
    _call(called, "list_quotas", target=t)
    _call(called, "live_locks", target=t)
    for fn in ("replication_status", "cluster_topology", "cluster_nodes", "storage_status"):
        _call(called, fn, target=t)
    _call(called, "performance_events", target=t, hours=24)
    _call(called, "deadlocks", target=t)
    _call(called, "server_log", target=t, limit=5)
    for fn in ("v_session", "v_sql", "v_sysstat", "v_system_event", "v_sesstat", "v_transaction"):
        _call(called, fn, target=t)
    _call(called, "list_incidents", target=t, status="all")
    dump = _call(called, "create_dump", target=t, minutes=5)
    _call(called, "get_dump", dump_id=dump.dump_id)
    assert _call(called, "dump_download", dump_id=dump.dump_id)[:2] == b"PK"
    panels = [{"title": "events", "kind": "bar", "source": "ash_top"}]
    _call(called, "create_dashboard", name="cov_dash", title="cov", panels=panels)
    _call(called, "list_dashboards")
    _call(called, "get_dashboard", name="cov_dash")
    _call(called, "update_dashboard", name="cov_dash", title="cov2")
    _call(called, "delete_dashboard", name="cov_dash")
    pools = _call(called, "connection_pools", target=t)
    assert pools.client_connections >= 1 and pools.pooler is None
    for fn in (
        "resource_stats",
        "resource_allocations",
        "memory_stats",
        "cpu_stats",
        "connection_stats",
        "buffer_pool",
        "io_stats",
    ):
        _call(called, fn, target=t)  # fmt: skip
    _call(called, "delete_baseline", name="cov_base")
    # autonomous: config and self-healing (read-only checks; nothing acts in report_only)
    _call(called, "set_autonomous_config", target=t, feature="healing", mode="report-only")
    assert _call(called, "autonomous_config", target=t).modes["self_healing"] == "report_only"
    _call(called, "healing_issues", target=t, samples=1)
    _call(called, "healing_report", target=t, samples=1)
    _call(called, "healing_actions", target=t)
    _call(called, "corruption_results", target=t)
    _call(called, "index_health", target=t)
    _call(called, "tuning_parameters", target=t)
    _call(called, "override_parameter", target=t, name="work_mem", value="8MB")
    [refused] = _call(called, "apply_tuning", target=t, name="max_wal_size", value="2GB")
    assert refused.status == "refused"  # self_tuning is off by default: nothing changed
    _call(called, "tuning_actions", target=t)
    _call(called, "tuning_report", target=t)
    # auto-indexing (off by default: candidates are read-only, listings empty)
    _call(called, "set_indexing_config", target=t, budget_mb=256)
    assert _call(called, "indexing_config", target=t).mode == "off"
    _call(called, "indexing_candidates", target=t)
    for fn in ("indexing_recommendations", "indexing_created", "indexing_dropped"):
        assert _call(called, fn, target=t) == []
    # SQL Monitor (the workload's sleeps and lock waits, sampled by ASH), tuning, plan cache
    _call(called, "sql_monitor", target=t)
    assert api.capture_sql_monitor(t, f.begin_at, f.end_at, min_elapsed_s=0.5) > 0
    ex = api.list_sql_executions(t)[0].exec_id
    for fn in ("sql_execution", "sql_execution_plan", "sql_execution_statistics"):
        _call(called, fn, exec_id=ex)
    _call(called, "sql_monitor_statistics", target=t)
    assert _call(called, "slow_queries", target=t, limit=3)
    task = _call(called, "create_tuning_task", target=t, sql="SELECT v FROM rpt_t WHERE id = 1")
    _call(called, "execute_tuning_task", task_id=task.task_id, runs=1)
    _call(called, "get_tuning_task", task_id=task.task_id)
    _call(called, "list_tuning_tasks", target=t)
    _call(called, "tuning_recommendations", task_id=task.task_id)
    prof = _call(
        called,
        "create_sql_profile",
        target=t,
        sql="SELECT v FROM rpt_t WHERE id = 1",
        settings={"work_mem": "64MB"},
    )
    _call(called, "list_sql_profiles", target=t)
    _call(called, "set_sql_profile_enabled", profile_id=prof.profile_id, enabled=False)
    _call(called, "drop_sql_profile", profile_id=prof.profile_id)
    _call(called, "delete_tuning_task", task_id=task.task_id)
    rng_ids = {"target": t, "begin_id": f.begin_id, "end_id": f.end_id}
    assert _call(called, "plan_cache_statistics", **rng_ids)["calls"] > 0
    _call(called, "plan_cache_entries", **rng_ids)
    prof = _call(called, "query_profiles", **rng_ids, limit=5)
    assert prof.profiles and all(bool(p.plan) != bool(p.plan_reason) for p in prof.profiles)
    _call(called, "adaptive_statistics", target=t)
    _call(called, "adaptive_suggestions", target=t)
    # every served non-backup operation was called
    want = {fn for fn in REGISTRY.functions() if _not_backup(fn)}
    assert want == set(called), want ^ set(called)


@pytest.mark.usefixtures("fast_backups")
def test_every_served_backup_operation_answers_with_its_model(repo, pg):
    bk = make_target(pg, "covbk")
    called: dict[str, Any] = {}
    try:
        bk.write(1, 100)
        _call(called, "set_backup_schedule", target=bk.name, defaults=True, redundancy=2)
        _call(called, "get_backup_schedule", target=bk.name)
        full = _call(called, "take_full_backup", target=bk.name)
        bk.write(101, 200)
        cl = _call(called, "clone_backup", backup_id=full.backup_id, name="cov_clone")
        try:  # the clone holds the rows as of the backup
            with psycopg.connect(cl.url.replace("/postgres?", f"/{bk.dbname}?")) as c:
                assert c.execute("SELECT count(*) FROM items").fetchone()[0] == 100
        finally:
            api.drop_clone("cov_clone")
        _call(called, "create_restore_point", target=bk.name, name="cov_point")
        _call(called, "list_restore_points", target=bk.name)
        if pg.major >= 17:
            inc = _call(called, "take_incremental_backup", target=bk.name)
        else:  # not available on this server: said so, nothing made up
            with pytest.raises(NotSupported):
                REGISTRY.get("POST", "/api/v1/backup/incremental").call(target=bk.name)
            called["take_incremental_backup"] = None
            inc = full
        _call(called, "list_backups", target=bk.name)
        _call(called, "get_backup", backup_id=inc.backup_id)
        _call(called, "verify_backup", backup_id=full.backup_id, test_restore=True)
        providers = _call(called, "cloud_providers")
        assert {p["protocol"] for p in providers} >= {"file", "s3"}
        remote_dir = new_dir()
        try:  # an object store on a local path (fsspec), as S3 is tested in test_backup_remote
            api.set_backup_remote(bk.name, str(remote_dir))
            up = _call(called, "upload_backup", backup_id=full.backup_id)
            assert up.files > 0 and up.verified == up.files
        finally:
            shutil.rmtree(remote_dir.parent, ignore_errors=True)
        dest = new_dir()
        try:
            _call(called, "restore_backup", target=bk.name, destination=str(dest), latest=False)
        finally:
            shutil.rmtree(dest.parent, ignore_errors=True)
        _call(called, "backup_report", target=bk.name)
        _call(called, "delete_backup", backup_id=full.backup_id, cascade=True)
    finally:
        drop_target(pg, bk)
    want = {fn for fn in REGISTRY.functions() if not _not_backup(fn)}
    assert want == set(called), want ^ set(called)


def test_response_models_refuse_a_wrong_shape():
    # the validation above can fail: a snapshot list without its ids is refused
    op = REGISTRY.get("GET", "/api/v1/workload/snapshots")
    with pytest.raises(ValueError):
        op.response.model_validate([{"target": "x"}])
    assert tempfile.gettempdir()


def test_request_models_refuse_bad_input_before_calling():
    op = REGISTRY.get("POST", "/api/v1/workload/snapshots")
    with pytest.raises(ValueError, match="not_a_parameter"):
        op.request.model_validate({"target": "x", "not_a_parameter": 1})
    with pytest.raises(ValueError, match="target"):
        op.call()  # a required argument missing: refused before the function runs
    # callbacks are not part of a request
    assert "on_progress" not in REGISTRY.get("POST", "/api/v1/backup/full").request.model_fields
