"""Overview: every target with its status; pick the target for the other pages."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.common import cached_check, cached_targets, guarded

st.title("Overview")
targets = guarded(cached_targets)
if targets is None:
    st.stop()
if not targets:
    st.info(
        "No targets registered yet. Run `opscore demo` for the embedded demo, or "
        "`opscore target add NAME DSN` for your own server."
    )
    st.stop()

rows = []
for t in targets:
    chk = cached_check(t["name"])
    if chk["ok"]:
        caps = chk["capabilities"]
        gaps = [c["name"] for c in caps["checks"] if c["status"] in ("warn", "missing")]
        rows.append(
            {
                "target": t["name"],
                "reachable": "yes",
                "version": caps["version"],
                "role": caps["user"],
                "pg_stat_statements": "yes" if caps["pgss_created"] else "no",
                "gaps": ", ".join(gaps) or "none",
            }
        )
    else:
        rows.append(
            {
                "target": t["name"],
                "reachable": "no",
                "version": "",
                "role": "",
                "pg_stat_statements": "",
                "gaps": chk["error"],
            }
        )
df = pd.DataFrame(rows)
c1, c2 = st.columns(2)
c1.metric("Targets", len(df))
c2.metric("Reachable", int((df["reachable"] == "yes").sum()))
st.dataframe(df, hide_index=True, width="stretch")
