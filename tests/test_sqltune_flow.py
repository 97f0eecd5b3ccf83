"""The flows of the SQL Tuning Advisor and SQL Monitor, run for real (Prefect's test harness)."""

from __future__ import annotations

import psycopg
import pytest

from ops_core import api
from ops_core.config import Settings
from ops_core.errors import ConfigError
from tests.addm_helpers import ensure_plan_role


def test_serve_schedules_sqltune_top_and_sqlmon_keep(repo, target_db):
    from flows.serve import build_deployments

    api.add_target("servetune", target_db)
    deps = {
        d.name: d
        for d in build_deployments(
            Settings(sqltune_cron="5 2 * * *", sqltune_top=7, sqlmon_keep_minutes=3)
        )
    }
    top = deps["sqltune-top"]
    assert top.schedules[0].schedule.cron == "5 2 * * *"
    assert top.parameters == {"targets": None, "top": 7}
    assert deps["sqlmon-keep"].schedules[0].schedule.interval.total_seconds() == 180
    with pytest.raises(ConfigError) as err:
        build_deployments(Settings(sqltune_cron="nightly"))
    assert "sqltune_cron" in err.value.message


def test_sqltune_top_flow_tunes_the_days_top_sql(prefect_harness, repo, target_db, pg):
    from flows.sqltune import sqlmon_keep_flow, sqltune_top_flow

    ensure_plan_role(pg)
    api.add_target("flowtune", target_db)
    with psycopg.connect(target_db, autocommit=True) as c:
        c.execute('CREATE TABLE "Items" (id int, k int)')
        c.execute('INSERT INTO "Items" SELECT g, g % 100 FROM generate_series(1, 5000) g')
        c.execute('ANALYZE "Items"')
    api.take_snapshot("flowtune")
    with psycopg.connect(target_db, autocommit=True) as c:
        for k in range(20):
            c.execute('SELECT id FROM "Items" WHERE k = %s', (k,))
    api.take_snapshot("flowtune")
    out = sqltune_top_flow(targets=["flowtune"], top=3, runs=1)
    task = api.get_tuning_task(out["flowtune"])
    assert task.status == "done" and task.statements
    assert any('"Items"' in s["sql"] for s in task.statements)
    kept = sqlmon_keep_flow(targets=["flowtune"])
    assert kept["flowtune"] >= 0 and kept["_purged"] >= 0
