"""Alerts against a real server: an injected condition fires, notifies a local webhook
receiver and SMTP sink exactly once, is deduplicated while open, damped while flapping and
resolves when the condition ends; a stopped sampler raises the absence alert; the default
rule set evaluates real data or says what is not available; bad rules are refused."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from psycopg import sql

from ops_core import api
from ops_core.config import reset_settings_cache
from ops_core.errors import InvalidInput, NotFound
from tests.alert_helpers import SmtpSink, WebhookReceiver

DEADLINE_S = 90


@pytest.fixture
def settings_env(monkeypatch):
    """Set OPSCORE_* settings for one test (the settings cache is re-read)."""

    def set_(**values):
        for k, v in values.items():
            monkeypatch.setenv(f"OPSCORE_{k.upper()}", str(v))
        reset_settings_cache()

    yield set_
    monkeypatch.undo()
    reset_settings_cache()


def _evaluate_until(rule: str, want: str, target: str, deadline_s: float = DEADLINE_S):
    """Evaluate until ``rule`` on ``target`` reaches status ``want``; all runs returned."""
    runs, end = [], time.monotonic() + deadline_s
    while True:
        run = api.evaluate_alerts(target)
        runs.append(run)
        res = next(r for r in run.results if r.rule == rule)
        if res.status == want:
            return res, runs
        assert time.monotonic() < end, f"{rule} never became {want}: last {res}"
        time.sleep(0.3)


def test_a_stuck_prepared_transaction_fires_with_its_gid_and_resolves(repo, target_db):
    """A prepared transaction nobody commits or rolls back: no session shows it, and it holds
    its locks and the xmin horizon. The rule names it (gid, database) and resolves once it
    is rolled back."""
    with psycopg.connect(target_db, autocommit=True) as c:
        if int(c.execute("SHOW max_prepared_transactions").fetchone()[0]) == 0:
            pytest.skip("max_prepared_transactions = 0 on this server")
    api.add_target("al2pc", target_db)
    api.create_alert_rule(
        "2pc", "prepared_transaction_age_s", 0.2, op=">", target="al2pc", for_s="0s"
    )
    assert api.evaluate_alerts("al2pc").results[0].value == 0.0  # none prepared
    gid = "it's:al2pc"
    with psycopg.connect(target_db) as c:
        c.execute("CREATE TABLE IF NOT EXISTS al_2pc (id int)")
        c.execute("INSERT INTO al_2pc VALUES (1)")
        c.execute(sql.SQL("PREPARE TRANSACTION {}").format(sql.Literal(gid)))
    try:
        fired, _ = _evaluate_until("2pc", "firing", "al2pc")
        assert fired.value > 0.2 and gid in fired.message, fired.message
        (metrics,) = api.target_metrics("al2pc")
        assert metrics.values["prepared_transactions"] == 1.0
    finally:
        with psycopg.connect(target_db, autocommit=True) as c:
            c.execute(sql.SQL("ROLLBACK PREPARED {}").format(sql.Literal(gid)))
    resolved, _ = _evaluate_until("2pc", "resolved", "al2pc")
    assert resolved.alert_id == fired.alert_id


def test_idle_in_transaction_fires_notifies_once_and_resolves(repo, target_db, settings_env):
    api.add_target("al", target_db)
    with WebhookReceiver() as hook, SmtpSink() as smtp:
        settings_env(smtp_host="127.0.0.1", smtp_port=smtp.port, alert_notify_backoff_s=0)
        api.create_alert_rule(
            "iit", "idle_in_transaction_s", 1.0, op=">", target="al", for_s="0s",
            severity="critical",
            channels=[{"type": "webhook", "url": hook.url}, {"type": "email", "to": "dba@x.test"}],
        )  # fmt: skip
        first = api.evaluate_alerts("al")
        (res,) = first.results
        assert res.status == "ok" and res.value == 0.0  # nothing idle in a transaction yet
        assert hook.bodies == [] and smtp.messages == []

        holder = psycopg.connect(target_db, application_name="alert-test-holder")
        try:
            holder.execute("SELECT 1")  # a transaction left open: idle in transaction
            fired, _ = _evaluate_until("iit", "firing", "al")
            alert_id = fired.alert_id
            assert fired.value > 1.0 and fired.message.startswith("fired:")
            # still open: evaluated again, nothing more is sent (dedupe)
            for _ in range(3):
                again = api.evaluate_alerts("al").results[0]
                assert again.status == "firing" and again.alert_id == alert_id
                assert again.notifications == []
            assert api.ack_alert(alert_id, "tester").status == "acknowledged"
            assert api.evaluate_alerts("al").results[0].status == "acknowledged"
            assert [a.alert_id for a in api.list_alerts(target="al")] == [alert_id]
        finally:
            holder.close()  # the condition ends

        resolved, _ = _evaluate_until("iit", "resolved", "al")
        assert resolved.alert_id == alert_id
        assert hook.events(alert_id) == ["firing", "resolved"]  # exactly once each
        assert len(hook.bodies) == 2
        assert hook.bodies[0]["severity"] == "critical" and hook.bodies[0]["target"] == "al"
        subjects = [m["Subject"] for m in smtp.messages]
        assert len(subjects) == 2
        assert "CRITICAL" in subjects[0] and "RESOLVED" in subjects[1]
        assert smtp.messages[0]["X-Opscore-Alert-Id"] == str(alert_id)

    alert = api.get_alert(alert_id)
    assert alert.status == "resolved" and alert.acknowledged_by == "tester"
    assert alert.resolved_by.startswith("opscore")
    recs = alert.notifications
    assert sorted((n["event"], n["channel"]) for n in recs) == [
        ("firing", "email"), ("firing", "webhook"), ("resolved", "email"), ("resolved", "webhook"),
    ]  # fmt: skip
    assert all(n["ok"] and n["attempts"] == 1 for n in recs)
    assert api.list_alerts(target="al") == []
    assert [a.alert_id for a in api.list_alerts("resolved", target="al")] == [alert_id]


def test_connections_near_a_lowered_limit_with_flap_damping(repo, pg, target_db, settings_env):
    settings_env(alert_notify_backoff_s=0)
    api.add_target("cl", target_db)
    dbname = psycopg.conninfo.conninfo_to_dict(target_db)["dbname"]
    with pg.admin() as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} CONNECTION LIMIT 4").format(sql.Identifier(dbname))
        )
    conns: list[psycopg.Connection] = []
    with WebhookReceiver(fail_first=2) as hook:  # two failures: delivered on the 3rd attempt
        api.create_alert_rule(
            "conn", "connections_pct", 70, op=">", target="cl", clear_for_s="1h",
            channels=[{"type": "webhook", "url": hook.url}],
        )  # fmt: skip
        assert api.evaluate_alerts("cl").results[0].status == "ok"
        try:
            conns = [psycopg.connect(target_db, application_name="cl-fill") for _ in range(3)]
            fired, _ = _evaluate_until("conn", "firing", "cl")
            assert fired.value == pytest.approx(75.0)
            assert api.get_alert(fired.alert_id).details["database"] == dbname
            (rec,) = api.alert_notifications(fired.alert_id)
            assert rec.ok and rec.attempts == 3 and hook.events() == ["firing"]
            # the condition clears: damped (clear for 1 h), not resolved
            conns.pop().close()
            clearing, _ = _evaluate_until("conn", "clearing", "cl")
            assert clearing.alert_id == fired.alert_id
            # ... and comes back: the same alert, one flap, nothing sent
            conns.append(psycopg.connect(target_db, application_name="cl-fill"))
            back, _ = _evaluate_until("conn", "firing", "cl")
            assert back.alert_id == fired.alert_id and back.notifications == []
            assert api.get_alert(fired.alert_id).flaps == 1
            assert hook.events() == ["firing"]
        finally:
            for c in conns:
                c.close()
        api.update_alert_rule("conn", clear_for_s=0)
        resolved, _ = _evaluate_until("conn", "resolved", "cl")
        assert resolved.alert_id == fired.alert_id
        assert hook.events() == ["firing", "resolved"]


def test_stopped_sampler_raises_the_absence_alert(repo, target_db, settings_env):
    settings_env(ash_flush_interval_s=1)
    api.add_target("smp", target_db)
    api.create_alert_rule("sampler", "ash_sampler", 2, kind="absence", target="smp")
    res = api.evaluate_alerts("smp").results[0]
    assert res.status == "not available" and "no ASH sampler" in res.message
    stop = threading.Event()
    runner = threading.Thread(
        target=api.run_ash,
        kwargs={"target": "smp", "interval_s": 0.2, "flush_interval_s": 1, "stop": stop},
        daemon=True,
    )
    runner.start()
    try:
        running, _ = _evaluate_until("sampler", "ok", "smp")
        assert running.value is not None and running.value <= running.limit
        assert running.limit == pytest.approx(3.0)  # flush interval 1 s + 2 s grace
    finally:
        stop.set()
        runner.join(60)
    fired, _ = _evaluate_until("sampler", "firing", "smp")
    assert fired.value > 3.0
    alert = api.get_alert(fired.alert_id)
    assert alert.details["metric"] == "ash_sampler" and alert.details["last_flush_at"]


def test_default_rules_evaluate_real_data_or_say_why_not(repo, target_db, pg):
    api.add_target("dflt", target_db)
    rules = api.install_default_alert_rules()
    assert {r.name for r in rules} == set(api.DEFAULT_ALERT_RULES)
    assert len(api.install_default_alert_rules()) == len(rules)  # idempotent
    run = api.evaluate_alerts("dflt")
    by = {r.rule: r for r in run.results}
    # the anomaly rule is installed disabled (until the target has enough history)
    off = {r.name for r in rules if not r.enabled}
    assert off == {"workload_anomaly"}
    assert set(by) == set(api.DEFAULT_ALERT_RULES) - off
    with pg.admin() as conn:
        age = conn.execute(
            "SELECT greatest(max(age(datfrozenxid)), max(mxid_age(datminmxid))) FROM pg_database"
        ).fetchone()[0]
        archive_mode = conn.execute("SHOW archive_mode").fetchone()[0]
        standbys = conn.execute("SELECT count(*) FROM pg_stat_replication").fetchone()[0]
    # measured on the server: the wraparound share of the oldest database (ages only grow,
    # and they were read after the evaluation)
    assert by["wraparound_risk"].status == "ok"
    assert 0 < by["wraparound_risk"].value <= 100 * age / 2**31
    for name in ("connections_near_max", "idle_in_transaction", "blocked_sessions"):
        assert by[name].status == "ok" and by[name].value is not None, by[name]
    if standbys == 0:
        assert by["replication_lag"].status == "not available"
        assert "no standby" in by["replication_lag"].message
    if archive_mode == "off":
        assert by["wal_not_archived"].status == "not available"
        assert "archive_mode is off" in by["wal_not_archived"].message
    assert by["backup_overdue"].status == "not available"
    assert "no backup schedule" in by["backup_overdue"].message
    assert by["sampler_stopped"].status == "not available"
    assert by["snapshots_stopped"].status == "not available"
    # the test server runs on this host: its data directory's disk is measured
    assert by["disk_nearly_full"].status == "ok" and 0 < by["disk_nearly_full"].value < 100
    # a backup schedule with no backup at all: overdue
    api.set_backup_schedule("dflt", {"full": "every 1h"})
    api.update_alert_rule("backup_overdue", value=0)
    bk = next(r for r in api.evaluate_alerts("dflt").results if r.rule == "backup_overdue")
    assert bk.status == "firing", bk
    api.take_snapshot("dflt")
    snap = next(r for r in api.evaluate_alerts("dflt").results if r.rule == "snapshots_stopped")
    assert snap.status == "ok" and snap.value < snap.limit


def test_rule_crud_and_bad_input(repo, target_db):
    api.add_target("crud", target_db)
    r = api.create_alert_rule("dl", "deadlocks_total", 0.5, kind="rate", target="crud", for_s="2m")
    assert r.for_s == 120 and r.target == "crud"
    assert api.get_alert_rule("dl").rule_id == r.rule_id
    assert api.get_alert_rule(str(r.rule_id)).name == "dl"
    up = api.update_alert_rule(r.rule_id, value=2, severity="critical", all_targets=True)
    assert up.value == 2 and up.severity == "critical" and up.target is None
    # a rate rule learns on its first reading, then measures a rate
    first = api.evaluate_alerts("crud").results[0]
    assert first.status == "learning"
    second = api.evaluate_alerts("crud").results[0]
    assert second.status == "ok" and second.value == 0.0
    bad = [
        dict(name="x", metric="nope", value=1),
        dict(name="x", metric="ash_sampler", value=1),  # absence metric in a threshold rule
        dict(name="x", metric="connections", value=1, op="=="),
        dict(name="x y", metric="connections", value=1),
        dict(name="x", metric="connections", value=float("nan")),
        dict(name="x", metric="connections", value=1, for_s="soon"),
        dict(name="x", metric="connections", value=1, severity="huge"),
        dict(name="x", metric="connections", value=1,
             channels=[{"type": "webhook", "url": "http://h/x", "token": "s3cret"}]),
        dict(name="x", metric="connections", value=1,
             channels=[{"type": "webhook", "url": "http://u:s3cret@h/x"}]),
        dict(name="x", metric="connections", value=1, channels=[{"type": "email", "to": "nobody"}]),
        dict(name="dl", metric="connections", value=1),  # duplicate name
    ]  # fmt: skip
    for kw in bad:
        with pytest.raises(InvalidInput):
            api.create_alert_rule(**kw)
    assert [x.name for x in api.list_alert_rules()] == ["dl"]  # nothing stored
    with pytest.raises(InvalidInput):
        api.update_alert_rule("dl", metric="snapshot")  # absence metric for a rate rule
    with pytest.raises(NotFound):
        api.get_alert_rule("missing")
    with pytest.raises(InvalidInput):
        api.list_alerts(status="bogus")
    anomaly = api.create_alert_rule("anom", "anomaly_score", 3, kind="anomaly")
    res = next(x for x in api.evaluate_alerts("crud").results if x.rule == "anom")
    # no snapshots of the target: the detector has nothing to judge, and says so
    assert res.status == "not available" and "not enough history" in res.message
    assert api.delete_alert_rule(anomaly.rule_id).name == "anom"
    assert api.delete_alert_rule("dl").name == "dl"
    assert api.list_alert_rules() == []


def test_serve_schedules_the_alerts_flow_every_minute(repo, target_db):
    from datetime import timedelta

    from flows.serve import build_deployments
    from ops_core.config import Settings

    api.add_target("srv", target_db)
    deps = {d.name: d for d in build_deployments(Settings())}
    assert deps["alerts"].schedules[0].schedule.interval == timedelta(minutes=1)
    assert deps["alerts"].flow_name == "alerts"
    slower = {d.name: d for d in build_deployments(Settings(alert_interval_minutes=5))}
    assert slower["alerts"].schedules[0].schedule.interval == timedelta(minutes=5)


def test_alert_cli(repo, target_db):
    import json

    from tests.helpers import invoke_cli, run_cli

    api.add_target("cli", target_db)
    # one real `opscore` process, the rest in this process
    r = run_cli(
        "alert", "rule", "create", "--target", "cli", "--name", "conn", "--metric",
        "connections", "--op", ">=", "--value", "0", "--for", "0s", "--severity", "critical",
        "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rule = json.loads(r.stdout)
    assert rule["name"] == "conn" and rule["target"] == "cli" and rule["for_s"] == 0
    bad = invoke_cli("alert", "rule", "create", "--name", "x", "--metric", "nope", "--value", "1")
    assert bad.returncode != 0 and "Unknown metric 'nope'" in bad.stderr
    assert "What to do" in bad.stderr
    r = invoke_cli("alert", "evaluate", "--json")
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)
    assert run["fired"] == 1 and run["results"][0]["status"] == "firing"
    listed = json.loads(invoke_cli("alert", "list", "--json").stdout)
    assert [a["rule"] for a in listed] == ["conn"]
    alert_id = str(listed[0]["alert_id"])
    r = invoke_cli("alert", "ack", alert_id)
    assert r.returncode == 0 and "acknowledged" in r.stdout
    again = invoke_cli("alert", "ack", alert_id)
    assert again.returncode != 0 and "cannot become acknowledged" in again.stderr
    r = invoke_cli("alert", "resolve", alert_id, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "resolved"
    assert json.loads(invoke_cli("alert", "list", "--json").stdout) == []
    text = invoke_cli("alert", "rule", "list")
    assert text.returncode == 0 and "conn" in text.stdout
    assert invoke_cli("alert", "rule", "update", "conn", "--disable").returncode == 0
    assert api.get_alert_rule("conn").enabled is False
    assert invoke_cli("alert", "rule", "delete", "conn").returncode == 0
    assert api.list_alert_rules() == []


@pytest.mark.slow
def test_failing_wal_archiving_fires_and_resolves(repo, tmp_path):
    """A server of its own (archive_mode needs a restart): archive_command fails -> the
    wal_not_archived condition holds; archiving works again -> it resolves."""
    import shutil
    import tempfile
    from pathlib import Path

    from ops_core.targets.embedded import EmbeddedServer

    home = Path(tempfile.mkdtemp(prefix="ops-arch-", dir="/tmp"))
    server = EmbeddedServer(home)
    try:
        server.start()
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            c.execute("ALTER SYSTEM SET archive_mode = on")
            c.execute("ALTER SYSTEM SET archive_command = '/bin/false'")
        server.stop()
        server.start()
        api.add_target("arch", server.conninfo())
        api.create_alert_rule("walarch", "wal_archive_stalled_s", 0, op=">", target="arch")
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            c.execute("CREATE TABLE w AS SELECT g FROM generate_series(1, 1000) g")
            c.execute("SELECT pg_switch_wal()")
        fired, _ = _evaluate_until("walarch", "firing", "arch", 120)
        details = api.get_alert(fired.alert_id).details
        assert details["failing"] is True and details["failed_count"] >= 1
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            c.execute("ALTER SYSTEM SET archive_command = '/bin/true'")
            c.execute("SELECT pg_reload_conf()")
            c.execute("INSERT INTO w SELECT 1")
            c.execute("SELECT pg_switch_wal()")
        resolved, _ = _evaluate_until("walarch", "resolved", "arch", 180)
        assert resolved.alert_id == fired.alert_id
    finally:
        server.destroy()
        shutil.rmtree(home, ignore_errors=True)


def test_addm_rule_fires_on_a_finding_above_its_impact(repo, target_db):
    api.add_target("adm", target_db)
    begin = api.take_snapshot("adm").snapshot_id
    with psycopg.connect(target_db, autocommit=True) as c:
        for i in range(4):  # one statement that dominates DB time
            c.execute("SELECT count(*) FROM generate_series(1, 2000000 + %s) g", (i,))
    end = api.take_snapshot("adm").snapshot_id
    analysis = api.run_addm("adm", begin, end)
    findings = api.addm_findings(analysis.analysis_id)
    top = max((float(f.impact_pct) for f in findings), default=0.0)
    assert top > 0, "the dominating statement is a finding"
    api.create_alert_rule("addm_hi", "addm_impact_pct", top + 1, kind="addm", op=">=")
    api.create_alert_rule("addm_lo", "addm_impact_pct", top, kind="addm", op=">=")
    by = {r.rule: r for r in api.evaluate_alerts("adm").results}
    assert by["addm_hi"].status == "ok" and by["addm_hi"].value == pytest.approx(top)
    assert by["addm_lo"].status == "firing"
    details = api.get_alert(by["addm_lo"].alert_id).details
    assert details["analysis_id"] == analysis.analysis_id


def test_webhook_secrets_come_from_the_environment(repo, target_db, monkeypatch, settings_env):
    settings_env(alert_notify_backoff_s=0)
    api.add_target("sec", target_db)
    with WebhookReceiver() as hook:
        secret_url = hook.url + "/T000/B000/XXXXsecretpath"
        monkeypatch.setenv("OPS_TEST_HOOK_URL", secret_url)
        monkeypatch.setenv("OPS_TEST_HOOK_TOKEN", "tok-s3cret-value")
        api.create_alert_rule(
            "sec", "connections", 0, op=">=", target="sec",
            channels=[{"type": "webhook", "url_env": "OPS_TEST_HOOK_URL",
                       "token_env": "OPS_TEST_HOOK_TOKEN"}],
        )  # fmt: skip
        fired = api.evaluate_alerts("sec").results[0]
        assert fired.status == "firing" and fired.notifications[0]["ok"]
        assert hook.headers[0]["Authorization"] == "Bearer tok-s3cret-value"
        assert hook.events() == ["firing"]
    # neither the secret URL nor the token is in the repository
    dump = " ".join(
        str(row)
        for table in ("alert_rules", "alerts", "alert_notifications", "alert_state")
        for row in repo.execute(f"SELECT t::text FROM opscore.{table} t").fetchall()
    )
    assert "secretpath" not in dump and "tok-s3cret" not in dump
    assert "$OPS_TEST_HOOK_URL" in dump  # what was recorded as the destination
    monkeypatch.delenv("OPS_TEST_HOOK_TOKEN")
    api.resolve_alert(fired.alert_id)
    unset = api.evaluate_alerts("sec").results[0]  # fires again: the token is missing now
    (rec,) = unset.notifications
    assert not rec["ok"] and "OPS_TEST_HOOK_TOKEN" in rec["error"] and rec["attempts"] == 3


@pytest.mark.slow
def test_alerts_flow_runs_the_evaluation(prefect_harness, repo, target_db):
    from flows.alerts import alerts_flow

    api.add_target("flw", target_db)
    api.create_alert_rule("flw_conn", "connections", 0, op=">=", target="flw")
    first = alerts_flow()
    assert first["fired"] == 1 and first["targets"] == 1 and first["rules"] == 1
    second = alerts_flow()
    assert second["fired"] == 0  # still open: not opened twice
    assert len(api.list_alerts(target="flw")) == 1


def test_a_failed_delivery_is_retried_by_the_next_evaluation(repo, target_db, settings_env):
    settings_env(alert_notify_backoff_s=0, alert_notify_attempts=2, alert_redeliveries=2)
    api.add_target("rd", target_db)
    with WebhookReceiver(fail_first=2) as hook:  # the first evaluation's 2 attempts fail
        api.create_alert_rule(
            "rd", "connections", 0, op=">=", target="rd",
            channels=[{"type": "webhook", "url": hook.url}],
        )  # fmt: skip
        first = api.evaluate_alerts("rd")
        assert first.fired == 1 and first.failed_notifications == 1
        assert hook.events() == []
        second = api.evaluate_alerts("rd")
        assert second.fired == 0 and second.notifications == 1
        assert second.failed_notifications == 0
        assert hook.events() == ["firing"]  # delivered once, by the retry
        assert api.evaluate_alerts("rd").notifications == 0  # nothing left to retry
    recs = api.alert_notifications(first.results[0].alert_id)
    assert [(r.ok, r.attempts) for r in recs] == [(False, 2), (True, 1)]
