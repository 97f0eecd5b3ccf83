"""Performance Hub: load profile vs a baseline, top SQL with drill-down, waits, sessions,
I/O and trends over a chosen range."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from app import common as c
from ops_core import api
from ops_core.reports import spec

st.title("Performance Hub")
target = c.current_target()
if target is None:
    st.stop()
begin, end = c.range_picker("hub_range")
bounds, err = c.try_call(c.cached_bounds, target, begin, end)
st.caption(
    f"{target}: {c.fmt_time(begin)} to {c.fmt_time(end)} ({c.local_tz().key})"
    + (f", snapshots {bounds[0]}..{bounds[1]}" if bounds else "")
)
# only the open tab runs (its label is in the URL: ?hub=Top+SQL)
tabs = st.tabs(
    ["Summary", "Top SQL", "Wait events", "Top sessions", "I/O", "Trends"],
    key="hub",
    on_change="rerun",
    bind="query-params",
)


def no_snapshots() -> None:
    st.info(
        f"{err.message if err else 'No snapshots.'} Snapshot-based figures need two snapshots "
        f"in the range: run `opscore snapshot take {target}` (or start the flows), "
        "or pick a longer range."
    )


# ------------------------------------------------------------------------------ summary
def headline(lp) -> None:
    """Four figures of the load profile (picked, not computed)."""
    by = lp.set_index("metric")
    m = st.columns(4)
    dbt = by.loc["DB time (s, ASH)", "total"]
    sql_s = by.loc["SQL time (s, pg_stat_statements; not DB time)", "total"]
    m[0].metric(
        "DB time (ASH)",
        c.fmt_s(dbt) if dbt is not None and pd.notna(dbt) else "no ASH samples",
        help=f"Cross-check: SQL time (pg_stat_statements) {c.fmt_s(sql_s)}",
    )
    m[1].metric("Executions / s", f"{by.loc['executions', 'per_second'] or 0:,.1f}")
    m[2].metric("Transactions / s", f"{by.loc['transactions', 'per_second'] or 0:,.1f}")
    m[3].metric(
        "Physical reads / s", f"{by.loc['physical reads (blocks)', 'per_second'] or 0:,.1f}"
    )


with tabs[0]:
    if tabs[0].open is not False:
        if bounds is None:
            no_snapshots()
        else:
            b, e = bounds
            baselines, _ = c.try_call(c.cached_baselines, target)
            names = ["(none)"] + [x["name"] for x in baselines or []]
            base = st.selectbox(
                "Compare with baseline", names, key="hub_baseline",
                help="Baselines are kept snapshot ranges (Workload repository page).",
            )  # fmt: skip
            if base == "(none)":
                lp, lerr = c.try_call(c.cached_load_profile, target, b, e)
                if lerr:
                    st.error(lerr.message)
                else:
                    headline(lp)
                    act, _ = c.try_call(c.cached_ash_activity, target, begin, end)
                    if act is not None and not act.empty:
                        st.plotly_chart(
                            c.activity_chart(act, height=230, slider=False), width="stretch"
                        )
                    c.spec_table(
                        c.profile_in_mb(lp), spec.LOAD_PROFILE, height=c.table_height(len(lp))
                    )
                if len(names) == 1:
                    st.caption("No baseline yet: create one on the Workload repository page.")
            else:
                cmp, cerr = c.try_call(c.cached_compare, target, b, e, None, None, base)
                if cerr:
                    st.error(cerr.message)
                else:
                    lp = cmp.load_profile
                    st.caption(f"Period 1: this range; period 2: baseline {base}.")
                    c.spec_table(
                        c.profile_in_mb(lp), spec.COMPARE_LOAD, height=c.table_height(len(lp))
                    )
                    for n in cmp.notes:
                        st.caption(n)

# ------------------------------------------------------------------------------ top SQL
with tabs[1]:
    if tabs[1].open is not False:
        if bounds is None:
            no_snapshots()
        else:
            b, e = bounds
            col1, col2 = st.columns([2, 1])
            order = col1.selectbox("Order by", list(api.TOP_SQL_ORDER), key="hub_order")
            limit = col2.number_input("Statements", 5, 500, 25, step=5, key="hub_limit")
            top, terr = c.try_call(c.cached_top_sql, target, b, e, api.TOP_SQL_ORDER[order], limit)
            if terr:
                st.error(terr.message)
            elif top.empty:
                st.info("No statements ran in this range (or pg_stat_statements is not installed).")
            else:
                c.spec_table(top, spec.HUB_TOP_SQL)
                st.subheader("Drill-down")
                labels = {
                    int(r.queryid): f"{r.queryid} · {c.short(r.query, 100)}"
                    for r in top.itertuples()
                }
                qid = st.selectbox(
                    "Statement", list(labels), format_func=labels.get, key="hub_stmt"
                )
                row = top[top["queryid"] == qid].iloc[0]
                st.code(row["query"], language="sql", wrap_lines=True)
                m = st.columns(4)
                m[0].metric("Calls", f"{int(row['calls']):,}")
                m[1].metric("Per call", c.fmt_ms(row["mean_ms"]))
                m[2].metric("Total", c.fmt_ms(row["total_ms"]))
                share = row["pct_db_time"]
                m[3].metric(
                    "Share of DB time",
                    "no ASH samples" if share is None or pd.isna(share) else f"{share:.1f} %",
                )
                d1, d2, d3 = st.tabs(["History", "Wait profile (ASH)", "Plan (EXPLAIN)"])
                with d1:
                    hist, herr = c.try_call(c.cached_history, target, int(qid), None, None)
                    if herr:
                        st.error(herr.message)
                    elif hist.empty:
                        st.caption("Not seen in any snapshot interval.")
                    else:
                        hist["time"] = c.to_local(hist["captured_at"])
                        fig = px.line(
                            hist,
                            x="time",
                            y="total_exec_time",
                            markers=True,
                            hover_data=["calls", "mean_ms"],
                        )
                        fig.update_layout(
                            height=260,
                            margin=dict(l=10, r=10, t=30, b=10),
                            yaxis_title="ms per snapshot interval",
                            xaxis_title=None,
                            title="Execution time per snapshot interval",
                        )
                        if len(hist) == 1:  # one point: give it an hour each side
                            t0 = hist["captured_at"].iloc[0]
                            c.time_axis(fig, t0 - timedelta(hours=1), t0 + timedelta(hours=1))
                        else:
                            c.time_axis(fig)
                        st.plotly_chart(fig, width="stretch")
                        c.spec_table(hist, spec.HUB_HISTORY)
                with d2:
                    w, werr = c.try_call(
                        c.cached_ash_top, target, begin, end, "event", 15, queryid=int(qid)
                    )
                    if werr:
                        st.error(werr.message)
                    elif w.empty:
                        st.caption(
                            "No ASH samples of this statement in the range (it ran faster than "
                            "the sampling interval, or the sampler was not running)."
                        )
                    else:
                        c.spec_table(w, spec.ASH_EVENTS)
                with d3:
                    st.caption(
                        "EXPLAIN without ANALYZE (nothing is executed) in a read-only monitoring "
                        "session on the statement's database."
                    )
                    if st.button("Show plan", key="hub_explain"):
                        res, xerr = c.try_call(api.explain_statement, target, int(qid))
                        if xerr:
                            st.error(xerr.message)
                            if xerr.hint:
                                st.caption(xerr.hint)
                        elif not res.explainable:
                            st.warning(f"Not explainable: {res.reason}")
                        else:
                            if res.generic:
                                st.caption("Generic plan (parameters not known: GENERIC_PLAN).")
                            st.code(res.plan, language=None)

# ------------------------------------------------------------------------------ waits
with tabs[2]:
    if tabs[2].open is not False:
        w, werr = c.try_call(c.cached_ash_top, target, begin, end, "event", 15)
        if werr:
            st.error(werr.message)
        elif w.empty:
            st.info(
                "No ASH samples in this range: start the sampler (`opscore ash run --target "
                f"{target}`) or the flows, or pick a longer range."
            )
        else:
            fig = px.bar(
                w.iloc[::-1], x="db_time_s", y="event", color="wait_class", orientation="h",
                color_discrete_map=c.WAIT_COLORS,
                labels={"db_time_s": "DB time (s)", "event": "", "wait_class": "wait class"},
            )  # fmt: skip
            fig.update_layout(
                height=100 + 30 * len(w), margin=dict(l=10, r=10, t=10, b=10), bargap=0.35
            )
            st.plotly_chart(fig, width="stretch", config={"displayModeBar": False})
            c.spec_table(w, spec.ASH_EVENTS)
        bg, bgerr = c.try_call(api.ash_background, target, begin, end)
        if not bgerr and bg is not None and not bg.empty:
            with st.expander(
                f"Background activity (not DB time): {bg.attrs.get('time_s', 0.0):,.1f} s"
            ):
                st.caption(
                    "Checkpointer, autovacuum, WAL writer... working or waiting: their time is "
                    "not DB time, so it is not in the shares above."
                )
                c.spec_table(bg, spec.BACKGROUND)

# ------------------------------------------------------------------------------ sessions
with tabs[3]:
    if tabs[3].open is not False:
        s, serr = c.try_call(c.cached_ash_top, target, begin, end, "session", 20)
        if serr:
            st.error(serr.message)
        elif s.empty:
            st.info("No ASH samples in this range: start the sampler or pick a longer range.")
        else:
            c.spec_table(s, spec.ASH_SESSIONS)

# ------------------------------------------------------------------------------ I/O
with tabs[4]:
    if tabs[4].open is not False:
        if bounds is None:
            no_snapshots()
        else:
            io, ierr = c.try_call(c.cached_object_io, target, *bounds)
            if ierr:
                st.error(ierr.message)
            else:
                for key, title, cols, nothing in (
                    ("io", "**File I/O by backend type** (pg_stat_io)", spec.IO,
                     "No I/O in this range."),
                    ("tables", "**Tables** (blocks read from disk or OS cache vs shared buffers)",
                     spec.HUB_TABLES, "No table activity in this range."),
                    ("indexes", "**Indexes**", spec.HUB_INDEXES,
                     "No index activity in this range."),
                ):  # fmt: skip
                    st.markdown(title)
                    if io[key] is None:
                        st.caption("Not available: pg_stat_io needs PostgreSQL 16+.")
                    elif io[key].empty:
                        st.caption(nothing)
                    else:
                        c.spec_table(io[key], cols)

# ------------------------------------------------------------------------------ trends
with tabs[5]:
    if tabs[5].open is not False:
        if bounds is None:
            no_snapshots()
        else:
            tr, trerr = c.try_call(c.cached_trends, target, *bounds)
            if trerr:
                st.error(trerr.message)
            elif tr.empty:
                st.info("No snapshot intervals with deltas in this range yet.")
            else:
                tr = tr.copy()
                tr["time"] = c.to_local(tr["captured_at"])
                metrics = {
                    "sql_time_s_per_s": "Statement time per second (avg active statements)",
                    "calls_per_s": "Executions per second",
                    "xacts_per_s": "Transactions per second",
                    "blks_read_per_s": "Blocks read per second",
                    "hit_pct": "Cache hit (%)",
                    "wal_mb_per_s": "WAL (MB/s)",
                    "temp_mb_per_s": "Temp files (MB/s)",
                }
                chosen = st.multiselect(
                    "Metrics",
                    list(metrics),
                    default=["sql_time_s_per_s", "calls_per_s", "wal_mb_per_s"],
                    format_func=metrics.get,
                    key="hub_trends",
                )
                if len(tr) == 1:
                    st.caption(
                        "One snapshot interval in this range: trends draw a line from two on."
                    )
                for m_ in chosen:
                    fig = px.line(tr, x="time", y=m_, markers=len(tr) < 50)
                    fig.update_layout(
                        height=220, margin=dict(l=10, r=10, t=30, b=10), title=metrics[m_],
                        yaxis_title=None,
                    )  # fmt: skip
                    c.time_axis(fig, begin, end)
                    st.plotly_chart(fig, width="stretch")
                c.tz_caption()
