"""Pure ASH analysis: wait classes (Python and SQL agree), blocking chains over built frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from ops_core.analysis import waits
from ops_core.analysis.blocking import blocking_chains
from ops_core.errors import InvalidInput

STATES = [None, "active", "idle in transaction", "idle in transaction (aborted)"]
TYPES = [None, "Lock", "LWLock", "IO", "IPC", "Client", "Activity", "Timeout", "InjectionPoint"]


def test_wait_classes_and_db_time():
    assert waits.wait_class("active", None) == "CPU"
    assert waits.event_name("active", None, None) == "CPU"
    assert waits.wait_class(None, None) == "CPU"  # background process at work
    assert waits.wait_class("idle in transaction", "Client") == "Client"
    assert waits.wait_class("active", "InjectionPoint") == "Other"
    assert waits.is_db_time("active", "Lock") and waits.is_db_time("active", None)
    assert not waits.is_db_time("idle in transaction", "Client")
    assert not waits.is_db_time("active", "Client")  # e.g. COPY FROM STDIN waiting for data
    assert not waits.is_db_time(None, "Activity")
    assert waits.normalize_wait_class("lwlock") == "LWLock"
    with pytest.raises(InvalidInput) as err:
        waits.normalize_wait_class("Disk")
    assert "BufferPin" in err.value.hint


BACKEND_TYPES = [None, "client backend", "parallel worker", "checkpointer", "autovacuum worker"]


def test_sql_and_python_wait_classes_agree(pg):
    combos = list(product(STATES, TYPES, BACKEND_TYPES))
    values = sql.SQL(", ").join(
        sql.SQL("({}::text, {}::text, {}::text)").format(
            sql.Literal(s), sql.Literal(t), sql.Literal(b)
        )
        for s, t, b in combos
    )
    query = sql.SQL(
        "SELECT {cls}, {ev}, {dbt}, {bg} FROM (VALUES {v}) AS x(state, wait_event_type, "
        "backend_type)"
    )
    with psycopg.connect(pg.admin_dsn, autocommit=True) as conn:
        rows = conn.execute(
            query.format(
                cls=waits.wait_class_sql(),
                ev=waits.event_sql("state", "wait_event_type", "wait_event_type"),
                dbt=waits.is_db_time_sql(),
                bg=waits.is_background_sql(),
                v=values,
            )
        ).fetchall()
    for (state, wtype, bt), (cls, ev, dbt, bg) in zip(combos, rows, strict=True):
        assert cls == waits.wait_class(state, wtype), (state, wtype)
        assert ev == waits.event_name(state, wtype, wtype), (state, wtype)
        assert dbt == waits.is_db_time(state, wtype, bt), (state, wtype, bt)
        assert bg == (not waits.is_foreground(bt) and waits.is_working(state, wtype))
    # a checkpointer throttling (CheckpointWriteDelay, Timeout) is working but not DB time
    assert waits.is_working(None, "Timeout") and not waits.is_db_time(
        None, "Timeout", "checkpointer"
    )


def _frame(times: int, sessions: list[tuple], start: datetime, gap_after: int | None = None):
    rows = []
    for i in range(times):
        ts = start + timedelta(seconds=i + (30 if gap_after is not None and i >= gap_after else 0))
        for pid, state, blockers in sessions:
            rows.append(
                {
                    "sample_time": ts,
                    "weight_s": 1.0,
                    "pid": pid,
                    "backend_start": start,
                    "usename": "u",
                    "datname": "d",
                    "application_name": f"app{pid}",
                    "state": state,
                    "wait_event_type": "Lock" if blockers else "Client",
                    "wait_event": "transactionid" if blockers else "ClientRead",
                    "query_id": pid,
                    "query": f"q{pid}",
                    "xact_start": start,
                    "blocking_pids": blockers,
                }
            )
    return pd.DataFrame(rows)


def test_blocking_chains_roots_waiters_and_episodes():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    # 10 idle in transaction blocks 20, which blocks 30: one chain rooted at 10
    df = _frame(
        5,
        [(10, "idle in transaction", None), (20, "active", [10]), (30, "active", [20])],
        t0,
        gap_after=3,
    )
    out = blocking_chains(df)
    assert list(out["root_pid"]) == [10, 10]  # two episodes: a 30 s gap splits them
    first = out.sort_values("first_seen").iloc[0]
    assert first["waiters"] == [20, 30] and first["max_waiters"] == 2
    assert first["duration_s"] == 3 and first["blocked_time_s"] == 6
    assert first["root_state"] == "idle in transaction" and first["root_query"] == "q10"
    assert first["waiter_events"] == ["Lock:transactionid"]


def test_blocking_chains_unsampled_root_and_deadlock():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    # root 99 is not in the samples (idle session holding an advisory lock)
    out = blocking_chains(_frame(2, [(20, "active", [99])], t0))
    assert out.iloc[0]["root_pid"] == 99 and "not sampled" in out.iloc[0]["root_state"]
    # a deadlock cycle 20 <-> 30 before the detector fires: rooted at the lowest pid
    out = blocking_chains(_frame(1, [(20, "active", [30]), (30, "active", [20])], t0))
    assert list(out["root_pid"]) == [20]
    assert blocking_chains(pd.DataFrame()).empty


def test_copy_columns_follow_the_sample_row():
    # AshWriter builds COPY rows by slicing AshRow: the two orders must stay in step
    from ops_core.repository.ash import AshRow
    from ops_core.repository.ash_tiers import STORED_COLUMNS

    f = list(AshRow._fields)
    assert list(STORED_COLUMNS) == ["target_id", f[0], "weight_s", *f[1:13], "text_hash", *f[14:]]
    assert f[13] == "query"
