"""Every served operation of the registry called over HTTP against a real target with a real
workload (the one tests/test_catalog.py runs): each REST route and each GraphQL query and
mutation answers 200 with data that validates against the operation's response model."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient
from strawberry.utils.str_converters import to_camel_case, to_snake_case

from ops_core import api
from ops_core.api.registry import REGISTRY, Operation
from ops_core.http import create_app
from ops_core.http.auth import Authenticator, required_role
from ops_core.http.gqltypes import selection
from ops_core.http.graphql import build_schema, field_name
from ops_core.http.rest import FIXED, id_field, route_table
from tests import report_workload
from tests.helpers import reset_repository

pytestmark = pytest.mark.slow

#: served by a target that opscore backs up (pg_basebackup, archiving): walked by
#: tests/test_catalog.py's backup test through the same registry; over HTTP their routes are
#: checked for auth, parameters and OpenAPI here, not run
BACKUP_RUNS = {
    "take_full_backup",
    "take_incremental_backup",
    "get_backup",
    "delete_backup",
    "restore_backup",
    "verify_backup",
    "upload_backup",
    "create_restore_point",
}


def _snake_keys(v: Any) -> Any:
    """A typed GraphQL answer with its field names back in snake case (the models' names) so
    the response model validates it (keys inside JSON leaves change too: records and dicts
    are typed ``dict[str, ...]``, so their keys do not matter to the model)."""
    if isinstance(v, list):
        return [_snake_keys(x) for x in v]
    if isinstance(v, dict):
        return {to_snake_case(k): _snake_keys(x) for k, x in v.items()}
    return v


def _jsonable(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


class Walk:
    def __init__(self, client: TestClient, tokens: dict[str, str]):
        self.client, self.tokens = client, tokens
        self.schema = build_schema(Authenticator())
        self.called: set[tuple[str, str]] = set()
        #: the functions this walk asked for (whether a REST row serves them or not)
        self.attempted: set[str] = set()

    def rest(self, function: str, **args: Any) -> Any:
        """Call every REST row served by ``function``; the last answer."""
        self.attempted.add(function)
        ops = [op for op in route_table() if op.served and op.function == function]
        data = None  # a function whose rows moved to another operation serves none: skipped
        for op in ops:
            data = self._one(op, dict(args))
        return data

    def _one(self, op: Operation, args: dict[str, Any]) -> Any:
        path = op.name
        if "{id}" in path:
            path = path.replace("{id}", quote(str(args.pop(id_field(op))), safe=""))
        for k in FIXED.get((op.kind, op.name), {}):
            args.pop(k, None)
        args = {k: _jsonable(v) for k, v in args.items()}
        headers = {"Authorization": f"Bearer {self.tokens[required_role(op)]}"}
        if op.kind in ("GET", "DELETE"):
            params = {k: json.dumps(v) if isinstance(v, bool) else v for k, v in args.items()}
            r = self.client.request(op.kind, path, params=params, headers=headers)
        else:
            r = self.client.request(op.kind, path, json=args, headers=headers)
        assert r.status_code == 200, (op.kind, op.name, r.text[:500])
        data = r.text if r.headers["content-type"].startswith("text/plain") else r.json()
        op.response.model_validate(data)
        self.called.add((op.kind, op.name))
        return data

    def gql(self, kind: str, name: str, /, **args: Any) -> Any:
        op = next(o for o in REGISTRY if o.kind == kind and field_name(o) == name)
        lits = ", ".join(f"{to_camel_case(k)}: {json.dumps(_jsonable(v))}" for k, v in args.items())
        fields = selection(self.schema, kind, name)  # every field of the typed answer
        call = f"{name}{f'({lits})' if lits else ''} {fields}"
        text = f"{'mutation ' if kind == 'mutation' else ''}{{ {call} }}"
        headers = {"Authorization": f"Bearer {self.tokens[required_role(op)]}"}
        r = self.client.post("/api/v1/graphql", json={"query": text}, headers=headers)
        out = r.json()
        assert r.status_code == 200 and "errors" not in out, (name, out)
        data = _snake_keys(out["data"][name])
        op.response.model_validate(data)
        self.called.add((op.kind, op.name))
        return data


@pytest.fixture(scope="module")
def walk(opscore_env, pg) -> Iterator[tuple[Walk, Any]]:
    reset_repository()
    dsn = pg.create_database("httpw")
    try:
        tag = uuid.uuid4().hex[:6]
        tokens = {r: api.create_api_token(f"w{tag}-{r}", r).secret for r in api.API_ROLES}
        api.add_target("httpw", dsn)
        facts = report_workload.run(dsn, "httpw")
        facts.dsn = dsn  # type: ignore[attr-defined]
        with TestClient(create_app()) as client:
            yield Walk(client, tokens), facts
    finally:
        pg.drop_database(dsn)


def test_every_served_operation_over_http(walk):
    w, f = walk
    t = f.target
    third = w.rest("take_snapshot", target=t)
    assert third["snapshot_id"] > f.end_id
    assert len(w.rest("list_snapshots", target=t)) >= 3
    w.rest("get_snapshot", snapshot_id=f.end_id)
    w.rest(
        "compare_periods",
        target=t,
        begin1=f.begin_id,
        end1=f.end_id,
        begin2=f.end_id,
        end2=third["snapshot_id"],
    )
    base = f"b{uuid.uuid4().hex[:6]}"
    w.rest("create_baseline", name=base, target=t, begin_id=f.begin_id, end_id=f.end_id)
    assert any(b["name"] == base for b in w.rest("list_baselines", target=t))
    w.rest("live_sessions", target=t)
    w.rest("live_summary", target=t)
    rng_ids = {"target": t, "begin_id": f.begin_id, "end_id": f.end_id}
    # the target database's own statements (a shared server holds others' too): the filter
    db = psycopg.conninfo.conninfo_to_dict(f.dsn)["dbname"]
    top = w.rest("top_statements", **rng_ids, filter=f"datname:{db}")
    assert top and {r["datname"] for r in top} == {db}
    w.rest("explain_statement", target=t, queryid=int(top[0]["queryid"]))
    for fn in ("load_profile", "load_trends", "object_io"):
        w.rest(fn, **rng_ids)
    rng = {"target": t, "begin": f.begin_at, "end": f.end_at}
    assert w.rest("query_ash", **rng)
    for fn in ("ash_top", "ash_report"):
        w.rest(fn, **rng)
    analysis = w.rest("run_addm", **rng_ids)
    aid = analysis["analysis_id"]
    w.rest("list_addm", target=t)
    for fn in ("get_addm", "addm_findings", "addm_recommendations"):
        w.rest(fn, analysis_id=aid)
    ops = [op for op in route_table() if op.function == "render_report"]
    for op in ops:  # the AWR and the ASH report rows (kind fixed by the path)
        kind = FIXED[(op.kind, op.name)]["kind"]
        b, e = (f.begin_id, f.end_id) if kind == "awr" else (f.begin_at, f.end_at)
        out = w._one(op, {"target": t, "begin": b, "end": e})
        assert out["html"].endswith(".html")
    model = w.rest("train_ml", target=t)
    assert model["version"] >= 1
    w.rest("ml_anomalies", target=t)
    w.rest("capacity_forecasts", target=t, horizon_days=7)
    w.rest("capacity_alerts", target=t)
    w.rest("storage_growth", target=t)
    w.rest("maintenance_windows", target=t)
    w.rest("delete_addm", analysis_id=aid)
    rule = f"r{uuid.uuid4().hex[:6]}"
    w.rest("create_alert_rule", name=rule, metric="connections", value=1e9)
    w.rest("list_alert_rules", target=t)
    w.rest("get_alert_rule", rule=rule)
    w.rest("update_alert_rule", rule=rule, value=0, op=">=", target=t)
    assert api.evaluate_alerts(t).fired == 1  # evaluation is the flow's job, not a route
    alerts = w.rest("list_alerts", target=t)
    w.rest("ack_alert", alert_id=alerts[0]["alert_id"])
    w.rest("target_metrics", target=t)
    assert "opscore_target_up" in w.rest("prometheus_metrics", target=t)
    for fn in ("health_liveness", "health_startup", "health_readiness", "health_full"):
        w.rest(fn)
    # backup reads that need no backup taken
    w.rest("set_backup_schedule", target=t, defaults=True, redundancy=2)
    w.rest("get_backup_schedule", target=t)
    assert w.rest("list_backups", target=t) == []
    w.rest("list_restore_points", target=t)
    w.rest("backup_report", target=t)
    assert {p["protocol"] for p in w.rest("cloud_providers")} >= {"file", "s3"}
    w.rest("delete_alert_rule", rule=rule)
    w.rest("delete_baseline", name=base)

    # GraphQL: every served query and the mutations that need no backup
    w.gql("query", "metrics", target=t)
    w.gql("query", "sessionStats", target=t)
    w.gql("query", "activeQueries", target=t)
    assert w.gql("query", "queryStats", **rng_ids)
    w.gql("query", "slowQueries", target=t, limit=3)
    w.gql("query", "locks", target=t)
    repl = w.gql("query", "replicationStatus", target=t)
    assert repl["role"] in ("primary", "standby") and repl["max_wal_senders"] >= 0
    topo = w.gql("query", "clusterTopology", target=t)
    assert topo["nodes"][0]["is_target"] and topo["nodes"][0]["name"] == t
    assert w.gql("query", "clusterNodes", target=t)[0]["name"] == t
    storage = w.gql("query", "storageStatus", target=t)
    assert storage["total_database_bytes"] > 0 and storage["databases"]
    w.gql("query", "alerts", target=t)
    snap = w.gql("mutation", "captureAWRSnapshot", target=t)
    assert snap["snapshot_id"] > third["snapshot_id"]
    grule = f"g{uuid.uuid4().hex[:6]}"
    w.gql("mutation", "createAlertRule", name=grule, metric="connections", value=0, op=">=")
    assert api.evaluate_alerts(t).fired == 1
    firing = [a for a in w.gql("query", "alerts", target=t) if a["status"] == "firing"]
    acked = w.gql("mutation", "acknowledgeAlert", alert_id=firing[0]["alert_id"])
    assert acked["status"] == "acknowledged"
    api.delete_alert_rule(grule)

    # every served REST row of a function this walk calls answered. Operations added after the
    # walk was written (SQL tuning, resources, autonomous, ML patterns, ...) are called through
    # the registry by test_catalog's coverage test, and test_http's
    # test_openapi_has_every_rest_row checks their rows are generated and mapped.
    served_rest = {(op.kind, op.name) for op in route_table() if op.served}
    want = {
        k
        for k in served_rest
        if REGISTRY.get(*k).function not in BACKUP_RUNS and REGISTRY.get(*k).function in w.attempted
    }
    missing = want - w.called
    assert not missing, missing
    assert len(w.called) >= 60, len(w.called)
