"""The history judgement of a statement (issue 22), as a pure unit over real-shaped frames:
pg_stat_statements sums of earlier snapshots against the range's statement profile."""

from __future__ import annotations

import pandas as pd

from ops_core.analysis.addm.baseline import history, judge
from ops_core.analysis.addm.model import AddmInput

ELAPSED = 60.0


def _prof(rows: list[tuple[int, int, float, int]]) -> pd.DataFrame:
    """(queryid, calls, total_exec_time ms, blocks) -> a statement profile frame."""
    return pd.DataFrame(
        [
            {"queryid": q, "calls": c, "total_exec_time": t, "shared_blks_hit": b,
             "shared_blks_read": 0, "rows": c, "temp_blks_written": 0}
            for q, c, t, b in rows
        ]
    )  # fmt: skip


def _inp(hist_rows, meta=None) -> AddmInput:
    empty = pd.DataFrame()
    return AddmInput(
        elapsed_s=ELAPSED, samples=empty, statements=empty, tables=empty, tables_begin=empty,
        databases=empty, cluster={}, settings={},
        history=_prof(hist_rows) if hist_rows else None,
        history_meta=meta or {"intervals": 3, "elapsed_s": 180.0, "from": "a", "to": "b"},
    )  # fmt: skip


BASE = [(1, 300, 300.0, 3000), (2, 300, 600.0, 3000), (3, 300, 900.0, 3000), (4, 30, 30.0, 120)]


def _judge(base, now):
    prof = _prof(now)
    h = history(_inp(base), prof)
    return {int(r.queryid): judge(h, r, ELAPSED) for r in prof.itertuples(index=False)}


def test_slower_like_everyone_else_is_as_usual():
    # every statement 2.5x slower per call (a busy host), same work per call, 4x the calls
    now = [(q, c * 4 // 3, t * 4 / 3 * 2.5, b * 4 // 3) for q, c, t, b in BASE]
    j = _judge(BASE, now)
    assert {v["status"] for v in j.values()} == {"as_usual"}, j
    assert j[1]["server_slowdown"] == 2.5 and j[1]["calls_ratio"] == 4.0


def test_more_work_per_call_is_a_regression_whatever_the_others_do():
    now = [(1, 100, 100.0, 1000), (2, 100, 200.0, 1000), (3, 100, 300.0, 1000), (4, 10, 900.0, 400)]
    j = _judge(BASE, now)
    assert j[4]["status"] == "regressed" and j[4]["blocks_ratio"] == 10.0, j[4]
    assert "blocks per call" in j[4]["summary"]
    assert j[1]["status"] == "as_usual"


def test_slower_beyond_the_server_slowdown_is_a_regression():
    now = [(1, 100, 100.0, 1000), (2, 100, 200.0, 1000), (3, 100, 300.0, 1000), (4, 10, 50.0, 40)]
    j = _judge(BASE, now)
    assert j[4]["status"] == "regressed" and j[4]["mean_ratio"] == 5.0, j[4]


def test_new_statement_and_no_history():
    now = [(1, 100, 100.0, 1000), (9, 50, 5000.0, 100)]
    j = _judge(BASE, now)
    assert j[9]["status"] == "new" and "new" in j[9]["summary"]
    prof = _prof(now)
    h = history(_inp(None, {"intervals": 0}), prof)
    r = next(prof.itertuples(index=False))
    v = judge(h, r, ELAPSED)
    assert v["status"] == "no_history" and "no earlier snapshots" in v["summary"]


def test_seen_in_one_interval_only_is_new():
    """A statement that first ran just before the range (in the last history interval only)
    has no usual behaviour: it is new, not 'as usual'."""
    hist = _prof(BASE).assign(intervals=[3, 3, 3, 1])
    inp = _inp(BASE)
    inp.history = hist
    prof = _prof([(1, 100, 100.0, 1000), (4, 100, 100.0, 400)])
    h = history(inp, prof)
    j = {int(r.queryid): judge(h, r, ELAPSED) for r in prof.itertuples(index=False)}
    assert j[4]["status"] == "new" and "only 1 of the 3" in j[4]["summary"], j[4]
    assert j[1]["status"] == "as_usual"
