"""Dashboards: the built-in fleet overview and one-target dashboards and the saved ones, drawn
with plotly from the repository."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from app.common import try_call
from ops_core import api

st.title("Dashboards")
ds, err = try_call(api.list_dashboards)
if err is not None:
    st.error(err.message)
    st.stop()
c1, c2 = st.columns([3, 1])
titles = {d.name: d.title for d in ds}
name = c1.selectbox("Dashboard", list(titles), format_func=titles.get, key="dash_pick")
since = c2.selectbox("Window", ["15m", "1h", "6h", "1d"], index=1, key="dash_since")
data, err = try_call(api.dashboard_data, name, st.session_state.get("target"), since)
if err is not None:
    st.error(err.message)
    st.stop()
st.caption(f"{data.target or 'no target'}: {data.begin:%F %T} to {data.end:%T} UTC")
for p in data.panels:
    st.subheader(p.title)
    if p.note:
        st.caption(p.note)
        continue
    if p.kind == "table" or not p.x or not p.y:
        st.dataframe(p.rows, hide_index=True, width="stretch")
        continue
    draw = {"line": px.line, "bar": px.bar, "area": px.area}[p.kind]
    fig = draw(p.rows, x=p.x, y=p.y if len(p.y) > 1 else p.y[0], color=p.color)
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    st.plotly_chart(fig, width="stretch")
