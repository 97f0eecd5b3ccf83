"""What counts as DB time in ADDM: foreground sessions only (background processes have their
own section), and never opscore's own statements (issue 22 pts 5 and 6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg

from ops_core import api
from ops_core.analysis.addm import AddmInput, analyze
from ops_core.model.serialize import to_jsonable
from ops_core.repository import _json_dumps
from ops_core.repository.ash_read import SAMPLE_COLUMNS

from .addm_helpers import ensure_plan_role


def _sample(t, pid, backend_type, wait_class, event, query_id=None, query=None, app="shop"):
    row = dict.fromkeys(SAMPLE_COLUMNS)
    row.update(
        sample_time=t, weight_s=1.0, pid=pid, backend_type=backend_type, usename="u",
        datname="shop", application_name=app, state="active" if query else None,
        wait_class=wait_class, wait_event_type=None if wait_class == "CPU" else wait_class,
        wait_event=None if wait_class == "CPU" else event, event=event, db_time=True,
        query_id=query_id, query=query,
    )  # fmt: skip
    return row


def test_background_waits_are_not_db_time():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(60):
        t = t0 + timedelta(seconds=i)
        rows.append(_sample(t, 10, "client backend", "CPU", "CPU", 1, "SELECT 1 FROM t"))
        rows.append(_sample(t, 20, "checkpointer", "Timeout", "CheckpointWriteDelay"))
        rows.append(_sample(t, 21, "autovacuum worker", "IO", "DataFileRead"))
        if i % 2:
            rows.append(_sample(t, 22, "walwriter", "IO", "WalWrite"))
    inp = AddmInput(
        elapsed_s=60, samples=pd.DataFrame(rows, columns=SAMPLE_COLUMNS),
        statements=pd.DataFrame(), tables=pd.DataFrame(), tables_begin=pd.DataFrame(),
        databases=pd.DataFrame(), cluster={}, settings={}, cpu_count=2,
    )  # fmt: skip
    res = analyze(inp)
    assert res.db_time_s == 60.0  # the client backend's time only
    assert {r["wait_class"] for r in res.breakdown["wait_class"]} == {"CPU"}
    bg = {r["backend_type"]: r["time_s"] for r in res.breakdown["background"]}
    assert all("pct" not in r for r in res.breakdown["background"])  # not a share of DB time
    assert bg == {"checkpointer": 60.0, "autovacuum worker": 60.0, "walwriter": 30.0}
    assert any("Background processes" in n for n in res.notes)


def test_opscore_statements_never_in_top_sql(pg, opscore_env, target_db):
    """A quiet interval: the only statements are opscore's own (snapshots, ADDM's catalog
    reads and plans), all marked, none in Top SQL or the SQL breakdown."""
    ensure_plan_role(pg)
    api.add_target("addmquiet", target_db)
    try:
        api.take_snapshot("addmquiet")
        api.take_snapshot("addmquiet")
        api.run_addm("addmquiet")  # its catalog reads land in pg_stat_statements
        api.take_snapshot("addmquiet")
        api.run_addm("addmquiet")
        api.take_snapshot("addmquiet")
        a = api.run_addm("addmquiet")
        texts = [s.get("query") or "" for f in a.findings for s in f.statements]
        texts += [r["query"] for r in a.breakdown.get("sql", [])]
        assert not [t for t in texts if "opscore" in t or "pg_settings" in t], texts
        assert not [f for f in a.findings if f.type == "top_sql"], [
            (f.title, f.statements) for f in a.findings
        ]
        # every catalog statement ADDM sent carries the marker
        with psycopg.connect(target_db, autocommit=True) as c:
            unmarked = c.execute(
                "SELECT query FROM pg_stat_statements WHERE (query LIKE '%%pg_settings%%' "
                "OR query LIKE '%%idx_valid%%' OR query LIKE '%%EXPLAIN%%') "
                "AND query NOT LIKE '%%/* opscore */%%' "
                "AND query NOT LIKE '%%pg_stat_statements%%' "
                "AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchall()
        assert not unmarked, unmarked
    finally:
        api.remove_target("addmquiet")


def _lock_samples(holder_idle: dict[int, float], n: int = 60) -> pd.DataFrame:
    """Waiter 11 blocked by holder 10 at every sample; the holder is idle in transaction at the
    samples in ``holder_idle`` (sample index -> seconds idle so far), else running an UPDATE.
    Each transaction of the holder lasts 5 samples (xact_start changes)."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        t = t0 + timedelta(seconds=i)
        xs = t0 + timedelta(seconds=5 * (i // 5))
        h = _sample(t, 10, "client backend", "CPU", "CPU", 7, "UPDATE hot SET n = n + $1")
        h["xact_start"] = xs
        if i in holder_idle:
            h.update(state="idle in transaction", wait_class="Client", wait_event_type="Client",
                     wait_event="ClientRead", event="ClientRead", db_time=False,
                     state_change=t - timedelta(seconds=holder_idle[i]))  # fmt: skip
        w = _sample(
            t, 11, "client backend", "Lock", "transactionid", 7, "UPDATE hot SET n = n + $1"
        )
        w.update(wait_event_type="Lock", blocking_pids=[10], xact_start=t)
        rows += [h, w]
    return pd.DataFrame(rows, columns=SAMPLE_COLUMNS)


def _analyze(samples: pd.DataFrame):
    return analyze(
        AddmInput(
            elapsed_s=60, samples=samples, statements=pd.DataFrame(), tables=pd.DataFrame(),
            tables_begin=pd.DataFrame(), databases=pd.DataFrame(), cluster={}, settings={},
            cpu_count=2, min_impact_pct=1,
        )
    )  # fmt: skip


def test_short_transaction_worker_caught_idle_is_not_blamed():
    # idle in 2 of 60 samples, each time for a few milliseconds (between two statements)
    res = _analyze(_lock_samples({7: 0.004, 31: 0.002}))
    types = [f.type for f in res.findings if f.is_problem]
    assert "idle_in_transaction" not in types
    lock = next(f for f in res.findings if f.type == "lock_contention")
    assert lock.evidence["lock_type"] == "transactionid" and lock.impact_db_time_s == 60.0


def test_idle_blocker_blamed_only_for_waits_while_idle():
    # one transaction (samples 40-44) left idle for seconds: only those 5 waits are its doing
    res = _analyze(_lock_samples({40: 2.0, 41: 3.0, 42: 4.0, 43: 5.0, 44: 6.0}))
    idle = next(f for f in res.findings if f.type == "idle_in_transaction")
    assert idle.impact_db_time_s == 5.0 and idle.sessions == [10]
    assert idle.evidence["transactions_blamed"] == 1
    assert idle.evidence["transaction_open_s"] == 4.0  # its own transaction, not the first one
    lock = next(f for f in res.findings if f.type == "lock_contention")
    assert lock.impact_db_time_s == 55.0


def test_root_blocker_without_sampled_text_is_reported_without_it():
    # The holder is never sampled itself (it is seen only through its waiter's blocking_pids,
    # as with a bulk loader between statements): its query comes out of pandas as NaN, which
    # broke the lock finding in CI (a float has no .split).
    s = _lock_samples({})
    s = s[s["pid"] != 10].reset_index(drop=True)
    res = _analyze(s)
    lock = next(f for f in res.findings if f.type == "lock_contention")
    root = lock.evidence["root_blockers"][0]
    assert root["pid"] == 10 and root["query"] == "" and "not sampled" in root["state"]
    assert all("Root blocker statement: ." not in r.action for r in lock.recommendations)
    # and nothing NaN reaches the stored JSON (the demo stopped on '"query": NaN' under load)
    assert all(isinstance(st["query"], str) or st["query"] is None for st in lock.statements)
    assert "NaN" not in json.dumps(to_jsonable([f.statements for f in res.findings]))
    assert _json_dumps({"query": float("nan")}) == '{"query": null}'
