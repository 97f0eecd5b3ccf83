"""ASH: activity over time stacked by wait class, breakdown by any dimension, blocking."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from app import common as c
from ops_core.reports import spec

st.title("Active session history")
target = c.current_target()
if target is None:
    st.stop()
begin, end = c.range_picker("ash_range")
act, err = c.try_call(c.cached_ash_activity, target, begin, end)
if err:
    st.error(err.message)
    if err.hint:
        st.caption(err.hint)
    st.stop()
if act.empty:
    st.info(
        f"No ASH samples of {target} in this range. Start the sampler with "
        f"`opscore ash run --target {target}` (or the flows), or pick a longer range."
    )
    st.stop()

m = st.columns(3)
m[0].metric("DB time in range", c.fmt_s(act.attrs.get("db_time_s")))
m[1].metric("Average active sessions", c.fmt_aas(act.attrs.get("avg_aas", 0)))
m[2].metric(
    f"Busiest {act.attrs.get('bucket', 'minute')}", c.fmt_aas(act.attrs.get("peak_aas", 0)) + " AAS"
)
fig = c.activity_chart(act, height=360)
st.plotly_chart(fig, width="stretch")
bucket = act.attrs.get("bucket", "minute")
st.caption(
    f"Average active sessions per {bucket} (DB time of the {bucket} / its length), from "
    f"{act.attrs.get('source') or 'samples'}. Drag the slider under the chart to zoom. "
    f"Times in {c.local_tz().key}."
)

st.subheader("Breakdown")
dims = {
    "event": "wait event",
    "class": "wait class",
    "sql": "SQL statement",
    "session": "session",
    "user": "user",
    "app": "application",
    "database": "database",
}
by = st.segmented_control(
    "DB time by", list(dims), format_func=dims.get, default="event", key="ash_by"
)
by = by or "event"
top, terr = c.try_call(c.cached_ash_top, target, begin, end, by, 20)
if terr:
    st.error(terr.message)
elif top.empty:
    st.caption("Nothing in this range.")
else:
    top = top.copy()
    label_cols = [x for x in top.columns if x not in ("samples", "time_s", "db_time_s", "pct")]
    names = top[label_cols].copy()
    if "backend_start" in names:
        names["backend_start"] = c.to_local(names["backend_start"])
    top["label"] = [
        c.short(" · ".join("—" if pd.isna(v) else str(v) for v in row), 60)
        for row in names.itertuples(index=False)
    ]
    left, right = st.columns([2, 3])
    bars = top.head(12).iloc[::-1]
    fig = px.bar(
        bars, x="db_time_s", y="label", orientation="h",
        color="wait_class" if "wait_class" in bars else None,
        color_discrete_map=c.WAIT_COLORS, labels={"db_time_s": "DB time (s)", "label": ""},
    )  # fmt: skip
    fig.update_layout(
        height=90 + 34 * len(bars), margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
        bargap=0.35,
    )  # fmt: skip
    left.plotly_chart(fig, width="stretch", config={"displayModeBar": False})
    c.spec_table(top, spec.ASH_TOP[by], where=right, height=c.table_height(len(top), 12))

st.subheader("Blocking chains")
chains, berr = None, None
if end - begin <= timedelta(hours=6) or st.session_state.get("ash_blocking_for") == (begin, end):
    chains, berr = c.try_call(c.cached_blocking, target, begin, end)
elif st.button("Look for blocking chains in this range", key="ash_blocking"):
    st.session_state["ash_blocking_for"] = (begin, end)
    chains, berr = c.try_call(c.cached_blocking, target, begin, end)
else:
    st.caption(
        "Over more than 6 hours this reads every sample of the range: press the button, or "
        "pick a shorter range."
    )
if berr:
    st.error(berr.message)
elif chains is not None and chains.empty:
    st.caption("No session was blocked by another in this range.")
elif chains is not None:
    c.spec_table(chains, spec.ASH_BLOCKING)
