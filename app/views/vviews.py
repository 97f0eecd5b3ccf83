"""V$ views: Oracle's V$SESSION, V$SQL, V$SYSSTAT, V$SYSTEM_EVENT, V$SESSTAT, V$LOCK,
V$PARAMETER and V$TRANSACTION over PostgreSQL's live catalog views."""

from __future__ import annotations

import streamlit as st

from app.common import current_target, try_call
from ops_core import api

st.title("V$ views")
target = current_target()
if target is None:
    st.stop()
names = list(api.V_VIEWS)
key = st.selectbox("View", names, format_func=lambda k: api.V_VIEWS[k][0], key="v_pick")
view, err = try_call(api.v_view, key, target)
if err is not None:
    st.error(err.message)
    if err.hint:
        st.caption(err.hint)
    st.stop()
st.caption(f"From {view.sources}. {view.mapping}.")
for n in view.notes:
    st.info(n)
st.dataframe(view.rows, hide_index=True, width="stretch")
