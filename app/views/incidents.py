"""Incidents and dumps: incidents opened from critical alerts, ADDM findings and healing
actions (resolve them here), and diagnostic dump bundles (create, download)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.common import confirmed_write, current_target, fmt_time, show_flash, try_call
from ops_core import api

st.title("Incidents and dumps")
show_flash()
target = current_target()
status = st.radio("Show", ["open", "resolved", "all"], horizontal=True, key="inc_status")
items, err = try_call(api.list_incidents, target, status)
if err is not None:
    st.error(err.message)
    st.stop()
if not items:
    st.success(f"No {status if status != 'all' else ''} incident.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": i.incident_id,
                    "opened": fmt_time(i.opened_at),
                    "severity": i.severity,
                    "source": i.source,
                    "status": i.status,
                    "title": i.title,
                }
                for i in items
            ]  # fmt: skip
        ),
        hide_index=True,
        width="stretch",
    )
    pick = st.selectbox("Incident", [i.incident_id for i in items], key="inc_pick")
    c1, c2 = st.columns(2)
    if c1.button("Resolve", key="inc_resolve_btn"):
        st.session_state["inc_resolve"] = True
    if c2.button("Take a dump for it", key="inc_dump_btn"):
        st.session_state["inc_dump"] = True
    confirmed_write(
        "inc_resolve", f"Resolve incident {pick}?", api.resolve_incident, pick,
        done=lambda i: f"Incident {i.incident_id} resolved.", failed="Not resolved",
    )  # fmt: skip
    confirmed_write(
        "inc_dump", f"Write a diagnostic dump for incident {pick}?", api.create_dump, target,
        minutes=60, incident_id=pick, done=lambda d: f"Dump {d.dump_id} written.",
        failed="No dump",
    )  # fmt: skip

st.subheader("Diagnostic dumps")
if target and st.button("Dump the last hour", key="dump_btn"):
    st.session_state["dump_now"] = True
confirmed_write(
    "dump_now", f"Write a diagnostic dump of the last hour of {target}?", api.create_dump,
    target, minutes=60, done=lambda d: f"Dump {d.dump_id} written.", failed="No dump",
)  # fmt: skip
dumps, err = try_call(api.list_dumps, target)
for d in dumps or []:
    with st.expander(f"Dump {d.dump_id}: {fmt_time(d.created_at)} ({d.status})"):
        for name, state in d.sections.items():
            st.write(f"**{name}**: {state}")
        if d.status == "done":
            data, err = try_call(api.dump_download, d.dump_id)
            if data is not None:
                st.download_button(
                    "Download the zip", data, file_name=f"dump-{d.dump_id}.zip",
                    mime="application/zip", key=f"dl_{d.dump_id}",
                )  # fmt: skip
