"""Resources: resource groups (group roles whose limits their members get) and quotas
(sizes and connections, measured, alerted, optionally enforced)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.common import confirmed_write, current_target, fmt_time, show_flash, try_call
from ops_core import api

st.title("Resources")
show_flash()
target = current_target()
if target is None:
    st.stop()

st.subheader("Resource groups")
st.caption(
    "A group is a NOLOGIN role; its limits are given to each member with ALTER ROLE ... SET "
    "(PostgreSQL does not pass role settings through membership). A connection limit applies "
    "per member role."
)
groups, err = try_call(api.list_resource_groups, target)
if err is not None:
    st.error(err.message)
elif not groups:
    st.info("No resource group on this target.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "group": g.name,
                    "connections per member": g.connection_limit,
                    **g.limits,
                    "members": ", ".join(g.members),
                    "drift": ", ".join(g.drift),
                    "description": g.description,
                }
                for g in groups
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    pick = st.selectbox("Statistics of", [g.name for g in groups], key="rg_pick")
    stats, err = try_call(api.resource_group_stats, pick, target, "1h")
    if stats is not None:
        c1, c2, c3 = st.columns(3)
        c1.metric("Sessions now", stats.sessions)
        c2.metric(
            "DB time, last hour (s)", stats.db_time_s if stats.db_time_s is not None else "n/a"
        )
        c3.metric(
            "Temp written (bytes)", stats.temp_bytes if stats.temp_bytes is not None else "n/a"
        )
        st.dataframe(
            pd.DataFrame([u.__dict__ for u in stats.members]), hide_index=True, width="stretch"
        )
        for n in stats.notes:
            st.caption(n)

with st.expander("Create a resource group"):
    name = st.text_input("Name", key="rg_name")
    c1, c2, c3 = st.columns(3)
    stmt = c1.text_input("statement_timeout", placeholder="30s", key="rg_stmt")
    work = c2.text_input("work_mem", placeholder="64MB", key="rg_work")
    conn = c3.number_input(
        "Connections per member (-1: none)", min_value=-1, value=-1, key="rg_conn"
    )
    members = st.text_input("Members (comma separated login roles)", key="rg_members")
    if st.button("Create", key="rg_create_btn") and name:
        st.session_state["rg_create"] = True
    confirmed_write(
        "rg_create",
        f"Create resource group {name!r} on {target} (a change to the server, journaled)?",
        api.create_resource_group,
        name,
        target=target,
        statement_timeout=stmt or None,
        work_mem=work or None,
        connection_limit=None if conn < 0 else int(conn),
        members=[m.strip() for m in members.split(",") if m.strip()],
        done=lambda g: f"Resource group {g.name!r}: {g.outcome} (action {g.action_id}).",
        failed="Not created",
    )

st.subheader("Quotas")
quotas, err = try_call(api.list_quotas, target)
if err is not None:
    st.error(err.message)
elif not quotas:
    st.info("No quota: `opscore resource quota set NAME --scope ... --metric ... --soft ...`.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "quota": q.name,
                    "on": f"{q.scope} {q.object}",
                    "metric": q.metric,
                    "measured": q.measured,
                    "soft": q.soft_limit,
                    "hard": q.hard_limit,
                    "status": q.status,
                    "enforce": ("enforced" if q.enforced else "on") if q.enforce else "no",
                    "measured at": fmt_time(q.measured_at) if q.measured_at else "",
                    "why": q.reason,
                }
                for q in quotas
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    if st.button("Evaluate now", key="q_eval_btn"):
        st.session_state["q_eval"] = True
    confirmed_write(
        "q_eval",
        "Measure every quota now (and enforce or revert where a quota says so)?",
        api.evaluate_quotas,
        target,
        done=lambda r: (
            f"{r.quotas} quotas: {r.breaches} over a limit, {r.enforced} enforced, "
            f"{r.reverted} reverted."
        ),
        failed="Evaluation failed",
    )
