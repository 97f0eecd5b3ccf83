"""Capacity limits captured from a real server: transaction-ID / multixact age with the
autovacuum context, sequences against their bounds, and the exhaustion alerts the alert
engine raises from the forecasts (delivered to a local webhook receiver)."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg import sql

from ops_core import api
from ops_core.api.capacity import WRAP_STOP
from tests.alert_helpers import WebhookReceiver


@pytest.fixture
def seq_target(repo, target_db):
    """A target whose database has a sequence of 2,000 values, consumed between snapshots
    (50 values per snapshot interval, 12 snapshots)."""
    name = "capseq"
    api.add_target(name, target_db)
    with psycopg.connect(target_db, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE cap_small MAXVALUE 2000")
        conn.execute("CREATE SEQUENCE cap_cycle MAXVALUE 1000000 CYCLE")
        for _ in range(12):
            conn.execute("SELECT nextval('cap_small') FROM generate_series(1, 50)")
            conn.execute("SELECT nextval('cap_cycle') FROM generate_series(1, 5)")
            api.take_snapshot(name)
            time.sleep(0.05)  # the snapshots' captured_at must differ (now() of the target)
    return name, target_db


def test_wraparound_and_sequence_forecasts_from_real_snapshots(seq_target, pg):
    name, dsn = seq_target
    rep = api.capacity_forecasts(name, horizon_days=7)
    by = {f.metric: f for f in rep.forecasts}
    with pg.admin() as conn:
        xid_after = conn.execute("SELECT max(age(datfrozenxid)) FROM pg_database").fetchone()[0]
        freeze = int(conn.execute("SHOW autovacuum_freeze_max_age").fetchone()[0])
    xid = by["xid_age"]
    # the age of the oldest database, read before the server's age read just now
    assert 0 < xid.last_value <= xid_after
    assert xid.limit == WRAP_STOP and "stops assigning transaction IDs" in xid.limit_source
    assert any(f"age {freeze:,}" in n and "autovacuum" in n for n in xid.notes), xid.notes
    assert any("failsafe" in n for n in xid.notes)
    assert "mxid_age" in by and by["mxid_age"].limit == WRAP_STOP
    assert not any("wraparound" in n for n in rep.not_captured)
    db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    small = by[f"sequence:{db}.public.cap_small"]
    # 12 x 50 values used of 1..2000, consumed within seconds: the limit is days away at most
    assert small.last_value == 599.0 and small.limit == 1999.0
    assert small.days_until is not None and small.days_until < 1
    cyc = by[f"sequence:{db}.public.cap_cycle"]
    assert cyc.limit is None and cyc.days_until is None
    assert any("CYCLE" in n for n in cyc.notes)
    alerts = api.capacity_alerts(name, within_days=30)
    assert f"sequence:{db}.public.cap_small" in set(alerts["metric"])
    assert f"sequence:{db}.public.cap_cycle" not in set(alerts["metric"])


def test_forecast_rule_fires_to_a_webhook_and_resolves(seq_target):
    name, dsn = seq_target
    with WebhookReceiver() as hook:
        api.create_alert_rule(
            "seq_soon", "days_until_sequence_exhausted", 30, op="<", kind="forecast",
            target=name, for_s="0s", severity="critical",
            channels=[{"type": "webhook", "url": hook.url}],
        )  # fmt: skip
        (res,) = api.evaluate_alerts(name).results
        assert res.status == "firing" and res.value < 1, res
        assert hook.events(res.alert_id) == ["firing"]
        body = hook.bodies[0]
        assert body["severity"] == "critical" and body["target"] == name
        assert "days_until_sequence_exhausted" in body["summary"]
        alert = api.get_alert(res.alert_id)
        assert alert.details["forecast"].endswith("cap_small") and alert.details["in_sight"]
        # widen the sequence: at the same rate its bound is no longer in sight
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER SEQUENCE {} AS bigint MAXVALUE 9000000000000000000").format(
                    sql.Identifier("cap_small")
                )
            )
        api.take_snapshot(name)
        (res2,) = api.evaluate_alerts(name).results
        assert res2.status == "resolved" and res2.value > 30, res2
        assert hook.events(res.alert_id) == ["firing", "resolved"]


def test_forecast_rules_without_history_say_why(repo, target_db):
    api.add_target("capnone", target_db)
    api.create_alert_rule(
        "xid_soon", "days_until_xid_wraparound", 30, op="<", kind="forecast", target="capnone"
    )
    (res,) = api.evaluate_alerts("capnone").results
    assert res.status == "not available" and "xid_age" in res.message


def test_connection_limit_is_captured_or_read_or_said_unknown(repo, target_db, pg):
    """The connections forecast compares with max_connections minus the reserved
    connections: as the snapshots captured them, else as the target has them now (history
    from before the capture), else unknown, said so, never a default assumed."""
    from tests.ml_history import History, history_start

    with pg.admin() as conn:
        server_max = int(conn.execute("SHOW max_connections").fetchone()[0])
        su = int(conn.execute("SHOW superuser_reserved_connections").fetchone()[0])
        version = conn.info.server_version
        extra = (
            int(conn.execute("SHOW reserved_connections").fetchone()[0]) if version >= 160000 else 0
        )
    usable = float(server_max - su - extra)
    api.add_target("caplim", target_db)
    api.take_snapshot("caplim")
    conns = _connections_forecast("caplim")
    assert conns.limit == usable and "captured with the snapshots" in conns.limit_source
    # snapshots without the limits (taken before opscore captured them): read now
    h = History("caplimold", start=history_start(1), max_connections=None, dsn=target_db)
    h.append(3)
    conns = _connections_forecast("caplimold")
    assert conns.limit == usable and "read from the target now" in conns.limit_source
    # ... and when the target cannot be read either: unknown, with the reason
    h = History("caplimnone", start=history_start(1), max_connections=None)
    h.append(3)
    conns = _connections_forecast("caplimnone")
    assert conns.limit is None and conns.days_until is None
    assert any("max_connections unknown" in n and "cannot be read" in n for n in conns.notes)


def _connections_forecast(target: str):
    rep = api.capacity_forecasts(target, horizon_days=7)
    return next(f for f in rep.forecasts if f.metric == "connections")


def test_connections_pct_is_of_the_connections_an_application_can_open(repo, target_db, pg):
    """The connections_pct alert metric divides by max_connections minus
    superuser_reserved_connections minus (PostgreSQL 16+) reserved_connections, the last as
    the newest snapshot's ``limits`` capture has it (the live row does not read it)."""
    from ops_core.alerts.metrics import Context, observe
    from ops_core.collectors.health_reads import server_reading
    from ops_core.config import get_settings
    from tests.ml_history import History, history_start

    with pg.admin() as conn:
        server_max = int(conn.execute("SHOW max_connections").fetchone()[0])
        su = int(conn.execute("SHOW superuser_reserved_connections").fetchone()[0])
        v16 = conn.info.server_version >= 160000
        extra = int(conn.execute("SHOW reserved_connections").fetchone()[0]) if v16 else 0

    def pct(target: str):
        t = api.get_target(target)
        with psycopg.connect(target_db) as tconn:
            r = server_reading(tconn)
        obs = observe("connections_pct", Context(t, repo, get_settings(), False, reading=r))
        return obs, r

    api.add_target("connpct", target_db)
    obs, r = pct("connpct")  # no snapshot yet: reserved_connections unknown, said so
    if v16:
        assert "not captured yet" in obs.detail["reserved_connections_from"]
    else:
        assert "reserved_connections_from" not in obs.detail
    api.take_snapshot("connpct")
    obs, r = pct("connpct")
    assert obs.detail["usable"] == server_max - su - extra
    assert obs.value == pytest.approx(100.0 * r["client_connections"] / (server_max - su - extra))
    if v16:
        assert "snapshot of" in obs.detail["reserved_connections_from"]
    # a server whose snapshots captured reserved_connections = 5 (PostgreSQL 16+ only: the
    # setting does not exist before, a captured NULL or value is not counted there)
    History("connres", start=history_start(1), dsn=target_db, reserved_connections=5).append(2)
    obs, r = pct("connres")
    assert obs.detail["usable"] == server_max - su - (5 if v16 else 0)
    assert obs.detail["reserved_connections"] == (5 if v16 else 0)
