"""Recommended SQL runs on real names (issue 22 pt 8): mixed case, reserved words, quotes.

The quoting helpers are checked by running every statement shape ADDM recommends on a server,
and one real run (a mixed-case table whose looked-up column is named ``order``) checks the
missing-index recommendation end to end by running it."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from ops_core import api
from ops_core.analysis.addm.model import qident, qtable
from ops_core.workload import faults_scenarios as fs

from .addm_helpers import describe, ensure_plan_role, run_scenario

NAMES = [("public", "Orders", "order"), ("Sales Dept", "select", "User Id"), ("s", 'a"b', "x")]


def test_quoting_helpers():
    assert qtable("demo.orders") == "demo.orders"  # plain names stay readable
    assert qtable("public.Orders") == 'public."Orders"'
    assert qident("order") == '"order"' and qident("User Id") == '"User Id"'
    assert qident('a"b') == '"a""b"'


@pytest.mark.parametrize(("schema", "table", "column"), NAMES)
def test_recommended_statement_shapes_run(target_db, schema, table, column):
    with psycopg.connect(target_db, autocommit=True) as c:
        c.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        c.execute(
            sql.SQL("CREATE TABLE {} ({} int)").format(
                sql.Identifier(schema, table), sql.Identifier(column)
            )
        )
        name = f"{schema}.{table}"
        for stmt in (
            f"CREATE INDEX CONCURRENTLY ON {qtable(name)} ({qident(column)})",
            f"ANALYZE {qtable(name)}",
            f"VACUUM (VERBOSE) {qtable(name)}",
            f"ALTER TABLE {qtable(name)} RESET (autovacuum_enabled)",
        ):
            c.execute(stmt)
        idx = c.execute(
            "SELECT n.nspname || '.' || i.relname FROM pg_index x JOIN pg_class i "
            "ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace "
            "WHERE x.indrelid = %s::regclass",
            (qtable(name),),
        ).fetchone()[0]
        c.execute(f"REINDEX INDEX CONCURRENTLY {qtable(idx)}")
        c.execute(f"DROP INDEX CONCURRENTLY {qtable(idx)}")


@pytest.mark.parametrize(("schema", "table", "column"), NAMES)
def test_trigram_index_recommendation_runs(target_db, schema, table, column):
    with psycopg.connect(target_db, autocommit=True) as c:
        c.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        c.execute(
            sql.SQL("CREATE TABLE {} ({} text)").format(
                sql.Identifier(schema, table), sql.Identifier(column)
            )
        )
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        name = f"{schema}.{table}"
        c.execute(
            f"CREATE INDEX CONCURRENTLY ON {qtable(name)} USING gin ({qident(column)} gin_trgm_ops)"
        )
        am = c.execute(
            "SELECT am.amname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_am am ON am.oid = i.relam WHERE x.indrelid = %s::regclass",
            (qtable(name),),
        ).fetchone()[0]
        assert am == "gin"


@pytest.fixture(scope="module")
def wide(pg, opscore_env):
    from ops_core import repository

    with repository.session() as repo:
        repo.execute("DROP SCHEMA IF EXISTS opscore CASCADE")
        repository.migrate(repo)
    ensure_plan_role(pg)
    dsn = pg.create_database("addmq")
    api.add_target("addmquote", dsn)
    db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    try:
        yield dsn, db
    finally:
        pg.drop_database(dsn)


@pytest.mark.slow
def test_missing_index_on_mixed_case_table_and_reserved_column(wide):
    dsn, db = wide
    fault = fs.PlainTableMissingIndex(dsn, relname="Orders", column="order", keep=True)
    try:
        sc = run_scenario(
            "missing_index_quoted", "missing_index", "addmquote", dsn, fault,
            database=db, clients=0,
        )  # fmt: skip
        top = sc.top
        assert top.type == "missing_index", describe(sc)
        assert "public.Orders" in top.objects and "public.Orders.order" in top.objects
        action = top.recommendations[0].action
        assert action == 'CREATE INDEX CONCURRENTLY ON public."Orders" ("order");'
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(action)
            n = c.execute(
                "SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass",
                ('public."Orders"',),
            ).fetchone()[0]
        assert n == 1
    finally:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute('DROP TABLE IF EXISTS public."Orders"')
