"""ADDM on holders pg_stat_activity does not show: a prepared transaction left behind by a
two-phase commit whose coordinator never came back. It holds two rows' locks (payers wait on
pid 0) and the xmin horizon (the rows churned beside it cannot be vacuumed): both findings
must name the prepared transaction, with ROLLBACK/COMMIT PREPARED first - there is no session
to terminate. Runs on any server with max_prepared_transactions > 0 (the embedded one; the CI's
PostgreSQL 15 is configured so)."""

from __future__ import annotations

import psycopg
import pytest

from ops_core.analysis.addm.horizon import literal
from ops_core.workload.faults_horizon import PreparedTransactionLeft

from .addm_helpers import addm_shop, describe, run_scenario

pytestmark = pytest.mark.slow
TARGET = "addmhorizon"


@pytest.fixture(scope="module")
def shop(pg, opscore_env):
    with psycopg.connect(pg.admin_dsn) as c:
        n = int(c.execute("SHOW max_prepared_transactions").fetchone()[0])
    if n == 0:
        pytest.skip(
            "this server does not allow prepared transactions (max_prepared_transactions = 0)"
        )
    with addm_shop(pg, TARGET, "addmh") as s:
        yield s


def test_a_prepared_transaction_left_behind_is_named_for_its_locks_and_the_horizon(shop):
    dsn, db = shop
    fault = PreparedTransactionLeft(dsn)
    sc = run_scenario(
        "prepared_transaction_left", "lock_contention", TARGET, dsn, fault, database=db,
        expected_set={"lock_contention", "vacuum_blocked"},
    )  # fmt: skip
    by_type = {f.type: f for f in sc.analysis.findings}
    gid = literal(fault.gid)
    lock = by_type.get("lock_contention")
    assert lock is not None and f"prepared transaction {gid}" in lock.title, describe(sc)
    assert lock.recommendations[0].action.startswith(f"ROLLBACK PREPARED {gid};"), describe(sc)
    assert 0 not in lock.sessions, describe(sc)
    vac = by_type.get("vacuum_blocked")
    assert vac is not None and f"prepared transaction {gid}" in vac.title, describe(sc)
    assert fault.table in vac.objects, describe(sc)
    assert not any(f.type == "idle_in_transaction" for f in sc.analysis.findings), describe(sc)
