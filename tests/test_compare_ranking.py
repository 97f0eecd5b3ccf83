"""The compare report ranks differences by the DB time they stand for, not by shares."""

from __future__ import annotations

import pandas as pd

from ops_core.analysis.compare import Comparison
from ops_core.analysis.compare_report import build


def _comparison(waits: pd.DataFrame, top_sql: pd.DataFrame | None = None) -> Comparison:
    period = {"elapsed_s": 300.0, "begin_snapshot_id": 1, "end_snapshot_id": 2}
    return Comparison(
        target="t",
        period1=dict(period),
        period2=dict(period),
        load_profile=pd.DataFrame(columns=["metric", "per_second_1", "per_second_2", "change_pct"]),
        top_sql=top_sql if top_sql is not None else pd.DataFrame(),
        io=None,
        waits=waits,
    )


def test_cpu_share_drop_with_more_cpu_time_is_a_rise_ranked_below_lock_growth() -> None:
    # the case: CPU 50 -> 72 s (its share fell from 62 % to 26 %), Lock 30 -> 205 s
    waits = pd.DataFrame(
        {
            "wait_event_type": ["CPU", "Lock", "IO"],
            "db_time_s_1": [72.0, 205.0, 3.0],
            "db_time_s_2": [50.0, 30.0, 3.0],
        }
    )
    r = build(_comparison(waits))
    first, second = r.differences.iloc[0], r.differences.iloc[1]
    assert (first["subject"], first["change"]) == ("Lock", "+175.0 s")
    assert (second["subject"], second["change"]) == ("CPU", "+22.0 s")
    assert "IO" not in set(r.differences["subject"])  # unchanged: not a difference
    assert r.highlights[0].startswith("wait class: Lock")
    assert list(r.wait_shifts["wait_class"][:2]) == ["Lock", "CPU"]


def test_period_two_is_scaled_to_period_one_length() -> None:
    waits = pd.DataFrame({"wait_event_type": ["CPU"], "db_time_s_1": [60.0], "db_time_s_2": [60.0]})
    cmp = _comparison(waits)
    cmp.period2["elapsed_s"] = 600.0  # same DB time over twice the length: half the rate
    r = build(cmp)
    assert r.wait_shifts["change_s"].iloc[0] == 30.0
    assert r.differences.iloc[0]["change"] == "+30.0 s"


def test_top_sql_side_by_side_sorted_by_elapsed() -> None:
    top = pd.DataFrame(
        {
            "queryid": [1, 2, 3],
            "datname": ["d"] * 3,
            "query": ["a", "b", "c"],
            "calls_1": [1, 1, None],
            "calls_2": [1, 1, 1],
            "total_exec_time_1": [10.0, 500.0, None],
            "total_exec_time_2": [20.0, 400.0, 900.0],
            "mean_exec_time_1": [10.0, 500.0, None],
            "mean_exec_time_2": [20.0, 400.0, 900.0],
        }
    )
    r = build(_comparison(pd.DataFrame(), top))
    assert list(r.top_sql["queryid"]) == [3, 2, 1]
