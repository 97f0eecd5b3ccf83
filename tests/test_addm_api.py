"""ADDM API and CLI: stored analyses (list, get, findings, recommendations, delete), a range
without ASH samples (snapshot-only findings, said so), bad input, the pure parts."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from ops_core import api
from ops_core.analysis.addm import shape
from ops_core.errors import InvalidInput, NotFound
from ops_core.workload import faults
from ops_core.workload.driver import BackgroundShop
from ops_core.workload.schema import setup_shop_schema

from .helpers import run_cli

TARGET = "addmapi"


def test_sql_shape_finds_tables_and_equality_predicates():
    s = shape("SELECT id, status FROM demo.orders WHERE reference = $1")
    assert s.tables == ("demo.orders",) and s.eq_columns == (("demo.orders", "reference"),)
    j = shape(
        "SELECT c.city, count(*) FROM demo.order_events e JOIN demo.customers c "
        "ON c.id = e.customer_id WHERE e.kind = $1 AND c.city IN ($2, $3) GROUP BY c.city"
    )
    assert j.eq_columns == (("demo.order_events", "kind"), ("demo.customers", "city"))
    assert j.aggregates  # rows per call say nothing about the filter's selectivity
    u = shape("UPDATE products SET stock = stock - $1 WHERE id = $2")
    assert u.kind == "update" and u.eq_columns == (("public.products", "id"),)
    assert shape("SELECT * FROM t WHERE a > $1").eq_columns == ()
    assert not shape("this is not sql").parsed


@pytest.fixture(scope="module")
def target(pg, opscore_env):
    from ops_core import repository

    with repository.session() as repo:
        repository.migrate(repo)
    dsn = pg.create_database("addmapi")
    setup_shop_schema(dsn, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")
    api.add_target(TARGET, dsn)
    db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    try:
        yield dsn, db
    finally:
        api.remove_target(TARGET)
        pg.drop_database(dsn)


@pytest.mark.slow
def test_without_ash_snapshot_only_findings_and_stored_analysis(target, opscore_env):
    dsn, db = target
    with BackgroundShop(dsn, clients=1), faults.MissingIndex(dsn):
        begin = api.take_snapshot(TARGET)
        time.sleep(5)
        end = api.take_snapshot(TARGET)
        a = api.run_addm(TARGET, database=db)  # the last interval: begin..end
    assert (a.begin_snapshot_id, a.end_snapshot_id) == (begin.snapshot_id, end.snapshot_id)
    assert a.ash_samples == 0 and a.db_time_source == "pg_stat_statements"
    assert any("ADDM needs ASH" in n for n in a.notes)
    top = a.findings[0]
    assert top.type == "missing_index" and top.snapshot_only
    assert "demo.orders.reference" in top.objects
    # the target's first interval: no history to judge the statements against, and it says so
    assert any("No earlier snapshots of this target" in n for n in a.notes), a.notes
    hist = top.evidence["per_statement"][0]["history"]
    assert hist["status"] == "no_history" and "no earlier snapshots" in hist["summary"]
    # the DB time is pg_stat_statements time of the range, and the finding's share of it
    assert a.db_time_s == pytest.approx(a.pgss_time_s)
    assert 0 < top.impact_pct <= 100

    # stored: list, get, findings, recommendations
    assert a.analysis_id in [x.analysis_id for x in api.list_addm(TARGET)]
    got = api.get_addm(a.analysis_id)
    assert [f.type for f in got.findings] == [f.type for f in a.findings]
    assert got.findings[0].evidence == a.findings[0].evidence
    recs = api.addm_recommendations(a.analysis_id)
    assert recs[0]["action"] == "CREATE INDEX CONCURRENTLY ON demo.orders (reference);"
    assert recs[0]["finding_rank"] == 1

    # the CLI renders and exports the same analysis
    env = opscore_env
    r = run_cli("addm", "show", str(a.analysis_id), env=env)
    assert r.returncode == 0, r.stderr
    assert "missing_index" in r.stdout and "CREATE INDEX CONCURRENTLY" in r.stdout
    r = run_cli("addm", "findings", str(a.analysis_id), "--json", env=env)
    assert json.loads(r.stdout)[0]["type"] == "missing_index"
    r = run_cli("addm", "list", "--target", TARGET, "--json", env=env)
    assert a.analysis_id in [x["analysis_id"] for x in json.loads(r.stdout)]
    r = run_cli("addm", "recommendations", str(a.analysis_id), env=env)
    assert r.returncode == 0 and "CREATE INDEX" in r.stdout

    # delete, then it is gone (clear errors)
    r = run_cli("addm", "delete", str(a.analysis_id), env=env)
    assert r.returncode == 0, r.stderr
    with pytest.raises(NotFound):
        api.get_addm(a.analysis_id)
    r = run_cli("addm", "show", str(a.analysis_id), env=env)
    assert r.returncode != 0 and f"no ADDM analysis {a.analysis_id}" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_input(target, opscore_env):
    dsn, db = target
    with pytest.raises(NotFound, match="no ADDM analysis 987654"):
        api.addm_findings(987654)
    with pytest.raises(NotFound):
        api.delete_addm(987654)
    with pytest.raises(InvalidInput, match="both"):
        api.run_addm(TARGET, 1, None)
    s1 = api.take_snapshot(TARGET)
    with pytest.raises(InvalidInput, match="same snapshot"):
        api.run_addm(TARGET, s1.snapshot_id, s1.snapshot_id)
    s2 = api.take_snapshot(TARGET)
    with pytest.raises(InvalidInput, match="reversed"):
        api.run_addm(TARGET, s2.snapshot_id, s1.snapshot_id)
    with pytest.raises(InvalidInput, match="not in the snapshots"):
        api.run_addm(TARGET, s1.snapshot_id, s2.snapshot_id, database="no_such_db")
    with pytest.raises(InvalidInput, match="threshold"):
        api.run_addm(TARGET, s1.snapshot_id, s2.snapshot_id, min_impact_pct=150)
    r = run_cli("addm", "run", "--target", TARGET, "--begin", str(s2.snapshot_id), "--end",
                str(s1.snapshot_id), env=opscore_env)  # fmt: skip
    assert r.returncode != 0 and "reversed" in r.stderr and "Traceback" not in r.stderr
