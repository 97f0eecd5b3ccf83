"""Prometheus exposition (parsed by prometheus-client's own parser, over the CLI and the HTTP
exporter) and health checks with their verdicts, against a real server."""

from __future__ import annotations

import json
import urllib.request

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from ops_core import api
from tests.helpers import invoke_cli, run_cli


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(fams: dict, family: str, sample: str, target: str) -> float:
    return next(
        s.value for s in fams[family].samples if s.name == sample and s.labels["target"] == target
    )


def test_prometheus_exposition_parses_with_real_figures(repo, target_db):
    api.add_target("prom", target_db)
    api.take_snapshot("prom")
    holder = psycopg.connect(target_db, application_name="prom-holder")
    try:
        holder.execute("SELECT 1")  # idle in transaction, seen in the figures
        fams = _families(api.prometheus_metrics("prom"))
        assert _value(fams, "opscore_target_up", "opscore_target_up", "prom") == 1.0
        assert _value(fams, "opscore_client_connections", "opscore_client_connections", "prom") >= 1
        assert (
            _value(fams, "opscore_idle_in_transaction_sessions",
                   "opscore_idle_in_transaction_sessions", "prom") >= 1
        )  # fmt: skip
    finally:
        holder.close()
    # counters are typed counters and named *_total; units in the names
    assert fams["opscore_xact_commit"].type == "counter"
    commits = _value(fams, "opscore_xact_commit", "opscore_xact_commit_total", "prom")
    with psycopg.connect(target_db) as c:
        now = c.execute("SELECT sum(xact_commit) FROM pg_stat_database").fetchone()[0]
    assert 0 < commits <= now
    assert fams["opscore_wal_written_bytes"].type == "counter"
    max_conn = _value(fams, "opscore_max_connections", "opscore_max_connections", "prom")
    with psycopg.connect(target_db) as c:
        assert max_conn == int(c.execute("SHOW max_connections").fetchone()[0])
    snap = _value(
        fams, "opscore_last_snapshot_timestamp_seconds",
        "opscore_last_snapshot_timestamp_seconds", "prom",
    )  # fmt: skip
    assert snap == api.list_snapshots("prom")[-1].captured_at.timestamp()
    ratio = _value(fams, "opscore_connections_used_ratio", "opscore_connections_used_ratio", "prom")
    assert 0 < ratio < 1
    for name in fams:
        assert name.startswith("opscore_")
    # a figure the server cannot give is left out, not invented: no standby here
    assert all(
        s.labels["target"] != "prom" for s in fams["opscore_replication_lag_seconds"].samples
    )
    m = api.target_metrics("prom")[0]
    assert "replication_lag_s" in m.unavailable

    # the CLI prints the same exposition (one real `opscore` process, the error in this one)
    r = run_cli("metrics", "prometheus", "--target", "prom")
    assert r.returncode == 0, r.stderr
    assert "opscore_target_up" in _families(r.stdout)
    bad = invoke_cli("metrics", "prometheus", "--target", "nope")
    assert bad.returncode != 0 and "nope" in bad.stderr


def test_http_exporter_serves_fresh_figures(repo, target_db):
    from prometheus_client import start_http_server

    api.add_target("exp", target_db)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=api.prometheus_registry())
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        body = urllib.request.urlopen(url, timeout=30).read().decode()
        fams = _families(body)
        assert _value(fams, "opscore_target_up", "opscore_target_up", "exp") == 1.0
    finally:
        server.shutdown()
        server.server_close()


def test_health_checks_and_verdicts(repo, target_db):
    assert api.health_liveness().verdict == "healthy"
    start = api.health_startup()
    assert start.verdict == "healthy" and start.components[0].name == "repository"
    api.add_target("hl", target_db)
    ready = api.health_readiness()
    assert ready.verdict == "healthy"
    assert [c.name for c in ready.components] == ["repository", "target hl"]

    full = api.health_full()
    comps = {c.name: c for c in full.components}
    assert comps["target hl"].status == "healthy"
    assert comps["hl: snapshots"].status == "not available"
    assert comps["hl: ASH sampler"].status == "not available"
    assert comps["hl: backups"].status == "not available"
    assert full.verdict == "healthy"
    api.take_snapshot("hl")
    comps = {c.name: c for c in api.health_full("hl").components}
    assert comps["hl: snapshots"].status == "healthy", comps["hl: snapshots"]
    # a backup schedule and no backup: degraded, with the reason
    api.set_backup_schedule("hl", {"full": "every 1h"})
    report = api.health_full("hl")
    assert report.verdict in ("degraded", "failing")
    assert {c.name: c for c in report.components}["hl: backups"].status == "degraded"

    # a target that cannot be reached: readiness and full say failing and why
    api.add_target("gone", "host=127.0.0.1 port=1 dbname=x user=x", verify=False)
    ready = api.health_readiness()
    assert ready.verdict == "failing"
    gone = next(c for c in ready.components if c.name == "target gone")
    assert gone.status == "failing" and "unreachable" in gone.reason

    r = run_cli("health", "--json")
    assert r.returncode == 1, r.stderr  # failing
    data = json.loads(r.stdout)
    assert data["verdict"] == "failing" and data["check"] == "full"
    api.remove_target("gone")
    r = invoke_cli("health", "--check", "liveness")  # the real process: `health --json`
    assert r.returncode == 0 and "healthy" in r.stdout


def test_metrics_serve_command_and_a_down_target(repo, target_db):
    import socket
    import subprocess
    import sys
    import time

    api.add_target("up1", target_db)
    api.add_target("down1", "host=127.0.0.1 port=1 dbname=x user=x", verify=False)
    fams = _families(api.prometheus_metrics())
    assert _value(fams, "opscore_target_up", "opscore_target_up", "up1") == 1.0
    assert _value(fams, "opscore_target_up", "opscore_target_up", "down1") == 0.0
    # nothing else is made up for the target that cannot be read
    assert all(s.labels["target"] != "down1" for s in fams["opscore_client_connections"].samples)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ops_core", "metrics", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, body = time.monotonic() + 120, None
        while body is None:
            assert proc.poll() is None, proc.stderr.read()
            try:
                url = f"http://127.0.0.1:{port}/metrics"
                body = urllib.request.urlopen(url, timeout=30).read().decode()
            except OSError:
                assert time.monotonic() < deadline, "the exporter never answered"
                time.sleep(0.5)
        fams = _families(body)
        assert _value(fams, "opscore_target_up", "opscore_target_up", "up1") == 1.0
    finally:
        proc.terminate()
        proc.wait(30)


def test_health_with_the_repository_down(repo, monkeypatch):
    from ops_core.config import reset_settings_cache

    monkeypatch.setenv("OPSCORE_REPOSITORY_DSN", "host=127.0.0.1 port=1 dbname=x user=x")
    reset_settings_cache()
    try:
        assert api.health_liveness().verdict == "healthy"  # the process still answers
        for check in (api.health_startup, api.health_readiness, api.health_full):
            report = check()
            assert report.verdict == "failing" and not report.ok
            (comp,) = report.components
            assert comp.name == "repository" and "unreachable" in comp.reason.lower()
        r = invoke_cli("health", "--check", "readiness")
        assert r.returncode == 1 and "failing" in r.stdout
    finally:
        monkeypatch.undo()
        reset_settings_cache()
