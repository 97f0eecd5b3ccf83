"""The HTTP API in-process (FastAPI's TestClient) against the real repository: auth and roles,
the one error shape with its status codes, 501 for rows not built yet, OpenAPI covering every
REST row, GraphQL limits, and a GraphQL subscription over WebSocket on a real uvicorn."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
import time
import typing
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from ops_core import api
from ops_core.api.registry import REGISTRY
from ops_core.http import create_app
from ops_core.http.graphql import LIMITS, field_name
from ops_core.http.rest import FIXED, id_field, route_table
from tests.helpers import WAIT_S, reset_repository, wait_until


def _error(r, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


class Api:
    def __init__(self, client: TestClient, tokens: dict[str, str]):
        self.client = client
        self.tokens = tokens

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, path: str, role: str = "read", **kw):
        return self.client.get(path, headers=self.h(role), **kw)

    def gql(self, query: str, role: str = "read", variables: dict | None = None) -> dict:
        r = self.client.post(
            "/api/v1/graphql",
            json={"query": query, "variables": variables or {}},
            headers=self.h(role),
        )
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def http(opscore_env, pg) -> Iterator[Api]:
    reset_repository()
    tag = uuid.uuid4().hex[:6]
    tokens = {role: api.create_api_token(f"t{tag}-{role}", role).secret for role in api.API_ROLES}
    # a checked token is remembered 0.5 s here (2 s by default): the revocation test waits less
    with TestClient(create_app(token_ttl_s=0.5)) as client:
        yield Api(client, tokens)


# ------------------------------------------------------------------------------- auth


def test_no_token_is_401_and_a_bad_one_too(http):
    e = _error(http.client.get("/api/v1/alerts"), 401, "unauthorized")
    assert "opscore api token create" in e["message"]
    r = http.client.get("/api/v1/alerts", headers={"Authorization": "Bearer opsc_nope"})
    _error(r, 401, "unauthorized")
    r = http.client.get("/api/v1/alerts", headers={"Authorization": "Basic abc"})
    _error(r, 401, "unauthorized")
    assert http.get("/api/v1/alerts").status_code == 200


def test_roles_read_operate_admin(http):
    rule = {"name": f"r{uuid.uuid4().hex[:6]}", "metric": "connections", "value": 1e9}
    r = http.client.post("/api/v1/alerts/rules", json=rule, headers=http.h("read"))
    e = _error(r, 403, "forbidden")
    assert e["details"] == {"required_role": "operate", "token_role": "read"}
    assert not [x for x in api.list_alert_rules() if x.name == rule["name"]]  # nothing made
    r = http.client.post("/api/v1/alerts/rules", json=rule, headers=http.h("operate"))
    assert r.status_code == 200, r.text
    assert r.json()["name"] == rule["name"]
    path = f"/api/v1/alerts/rules/{rule['name']}"
    e = _error(http.client.delete(path, headers=http.h("operate")), 403, "forbidden")
    assert e["details"]["required_role"] == "admin"
    r = http.client.delete(path, headers=http.h("admin"))
    assert r.status_code == 200 and r.json()["name"] == rule["name"]
    _error(http.get(path), 404, "not_found")


def test_revoked_token_is_refused_and_cli_manages_tokens(http):
    from typer.testing import CliRunner

    from ops_core.cli import app

    cli = CliRunner()
    name = f"cli{uuid.uuid4().hex[:6]}"
    made = cli.invoke(app, ["api", "token", "create", name, "--role", "operate", "--json"])
    assert made.exit_code == 0, made.output
    secret = json.loads(made.stdout)["secret"]
    listed = cli.invoke(app, ["api", "token", "list", "--json"])
    rows = {t["name"]: t for t in json.loads(listed.stdout)}
    assert rows[name]["role"] == "operate" and rows[name]["active"]
    assert secret not in listed.stdout and "secret" not in rows[name]  # shown once only
    h = {"Authorization": f"Bearer {secret}"}
    assert http.client.get("/api/v1/alerts/rules", headers=h).status_code == 200
    gone = cli.invoke(app, ["api", "token", "revoke", name])
    assert gone.exit_code == 0, gone.output
    wait_until(  # a checked token is remembered for a couple of seconds
        lambda: http.client.get("/api/v1/alerts/rules", headers=h).status_code == 401,
        timeout=30,
        what="the revoked token refused",
    )
    _error(http.client.get("/api/v1/alerts/rules", headers=h), 401, "unauthorized")
    bad = cli.invoke(app, ["api", "token", "create", f"x{name}", "--role", "root"])
    assert bad.exit_code != 0 and "read" in bad.output


def test_a_burst_of_requests_checks_a_token_once(http, monkeypatch):
    """Concurrent requests that find a token unchecked (or its check expired) wait for one
    repository check instead of each running its own (a 1,000-request burst did 1,000)."""
    from concurrent.futures import ThreadPoolExecutor

    from ops_core.http.auth import Authenticator

    checks = []
    real = api.check_api_token

    def counted(secret):
        checks.append(1)
        return real(secret)

    monkeypatch.setattr(api, "check_api_token", counted)
    auth = Authenticator(ttl_s=60)
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda _: auth.check(http.tokens["read"]).name, range(48)))
    assert len(set(got)) == 1 and len(checks) == 1
    with pytest.raises(Exception, match="Unknown or revoked"):
        auth.check("opsc_not_a_token")
    assert len(checks) == 2 and len(auth._checking) == 1  # nothing kept for a bad secret


def test_token_value_never_logged(http, caplog):
    caplog.set_level(logging.DEBUG)
    http.get("/api/v1/alerts")
    http.client.get("/api/v1/alerts", headers={"Authorization": "Bearer opsc_wrong_value"})
    http.gql("{ alerts { alertId } }")
    assert caplog.records  # something was logged (httpx, the app): the check below can fail
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in [*http.tokens.values(), "opsc_wrong_value"]:
        assert secret not in text


# -------------------------------------------------------------------- errors and 501


def test_rows_not_built_yet_answer_501_with_the_catalogs_words(http):
    pending = [op for op in route_table() if not op.served]
    assert pending
    for op in pending:
        path = op.name.replace("{id}", "1")
        r = http.client.request(op.kind, path, headers=http.h("admin"))
        e = _error(r, 501, "not_implemented" if op.status == "not yet" else "not_available")
        assert op.description in e["message"], (op.name, e)
        assert e["details"]["status"] == op.status


def test_status_codes_400_404_409_503(http, pg):
    # 400: a malformed value, an unknown parameter, an unknown body field
    e = _error(http.get("/api/v1/workload/snapshots", params={"limit": "x"}), 400, "bad_input")
    assert e["details"][0]["field"] == "limit"
    e = _error(http.get("/api/v1/workload/snapshots", params={"colour": "red"}), 400, "bad_input")
    assert "colour" in e["message"]
    r = http.client.post(
        "/api/v1/alerts/rules",
        json={"name": "x", "metric": "connections", "value": 1, "nonsense": 1},
        headers=http.h("operate"),
    )
    assert "nonsense" in _error(r, 400, "bad_input")["message"]
    # 400 from opscore's own checks (an unknown metric), with its hint
    r = http.client.post(
        "/api/v1/alerts/rules",
        json={"name": f"m{uuid.uuid4().hex[:6]}", "metric": "no_such_metric", "value": 1},
        headers=http.h("operate"),
    )
    assert _error(r, 400, "bad_input")["message"]
    # 404: an unknown id
    _error(http.get("/api/v1/workload/snapshots/999999999"), 404, "not_found")
    _error(http.get("/api/v1/no/such/route"), 404, "not_found")
    # 409: a duplicate name
    rule = {"name": f"d{uuid.uuid4().hex[:6]}", "metric": "connections", "value": 5}
    assert http.client.post("/api/v1/alerts/rules", json=rule, headers=http.h("operate")).is_success
    r = http.client.post("/api/v1/alerts/rules", json=rule, headers=http.h("operate"))
    assert "already exists" in _error(r, 409, "conflict")["message"]
    # 503: a target that does not answer (a port nobody listens on)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = f"down{uuid.uuid4().hex[:6]}"
    api.add_target(down, f"host=127.0.0.1 port={port} dbname=x user=x", verify=False)
    r = http.client.post(
        "/api/v1/workload/snapshots", json={"target": down}, headers=http.h("operate")
    )
    _error(r, 503, "target_failed")
    r = http.get("/api/v1/stats/sessions", params={"target": down})
    assert down in _error(r, 503, "unavailable")["message"] or r.json()["error"]["message"]


def test_pagination_sort_and_filter(http):
    tag = uuid.uuid4().hex[:6]
    for i in range(5):
        api.create_alert_rule(
            f"p{tag}{i}", "connections", 10 + i, severity="critical" if i % 2 else "warning"
        )
    base = "/api/v1/alerts/rules"
    full = http.get(base, params={"sort": "name"})
    names = [r["name"] for r in full.json() if r["name"].startswith(f"p{tag}")]
    assert names == sorted(names) and len(names) == 5
    r = http.get(base, params={"filter": "severity:critical", "sort": "-value", "limit": 1})
    assert r.status_code == 200, r.text
    assert len(r.json()) == 1 and r.json()[0]["severity"] == "critical"
    total = int(r.headers["X-Total-Count"])
    assert total == sum(1 for x in full.json() if x["severity"] == "critical") >= 2
    page2 = http.get(base, params={"sort": "name", "offset": 1, "limit": 2}).json()
    assert [x["name"] for x in page2] == [x["name"] for x in full.json()[1:3]]
    _error(http.get(base, params={"filter": "colour:red"}), 400, "bad_input")
    _error(http.get(base, params={"offset": -1}), 400, "bad_input")


# ---------------------------------------------------------- OpenAPI, probes, Prometheus


def _rich(annotation) -> bool:
    """A dataclass, model, dict or list parameter (a query string cannot carry one)."""
    if dataclasses.is_dataclass(annotation) or typing.get_origin(annotation) in (dict, list):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_rich(a) for a in typing.get_args(annotation))


def test_openapi_has_every_rest_row(http):
    assert http.client.app.state.unmapped == []  # every served row's parameters map to HTTP
    spec = http.client.get("/api/v1/openapi.json").json()
    rows = route_table()
    assert rows
    for op in rows:
        assert op.kind.lower() in spec["paths"][op.name], op.name
        entry = spec["paths"][op.name][op.kind.lower()]
        assert "400" in entry["responses"] and "501" in entry["responses"]
    assert "ErrorBody" in spec["components"]["schemas"]
    # every served row has generated examples: its answer's validates against the response
    # model, and its parameters' and body's against the request model
    served = [op for op in rows if op.served]
    for op in served:
        entry = spec["paths"][op.name][op.kind.lower()]
        ok = entry["responses"]["200"]["content"]
        media = "text/plain" if "text/plain" in ok else "application/json"
        assert "example" in ok[media], (op.kind, op.name)
        if media == "application/json":
            op.response.model_validate(ok[media]["example"])
        fields = op.request.model_fields
        args = {}
        for p in entry.get("parameters", []):
            assert "example" in p, (op.kind, op.name, p["name"])
            name = id_field(op) if p["name"] == "id" else p["name"]
            if name in fields and not _rich(fields[name].annotation):  # a query string's
                args[name] = p["example"]
        body = entry.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            assert "example" in body, (op.kind, op.name)
            args.update(body["example"])
        known = {k: v for k, v in args.items() if k in fields}
        op.request.model_validate({**known, **FIXED.get((op.kind, op.name), {})})
    assert len(served) > 100
    rows = http.get("/api/v1/catalog").json()  # the coverage: every row with its status
    assert len(rows) == len(REGISTRY)
    statuses = {r["status"].split(":")[0] for r in rows}
    assert "served" in statuses and statuses <= {"served", "not available", "not yet"}
    assert http.client.get("/api/v1/docs").status_code == 200


def test_probes_are_open_and_prometheus_is_text(http):
    for probe in ("liveness", "readiness", "startup"):
        r = http.client.get(f"/api/v1/health/{probe}")
        assert r.status_code in (200, 503), r.text
        assert r.json()["check"] == probe
        assert (r.status_code == 503) == (r.json()["verdict"] == "failing")
    assert http.client.get("/api/v1/health/liveness").json()["verdict"] == "healthy"
    _error(http.client.get("/api/v1/health/full"), 401, "unauthorized")
    r = http.get("/api/v1/metrics/prometheus")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "# TYPE opscore_" in r.text


# ------------------------------------------------------------------------- GraphQL


def test_graphql_fields_follow_the_registry(http):
    gql_rows = [op for op in REGISTRY if op.kind in ("query", "mutation", "subscription")]
    schema = http.gql("{ __schema { queryType { fields { name } } } }")["data"]["__schema"]
    names = {f["name"] for f in schema["queryType"]["fields"]}
    assert {field_name(op) for op in gql_rows if op.kind == "query"} <= names
    out = http.gql("{ alerts(limit: 5) { alertId status } }")
    assert "errors" not in out and isinstance(out["data"]["alerts"], list)
    assert all(set(a) == {"alertId", "status"} for a in out["data"]["alerts"])
    # every GraphQL row of the catalog has its operation now (a new "not yet" row would answer
    # NOT_IMPLEMENTED through the same generated field)
    assert all(op.served for op in gql_rows), [op.name for op in gql_rows if not op.served]
    # typed answers, generated from the response models: 64-bit ids, nested object types
    t = http.gql('{ __type(name: "Alert") { fields { name type { kind ofType { name } } } } }')
    fields = {f["name"]: f["type"] for f in t["data"]["__type"]["fields"]}
    assert fields["alertId"] == {"kind": "NON_NULL", "ofType": {"name": "Long"}}
    assert fields["severity"]["ofType"]["name"] == "String"
    t = http.gql('{ __type(name: "ReplicationStatus") { fields { name type { kind name '
                 "ofType { kind name ofType { kind name ofType { name } } } } } } }")  # fmt: skip
    fields = {f["name"]: f["type"] for f in t["data"]["__type"]["fields"]}
    assert fields["standbys"]["ofType"]["ofType"]["ofType"]["name"] == "Standby"
    assert fields["walReceiver"] == {"kind": "OBJECT", "name": "WalReceiver", "ofType": None}
    # a mutation with a read token: refused, and nothing acknowledged
    out = http.gql("mutation { acknowledgeAlert(alertId: 1) { status } }")
    assert out["errors"][0]["extensions"] == {"code": "FORBIDDEN", "status": 403}
    r = http.client.post("/api/v1/graphql", json={"query": "{ alerts { alertId } }"})
    assert r.json()["errors"][0]["extensions"]["status"] == 401


def test_graphql_cost_and_alias_limits(http):
    # cost is the number of operation calls (root fields), fragments counted through
    many = "{ " + " ".join(f"a{i}: alerts {{ alertId }}" for i in range(LIMITS["calls"] + 1))
    many += " }"
    out = http.gql(many)
    assert "errors" in out and any("exceeds" in e["message"] for e in out["errors"])
    frag = "fragment F on Query { " + " ".join(f"b{i}: alerts {{ rule }}" for i in range(5))
    out = http.gql(
        "{ ...F c: alerts { rule } d: alerts { rule } e: alerts { rule } f: alerts { rule } } "
        + frag
        + "}"
    )
    assert any("exceeds" in e["message"] for e in out["errors"])  # counted through fragments
    aliases = "{ " + " ".join(f"x{i}: __typename" for i in range(LIMITS["aliases"] + 1)) + " }"
    assert "errors" in http.gql(aliases)
    few = "{ " + " ".join(f"a{i}: alerts {{ alertId }}" for i in range(2)) + " }"
    assert "errors" not in http.gql(few)
    # depth: nested selections past the limit are refused before anything runs
    deep = (
        "{ replicationStatus "
        + "{ standbys " * LIMITS["depth"]
        + "{ pid"
        + " }" * (LIMITS["depth"] + 2)
    )
    out = http.gql(deep)
    assert any("depth" in e["message"] for e in out["errors"]), out


# ------------------------------------------------------- subscription on a real server


@pytest.fixture(scope="module")
def seeded(http, pg) -> Iterator[tuple[str, str]]:
    """One registered target (name, dsn) shared by the module's subscription tests."""
    dsn = pg.create_database("httpsub")
    name = f"sub{uuid.uuid4().hex[:6]}"
    api.add_target(name, dsn)
    try:
        yield name, dsn
    finally:
        pg.drop_database(dsn)


@pytest.fixture(scope="module")
def uvicorn_server(http):
    """One real uvicorn (in a thread, on a free port) for the module's WebSocket tests."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(), host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=WAIT_S, step=0.05, what="uvicorn started")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_subscription_sees_a_statement_started_after_subscribing(http, uvicorn_server, seeded):
    from websockets.sync.client import connect

    name, target_db = seeded
    marker = f"http_sub_{uuid.uuid4().hex[:8]}"
    with connect(
        f"ws://{uvicorn_server}/api/v1/graphql",
        subprotocols=["graphql-transport-ws"],
        open_timeout=WAIT_S,
    ) as ws:
        ws.send(
            json.dumps(
                {
                    "type": "connection_init",
                    "payload": {"Authorization": http.h("read")["Authorization"]},
                }
            )
        )
        assert json.loads(ws.recv(timeout=WAIT_S))["type"] == "connection_ack"
        query = (
            "subscription($t: String!) "
            "{ activeQueriesStream(target: $t, interval: 0.5) { polledAt data added } }"
        )
        ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": query, "variables": {"t": name}},
                }
            )
        )
        first = json.loads(ws.recv(timeout=WAIT_S))
        assert first["type"] == "next", first
        before = first["payload"]["data"]["activeQueriesStream"]
        assert before["added"] == []  # the first poll is the baseline
        assert not any(marker in (r.get("query") or "") for r in before["data"])
        # a statement started after subscribing
        conn = psycopg.connect(target_db, autocommit=True, application_name="http-sub")
        runner = threading.Thread(
            target=lambda: conn.execute(f"SELECT pg_sleep(60) AS {marker}"), daemon=True
        )
        runner.start()
        try:
            deadline = time.monotonic() + WAIT_S
            seen = None
            while time.monotonic() < deadline and seen is None:
                msg = json.loads(ws.recv(timeout=WAIT_S))
                assert msg["type"] == "next", msg
                event = msg["payload"]["data"]["activeQueriesStream"]
                seen = next((r for r in event["added"] if marker in (r.get("query") or "")), None)
            assert seen is not None, "no event for the statement started after subscribing"
            assert seen["application_name"] == "http-sub"
            ws.send(json.dumps({"id": "1", "type": "complete"}))
        finally:
            with psycopg.connect(target_db, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'http-sub'"
                )
            runner.join(timeout=30)
            conn.close()


def test_performance_events_stream_an_alert_fired_after_subscribing(http, uvicorn_server, seeded):
    """performanceEvents over graphql-transport-ws: typed events, and an alert that fires
    after the client subscribed arrives in ``added``."""
    from websockets.sync.client import connect

    name, _ = seeded
    rule = f"pev{uuid.uuid4().hex[:6]}"
    with connect(
        f"ws://{uvicorn_server}/api/v1/graphql",
        subprotocols=["graphql-transport-ws"],
        open_timeout=WAIT_S,
    ) as ws:
        auth = {"Authorization": http.h("read")["Authorization"]}
        ws.send(json.dumps({"type": "connection_init", "payload": auth}))
        assert json.loads(ws.recv(timeout=WAIT_S))["type"] == "connection_ack"
        query = (
            'subscription($t: String!) { performanceEvents(target: $t, kinds: ["alert"], '
            "interval: 0.5) { polledAt added { kind target severity title refId } } }"
        )
        payload = {"query": query, "variables": {"t": name}}
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        first = json.loads(ws.recv(timeout=WAIT_S))
        assert first["type"] == "next", first
        assert first["payload"]["data"]["performanceEvents"]["added"] == []
        api.create_alert_rule(name=rule, metric="connections", value=0, op=">=", target=name)
        try:
            assert api.evaluate_alerts(name).fired >= 1
            [alert] = [a for a in api.list_alerts("all", name) if a.rule == rule]
            deadline = time.monotonic() + WAIT_S
            seen = None
            while time.monotonic() < deadline and seen is None:
                msg = json.loads(ws.recv(timeout=WAIT_S))
                assert msg["type"] == "next", msg
                added = msg["payload"]["data"]["performanceEvents"]["added"]
                seen = next((e for e in added if e["refId"] == alert.alert_id), None)
            assert seen == {
                "kind": "alert",
                "target": name,
                "severity": alert.severity,
                "title": alert.summary,
                "refId": alert.alert_id,
            }
            ws.send(json.dumps({"id": "1", "type": "complete"}))
        finally:
            api.delete_alert_rule(rule)


def test_websocket_without_a_token_is_rejected(http, uvicorn_server):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(
        f"ws://{uvicorn_server}/api/v1/graphql",
        subprotocols=["graphql-transport-ws"],
        open_timeout=WAIT_S,
    ) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT_S)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


@pytest.mark.slow
def test_serve_command_with_tls_binds_loopback(http, tmp_path, opscore_env):
    """`opscore api serve` with a certificate and key answers HTTPS on 127.0.0.1."""
    import os
    import subprocess
    import sys

    import httpx

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ops_core", "api", "serve", "--port", str(port),
         "--tls-cert", str(cert), "--tls-key", str(key)],
        env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:

        def up():
            assert proc.poll() is None, proc.communicate()[0]  # exited: say why
            try:
                return httpx.get(f"https://127.0.0.1:{port}/api/v1/health/liveness", verify=False)
            except httpx.HTTPError:
                return None

        r = wait_until(up, timeout=3 * WAIT_S, step=0.3, what="the API over TLS")
        assert r.status_code == 200 and r.json()["verdict"] == "healthy"
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port is not served
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health/liveness").raise_for_status()
        r = httpx.get(
            f"https://127.0.0.1:{port}/api/v1/alerts", headers=http.h("read"), verify=False
        )
        assert r.status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert "127.0.0.1" in out and "https" in out
    for secret in http.tokens.values():
        assert secret not in out  # the access log has paths, never the token


@pytest.mark.slow
def test_serve_command_with_two_workers(http, opscore_env):
    """`opscore api serve --workers 2`: worker processes built by the factory (pool, threads,
    OpenAPI at start-up) answer authenticated reads."""
    import os
    import subprocess
    import sys

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ops_core", "api", "serve", "--port", str(port), "--workers", "2"],
        env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1"
    try:

        def up():
            assert proc.poll() is None, proc.communicate()[0]  # exited: say why
            try:
                return httpx.get(f"{base}/health/liveness")
            except httpx.HTTPError:
                return None

        assert wait_until(up, timeout=4 * WAIT_S, step=0.3, what="the API").status_code == 200
        for _ in range(6):  # new connections: both workers get some
            r = httpx.get(f"{base}/alerts/rules", headers=http.h("read"))
            assert r.status_code == 200 and isinstance(r.json(), list)
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "opscore"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert "Started parent process" in out or out.count("Started server process") >= 2, out
