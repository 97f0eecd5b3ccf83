"""Fleet: every target at once, worst first — its ASH collector state (sampling, stale,
failing, not sampled), the age of its newest sample and snapshot, the sampler's errors, DB
time now (average active sessions over the last minutes), top wait class and open alerts.
One repository query for the whole fleet (``api.fleet_overview``)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.common import try_call
from ops_core import api

st.title("Fleet")
window = st.select_slider(
    "DB time over the last", options=[1, 5, 15, 60], value=5, format_func=lambda m: f"{m} min"
)


@st.cache_data(ttl=10, show_spinner=False)
def _overview(minutes: int) -> list[dict]:
    return [s.as_dict() for s in api.fleet_overview(minutes)]


rows, err = try_call(_overview, window)
if err is not None:
    st.error(err.message)
    st.stop()
if not rows:
    st.info("No target is registered yet. Add one: `opscore target add NAME DSN`.")
    st.stop()

df = pd.DataFrame(rows)
states = df["collector"].value_counts()
c1, c2, c3, c4, c5 = st.columns(5)
c1.metric("Targets", len(df))
c2.metric("Sampling", int(states.get("sampling", 0)))
c3.metric("Failing", int(states.get("failing", 0)))
c4.metric("Stale or not sampled", int(states.get("stale", 0) + states.get("not sampled", 0)))
c5.metric("Open alerts", int(df["open_alerts"].sum()))
st.caption(
    "Worst first: failing collectors, then stale ones, then by critical and open alerts, "
    "a failed last snapshot, and DB time. Ages in seconds; DB time as average active sessions."
)
df["tags"] = [", ".join(f"{k}={v}" for k, v in sorted(t.items())) for t in df["tags"]]
show = df[
    [
        "target",
        "collector",
        "last_sample_age_s",
        "last_snapshot_age_s",
        "last_snapshot_status",
        "db_time_rate",
        "top_wait_class",
        "top_wait_class_pct",
        "open_alerts",
        "critical_alerts",
        "sampler_errors",
        "last_error",
        "tags",
    ]
]
st.dataframe(
    show,
    hide_index=True,
    width="stretch",
    column_config={
        "target": st.column_config.TextColumn("Target"),
        "collector": st.column_config.TextColumn("Collector"),
        "last_sample_age_s": st.column_config.NumberColumn("Last sample (s ago)", format="%.0f"),
        "last_snapshot_age_s": st.column_config.NumberColumn(
            "Last snapshot (s ago)", format="%.0f"
        ),
        "last_snapshot_status": st.column_config.TextColumn("Snapshot"),
        "db_time_rate": st.column_config.NumberColumn("DB time (AAS)", format="%.2f"),
        "top_wait_class": st.column_config.TextColumn("Top wait class"),
        "top_wait_class_pct": st.column_config.NumberColumn("Its share %", format="%.0f"),
        "open_alerts": st.column_config.NumberColumn("Open alerts"),
        "critical_alerts": st.column_config.NumberColumn("Critical"),
        "sampler_errors": st.column_config.NumberColumn("Sampler errors"),
        "last_error": st.column_config.TextColumn("Last error"),
        "tags": st.column_config.TextColumn("Tags"),
    },
)
