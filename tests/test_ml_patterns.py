"""Workload patterns on a real server: phases of a known kind (OLTP point lookups, reporting
aggregates, a bulk load, maintenance), a snapshot after each interval; the statements fall into
different clusters, each interval is classified as its phase with the evidence, and the
response-time predictions and forecasts come with intervals."""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ops_core import api
from ops_core.errors import InvalidInput
from tests.helpers import run_cli

OLTP = "SELECT v FROM mlp_t WHERE k = %s"
REPORT = "SELECT k % 2000 AS g, sum(v), count(*) FROM mlp_t GROUP BY 1"
BULK = "INSERT INTO mlp_load SELECT g, g * 2 FROM generate_series(1, 5000) g"


@pytest.fixture
def phased(repo, target_db):
    """(kind, snapshot id) per interval. Scored on the test's database: pg_stat_statements is
    cluster-wide, and on the shared PostgreSQL 15 of CI other suites' statements are there."""
    api.add_target("mlpat", target_db)
    phases: list[tuple[str, int]] = []
    with psycopg.connect(target_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE mlp_t (k int PRIMARY KEY, v int)")
        conn.execute("CREATE TABLE mlp_load (k int, v int)")
        conn.execute("INSERT INTO mlp_t SELECT g, g % 97 FROM generate_series(1, 60000) g")
        conn.execute("VACUUM ANALYZE mlp_t")
        api.take_snapshot("mlpat")  # baseline

        def interval(kind: str, fn) -> None:
            fn()
            phases.append((kind, api.take_snapshot("mlpat").snapshot_id))

        for _ in range(5):
            interval("oltp", lambda: [conn.execute(OLTP, (k,)) for k in range(1, 400)])
        for _ in range(3):
            interval("reporting", lambda: [conn.execute(REPORT) for _ in range(3)])
        for _ in range(2):
            interval("batch", lambda: [conn.execute(BULK) for _ in range(2)])

        def maintenance() -> None:
            conn.execute("CREATE INDEX mlp_t_v ON mlp_t (v)")
            conn.execute("VACUUM (FREEZE, ANALYZE) mlp_t")
            conn.execute("DROP INDEX mlp_t_v")

        interval("maintenance", maintenance)
    return phases, conninfo_to_dict(target_db)["dbname"]


def test_patterns_classes_and_predictions(phased):
    phases, db = phased
    classes = api.ml_classifications("mlpat", database=db)
    by_sid = {int(r["snapshot_id"]): r for r in classes.to_dict("records")}
    for kind, sid in phases:
        row = by_sid[sid]
        assert row["class"] == kind, (kind, row)
        ev = row["evidence"]
        assert ev["time_share"][kind] >= 0.6 and ev["top"][0]["kind"] == kind, ev
    # statements cluster by profile: the point lookup and the aggregate are apart
    rep = api.ml_patterns("mlpat", database=db)
    members = {m["query"]: m for m in rep.members}
    lookup = next(m for q, m in members.items() if q.startswith("SELECT v FROM mlp_t WHERE"))
    report = next(m for q, m in members.items() if "GROUP BY" in q and "mlp_t" in q)
    assert lookup["kind"] == "oltp" and report["kind"] == "reporting"
    assert lookup["cluster"] != report["cluster"] and len(rep.clusters) >= 2
    assert lookup["rows_per_call"] == 1.0 and report["rows_per_call"] == 2000.0
    assert abs(sum(c["time_share"] for c in rep.clusters) - 1) < 0.01
    # predictions: the point lookup ran in 5 intervals; expected value inside its interval
    pred = api.ml_predictions("mlpat", top=20, database=db)
    p = pred[pred["queryid"] == lookup["queryid"]].iloc[0]
    assert p["intervals"] == 5 and p["lower_ms"] <= p["expected_ms"] <= p["upper_ms"]
    fc = api.response_time_forecasts("mlpat", horizon_days=1, top=3)
    assert fc and all(f.unit == "ms" and f.metric.startswith("response_time:") for f in fc)
    assert all((f.frame["lower"] <= f.frame["upper"]).all() for f in fc)
    with pytest.raises(InvalidInput):
        api.ml_predictions("mlpat", top=0)
    # the app's Capacity page shows the clusters, classes and predictions
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    main = Path(__file__).resolve().parents[1] / "app" / "main.py"
    st.cache_data.clear()
    at = AppTest.from_file(str(main), default_timeout=180)
    at.session_state["target"] = "mlpat"
    at.run()
    at.switch_page(str(main.parent / "views" / "capacity.py"))
    at.run()
    assert not at.exception, at.exception
    text = "\n".join(
        [str(e.value) for e in at.markdown]
        + [str(e.value) for e in at.subheader]
        + [df.value.to_string() for df in at.dataframe]
    )
    assert "Statement clusters" in text and "Workload class per interval" in text, text[:2000]
    # the CLI shows the same
    r = run_cli("ml", "classify", "--target", "mlpat", "--database", db, "--json")
    assert r.returncode == 0, r.stderr
    assert {c["class"] for c in json.loads(r.stdout)} >= {"oltp", "reporting", "maintenance"}
    r = run_cli("ml", "patterns", "--target", "mlpat", "--database", db)
    assert r.returncode == 0 and "Statement clusters" in r.stdout, r.stdout + r.stderr
    r = run_cli("capacity", "response-time", "--target", "mlpat", "--horizon-days", "1")
    assert r.returncode == 0 and "Response time" in r.stdout, r.stdout + r.stderr
