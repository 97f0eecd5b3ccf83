"""ADDM on real runs: each fault injector on the shop workload, then ADDM's top finding must
name the injected cause (object, SQL, session); a healthy run has no problem finding.

Each scenario: shop load (1 client) + the fault, ASH sampled every 0.25 s for ~6 s between two
snapshots. The confusion table (expected vs top finding) is appended to
``$OPSCORE_ADDM_TABLE`` (the suite sets reports/test-artifacts/addm-confusion.jsonl).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops_core.workload import faults

from .addm_helpers import addm_shop, describe, run_scenario

pytestmark = pytest.mark.slow  # scenario: each fault on a real workload, then ADDM

TARGET = "addmshop"


@pytest.fixture(scope="module")
def shop(pg, opscore_env):
    with addm_shop(pg, TARGET, "addm") as s:
        yield s


def _stmts(f) -> str:
    return " ".join(s.get("query") or "" for s in f.statements)


def test_healthy_run_has_no_problem_finding(shop):
    dsn, db = shop
    sc = run_scenario("healthy", "nothing_significant", TARGET, dsn, None, database=db)
    assert sc.top.type == "nothing_significant", describe(sc)
    assert not [f for f in sc.analysis.findings if f.is_problem], describe(sc)
    assert sc.analysis.db_time_source == "ash" and sc.analysis.db_time_s > 0
    # every top statement has a plan or the stated reason why not
    rows = sc.analysis.breakdown["sql"]
    assert rows and all(r["plan"] or r["plan_reason"] for r in rows), rows
    unplanned = [(r["query"], r["plan_reason"]) for r in rows if not r["plan"]]
    # the shop's texts (with interval $1 ...) all plan; COMMIT and INSERT ... VALUES cannot
    # (and say so)
    assert all(q == "COMMIT" or "VALUES" in q for q, _ in unplanned), unplanned


def test_missing_index(shop):
    dsn, db = shop
    sc = run_scenario(
        "missing_index", "missing_index", TARGET, dsn, faults.MissingIndex(dsn), database=db
    )
    top = sc.top
    assert top.type == "missing_index", describe(sc)
    assert "demo.orders.reference" in top.objects
    assert "reference" in _stmts(top)
    assert top.recommendations[0].action == "CREATE INDEX CONCURRENTLY ON demo.orders (reference);"


def test_missing_index_after_the_index_is_back(shop, pg):
    """The index is rebuilt before the end snapshot (the demo's order, or a DBA's fix): the
    range still scanned, so ADDM names the missing index and says that it exists now."""
    dsn, db = shop
    sc = run_scenario(
        "missing_index_fixed",
        "missing_index",
        TARGET,
        dsn,
        faults.MissingIndex(dsn),
        database=db,
        undo_before_end=True,
    )
    top = sc.top
    assert top.type == "missing_index", describe(sc)
    assert "demo.orders.reference" in top.objects and "reference" in _stmts(top)
    ev = top.evidence["per_statement"][0]
    assert ev["index_now"] == "demo.orders_reference_idx"
    assert ev["index_scans_in_range"] < ev["calls"]
    # the generic plan (GENERIC_PLAN on 16+, PREPARE on 14-15) tells it uses the index now
    assert ev["plan_now"] == "uses orders_reference_idx"
    assert top.recommendations[0].action.startswith("SELECT idx_scan FROM pg_stat_user_indexes")


def test_lock_contention(shop):
    dsn, db = shop
    sc = run_scenario(
        "lock_contention", "lock_contention", TARGET, dsn, faults.LockContention(dsn), database=db
    )
    top = sc.top
    assert top.type == "lock_contention", describe(sc)
    assert "demo.products" in top.objects
    assert "UPDATE demo.products" in _stmts(top)
    assert set(top.sessions) & set(sc.fault_info.roles["worker"])


def test_idle_in_transaction_blocker(shop):
    dsn, db = shop
    fault = faults.IdleInTransactionBlocker(dsn)
    sc = run_scenario("idle_in_transaction", "idle_in_transaction", TARGET, dsn, fault, database=db)
    top = sc.top
    assert top.type == "idle_in_transaction", describe(sc)
    assert top.sessions == [fault.holder_pid]
    assert top.recommendations[0].action == f"SELECT pg_terminate_backend({fault.holder_pid});"
    assert "demo.customers" in top.objects
    # the JSON a DBA scripts against: type, impact, objects, recommendations[].sql, cause
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, "-m", "ops_core.cli", "addm", "show", str(sc.analysis.analysis_id),
         "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    fs = doc["findings"]
    assert fs[0]["type"] == "idle_in_transaction" and fs[0]["impact_pct"] > 0
    assert fs[0]["objects"] and fs[0]["cause"] is None
    assert all("sql" in r for f in fs for r in f["recommendations"])
    ranks = {f["rank"]: f for f in fs}
    for f in fs:  # a symptom points at its cause, listed before it
        if f["cause"] is not None:
            assert ranks[f["cause"]]["rank"] < f["rank"]
    for f in fs:  # lock waits left beside an idle blocker are nested under it
        if f["type"] == "lock_contention" and fault.holder_pid in [
            b["pid"] for b in f["evidence"]["root_blockers"]
        ]:
            assert f["cause"] == fs[0]["rank"], f


def test_temp_spill(shop):
    dsn, db = shop
    sc = run_scenario("temp_spill", "temp_spill", TARGET, dsn, faults.TempSpill(dsn), database=db)
    top = sc.top
    assert top.type == "temp_spill", describe(sc)
    assert "row_number() OVER" in _stmts(top) or "JOIN demo.customers" in _stmts(top)
    assert "work_mem" in top.recommendations[0].action


def test_stale_statistics(shop):
    dsn, db = shop
    sc = run_scenario(
        "stale_statistics",
        "stale_statistics",
        TARGET,
        dsn,
        faults.StaleStatistics(dsn),
        database=db,
    )
    top = sc.top
    assert top.type == "stale_statistics", describe(sc)
    assert top.objects == ["demo.order_events"]
    assert top.recommendations[0].action == "ANALYZE demo.order_events;"
    assert any("RESET (autovacuum_enabled)" in r.action for r in top.recommendations)


def test_vacuum_blocked(shop):
    dsn, db = shop
    fault = faults.VacuumBlocked(dsn)
    sc = run_scenario("vacuum_blocked", "vacuum_blocked", TARGET, dsn, fault, database=db)
    top = sc.top
    assert top.type == "vacuum_blocked", describe(sc)
    assert top.objects == ["demo.carts"]
    assert top.sessions == [fault.holder_pid]


def test_cpu_hog(shop):
    dsn, db = shop
    sc = run_scenario("cpu_hog", "cpu_bound_sql", TARGET, dsn, faults.CpuHog(dsn), database=db)
    top = sc.top
    assert top.type == "cpu_bound_sql", describe(sc)
    assert "generate_series" in _stmts(top)
