"""ADDM: automatic diagnostics over a snapshot range, findings ranked by share of DB time."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import common as c
from ops_core import api
from ops_core.reports import spec

st.title("ADDM")
target = c.current_target()
if target is None:
    st.stop()

snaps, err = c.try_call(c.cached_snapshots, target)
if err:
    st.error(err.message)
    st.stop()
ok = snaps[snaps["status"] != "failed"] if not snaps.empty else snaps
if len(ok) < 2:
    st.info(
        f"ADDM needs two snapshots: run `opscore snapshot take --target {target}` twice "
        "(with `opscore ash run` between them for DB-time findings), or start the flows."
    )
    st.stop()
ids = sorted(ok["snapshot_id"].tolist())
col1, col2, col3 = st.columns([2, 2, 1])
b = col1.selectbox("Begin snapshot", ids[:-1], index=len(ids) - 2, key="addm_b")
e = col2.selectbox("End snapshot", [i for i in ids if i > b], index=0, key="addm_e")
if col3.button("Run analysis", type="primary", disabled=e is None) and c.write_allowed():
    res, rerr = c.try_call(api.run_addm, target, b, e)
    if rerr:
        st.error(rerr.message)
        if rerr.hint:
            st.caption(rerr.hint)
    else:
        st.session_state["addm_id"] = res.analysis_id
        st.success(f"Analysis {res.analysis_id} stored: {len(res.findings)} findings.")

runs, lerr = c.try_call(api.list_addm, target)
if lerr:
    st.error(lerr.message)
    st.stop()
if not runs:
    st.info("No analyses yet: pick a range and press Run analysis (or `opscore addm run`).")
    st.stop()
past = pd.DataFrame(
    [
        {
            "analysis_id": r.analysis_id,
            "snapshots": f"{r.begin_snapshot_id}–{r.end_snapshot_id}",
            "begin_at": r.begin_at,
            "end_at": r.end_at,
            "db_time_s": r.db_time_s,
            "ash_samples": r.ash_samples,
            "top_finding": r.top_finding or "nothing significant",
        }
        for r in runs
    ]
)
st.subheader("Analyses")
c.spec_table(past, spec.ADDM_RUNS)
ids_shown = past["analysis_id"].tolist()
picked = st.session_state.get("addm_id")
choice = st.selectbox(
    "Show analysis", ids_shown, index=ids_shown.index(picked) if picked in ids_shown else 0
)
a, aerr = c.try_call(api.get_addm, int(choice))
if aerr:
    st.error(aerr.message)
    st.stop()
if st.button("ADDM report (HTML)", key="addm_report") and c.write_allowed():
    with st.spinner("Rendering (papermill + nbconvert, about 10 s)…"):
        out, rerr = c.try_call(api.render_report, "addm", target, analysis=a.analysis_id)
    if rerr:
        st.error(rerr.message)
    else:
        c.offer_report(out, "Download the ADDM report", key="addm_report_dl")
m = st.columns(4)
m[0].metric("DB time", f"{a.db_time_s:,.1f} s")
m[1].metric("Average active sessions", f"{a.db_time_s / max(a.elapsed_s, 1):.2f}")
m[2].metric("Source", "ASH" if a.db_time_source == "ash" else "pg_stat_statements")
m[3].metric("Findings", len(a.findings))
for note in a.notes:
    st.caption(note)
if not a.findings:
    st.success(
        "Nothing significant: no finding above the impact threshold "
        f"({a.min_impact_pct:.0f} % of DB time)."
    )
with st.expander("DB time breakdown (as in the ADDM report)"):
    for title, key, cols in spec.ADDM_BREAKDOWN:
        rows = (a.breakdown or {}).get(key) or []
        st.markdown(f"**{title}**")
        if rows:
            c.spec_table(pd.DataFrame(rows), cols, height=c.table_height(len(rows), 10))
        else:
            st.caption("None sampled.")
for f in a.findings:
    with st.expander(
        f"#{f.rank}  {f.title}  —  {f.impact_pct:.1f} % of DB time", expanded=f.rank <= 2
    ):
        st.markdown(
            f"**Type** `{f.type}` · **impact** {f.impact_db_time_s:,.1f} s "
            f"({f.impact_pct:.1f} %) · **basis** {f.basis}"
        )
        if f.objects:
            st.markdown("**Objects:** " + ", ".join(f"`{o}`" for o in f.objects))
        if f.sessions:
            st.markdown("**Sessions (PID):** " + ", ".join(f"`{s}`" for s in f.sessions))
        for stmt in f.statements:
            st.code(str(stmt.get("query", "")), language="sql")
        if f.evidence:
            c.evidence_tables(f.evidence)
        for r in f.recommendations:
            benefit = f" (benefit up to {r.benefit_pct:.1f} %)" if r.benefit_pct else ""
            st.markdown(f"**{r.action_type}**{benefit}: {r.rationale}")
            st.code(
                r.action, language="sql" if r.action_type in ("sql", "setting", "session") else None
            )
