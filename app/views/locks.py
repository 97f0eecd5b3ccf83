"""Locks: who blocks whom now (the blocking tree from pg_locks / pg_blocking_pids), the locks
in conflict, and deadlocks (pg_stat_database counters and the log's entries)."""

from __future__ import annotations

import streamlit as st

from app.common import current_target, try_call
from ops_core import api

st.title("Locks")
target = current_target()
if target is None:
    st.stop()
every = st.toggle("Every lock (not only conflicts)", key="locks_all")
live, err = try_call(api.live_locks, target, every)
if err is not None:
    st.error(err.message)
    st.stop()
c1, c2, c3 = st.columns(3)
c1.metric("Blocked sessions", live.blocked_sessions)
c2.metric("Lock requests waiting", live.waiting)
c3.metric("Root blockers", len(live.root_blockers))
if len(live.tree):
    st.subheader("Blocking tree")
    tree = live.tree.copy()
    tree["pid"] = ["· " * int(d) + str(p) for d, p in zip(tree["depth"], tree["pid"], strict=True)]
    st.dataframe(tree.drop(columns=["root"]), hide_index=True, width="stretch")
else:
    st.success("No session waits for a lock now.")
if len(live.locks):
    st.subheader("Locks")
    st.dataframe(live.locks, hide_index=True, width="stretch")

st.subheader("Deadlocks")
dl, err = try_call(api.deadlocks, target)
if dl is not None:
    st.metric("Deadlocks counted (all databases, since each reset)", dl.total)
    if not dl.log_readable:
        st.caption(f"Log: {dl.log_reason}")
    elif len(dl.events):
        st.dataframe(dl.events, hide_index=True, width="stretch")
    else:
        st.caption("No 'deadlock detected' entry in the readable log.")
