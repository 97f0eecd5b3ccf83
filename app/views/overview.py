"""Overview: every target with its status; pick the target for the other pages."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from app.common import (
    NUM,
    TXT,
    cached_ash_top,
    cached_status,
    fmt_age,
    fmt_s,
    fmt_time,
    now_step,
    try_call,
    tz_caption,
)
from ops_core import api

st.title("Overview")
status, err = try_call(cached_status)
if err is not None:
    st.error(f"The repository is unreachable: {err.message}")
    st.caption(err.hint or "Check OPSCORE_REPOSITORY_DSN, or start it with `opscore db start`.")
    st.stop()
if not status:
    st.info(
        "No targets registered yet. Run `opscore demo` for the embedded demo, or "
        "`opscore target add NAME DSN` for your own server."
    )
    st.stop()

rows = []
for s in status:
    snap, ash = s["last_snapshot_at"], s["last_ash_sample"]
    rows.append(
        {
            "target": s["name"],
            "reachable": "yes" if s["reachable"] else "NO",
            "version": (s["version"] or "").split(" ")[0],
            "sessions": s["sessions"],
            "active now": s["active_sessions"],
            "idle in xact": s["idle_in_transaction"],
            "last snapshot": f"{fmt_time(snap)} ({fmt_age(snap)})" if snap else "none yet",
            "last ASH sample": f"{fmt_time(ash)} ({fmt_age(ash)})" if ash else "none yet",
            "DB time last hour": s["db_time_last_hour_s"],
            "problem": s["error"] or "",
        }
    )
df = pd.DataFrame(rows)
if (df["problem"] == "").all():
    df = df.drop(columns=["problem"])
c1, c2, c3 = st.columns(3)
c1.metric("Targets", len(df))
c2.metric("Reachable", int((df["reachable"] == "yes").sum()))
c3.metric("Active sessions now (all targets)", int(pd.to_numeric(df["active now"]).fillna(0).sum()))
st.dataframe(
    df,
    hide_index=True,
    width="stretch",
    column_config={
        "DB time last hour": NUM(format="%.1f s", help="From ASH samples"),
        "last snapshot": TXT(width="medium"),
        "last ASH sample": TXT(width="medium"),
        "problem": TXT(width="large"),
    },
)
tz_caption()

names = [s["name"] for s in status]
current = st.session_state.get("target")
if current not in names:
    current = names[0]
st.session_state["overview_pick"] = current  # follow the sidebar


def _pick() -> None:  # runs before the next script run: the sidebar box may follow
    st.session_state["target"] = st.session_state["overview_pick"]
    st.session_state["target_select"] = st.session_state["overview_pick"]


pick = st.selectbox(
    "Work on target",
    names,
    key="overview_pick",
    on_change=_pick,
    help="The target the other pages show (same as the sidebar).",
)
sel = next(s for s in status if s["name"] == pick)
st.subheader(pick)
if not sel["reachable"]:
    st.error(f"{pick} is not reachable: {sel['error']}")
    if sel["hint"]:
        st.caption(sel["hint"])
    st.caption("Pages still show what the repository holds for it (snapshots, ASH).")
m = st.columns(4)
m[0].metric(
    "Active sessions now", "—" if sel["active_sessions"] is None else sel["active_sessions"]
)
m[1].metric("DB time, last hour", fmt_s(sel["db_time_last_hour_s"]))
m[2].metric(
    "Last snapshot", fmt_age(sel["last_snapshot_at"]) if sel["last_snapshot_at"] else "never"
)
m[3].metric(
    "Last ASH sample", fmt_age(sel["last_ash_sample"]) if sel["last_ash_sample"] else "never"
)
if not sel["last_snapshot_at"]:
    st.info(f"No snapshots of {pick} yet: run `opscore snapshot take {pick}` or start the flows.")
if not sel["last_ash_sample"]:
    st.info(
        f"No ASH samples of {pick} yet: run `opscore ash run --target {pick}` or start the flows."
    )
elif sel["db_time_last_hour_s"] is None:
    st.caption("No ASH samples in the last hour: is the sampler running?")


@st.cache_data(ttl=30, show_spinner=False)
def _freshness(target: str) -> list[dict]:
    """Components of the target's full health check that are not healthy."""
    report = api.health_full(target)
    return [c.as_dict() for c in report.components if c.status in ("degraded", "failing")]


stale, _ = try_call(_freshness, pick)
for c in stale or []:
    say = st.error if c["status"] == "failing" else st.warning
    say(f"{c['name']}: {c['reason']}")
open_alerts, _ = try_call(api.list_alerts, None, pick)
if open_alerts:
    st.warning(
        f"{len(open_alerts)} open alert(s) on {pick}: "
        + "; ".join(a.rule for a in open_alerts[:5])
        + " (see the Alerts page)."
    )

st.subheader("Top SQL, last hour (ASH)")
now = now_step(30)
top, terr = try_call(cached_ash_top, pick, now - timedelta(hours=1), now, "sql", 5)
if terr is not None:
    st.caption(f"Not available: {terr.message}")
elif top is None or top.empty:
    st.caption("No sampled activity in the last hour.")
else:
    st.dataframe(
        top[["query_id", "query", "db_time_s", "pct"]],
        hide_index=True,
        width="stretch",
        column_config={
            "query_id": TXT("queryid", width="small"),
            "query": TXT("statement", width="large"),
            "db_time_s": NUM("DB time (s)", format="%.1f"),
            "pct": NUM("share", format="%.1f %%"),
        },
    )

st.subheader("ADDM findings")
runs, ferr = try_call(api.list_addm, pick)
if ferr is not None:
    st.error(ferr.message)
elif not runs:
    st.caption(
        "No ADDM analysis yet: the snapshot flow runs one after each capture, or use the ADDM page."
    )
else:
    last = runs[0]
    st.caption(
        f"Latest analysis {last.analysis_id} (snapshots {last.begin_snapshot_id}–"
        f"{last.end_snapshot_id}); details on the ADDM page."
    )
    found = [f for f in api.addm_findings(last.analysis_id) if f.is_problem]
    if not found:
        st.success("Nothing significant in the latest interval.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {"#": f.rank, "finding": f.title, "impact %": round(f.impact_pct, 1)}
                    for f in found
                ]
            ),
            hide_index=True,
            width="stretch",
        )
