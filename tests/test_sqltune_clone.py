"""What-if index verified by execution on a clone: a target's backup restored and started as a
clone, the index built there (never on the target), the selective lookup executed alternately
without and with it; the recommendation carries the medians and the measured ratio."""

from __future__ import annotations

import psycopg
import pytest

from ops_core import api
from tests.addm_helpers import ensure_plan_role
from tests.backup_helpers import drop_slot, drop_target, fast_backups, make_target, new_dir  # noqa: F401

LOOKUP = 'SELECT id, note FROM "Orders" WHERE customer = 42'


@pytest.mark.slow
@pytest.mark.usefixtures("fast_backups")
def test_index_advice_measured_on_a_clone(repo, pg):
    ensure_plan_role(pg)
    t = make_target(pg, "tuneclone")
    slot = f"opscore_test_{t.dbname[-10:]}"
    api.create_wal_slot(t.name, slot)
    clone = f"tc_{t.dbname[-8:]}"
    try:
        with psycopg.connect(t.dsn, autocommit=True) as c:
            c.execute('CREATE TABLE "Orders" (id int PRIMARY KEY, customer int, note text)')
            c.execute(
                'INSERT INTO "Orders" SELECT g, g % 5000, md5(g::text) '
                "FROM generate_series(1, 40000) g"
            )
            c.execute('ANALYZE "Orders"')
        api.take_full_backup(t.name)
        api.restore_backup(t.name, new_dir(), start=True, clone=clone)
        task = api.create_tuning_task(t.name, LOOKUP, clone=clone)
        done = api.execute_tuning_task(task.task_id, runs=5)
        assert done.status == "done"
        (idx,) = [r for r in api.tuning_recommendations(task.task_id) if r.type == "index"]
        print(f"clone-verified index: {idx.before_ms} ms -> {idx.after_ms} ms, "
              f"{idx.measured_speedup}x ({idx.sql})")  # fmt: skip
        assert idx.method == "clone" and idx.evidence["clone_used_index"] is True
        assert idx.before_ms > idx.after_ms > 0 and idx.measured_speedup > 2, idx
        assert idx.evidence["runs"] == 5
        with psycopg.connect(t.dsn) as c:  # the target never got the index
            assert not c.execute(
                "SELECT 1 FROM pg_indexes WHERE tablename = 'Orders' AND indexdef LIKE %s",
                ("%customer%",),
            ).fetchone()
    finally:
        if clone in [c.clone for c in api.list_clones()]:
            api.drop_clone(clone)
        drop_slot(pg, slot)
        drop_target(pg, t)
