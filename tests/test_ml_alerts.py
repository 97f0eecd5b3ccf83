"""Alert rules over the workload ML and the capacity forecasts, end to end through the alert
engine to a local webhook receiver, on generated snapshot history (tests/ml_history.py)
written through the repository's real write path."""

from __future__ import annotations

import time
from datetime import timedelta

import pandas as pd
import pytest

from ops_core import api
from tests.alert_helpers import WebhookReceiver
from tests.ml_history import History, history_start


def _evaluate_until(target: str, rule: str, status: str, deadline_s: float = 120):
    """Evaluate until ``rule`` reaches ``status`` (the rule's for_s runs on the clock)."""
    end = time.monotonic() + deadline_s
    while True:
        res = next(r for r in api.evaluate_alerts(target).results if r.rule == rule)
        if res.status == status or time.monotonic() > end:
            return res
        time.sleep(0.2)


def test_anomaly_rule_fires_with_evidence_and_resolves(repo):
    """Two weeks of hourly history (enough for the daily and weekly profile): a healthy latest
    interval scores low; an interval with eight times the usual statement time fires the rule
    (the held one after its duration) with the metrics that moved, their expected range and an
    ADDM analysis of the anomaly; the next healthy interval resolves it."""
    days = 15
    h = History("mlanom", start=history_start(days))
    h.append(24 * days)  # up to one interval before the end
    with WebhookReceiver() as hook:
        hook_ch = [{"type": "webhook", "url": hook.url}]
        api.create_alert_rule(
            "anom_now", "anomaly_score", 6, op=">=", kind="anomaly", target="mlanom",
            for_s="0s", clear_for_s="0s", severity="warning", channels=hook_ch,
        )  # fmt: skip
        api.create_alert_rule(
            "anom_held", "anomaly_score", 6, op=">=", kind="anomaly", target="mlanom",
            for_s="2s", clear_for_s="0s", severity="warning", channels=hook_ch,
        )  # fmt: skip
        by = {r.rule: r for r in api.evaluate_alerts("mlanom").results}
        assert by["anom_now"].status == "ok", by["anom_now"]
        assert by["anom_now"].value < 6 and not hook.bodies
        spike = h.append(1, spikes={24 * days: 8.0})  # the latest interval: 8 times the load
        by = {r.rule: r for r in api.evaluate_alerts("mlanom").results}
        now, held = by["anom_now"], by["anom_held"]
        assert now.status == "firing" and now.value >= 6, now
        assert held.status == "pending", held  # above the threshold, not yet for 2 s
        fired = _evaluate_until("mlanom", "anom_held", "firing")
        assert fired.status == "firing", fired
        assert hook.events(now.alert_id) == ["firing"]
        assert hook.events(fired.alert_id) == ["firing"]
        body = next(b for b in hook.bodies if b["alert_id"] == now.alert_id)
        d = body["details"]
        moved = {m["metric"]: m for m in d["metrics"]}
        stmt = moved["stmt_time_s_per_s"]
        assert stmt["value"] > stmt["high"] >= stmt["expected"] >= stmt["low"]
        assert pd.Timestamp(d["interval_end"]) == pd.Timestamp(spike[0][1])
        assert d["addm_analysis_id"] is not None
        assert api.get_addm(d["addm_analysis_id"]).analysis_id == d["addm_analysis_id"]
        assert "stmt_time_s_per_s" in body["summary"] and "expected" in body["summary"]
        stored = api.ml_anomalies("mlanom", detect=False)
        assert d["anomaly_id"] in set(stored["anomaly_id"])
        # the next interval is healthy: both alerts resolve (clear_for 0)
        h.append(1)
        by = {r.rule: r for r in api.evaluate_alerts("mlanom").results}
        assert by["anom_now"].status == "resolved", by["anom_now"]
        assert by["anom_held"].status == "resolved", by["anom_held"]
        assert hook.events(now.alert_id) == ["firing", "resolved"]


def test_anomaly_rule_without_enough_history_says_so(repo):
    h = History("mlshort", start=history_start(1), step=timedelta(minutes=15))
    h.append(6)
    api.create_alert_rule("anom_short", "anomaly_score", 6, kind="anomaly", target="mlshort")
    (res,) = api.evaluate_alerts("mlshort").results
    assert res.status == "not available" and "not enough history: 5" in res.message, res


@pytest.mark.parametrize("shape", ["growing", "flat"])
def test_forecast_rule_fires_on_growth_and_not_on_a_flat_series(repo, shape):
    """Four days of six-hourly snapshots whose connections climb towards the captured
    max_connections (or stay flat): the connections forecast rule fires on the growing one,
    saying which forecast (model, horizon, interval) and which limit; not on the flat one.
    (Six-hourly keeps the model fits cheap; the forecast still chooses among its models.)"""
    name = f"mlfc{shape}"
    h = History(name, start=history_start(4), step=timedelta(hours=6), growth=0.0)
    for _ in range(4 * 4 + 1):
        h.append(1)
        if shape == "growing":
            h.connections += 3.0  # 12 more sessions a day, 48 over the four days, of 97
    with WebhookReceiver() as hook:
        api.create_alert_rule(
            "conn_soon", "days_until_connections_max", 7, op="<", kind="forecast", target=name,
            channels=[{"type": "webhook", "url": hook.url}],
        )  # fmt: skip
        (res,) = api.evaluate_alerts(name).results
        if shape == "flat":
            assert res.status == "ok" and res.value > 7, res
            assert not hook.bodies
            return
        assert res.status == "firing" and res.value < 7, res
        body = hook.bodies[0]
        d = body["details"]
        assert d["forecast"] == "connections" and d["limit"] == 97.0
        assert "captured with the snapshots" in d["limit_source"]
        assert d["method"] and d["horizon_days"] == 30 and d["interval"] == "95 %"
        assert d["history_points"] > 12
        assert d["method"] in body["summary"] and "95 %" in body["summary"]


def test_migration_0027_renames_the_stored_statement_time(repo):
    """Anomalies and models stored before 0027 call the statement-time rate
    db_time_s_per_s: the migration renames it (re-applied here on rows of the old shape)."""
    from importlib import resources

    from psycopg.types.json import Jsonb

    h = History("mlmig", start=history_start(1))
    h.append(2)
    tid = h.t.target_id
    old = [{"metric": "db_time_s_per_s", "z": 9.0}, {"metric": "calls_per_s", "z": 5.0}]
    repo.execute(
        "INSERT INTO opscore.ml_models (target_id, kind, version, status, points, "
        "enough_history, methods, validation) VALUES (%s, 'anomaly', 1, 'active', 3, false, "
        "%s, %s)",
        (tid, Jsonb({"db_time_s_per_s": "stl(daily)", "calls_per_s": "stl(daily)"}),
         Jsonb({"sigma": {"db_time_s_per_s": 0.1}, "points": 3})),
    )  # fmt: skip
    repo.execute(
        "INSERT INTO opscore.ml_anomalies (target_id, begin_at, end_at, score, severity, "
        "detector, metrics) VALUES (%s, now(), now(), 9, 'alert', 'per-metric', %s)",
        (tid, Jsonb(old)),
    )
    sql = (
        resources.files("ops_core.repository")
        .joinpath("migrations", "0027_ml_stmt_time.sql")
        .read_text()
    )
    repo.execute(sql)
    methods, validation = repo.execute(
        "SELECT methods, validation FROM opscore.ml_models WHERE target_id = %s", (tid,)
    ).fetchone()
    assert methods == {"stmt_time_s_per_s": "stl(daily)", "calls_per_s": "stl(daily)"}
    assert validation == {"sigma": {"stmt_time_s_per_s": 0.1}, "points": 3}
    (metrics,) = repo.execute(
        "SELECT metrics FROM opscore.ml_anomalies WHERE target_id = %s", (tid,)
    ).fetchone()
    assert metrics == [{"metric": "stmt_time_s_per_s", "z": 9.0}, old[1]]
