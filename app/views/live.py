"""Live: active sessions and running statements, refreshing by themselves until paused."""

from __future__ import annotations

import streamlit as st

from app import common as c
from ops_core import api

st.title("Live")
target = c.current_target()
if target is None:
    st.stop()
col1, col2, _ = st.columns([1, 2, 3])
paused = col1.toggle("Pause", key="live_paused", help="Stop refreshing (the view stays).")
every = col2.select_slider("Refresh every", [2, 5, 10, 30], value=5, key="live_every",
                           format_func=lambda s: f"{s} s")  # fmt: skip


@st.fragment(run_every=None if paused else every)
def live_view() -> None:
    summary, err = c.try_call(api.live_summary, target)
    if err:
        st.error(f"{target} is not reachable: {err.message}")
        if err.hint:
            st.caption(err.hint)
        return
    m = st.columns(5)
    m[0].metric("Sessions", summary["sessions"])
    m[1].metric("Active", summary["active"])
    m[2].metric("Idle in transaction", summary["idle_in_transaction"])
    m[3].metric("Waiting on locks", summary["waiting_on_locks"])
    m[4].metric("Max connections", summary["max_connections"])
    df, err = c.try_call(api.live_sessions, target)
    if err:
        st.error(err.message)
        return
    st.caption(
        f"As of {c.fmt_time(summary['now'])} ({c.local_tz().key})"
        + (" — paused" if paused else f" — refreshing every {every} s")
        + f". PostgreSQL {summary['version']}."
    )
    if df.empty:
        st.info("No session is running a statement right now (opscore's own are not shown).")
        return
    view = df[
        ["pid", "blocking_pids", "state", "wait_class", "wait_event", "query_s", "xact_s",
         "query", "usename", "datname", "application_name", "client_addr", "query_id"]
    ]  # fmt: skip
    c.dataframe(
        view,
        hide_index=True,
        width="stretch",
        column_config={
            "query_s": c.NUM("running for (s)", format="%.1f"),
            "xact_s": c.NUM("transaction age (s)", format="%.1f"),
            "query": c.TXT("statement", width="large"),
            "wait_class": "wait class",
            "wait_event": "wait event",
            "usename": "user",
            "datname": "database",
            "application_name": "application",
            "blocking_pids": "blocked by",
            "query_id": c.TXT("Query id", width="medium"),
        },
    )


live_view()
