"""SQL Monitor: executions running for at least the threshold, refreshing by themselves until
paused, and the executions kept in the repository with their waits, timeline and plan."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import common as c
from ops_core import api

st.title("SQL Monitor")
target = c.current_target()
if target is None:
    st.stop()
c.show_flash()
col1, col2, col3, _ = st.columns([1, 2, 2, 2])
paused = col1.toggle("Pause", key="sqlmon_paused", help="Stop refreshing (the view stays).")
every = col2.select_slider("Refresh every", [2, 5, 10, 30], value=5, key="sqlmon_every",
                           format_func=lambda s: f"{s} s")  # fmt: skip
min_s = col3.number_input("Running at least (s)", 0.0, 3600.0, 5.0, key="sqlmon_min")


def _frame(rows: list[api.SqlExecution]) -> pd.DataFrame:
    cols = ["exec_id", "pid", "status", "elapsed_s", "wait_class", "wait_event", "blocking_chain",
            "progress", "usename", "application_name", "query", "query_start"]  # fmt: skip
    df = pd.DataFrame([e.as_dict() for e in rows], columns=cols)
    df["progress"] = [
        f"{p['command']} {p['phase']} {'' if p.get('pct') is None else str(p['pct']) + ' %'}"
        if isinstance(p, dict) else ""
        for p in df["progress"]
    ]  # fmt: skip
    df["blocking_chain"] = [" <- ".join(map(str, x or [])) for x in df["blocking_chain"]]
    return df


@st.fragment(run_every=None if paused else every)
def live_view() -> None:
    rows, err = c.try_call(api.sql_monitor, target, min_elapsed_s=min_s)
    if err:
        st.error(f"{target}: {err.message}")
        return
    st.caption(
        ("paused" if paused else f"refreshing every {every} s")
        + f"; {len(rows)} execution(s) running {min_s:g} s or more (kept in the repository)"
    )
    if not rows:
        st.info("No execution has been running that long right now.")
        return
    c.dataframe(_frame(rows), hide_index=True, width="stretch")


live_view()

st.subheader("Kept executions")
begin, end = c.range_picker("sqlmon_range", default="Last hour")
kept, err = c.try_call(api.list_sql_executions, target, begin=begin, end=end)
if err:
    st.error(err.message)
    st.stop()
stats, _ = c.try_call(api.sql_monitor_statistics, target, begin, end)
if stats is not None:
    m = st.columns(3)
    m[0].metric("Executions", stats.totals.get("executions", 0))
    m[1].metric("Running", stats.totals.get("running", 0))
    m[2].metric("DB time (s)", f"{stats.totals.get('db_time_s', 0):.1f}")
    if stats.by_duration:
        st.dataframe(pd.DataFrame(stats.by_duration), hide_index=True)
    if stats.by_wait_class:
        st.bar_chart(pd.DataFrame(stats.by_wait_class), x="wait_class", y="seconds")
if not kept:
    st.info("No execution of this range was kept (poll the monitor or run ASH).")
    st.stop()
c.dataframe(_frame(kept), hide_index=True, width="stretch")
pick = st.selectbox("Execution", [e.exec_id for e in kept], key="sqlmon_pick")
if pick:
    d, err = c.try_call(api.sql_execution, int(pick))
    if err:
        st.error(err.message)
    else:
        e = d.execution
        st.markdown(
            f"**Execution {e.exec_id}** pid {e.pid}: {e.status}, {e.elapsed_s:.1f} s elapsed, "
            f"DB time {e.db_time_s:.1f} s, {e.samples} ASH samples"
        )
        st.code(e.query or "", language="sql")
        if d.timeline:
            tl = pd.DataFrame(d.timeline)
            st.dataframe(tl[["sample_time", "state", "wait_class", "event"]], hide_index=True)
        if d.waits_by_event:
            st.dataframe(pd.DataFrame(d.waits_by_event), hide_index=True)
        if d.note:
            st.caption(d.note)
        if d.plan and d.plan.plan:
            st.code(d.plan.plan)
        elif d.plan:
            st.warning(f"No plan: {d.plan.reason}")
        if d.plan and d.plan.actual_plan:
            st.markdown(
                f"**Actual plan** (auto_explain, {d.plan.actual_plan_duration_ms:.0f} ms logged)"
            )
            st.code(d.plan.actual_plan)
        elif d.plan and d.plan.actual_plan_reason:
            st.caption(f"No actual plan: {d.plan.actual_plan_reason}")
