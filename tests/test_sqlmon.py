"""SQL Monitor against a real server: live executions (elapsed from clock_timestamp, wait class,
blocking chain to its root, COPY progress), kept in the repository after they finish (with
their ASH waits), details with timeline and plan, overall statistics and retention."""

from __future__ import annotations

import threading

import psycopg
import pytest

from ops_core import api
from ops_core.errors import InvalidInput, NotFound
from tests.helpers import WAIT_S, cancel_backends, run_cli, running_statement, wait_until


def _by_app(rows, app):
    return next((e for e in rows if e.application_name == app), None)


@pytest.mark.slow
def test_sql_monitor_live_kept_and_detailed(repo, target_db):
    api.add_target("mon", target_db)
    with psycopg.connect(target_db, autocommit=True) as c:
        c.execute('CREATE TABLE "Orders" (id int PRIMARY KEY, v int)')
        c.execute('INSERT INTO "Orders" SELECT g, 0 FROM generate_series(1, 10) g')
    stop = threading.Event()
    sampler = threading.Thread(
        target=api.run_ash,
        kwargs={"target": "mon", "interval_s": 0.25, "stop": stop, "flush_interval_s": 0.5},
        daemon=True,
    )
    sampler.start()
    holder = psycopg.connect(target_db, application_name="mon-holder")
    holder.execute('LOCK TABLE "Orders" IN SHARE MODE')  # idle in transaction, holding it
    copy_rows: list[bytes] = []
    copy_pid: list[int] = []

    def copy_out() -> None:  # a COPY that reports progress while it runs (cancelled below)
        with psycopg.connect(target_db, autocommit=True, application_name="mon-copy") as c:
            copy_pid.append(c.info.backend_pid)
            try:
                with c.cursor().copy(
                    "COPY (SELECT g, pg_sleep(0.2) FROM generate_series(1, 400) g) TO STDOUT"
                ) as cp:
                    for data in cp:
                        copy_rows.append(bytes(data))
            except psycopg.errors.QueryCanceled:
                pass

    copier = threading.Thread(target=copy_out, daemon=True)
    try:
        with (
            running_statement(target_db, "SELECT pg_sleep(600)", application_name="mon-sleep"),
            running_statement(
                target_db, 'UPDATE "Orders" SET v = v + 1 WHERE id = 1', application_name="mon-wait"
            ) as waiter_pid,
        ):
            copier.start()

            def live():
                rows = api.sql_monitor("mon", min_elapsed_s=1)
                have = {e.application_name for e in rows}
                return rows if {"mon-sleep", "mon-wait", "mon-copy"} <= have else None

            rows = wait_until(live, timeout=WAIT_S, step=0.5, what="three monitored executions")
            assert all(e.elapsed_s >= 1 and e.exec_id for e in rows)
            waiter = _by_app(rows, "mon-wait")
            assert waiter.pid == waiter_pid and waiter.wait_class == "Lock"
            assert waiter.root_blocker == holder.info.backend_pid
            assert waiter.blocking_chain == [holder.info.backend_pid]
            assert '"Orders"' in waiter.query
            copy = _by_app(rows, "mon-copy")
            assert copy.progress and copy.progress["command"] == "copy to"
            assert copy.progress["done"] >= 0 and copy.progress["unit"] == "tuples"
            sleep = _by_app(rows, "mon-sleep")
            # a second poll: the same executions (same ids), elapsed grown, never negative
            again = wait_until(
                lambda: (
                    (e := _by_app(api.sql_monitor("mon", min_elapsed_s=1), "mon-sleep"))
                    and e.elapsed_s > sleep.elapsed_s
                    and e
                ),
                what="the sleeper's elapsed to grow",
            )
            assert again.exec_id == sleep.exec_id

            def sampled():  # ASH has sampled the waiter while it waits (kept with its waits)
                api.capture_sql_monitor("mon")
                return any(
                    e.pid == waiter_pid and e.status == "running" and e.samples >= 2
                    for e in api.list_sql_executions("mon")
                )

            wait_until(sampled, what="ASH samples of the waiting execution")
            holder.commit()
            # the waiter got its lock and finished: the next poll marks it done
            wait_until(
                lambda: any(
                    e.pid == waiter_pid and e.status == "done"
                    for e in (api.sql_monitor("mon", min_elapsed_s=1) and [])
                    + api.list_sql_executions("mon")
                ),
                what="the waiter's execution to be marked done",
            )
    finally:
        holder.close()
        stop.set()
        if copy_pid:  # its progress was seen: no need to wait its 80 s out
            cancel_backends(target_db, copy_pid)
        sampler.join(WAIT_S)
        copier.join(WAIT_S)
    # after they finished: kept, with their ASH figures
    api.capture_sql_monitor("mon")
    kept = api.list_sql_executions("mon")
    w = next(e for e in kept if e.pid == waiter_pid)
    assert w.status == "done" and w.samples > 0 and w.waits.get("Lock", 0) > 0, kept
    s = next(e for e in kept if e.application_name == "mon-sleep")
    assert s.status == "done" and s.elapsed_s >= again.elapsed_s
    detail = api.sql_execution(w.exec_id)
    assert any(x["wait_class"] == "Lock" for x in detail.timeline)
    assert detail.waits_by_event[0]["wait_class"] == "Lock"
    assert detail.plan is not None and (detail.plan.plan or detail.plan.reason)
    if detail.plan.plan:  # planned (the plan role exists): the mixed-case table in it
        assert "Orders" in detail.plan.plan
    c = next(e for e in kept if e.application_name == "mon-copy")
    p = api.sql_execution_plan(c.exec_id)  # a COPY has no plan: the reason says why
    assert p.plan is None and "COPY" in p.reason
    st = api.sql_execution_statistics(w.exec_id)
    assert st["waits"][0]["wait_class"] == "Lock" and st["waits"][0]["pct"] > 0
    stats = api.sql_monitor_statistics("mon")
    assert stats.totals["executions"] >= 3
    assert sum(b["executions"] for b in stats.by_duration) == stats.totals["executions"]
    assert "Lock" in {x["wait_class"] for x in stats.by_wait_class}
    assert stats.top[0].elapsed_s == max(e.elapsed_s for e in kept)
    assert api.slow_queries("mon", limit=2)[0].elapsed_s == stats.top[0].elapsed_s
    # retention: finished executions older than 0 days go, nothing else is touched
    n = api.purge_sql_monitor("mon", keep_days=0)
    assert n == len([e for e in kept if e.status == "done"]) and n >= 3
    assert not api.list_sql_executions("mon", status="done")


def test_sql_monitor_bad_input(repo, target_db):
    api.add_target("mon2", target_db)
    with pytest.raises(InvalidInput):
        api.sql_monitor("mon2", min_elapsed_s=-1)
    with pytest.raises(InvalidInput):
        api.list_sql_executions("mon2", status="finished")
    with pytest.raises(NotFound):
        api.sql_execution(987654321)
    assert api.sql_monitor("mon2", min_elapsed_s=3600) == []


@pytest.mark.slow
def test_app_pages_render(repo, target_db):
    from tests.test_app import _run

    api.add_target("monapp", target_db)
    with running_statement(target_db, "SELECT pg_sleep(600)", application_name="monapp-sleep"):
        wait_until(
            lambda: api.sql_monitor("monapp", min_elapsed_s=0.5), what="an execution to show"
        )
        at = _run("sqlmon.py", {"target": "monapp", "sqlmon_paused": True, "sqlmon_min": 0.5})
        assert not at.exception, at.exception
        assert at.title[0].value == "SQL Monitor"
        shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
        assert "pg_sleep(600)" in shown
    at = _run("tuning.py", {"target": "monapp"})
    assert not at.exception, at.exception
    assert at.title[0].value == "SQL Tuning Advisor"


@pytest.mark.slow
def test_actual_plan_from_auto_explain_or_why_not(repo, target_db, pg):
    """A finished execution's actual plan comes from auto_explain in the server log where the
    target logs it (the embedded server loads it); elsewhere the reason says what to enable,
    and `target check` says how."""
    api.add_target("ae", target_db)
    with psycopg.connect(target_db, autocommit=True) as c:
        c.execute('CREATE TABLE "AeT" (id int)')
        c.execute('ALTER TABLE "AeT" SET (autovacuum_enabled = off)')  # never analysed
        c.execute('INSERT INTO "AeT" SELECT g FROM generate_series(1, 20000) g')
        loaded = c.execute(
            "SELECT 1 FROM pg_settings WHERE name = 'auto_explain.log_min_duration'"
        ).fetchone()
        if loaded:  # log this database's executions from 200 ms (the server's threshold is 5 s)
            db = c.info.dbname
            c.execute(f'ALTER DATABASE "{db}" SET auto_explain.log_min_duration = 200')
    holder = psycopg.connect(target_db, autocommit=True)  # closed below
    holder.execute("SELECT pg_advisory_lock(4242)")  # the statement waits on it mid-execution
    out: list = []
    run = threading.Thread(
        target=lambda: out.append(
            psycopg.connect(target_db, autocommit=True, application_name="ae-run")
            .execute(
                'SELECT count(*) FROM "AeT" WHERE id % 7 = 0 '
                "AND pg_advisory_lock_shared(4242) IS NOT NULL"
            )
            .fetchone()
        ),
        daemon=True,
    )
    run.start()
    try:
        e = wait_until(
            lambda: _by_app(api.sql_monitor("ae", min_elapsed_s=0.3), "ae-run"),
            what="the waiting statement in the SQL Monitor",
        )
        assert api.sql_execution_plan(e.exec_id).actual_plan_reason.startswith("Still running")
    finally:
        holder.close()  # releases the lock: the statement finishes
        run.join(WAIT_S)
    assert out == [(2857,)]
    api.capture_sql_monitor("ae", min_elapsed_s=0.3)  # marks what no longer runs as done
    assert [x.status for x in api.list_sql_executions("ae") if x.exec_id == e.exec_id] == ["done"]
    check = {c.name: c for c in api.check_target("ae").capabilities.checks}["auto_explain"]
    if pg.embedded is not None:  # auto_explain loaded, the log is the embedded server's file
        p = wait_until(
            lambda: (p := api.sql_execution_plan(e.exec_id)).actual_plan and p,
            what="the auto_explain plan in the log",
        )
        assert '"AeT"' in p.actual_plan or "AeT" in p.actual_plan
        assert "Seq Scan" in p.actual_plan and "actual rows=2857" in p.actual_plan
        assert p.actual_plan_analyzed and p.actual_plan_duration_ms >= 300
        assert "200ms" in check.value
        # the never-analysed table's estimate (default selectivity of id % 7 = 0) is far off:
        # the logged actual plan shows it as a misestimate, with what to do
        mis = api.adaptive_statistics("ae")
        row = mis[(mis["source"] == "auto_explain") & (mis["table"] == "AeT")].iloc[0]
        assert row["actual_rows"] == 2857 and row["factor"] >= 10
        sugg = [x for x in api.adaptive_suggestions("ae") if x["table"] == "AeT"]
        assert sugg and sugg[0]["suggestions"][0] == 'ANALYZE "AeT";'
        shown = run_cli("sql", "plan", str(e.exec_id))
        assert shown.returncode == 0 and "Actual plan" in shown.stdout, shown.stderr
    else:  # the machine's server: not loaded (or its log not readable here): said, with how
        p = api.sql_execution_plan(e.exec_id)
        assert p.actual_plan is None and "auto_explain" in p.actual_plan_reason, p
        assert "shared_preload_libraries" in p.actual_plan_reason or "log" in p.actual_plan_reason
        if not loaded:
            assert check.status == "info" and "shared_preload_libraries" in check.hint
