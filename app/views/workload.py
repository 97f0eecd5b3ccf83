"""Workload repository: snapshots, take one now, baselines, compare two ranges, reports."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import common as c
from ops_core import api
from ops_core.reports import spec

st.title("Workload repository")
target = c.current_target()
if target is None:
    st.stop()
c.show_flash()

snaps, err = c.try_call(c.cached_snapshots, target)
if err:
    st.error(f"Cannot read snapshots: {err.message}")
    st.stop()

# ------------------------------------------------------------------------------ take
top = st.columns([1, 3])
if top[0].button("Take a snapshot now", type="primary", key="wr_take"):
    st.session_state["wr_take_pending"] = True
c.confirmed_write(
    "wr_take_pending",
    f"Take a snapshot of {target} now? It reads the target's statistics views (read-only) and "
    "writes to the repository.",
    api.take_snapshot, target,
    done=lambda i: f"Snapshot {i.snapshot_id} taken ({i.status}, {i.statements or 0} "
    f"statements, {i.total_ms or 0:.0f} ms).",
    failed="Snapshot failed", busy=f"Capturing {target}…",
)  # fmt: skip

if snaps.empty:
    st.info(f"No snapshots of {target} yet: press the button above, run "
            f"`opscore snapshot take {target}`, or start the flows.")  # fmt: skip
    st.stop()

bls, berr = c.try_call(c.cached_baselines, target)
bls = bls or []
# only the open tab runs (its label is in the URL: ?wr=Compare)
tabs = st.tabs(
    ["Snapshots", "Baselines", "Compare", "Reports"], key="wr", on_change="rerun",
    bind="query-params",
)  # fmt: skip
ok = snaps[snaps["status"] != "failed"]
ids = sorted(ok["snapshot_id"].astype(int).tolist())
when = dict(zip(snaps["snapshot_id"].astype(int), snaps["captured_at"], strict=True))


def _columns(cols: list[spec.Column]) -> dict:
    """Streamlit column settings from the report spec: the HTML report's headings and units."""
    return {col.field: c.NUM(col.label, format=spec.APP_FORMATS[col.kind]) for col in cols}


def label(sid: int) -> str:
    return f"{sid} · {c.fmt_time(when.get(sid))}"


# ------------------------------------------------------------------------------ list
with tabs[0]:
    if tabs[0].open is not False:
        view = snaps.copy()
        view["captured_at"] = c.to_local(view["captured_at"])
        view["error"] = view["error"].fillna("")
        view["kind"] = view["is_baseline"].map({True: "first (values only)", False: "deltas"})
        c.dataframe(
            view[["snapshot_id", "captured_at", "status", "kind", "interval_s", "statements",
                  "target_ms", "total_ms", "error"]],
            hide_index=True,
            width="stretch",
            column_config={
                "captured_at": st.column_config.DatetimeColumn("captured at"),
                "interval_s": c.NUM("interval (s)", format="%,.0f"),
                "target_ms": c.NUM("target time (ms)", format="%,.0f"),
                "total_ms": c.NUM("capture (ms)", format="%,.0f"),
            },
        )  # fmt: skip
        c.tz_caption()

# ------------------------------------------------------------------------------ baselines
with tabs[1]:
    if tabs[1].open is not False:
        if berr:
            st.error(berr.message)
        if bls:
            bdf = pd.DataFrame(bls)
            for col in ("begin_at", "end_at", "created_at"):
                bdf[col] = c.to_local(bdf[col])
            c.dataframe(
                bdf[["name", "begin_snapshot_id", "end_snapshot_id", "begin_at", "end_at",
                     "created_at"]],
                hide_index=True,
                width="stretch",
            )  # fmt: skip
        else:
            st.caption("No baselines yet: create one from a range of snapshots below.")
        left, right = st.columns(2)
        with left:
            st.markdown("**Create a baseline**")
            if len(ids) < 2:
                st.caption("Needs two successful snapshots.")
            else:
                name = st.text_input("Name", key="bl_name", placeholder="e.g. monday-peak")
                b = st.selectbox("Begin", ids[:-1], format_func=label, key="bl_b")
                e = st.selectbox(
                    "End", [i for i in ids if i > b], format_func=label, key="bl_e", index=None
                )
                if st.button("Create baseline", key="bl_create", disabled=not name or e is None):
                    st.session_state["bl_create_pending"] = True
                c.confirmed_write(
                    "bl_create_pending",
                    f"Create baseline {name!r} over snapshots {b}..{e}? Its snapshots are then "
                    "kept by retention.",
                    api.create_baseline, name, target, b, e,
                    done=lambda r: f"Baseline {r.name!r} created ({r.begin_snapshot_id}.."
                    f"{r.end_snapshot_id}).",
                    failed="Baseline not created",
                )  # fmt: skip
        with right:
            st.markdown("**Delete a baseline**")
            if not bls:
                st.caption("Nothing to delete.")
            else:
                victim = st.selectbox("Baseline", [x["name"] for x in bls], key="bl_del_name")
                if st.button("Delete baseline", key="bl_delete"):
                    st.session_state["bl_delete_pending"] = True
                c.confirmed_write(
                    "bl_delete_pending",
                    f"Delete baseline {victim!r}? Its snapshots stay, but retention may then "
                    "purge them.",
                    api.delete_baseline, victim,
                    done=lambda _: f"Baseline {victim!r} deleted.",
                    failed="Baseline not deleted",
                )  # fmt: skip

# ------------------------------------------------------------------------------ compare
with tabs[2]:
    if tabs[2].open is not False:
        if len(ids) < 2:
            st.info("Comparing needs at least two successful snapshots.")
        else:
            st.caption("Period 1 is compared against period 2 (or a baseline).")
            a1, a2, a3, a4 = st.columns(4)
            half = max(0, len(ids) // 2 - 1)
            b1 = a1.selectbox("Period 1 begin", ids[:-1], index=half, format_func=label, key="c_b1")
            e1s = [i for i in ids if i > b1]
            e1 = a2.selectbox(
                "Period 1 end", e1s, index=len(e1s) - 1, format_func=label, key="c_e1"
            )
            bl_names = [x["name"] for x in (bls or [])]
            mode = "a second range"
            if bl_names:
                mode = st.radio(
                    "Against", ["a second range", "a baseline"], horizontal=True, key="c_mode"
                )
            b2 = e2 = base = None
            if mode == "a baseline" and bl_names:
                base = st.selectbox("Baseline", bl_names, key="c_base")
            else:
                b2 = a3.selectbox(
                    "Period 2 begin", ids[:-1], index=0, format_func=label, key="c_b2"
                )
                e2s = [i for i in ids if i > b2]
                e2 = a4.selectbox(
                    "Period 2 end", e2s, index=min(len(e2s) - 1, max(0, half - ids.index(b2))),
                    format_func=label, key="c_e2",
                )  # fmt: skip
            if base is None and (b1, e1) == (b2, e2):
                st.caption("Both periods are the same range: pick a different period 2.")
            cmp, cerr = c.try_call(c.cached_compare, target, int(b1), int(e1), b2, e2, base)
            if cerr:
                st.error(cerr.message)
                if cerr.hint:
                    st.caption(cerr.hint)
            else:
                st.markdown("**Load profile** (per second)")
                c.dataframe(
                    c.profile_in_mb(
                        cmp.load_profile[["metric", "per_second_1", "per_second_2", "change_pct"]]
                    ),
                    hide_index=True,
                    width="stretch",
                    height=c.table_height(len(cmp.load_profile)),
                    column_config={
                        **_columns(spec.pick(spec.COMPARE_LOAD, "per_second_1", "per_second_2")),
                        "change_pct": c.NUM("change %", format="%+.1f %%"),
                    },
                )
                st.markdown("**Top SQL** (total execution time, ms)")
                ts = cmp.top_sql
                sql_cols = {col.field: col for col in spec.COMPARE_TOP_SQL}
                if ts.empty:
                    st.caption("No statements in either period.")
                else:
                    c.dataframe(
                        ts[["queryid", "query", "calls_1", "calls_2", "total_exec_time_1",
                            "total_exec_time_2", "delta"]],
                        hide_index=True,
                        width="stretch",
                        column_config={
                            "queryid": c.TXT(sql_cols["queryid"].label, width="medium"),
                            "query": c.TXT(sql_cols["query"].label, width="large"),
                            **_columns(
                                [sql_cols[f] for f in ("calls_1", "calls_2", "total_exec_time_1",
                                                       "total_exec_time_2")]
                            ),
                            "delta": c.NUM(spec.COMPARE_DELTA.label, format="%+,.1f"),
                        },
                    )  # fmt: skip
                if cmp.waits is not None:
                    st.markdown("**Wait events** (DB time, s)")
                    c.dataframe(cmp.waits, hide_index=True, width="stretch")
                for n in cmp.notes:
                    st.caption(n)

# ------------------------------------------------------------------------------ reports
with tabs[3]:
    if tabs[3].open is not False:
        kind = st.selectbox("Report", ["awr", "ash", "addm", "compare"], key="rep_kind")
        if len(ids) < 2:
            st.caption("Needs two successful snapshots.")
        else:
            # the newest interval by default: what a DBA reports on first
            rb = st.selectbox("Begin", ids[:-1], index=len(ids) - 2, format_func=label, key="rep_b")
            re_ = st.selectbox("End", [i for i in ids if i > rb], format_func=label, key="rep_e")
            bl_names = [b["name"] for b in bls]
            baseline = None
            if kind == "compare":
                baseline = st.selectbox(
                    "Against baseline",
                    bl_names,
                    index=None,
                    key="rep_bl",
                    placeholder="create one in the Baselines tab",
                )
            ready = kind != "compare" or baseline is not None
            if st.button("Generate report", key="rep_go", disabled=not ready) and c.write_allowed():
                times = dict(zip(ok["snapshot_id"], ok["captured_at"], strict=False))
                args = (
                    {"begin": times[rb], "end": times[re_]}  # ASH: the snapshots' times
                    if kind == "ash"
                    else {"begin": int(rb), "end": int(re_), "baseline": baseline}
                )
                with st.spinner("Rendering (papermill + nbconvert, about 15 s)…"):
                    out, rerr = c.try_call(api.render_report, kind, target, **args)
                if rerr:
                    st.error(rerr.message)
                else:
                    c.offer_report(out)
