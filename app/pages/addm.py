"""ADDM: automatic diagnostics over a snapshot range (served when ops_core offers it)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import common as c
from ops_core import api

st.title("ADDM")
target = c.current_target()
if target is None:
    st.stop()
if not hasattr(api, "run_addm"):
    st.info(
        "ADDM (automatic diagnostics: findings ranked by impact, with evidence and "
        "recommendations) is not available yet in this version of opscore. Meanwhile, the "
        "Performance Hub and ASH pages show where the time goes."
    )
    st.stop()

snaps, err = c.try_call(c.cached_snapshots, target)
if err:
    st.error(err.message)
    st.stop()
ok = snaps[snaps["status"] != "failed"] if not snaps.empty else snaps
if len(ok) < 2:
    st.info(f"ADDM needs two snapshots: run `opscore snapshot take {target}` twice.")
    st.stop()
ids = sorted(ok["snapshot_id"].tolist())
col1, col2 = st.columns(2)
b = col1.selectbox("Begin snapshot", ids[:-1], index=max(0, len(ids) - 2 - 4), key="addm_b")
e = col2.selectbox("End snapshot", [i for i in ids if i > b], index=None, key="addm_e")
if st.button("Run analysis", type="primary", disabled=e is None):
    res, rerr = c.try_call(api.run_addm, target, b, e)
    if rerr:
        st.error(rerr.message)
    else:
        st.success("Analysis done.")
        findings = getattr(res, "findings", None)
        if findings is not None:
            st.dataframe(pd.DataFrame(findings), hide_index=True, width="stretch")
if hasattr(api, "list_addm_runs"):
    runs, lerr = c.try_call(api.list_addm_runs, target)
    if not lerr and runs:
        st.subheader("Past analyses")
        st.dataframe(pd.DataFrame([getattr(r, "as_dict", lambda r=r: r)() for r in runs]))
