"""ADDM on application SQL that is correct but scales badly (faults in workload.faults_sql):
deep LIMIT/OFFSET pagination reads and throws away every row before the page."""

from __future__ import annotations

import pytest

from ops_core.workload.faults_sql import ConnectionChurn, DeepOffsetPagination

from .addm_helpers import addm_shop, describe, run_scenario

pytestmark = pytest.mark.slow
TARGET = "addmsql"


@pytest.fixture(scope="module")
def shop(pg, opscore_env):
    with addm_shop(pg, TARGET, "addms") as s:
        yield s


def test_deep_offset_pagination_is_named_with_keyset_advice(shop):
    dsn, db = shop
    fault = DeepOffsetPagination(dsn)
    sc = run_scenario(
        "deep_offset", "deep_offset", TARGET, dsn, fault, database=db,
    )  # fmt: skip
    top = sc.top
    assert top.type == "deep_offset", describe(sc)
    assert top.objects == [fault.table], describe(sc)
    rec = top.recommendations[0]
    assert rec.action_type == "application" and "OFFSET" not in rec.action.split("--")[0]
    assert "WHERE id > $" in rec.action, describe(sc)
    assert not any(f.type == "cpu_bound_sql" for f in sc.analysis.findings), describe(sc)


def test_a_session_per_request_is_connection_churn(shop):
    """An application without a pool (three clients, each request a new session running one
    lookup by primary key): before, 'nothing significant' - each statement takes microseconds
    and the sessions' start-up is in no statement and no ASH sample."""
    dsn, db = shop
    fault = ConnectionChurn(dsn)
    sc = run_scenario("connection_churn", "connection_churn", TARGET, dsn, fault, database=db)
    top = sc.top
    assert top.type == "connection_churn", describe(sc)
    ev = top.evidence
    assert ev["database"] == db and ev["new_sessions"] >= 200, describe(sc)
    assert ev["session_setup_ms"] is not None and ev["session_setup_ms"] > 0, describe(sc)
    assert ev["source"]["application"] == fault.application_name, describe(sc)
    assert "pool" in top.recommendations[0].action.lower(), describe(sc)
