"""EXPLAIN safety and coverage (one path for the app's plan view and ADDM): planning never runs
an application user's function with the monitoring role's rights, and pg_stat_statements texts
such as ``interval $1`` get a plan (GENERIC_PLAN on 16+, PREPARE + force_generic_plan on 14-15).
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from ops_core.collectors import live
from ops_core.targets import connection

from .addm_helpers import ensure_plan_role


@pytest.fixture
def app_db(pg, target_db):
    """A target database with an application user who owns a table and an IMMUTABLE function
    whose side effect is terminating a superuser session (the canary)."""
    with pg.admin() as a:
        a.execute("DROP ROLE IF EXISTS plan_app_user")
        a.execute("CREATE ROLE plan_app_user LOGIN PASSWORD 'x'")
    with psycopg.connect(target_db, autocommit=True) as c:
        c.execute("GRANT CREATE, USAGE ON SCHEMA public TO plan_app_user")
        c.execute("SET ROLE plan_app_user")
        c.execute("CREATE TABLE orders_app (id int, created_at timestamptz)")
        c.execute("INSERT INTO orders_app SELECT g, now() FROM generate_series(1, 1000) g")
        c.execute(
            "CREATE FUNCTION evil() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'plan-canary'; RETURN 1; END $$"
        )
    canary = psycopg.connect(target_db, autocommit=True, application_name="plan-canary")
    try:
        yield target_db, canary
    finally:
        canary.close()
        with psycopg.connect(target_db, autocommit=True) as c:
            c.execute("DROP OWNED BY plan_app_user")
        with pg.admin() as a:
            a.execute("DROP ROLE IF EXISTS plan_app_user")


def _alive(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def test_superuser_without_plan_role_refuses(pg, app_db):
    dsn, _ = app_db
    with pg.admin() as a:
        a.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(live.PLAN_ROLE)))
    try:
        with connection.monitoring_session(dsn) as conn:
            p = live.plan(conn, "SELECT * FROM orders_app WHERE id = $1")
        assert p.plan is None and live.PLAN_ROLE in (p.reason or "")
    finally:
        ensure_plan_role(pg)


def test_immutable_function_side_effect_never_happens(pg, app_db):
    dsn, canary = app_db
    ensure_plan_role(pg)
    text = "SELECT * FROM orders_app WHERE id = evil()"
    with connection.monitoring_session(dsn) as conn:
        p = live.plan(conn, text)
        assert p.plan is None and "public.evil" in (p.reason or ""), p
        with pytest.raises(live.PlanRefused):  # the app's plan view path
            live.explain(conn, text)
        assert _alive(canary)
        # the explicit action plans it, under the least-privilege role: the function runs but
        # cannot terminate a superuser's session
        p = live.plan(conn, text, allow_functions=True)
        assert _alive(canary)
        reason = (p.reason or "").lower()
        assert p.plan is None and ("permission denied" in reason or "superuser" in reason), p
    # the same statement as the app user really runs it (proves the function does harm
    # under a role that may)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(text)
    assert not _alive(canary)


def test_view_with_user_function_not_planned_automatically(pg, app_db):
    dsn, canary = app_db
    ensure_plan_role(pg)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET ROLE plan_app_user")
        c.execute("CREATE VIEW v_evil AS SELECT id FROM orders_app WHERE id = evil()")
    with connection.monitoring_session(dsn) as conn:
        p = live.plan(conn, "SELECT * FROM v_evil WHERE id = $1")
    assert p.plan is None and "evil" in (p.reason or ""), p
    assert _alive(canary)


def test_typed_literal_texts_get_a_plan(pg, app_db):
    dsn, _ = app_db
    ensure_plan_role(pg)
    with psycopg.connect(dsn, autocommit=True) as c:  # an extension's '=' operators do not
        c.execute("CREATE EXTENSION IF NOT EXISTS citext")  # stop plans (installed by a DBA)
    texts = [
        "SELECT count(*) FROM orders_app WHERE created_at > now() - interval $1",
        "SELECT * FROM orders_app WHERE id = $1 AND created_at < timestamp with time zone $2",
        "SELECT * FROM orders_app WHERE id = ANY($1) ORDER BY id LIMIT $2",
        "UPDATE orders_app SET created_at = now() WHERE id = $1",
        "SELECT id FROM orders_app WHERE id = 42",
    ]
    with connection.monitoring_session(dsn) as conn:
        for t in texts:
            p = live.plan(conn, t, rows_only=True)
            assert p.plan is not None, (t, p.reason)
            generic = "generic_plan" if pg.major >= 16 else "prepare_generic"
            assert p.method == ("plain" if "$" not in t else generic)
            assert "Node Type" in p.plan
        # nothing of the plan is left behind (PREPARE on 14-15)
        n = conn.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE %s", ("opscore_plan%",)
        ).fetchone()[0]
        assert n == 0
    assert live.as_select("UPDATE t SET a = $1 WHERE id = $2") == "SELECT $1 FROM t WHERE id = $2"
    assert live.as_select("DELETE FROM t WHERE id = $1") == "SELECT 1 FROM t WHERE id = $1"
    assert live.rewrite_typed_params("now() - interval $1") == "now() - $1::interval"
