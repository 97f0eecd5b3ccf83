"""SQL Tuning Advisor tasks and SQL profiles: create a task for a statement, run it, read the
recommendations with their measured benefit (or why not), profiles with their evidence; query
profiles of the last snapshot range (deltas, ASH waits, a plan or why there is none)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import common as c
from ops_core import api

st.title("SQL Tuning Advisor")
target = c.current_target()
if target is None:
    st.stop()
c.show_flash()

with st.form("tune_new"):
    text = st.text_area("SQL statement", key="tune_sql", height=100)
    clone = st.text_input("Clone to verify indexes on (optional)", key="tune_clone")
    submitted = st.form_submit_button("Create and run")
if submitted and c.write_allowed():
    task, err = c.try_call(api.create_tuning_task, target, text, clone=clone or None)
    if err:
        st.error(f"{err.message} {err.hint or ''}")
    else:
        with st.spinner("Analysing (read-only runs, rolled back)"):
            _, err = c.try_call(api.execute_tuning_task, task.task_id)
        st.session_state["tune_task"] = task.task_id
        if err:
            st.error(err.message)

tasks, err = c.try_call(api.list_tuning_tasks, target)
if err:
    st.error(err.message)
    st.stop()
if not tasks:
    st.info("No tuning task yet.")
else:
    st.dataframe(
        pd.DataFrame(
            [(t.task_id, t.status, len(t.statements), t.recommendations, t.created_at)
             for t in tasks],
            columns=["task", "status", "statements", "recommendations", "created"],
        ),
        hide_index=True,
    )  # fmt: skip
    ids = [t.task_id for t in tasks]
    default = st.session_state.get("tune_task")
    pick = st.selectbox("Task", ids, index=ids.index(default) if default in ids else 0)
    recs, err = c.try_call(api.tuning_recommendations, int(pick))
    if err:
        st.error(err.message)
    for r in recs or []:
        speed = (
            f"{r.measured_speedup}x ({r.before_ms:.1f} -> {r.after_ms:.1f} ms, {r.method})"
            if r.measured_speedup
            else f"not measured ({r.method or 'no method'})"
        )
        with st.expander(f"#{r.rec_id} {r.type}: {speed}"):
            st.write(r.rationale)
            if r.sql:
                st.code(r.sql, language="sql")
            if r.why_not:
                st.caption(f"Why not measured: {r.why_not}")

st.subheader("SQL profiles")
profiles, err = c.try_call(api.list_sql_profiles, target)
if profiles:
    st.dataframe(pd.DataFrame([p.as_dict() for p in profiles]), hide_index=True)
    st.caption(
        "PostgreSQL has no stored profiles: export one as SET LOCAL lines, ALTER ROLE/DATABASE "
        "... SET (every statement of that role or database) or pg_hint_plan hints."
    )
else:
    st.info("No SQL profile: accept a measured setting recommendation to make one.")

st.subheader("Query profiles (last two snapshots)")
if st.toggle("Show query profiles", key="tune_qprof", help="Plans each statement (EXPLAIN)."):
    qp, err = c.try_call(api.query_profiles, target, limit=20)
    if err:
        st.info(f"{err.message} {err.hint or ''}")
    elif qp is not None:
        st.dataframe(
            pd.DataFrame(
                [(p.queryid, p.calls, p.total_ms, p.mean_ms, p.db_time_s,
                  ", ".join(f"{w.wait_class}/{w.event or '-'}" for w in p.waits[:2]),
                  p.plan_method or p.plan_reason, p.query) for p in qp.profiles],
                columns=["queryid", "calls", "total ms", "mean ms", "DB time s", "waits",
                         "plan", "sql"],
            ),
            hide_index=True,
        )  # fmt: skip
        if qp.note:
            st.caption(qp.note)
        for p in qp.profiles[:5]:
            with st.expander(f"Plan of {p.queryid}: {(p.query or '')[:80]}"):
                st.code(p.plan or f"No plan: {p.plan_reason}")
