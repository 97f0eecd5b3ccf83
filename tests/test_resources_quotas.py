"""Quotas on a real server: measured, breached at the soft and hard limits, enforced through
the actions module (journaled), reverted when the measure is back under, and alerted through
the quota_used_pct alert metric. Nothing is enforced that PostgreSQL cannot enforce."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ops_core import api
from ops_core.errors import InvalidInput

RUN = uuid.uuid4().hex[:8]
PASSWORD = f"q-{RUN}-pw"


@pytest.fixture
def quota_target(pg, repo, target_db):
    role = f"q_user_{RUN}"
    with pg.admin() as c:
        c.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        port = c.execute("SHOW port").fetchone()[0]
    with psycopg.connect(target_db, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA q_s_{RUN}")
        c.execute(f"GRANT CREATE, USAGE ON SCHEMA q_s_{RUN} TO PUBLIC")
        c.execute(
            f"CREATE TABLE q_s_{RUN}.filler AS SELECT g AS id FROM generate_series(1, 5000) g"
        )
    api.add_target("qt", target_db)
    api.set_action_policy("qt", "quota_enforce", "implement")
    login = make_conninfo(target_db, host="127.0.0.1", port=port, user=role, password=PASSWORD)
    try:
        yield role, login
    finally:
        with pg.admin() as c:
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
        with psycopg.connect(target_db, autocommit=True) as c:
            c.execute(f"DROP SCHEMA IF EXISTS q_s_{RUN} CASCADE")
        with pg.admin() as c:
            c.execute(f"DROP ROLE IF EXISTS {role}")


def _connlimit(pg, role: str) -> int:
    with pg.admin() as c:
        return c.execute(
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (role,)
        ).fetchone()[0]


def test_role_connection_quota_enforced_and_reverted(pg, quota_target):
    role, login = quota_target
    q = api.set_quota("conns", "role", role, "connections", 1, 2, enforce=True, target="qt")
    assert q.status == "not evaluated" and q.enforcement.startswith("ALTER ROLE")
    run = api.evaluate_quotas("qt")
    assert [r.status for r in run.results] == ["ok"] and run.results[0].measured == 0
    held = [psycopg.connect(login, autocommit=True) for _ in range(2)]
    try:
        run = api.evaluate_quotas("qt")
        assert run.results[0].status == "hard" and run.results[0].measured == 2
        assert run.enforced == 1 and _connlimit(pg, role) == 2
        entry = api.get_action(run.results[0].action_id)
        assert entry.feature == "quota_enforce" and "CONNECTION LIMIT -1" in " ".join(
            entry.undo_sql.split()
        )
        with pytest.raises(psycopg.OperationalError, match="too many connections"):
            psycopg.connect(login).close()
        # the alert metric sees the breach: a rule at the soft limit fires
        api.create_alert_rule(
            name=f"q_{RUN}", metric="quota_used_pct", op=">=", value=100, target="qt"
        )
        assert api.evaluate_alerts("qt").fired == 1
        # still over: the enforcement stays, nothing is journaled twice
        again = api.evaluate_quotas("qt")
        assert again.enforced == 0 and again.reverted == 0 and _connlimit(pg, role) == 2
    finally:
        for c in held:
            c.close()
    run = api.evaluate_quotas("qt")  # back under the soft limit: reverted
    assert run.results[0].status == "ok" and run.reverted == 1
    assert _connlimit(pg, role) == -1
    got = api.get_quota("conns", target="qt")
    assert not got.enforced
    assert [e["event"] for e in reversed(got.events)] == [
        "ok",
        "hard",
        "enforced",
        "ok",
        "reverted",
    ]
    psycopg.connect(login).close()  # logins work again


def test_schema_size_quota_revokes_create_and_gives_it_back(pg, target_db, quota_target):
    role, login = quota_target
    schema = f"q_s_{RUN}"
    api.set_quota(
        "space", "schema", schema, "size_bytes", hard_limit="1kB", enforce=True, target="qt"
    )
    run = api.evaluate_quotas("qt")
    res = run.results[0]
    assert res.status == "hard" and res.measured > 1024 and run.enforced == 1
    with psycopg.connect(login, autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(f"CREATE TABLE {schema}.more (id int)")
    api.delete_quota("space", target="qt")  # deleting reverts
    with psycopg.connect(login, autocommit=True) as c:
        c.execute(f"CREATE TABLE {schema}.more (id int)")
        c.execute(f"DROP TABLE {schema}.more")
    assert not api.list_quotas("qt")


def test_quota_bad_input_and_what_cannot_be_enforced(quota_target):
    with pytest.raises(InvalidInput, match="cannot cap the size of a database"):
        api.set_quota(
            "db", "database", "postgres", "size_bytes", hard_limit="1GB", enforce=True, target="qt"
        )
    with pytest.raises(InvalidInput, match="soft limit"):
        api.set_quota("x", "role", "r", "connections", 5, 2, target="qt")
    with pytest.raises(InvalidInput, match="cannot measure"):
        api.set_quota("x", "role", "r", "size_bytes", 5, target="qt")
    with pytest.raises(InvalidInput, match="not a limit"):
        api.set_quota("x", "role", "r", "connections", "5GB", target="qt")
    assert not api.list_quotas("qt")
    # a database size quota is measured and alerted
    api.set_quota("db", "database", "postgres", "size_bytes", soft_limit="1kB", target="qt")
    run = api.evaluate_quotas("qt")
    assert run.results[0].status == "soft" and run.enforced == 0
    api.set_quota("gone", "role", f"nobody_{RUN}", "connections", 1, target="qt")
    st = {r.quota: r for r in api.evaluate_quotas("qt").results}
    assert st["gone"].status == "not available" and "does not exist" in st["gone"].message


@pytest.mark.slow
def test_quotas_flow_runs_the_evaluation(prefect_harness, quota_target):
    from flows.quotas import quotas_flow
    from flows.serve import build_deployments

    role, _ = quota_target
    api.set_quota("flowq", "role", role, "connections", soft_limit=0, target="qt")
    out = quotas_flow("qt")
    assert out == {"quotas": 1, "breaches": 1, "enforced": 0, "reverted": 0}
    assert api.get_quota("flowq", target="qt").status == "soft"
    assert "quotas" in {d.name for d in build_deployments()}
