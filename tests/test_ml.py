"""Workload ML and capacity: pure analysis on generated series (no server), and the service
layer over snapshot history stored through the repository's real write path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ops_core import api
from ops_core.analysis import capacity
from ops_core.analysis.ml import anomaly, windows
from ops_core.errors import InvalidInput


def _daily(days: int, step: str = "15min", seed: int = 1) -> pd.Series:
    idx = pd.date_range(
        "2026-03-02", periods=int(pd.Timedelta(days=days) / pd.Timedelta(step)), freq=step, tz="UTC"
    )
    rng = np.random.default_rng(seed)
    h = idx.hour.to_numpy() + idx.minute.to_numpy() / 60
    y = 10 + 5 * np.sin(2 * np.pi * h / 24) + rng.normal(0, 0.5, len(idx))
    return pd.Series(y, idx, name="m")


def test_seasonal_detector_finds_a_spike_and_not_the_daily_peak():
    s = _daily(10)
    s.iloc[700:704] += 8  # 16 robust sigmas
    det = anomaly.detect(s.to_frame(), pd.Timedelta("15min"))
    assert det.fits["m"].method == "stl(daily)"
    alerts = [i for i in det.incidents if i.severity == "alert"]
    assert len(alerts) == 1, alerts
    assert alerts[0].begin_at == s.index[700]
    moved = alerts[0].metrics[0]
    assert moved["metric"] == "m" and moved["value"] > moved["high"]
    # the same series without the spike: the daily peaks are expected, nothing alerts
    clean = anomaly.detect(_daily(10).to_frame(), pd.Timedelta("15min"))
    assert not [i for i in clean.incidents if i.severity == "alert"]


def test_short_history_uses_the_preceding_median():
    s = _daily(1, "1min").iloc[:120].rename("m")
    s.iloc[100:110] += 20
    det = anomaly.detect(s.to_frame(), pd.Timedelta("1min"))
    assert det.fits["m"].method.startswith("baseline-median")
    assert any(i.severity == "alert" and i.begin_at == s.index[100] for i in det.incidents)


def _closed_loop(seed: int, throughput: float, in_flight: float) -> pd.DataFrame:
    """30 snapshots 2 s apart of closed-loop sessions (each sends its next call when the last
    returns), as captured on a busy machine: the statements in flight noisy (log sd 0.3), the
    rates less so (10 %). For intervals 22-24 the rates are ``throughput`` times and the
    statements in flight ``in_flight`` times their usual level."""
    n, at = 30, 22
    idx = pd.date_range("2026-03-02", periods=n, freq="2s", tz="UTC")
    rng = np.random.default_rng(seed)
    burst = (np.arange(n) >= at) & (np.arange(n) < at + 3)
    k = np.where(burst, throughput, 1.0)
    flight = 0.8 * np.exp(rng.normal(0, 0.3, n))
    flight[burst] = 0.8 * in_flight
    return pd.DataFrame(
        {
            "stmt_time_s_per_s": flight,
            "calls_per_s": 250 * k * rng.normal(1, 0.1, n),
            "xacts_per_s": 120 * k * rng.normal(1, 0.1, n),
            "rows_per_s": 400 * k * rng.normal(1, 0.1, n),
            "backends": np.full(n, 3.0),
        },
        idx,
    )


@pytest.mark.parametrize("seed", range(2, 8))
def test_throughput_alone_moving_is_the_same_work_at_another_speed(seed):
    """Twice the calls with the same statements in flight, a time per call inside the spread
    it had: the server ran faster for everyone (a warning that says so). Twice the calls with
    twice the statements in flight is more work arriving (Little's law), five times the calls
    with the same in flight a time per call never seen before: alerts."""
    step = pd.Timedelta("2s")

    def strong(frame: pd.DataFrame) -> list[anomaly.Incident]:
        return [i for i in anomaly.detect(frame, step).incidents if i.score >= anomaly.ALERT_Z]

    (inc,) = strong(_closed_loop(seed, 2.0, 1.0))
    assert inc.severity == "warning" and "same work at another speed" in inc.note
    assert "calls_per_s" in {m["metric"] for m in inc.metrics}
    (inc,) = strong(_closed_loop(seed, 2.0, 2.0))
    assert inc.severity == "alert" and inc.note is None
    (inc,) = strong(_closed_loop(seed, 5.0, 1.0))
    assert inc.severity == "alert" and inc.note is None
    # without the statements in flight among the metrics nothing can be explained
    (inc,) = strong(_closed_loop(seed, 2.0, 1.0).drop(columns="stmt_time_s_per_s"))
    assert inc.severity == "alert"


def test_the_speed_note_is_stored_with_the_anomaly(repo):
    """Migration 0031: the reason a score at the alert level is only a warning is stored and
    read back with the anomaly."""
    from ops_core.api.ml import store_incident
    from ops_core.api.targets import resolve_target

    api.add_target("mlnote", "host=/nonexistent dbname=ml", verify=False)
    det = anomaly.detect(_closed_loop(2, 2.0, 1.0), pd.Timedelta("2s"))
    (inc,) = [i for i in det.incidents if i.note]
    store_incident(resolve_target("mlnote"), inc, det.step, None, None, run_addm=False)
    stored = api.ml_anomalies("mlnote", detect=False)
    assert list(stored["severity"]) == ["warning"]
    assert stored["note"].iloc[0].startswith("same work at another speed")


def test_statsmodels_warnings_are_recorded_with_the_forecast_not_printed():
    """A fit that does not converge (statsmodels' ConvergenceWarning) is evidence about the
    model: it is in the forecast's notes, and nothing reaches the warnings machinery (pytest's
    summary, the CLI's stderr)."""
    import warnings

    idx = pd.date_range("2026-03-02", periods=200, freq="h", tz="UTC")
    rng = np.random.default_rng(0)
    y = pd.Series(np.where(np.arange(200) % 50 < 3, 1000.0, 0.0) + rng.normal(0, 1, 200) ** 3, idx)
    with warnings.catch_warnings(record=True) as leaked:
        warnings.simplefilter("always")
        f = capacity.forecast(y, metric="bursty", horizon=pd.Timedelta(days=2))
    assert not leaked, [str(w.message) for w in leaked]
    said = [n for n in f.notes if "warned" in n]
    assert any("ConvergenceWarning" in n for n in said), f.notes


def test_forecast_chooses_by_holdout_and_finds_days_until():
    idx = pd.date_range("2026-03-02", periods=24 * 20, freq="h", tz="UTC")
    y = pd.Series(
        100 + 2.0 * np.arange(len(idx)) / 24 + np.random.default_rng(2).normal(0, 0.3, len(idx)),
        idx,
    )
    f = capacity.forecast(y, metric="size", horizon=pd.Timedelta(days=10), limit=200)
    assert f.method in f.holdout and f.holdout[f.method] == min(f.holdout.values())
    # 140 now, +2/day: the limit of 200 in about 30 days (beyond the 10-day horizon)
    assert f.days_until is not None and 25 < f.days_until < 35
    assert (f.frame["lower"] <= f.frame["mean"]).all() and (
        f.frame["mean"] <= f.frame["upper"]
    ).all()
    flat = capacity.forecast(pd.Series(50.0, idx), metric="flat", limit=200)
    assert flat.days_until is None  # no limit in sight
    short = capacity.forecast(y.iloc[:5], metric="size", limit=200)
    assert short.method == "linear" and "short history" in short.notes[0]


def test_windows_need_two_weeks():
    s = _daily(7, "1h")
    w = windows.maintenance_windows(s)
    assert not w.enough_history and "not enough history" in w.note and not w.windows


@pytest.fixture
def history(repo):
    from tests.ml_history import write_history

    spikes = {24 * 15 - 5: 8.0}  # one hour of eight times the usual load, 5 hours ago
    ids = write_history("mlhist", days=15, spikes=spikes)
    return ids


def test_service_layer_over_stored_history(history):
    # maintenance window: the known quiet Wednesday 03:00 hour comes first
    w = api.maintenance_windows("mlhist")
    assert w.enough_history, w.note
    assert w.windows[0]["window"].startswith("Wed 03:00"), w.windows
    assert w.windows[0]["confidence"] >= 0.5
    assert len(w.heatmap) == 168
    # training: 15 days: daily STL plus the weekly profile
    m1 = api.train_ml("mlhist")
    assert m1.version == 1 and m1.status == "active" and m1.points > 300
    assert m1.methods["stmt_time_s_per_s"] == "stl(daily)+weekly" and m1.enough_history
    assert m1.validation["alert_rate"] < 0.02
    m2 = api.train_ml("mlhist")
    models = {m.version: m.status for m in api.ml_models("mlhist")}
    assert models == {2: "active", 1: "previous"} and m2.path and m2.path.endswith("v2.joblib")
    # anomalies: the injected hour is found, with the metrics that moved and their range
    found = api.ml_anomalies("mlhist")
    alerts = found[found["severity"] == "alert"]
    assert len(alerts) >= 1
    spike_at = pd.Timestamp(history[24 * 15 - 5][1])
    hit = alerts[(alerts["begin_at"] <= spike_at) & (alerts["end_at"] >= spike_at)]
    assert len(hit) == 1, alerts[["begin_at", "end_at", "metrics"]]
    # the synthetic weekend edge (a hard step at midnight) may alert too, far below the incident
    others = alerts.drop(hit.index)
    assert len(others) <= 3, others[["begin_at", "score", "metrics"]]
    assert others.empty or hit.iloc[0]["score"] >= 3 * others["score"].max()
    metrics = {m["metric"]: m for m in hit.iloc[0]["metrics"]}
    assert "stmt_time_s_per_s" in metrics
    assert metrics["stmt_time_s_per_s"]["value"] > metrics["stmt_time_s_per_s"]["high"]
    # capacity: size grows 50 MB/h; no host figures for this target: days_until is null
    rep = api.capacity_forecasts("mlhist", horizon_days=7)
    size = next(f for f in rep.forecasts if f.metric == "database_size")
    assert 0.9e9 < size.slope_per_day < 1.5e9
    assert size.days_until is None and any("free space unknown" in n for n in size.notes)
    conns = next(f for f in rep.forecasts if f.metric == "connections")
    assert conns.limit == 97.0  # max_connections 100 - 3 reserved
    assert any("wraparound" in n for n in rep.not_captured)
    growth = api.storage_growth("mlhist")
    assert list(growth["datname"]) == ["ml"] and growth["growth_bytes_per_day"].iloc[0] > 0
    assert api.capacity_alerts("mlhist").empty  # nothing near its limit
    with pytest.raises(InvalidInput):
        api.maintenance_windows("mlhist", hours=30)


def _paced_snapshots(target: str, n: int, every_s: float) -> list[int]:
    """``n`` snapshots, one every ``every_s`` seconds (the capture cadence, not a wait)."""
    import time

    ids = []
    next_at = time.monotonic()
    for _ in range(n):
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ids.append(api.take_snapshot(target).snapshot_id)
        next_at += every_s
    return ids


@pytest.mark.slow
def test_detector_on_captured_snapshots_healthy_then_fault(repo, target_db):
    """A real shop workload with a snapshot every 2 s: the healthy run raises no alert (its
    first intervals are not judged: not enough history); a CPU hog injected into it is found,
    with statement time among the metrics that moved, linked to an ADDM analysis of its interval,
    and the return to normal raises nothing.

    On this busy 2-core machine the healthy closed-loop workload's throughput swings with the
    CPU other processes leave it (2.6 times its median for one interval at load 15-20): the
    same statements in flight completing more calls is the same work at another speed, a
    warning that says so (``anomaly.speed_only``), not an alert.

    Scored on the workload's database (``database=``): on the shared PostgreSQL 15 server of
    CI, the other suites' sessions and transactions are part of the cluster's figures (a
    connection storm of another suite is a real change of the cluster, not of this run)."""
    import threading
    from datetime import UTC, datetime

    from psycopg.conninfo import conninfo_to_dict

    from ops_core.workload.driver import run_shop
    from ops_core.workload.faults import CpuHog

    db = conninfo_to_dict(target_db)["dbname"]
    api.add_target("mlcap", target_db)
    run_shop(target_db, duration_s=1, clients=1)  # builds the demo schema first
    stop = threading.Event()
    load = threading.Thread(
        target=run_shop, args=(target_db,), kwargs={"duration_s": 900, "clients": 2, "stop": stop}
    )
    load.start()
    try:
        _paced_snapshots("mlcap", 6, 2.0)
        early = api.ml_anomalies("mlcap", database=db)
        assert early.empty and "not enough history" in early.attrs["note"]
        _paced_snapshots("mlcap", 16, 2.0)  # 21 intervals: the last 11 judged
        healthy = api.ml_anomalies("mlcap", database=db)
        bad = healthy[healthy["severity"] == "alert"]
        assert bad.empty, [
            (r["begin_at"], r["end_at"], r["score"], r["metrics"]) for _, r in bad.iterrows()
        ]
        fault_at = datetime.now(UTC)
        with CpuHog(target_db, sessions=2):
            _paced_snapshots("mlcap", 5, 2.0)  # an alert must last 6 s: 3 intervals of 2 s
        fault_end = datetime.now(UTC)
        _paced_snapshots("mlcap", 3, 2.0)
    finally:
        stop.set()
        load.join(timeout=60)
    found = api.ml_anomalies("mlcap", fault_at, database=db)
    assert (found["datname"] == db).all()
    alerts = found[found["severity"] == "alert"]
    inside = alerts[
        (alerts["begin_at"] <= pd.Timestamp(fault_end))
        & (alerts["end_at"] >= pd.Timestamp(fault_at))
    ]
    assert len(inside) >= 1, found[["begin_at", "end_at", "severity", "metrics"]]
    moved = {m["metric"]: m for m in inside.iloc[0]["metrics"]}
    assert "stmt_time_s_per_s" in moved, inside.iloc[0]["metrics"]
    assert moved["stmt_time_s_per_s"]["value"] > moved["stmt_time_s_per_s"]["high"]
    assert inside["addm_analysis_id"].notna().any()
    # the return to normal is judged against the healthy values before the fault: no alert
    after = alerts.drop(inside.index)
    assert after.empty, after[["begin_at", "metrics"]]
    # the cluster-wide anomalies are stored apart from the database's
    assert api.ml_anomalies("mlcap", detect=False)["datname"].isna().all()
    with pytest.raises(InvalidInput, match="not in the snapshots"):
        api.ml_anomalies("mlcap", database="no_such_db_ml2")


def test_capacity_page_renders_forecasts_anomalies_and_windows(history):
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    main = Path(__file__).resolve().parents[1] / "app" / "main.py"
    api.ml_anomalies("mlhist")  # stored anomalies for the chart and table
    st.cache_data.clear()
    at = AppTest.from_file(str(main), default_timeout=180)
    at.session_state["target"] = "mlhist"
    at.run()
    at.switch_page(str(main.parent / "views" / "capacity.py"))
    at.run()
    assert not at.exception, at.exception
    text = "\n".join(
        [str(e.value) for e in at.markdown]
        + [df.value.to_string() for df in at.dataframe]
        + [f"{m.label} {m.value}" for m in at.metric]
        + [str(e.value) for e in at.caption]
    )
    assert "database_size" in text and "wraparound" in text
    assert "Wed 03:00-04:00 UTC" in text  # the known quiet window
    assert "Anomalies stored" in text


def test_cli_over_stored_history(history):
    """The real `opscore` entry point once (a subprocess), the other commands in process
    (the same typer app; each subprocess paid the CLI's imports again)."""
    import json

    from typer.testing import CliRunner

    from ops_core.cli import app
    from tests.helpers import run_cli

    r = run_cli("capacity", "forecast", "--target", "mlhist", "--horizon-days", "7", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    size = next(f for f in rep["forecasts"] if f["metric"] == "database_size")
    assert size["days_until"] is None and len(size["frame"]) == 7 * 24
    cli = CliRunner()

    def run(*args: str):
        res = cli.invoke(app, list(args))
        res.err = res.stderr if res.stderr_bytes is not None else ""
        return res

    r = run("capacity", "windows", "--target", "mlhist")
    assert r.exit_code == 0 and "Wed 03:00-04:00 UTC" in r.stdout, r.stdout + r.err
    r = run("ml", "train", "--target", "mlhist")
    assert r.exit_code == 0 and "Model v1" in r.stdout, r.stdout + r.err
    r = run("ml", "anomalies", "--target", "mlhist", "--severity", "alert", "--json")
    assert r.exit_code == 0, r.err
    assert any(a["severity"] == "alert" for a in json.loads(r.stdout))
    bad = run("capacity", "windows", "--target", "mlhist", "--hours", "99")
    assert bad.exit_code != 0 and "hours=99" in bad.err


@pytest.fixture
def short_history(repo):
    """Three days of hourly history: enough for the daily seasonal model."""
    from tests.ml_history import write_history

    return write_history("mlhist", days=3)


@pytest.mark.slow
def test_retrain_flow_and_its_schedule(prefect_harness, short_history):
    from flows.ml import ml_retrain_flow
    from flows.serve import build_deployments
    from ops_core.config import Settings

    out = ml_retrain_flow(targets=["mlhist"])
    assert out[0]["target"] == "mlhist" and out[0]["version"] == 1 and out[0]["enough_history"]
    assert api.ml_models("mlhist")[0].status == "active"
    deps = {d.name: d for d in build_deployments(Settings(ml_retrain_cron="5 1 * * *"))}
    assert deps["ml-retrain"].schedules[0].schedule.cron == "5 1 * * *"
