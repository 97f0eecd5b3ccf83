"""Backup and recovery: the target's backups and recoverability window, take a backup, verify,
restore (a data directory with PITR, or a dump into a new database), restore points, schedule
and retention. Every write asks for confirmation; everything goes through ops_core.api."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import common as c
from ops_core import api

st.title("Backup and recovery")
target = c.current_target()
if target is None:
    st.stop()
c.show_flash()

reports, err = c.try_call(api.backup_report, target)
if err:
    st.error(f"Cannot read the backup catalog: {err.message}")
    if err.hint:
        st.caption(err.hint)
    st.stop()
rep = reports[0]


def _when(iso: str | None) -> str:
    """A short local time for a metric (a full timestamp does not fit its width)."""
    ts = c.to_local(iso) if iso else None
    return ts.strftime("%b %d %H:%M") if ts is not None else "—"


def _stream_note(stream: dict) -> str:
    if not stream:
        return " WAL is not archived continuously (`opscore backup wal stream`)."
    if not stream.get("alive"):
        return f" WAL stream not running (last heartbeat {_when(stream.get('heartbeat'))})."
    return (
        f" WAL stream running on slot {stream.get('slot')}, last heartbeat "
        f"{_when(stream.get('heartbeat'))}, {stream.get('restarts', 0)} receiver restarts."
    )


# ------------------------------------------------------------------------------ summary
rec = rep.recoverability
m = st.columns(4)
m[0].metric("Backups", rep.totals["backups"])
m[1].metric("Size", c.fmt_bytes(rep.totals["size_bytes"]) or "0 B")
m[2].metric("Recoverable from", _when((rec.get("earliest") or {}).get("time")))
m[3].metric("Recoverable to", _when((rec.get("latest") or {}).get("time")))
st.caption(
    f"Store {rep.store}. Recoverability: {rec.get('note')}."
    + (f" WAL archive gaps: {len(rep.wal['gaps'])}." if rep.wal["gaps"] else "")
    + (f" Damaged WAL segments: {len(rep.wal['damaged'])}." if rep.wal.get("damaged") else "")
    + _stream_note(rep.wal.get("stream") or {})
)
if len(rec.get("windows") or []) > 1 or any(
    w["to"].get("ended_by") not in (None, "end of archive") for w in rec.get("windows") or []
):
    # the window is not one piece: show each with what bounds it
    st.warning("The recoverable window is split or cut short; each piece and what ends it:")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "from": _when(w["from"]["time"]),
                    "from LSN": w["from"]["lsn"],
                    "starts at": w["from"]["bound"],
                    "to": _when(w["to"]["time"]),
                    "to LSN": w["to"]["lsn"],
                    "ends at": w["to"]["bound"],
                }
                for w in rec["windows"]
            ]
        ),
        hide_index=True,
        width="stretch",
    )

tabs = st.tabs(
    ["Backups", "Take a backup", "Restore", "Restore points", "Schedule and retention"],
    key="bk", on_change="rerun", bind="query-params",
)  # fmt: skip
backups = pd.DataFrame(rep.backups)

# ------------------------------------------------------------------------------ list
with tabs[0]:
    if tabs[0].open is not False:
        if backups.empty:
            st.info(f"No backups of {target} yet: take one in the next tab, or run "
                    f"`opscore backup full --target {target}`.")  # fmt: skip
        else:
            view = backups.copy()
            view["started_at"] = c.to_local(view["started_at"])
            view["size"] = view["size_bytes"].map(c.fmt_bytes)
            view["verified"] = view["verification"].map(
                lambda v: "" if not v else f"{'ok' if v['ok'] else 'FAILED'} ({v['kind']})"
            )
            for col in ("error", "parent_id", "database", "stop_lsn"):
                view[col] = view[col].fillna("")
            st.dataframe(
                view[["backup_id", "kind", "status", "started_at", "size", "duration_s",
                      "parent_id", "database", "stop_lsn", "verified", "error"]],
                hide_index=True,
                width="stretch",
                column_config={
                    "started_at": st.column_config.DatetimeColumn("started"),
                    "duration_s": c.NUM("duration (s)", format="%,.1f"),
                    "parent_id": c.TXT("based on"),
                },
            )  # fmt: skip
            c.tz_caption()
            ids = backups["backup_id"].tolist()
            pick = st.selectbox("Backup", ids, index=len(ids) - 1, key="bk_pick")
            detail, derr = c.try_call(api.get_backup, pick)
            if derr:
                st.error(derr.message)
            else:
                b = detail.backup
                st.caption(
                    f"{b.kind} backup, {b.status}; path {b.path}"
                    + (f"; chain {' → '.join(detail.chain)}" if len(detail.chain) > 1 else "")
                    + (f"; incrementals on it: {', '.join(detail.children)}"
                       if detail.children else "")
                )  # fmt: skip
                if detail.checks:
                    st.dataframe(
                        pd.DataFrame([ch.as_dict() for ch in detail.checks]),
                        hide_index=True,
                        width="stretch",
                    )
                a1, a2, a3, _ = st.columns([1, 2, 1, 4])
                for col, label, mode in (
                    (a1, "Verify", "quick"),
                    (a2, "Verify with a test restore", "test_restore"),
                ):
                    if col.button(label, key=f"bk_verify_{mode}"):
                        st.session_state["bk_verify_mode"] = mode
                        st.session_state["bk_verify_pending"] = True
                if a3.button("Delete", key="bk_delete"):
                    st.session_state["bk_delete_pending"] = True
                mode = st.session_state.get("bk_verify_mode")
                what = (
                    "restore it into a temporary directory, start it and run amcheck"
                    if mode == "test_restore"
                    else "check it (pg_verifybackup, or the dump's table of contents)"
                )
                c.confirmed_write(
                    "bk_verify_pending",
                    f"Verify {pick}? This will {what}; the result is recorded and sets the "
                    "backup's status.",
                    api.verify_backup, pick, test_restore=mode == "test_restore",
                    done=lambda vr: f"{pick} verified: " + ", ".join(x.kind for x in vr.checks)
                    if vr.ok
                    else (f"{pick} is damaged: {', '.join(vr.bad_files) or 'see checks'}",
                          "error"),
                    failed="Verification failed to run", busy=f"Verifying {pick}…",
                )  # fmt: skip
                cascade = bool(detail.children)
                c.confirmed_write(
                    "bk_delete_pending",
                    f"Delete {pick} (files and record)"
                    + (f" and the incrementals on it ({', '.join(detail.children)})"
                       if cascade else "") + "? This cannot be undone.",
                    api.delete_backup, pick, cascade=cascade,
                    done=lambda gone: f"Deleted {', '.join(gone)}.", failed="Not deleted",
                )  # fmt: skip

# ------------------------------------------------------------------------------ take
with tabs[1]:
    if tabs[1].open is not False:
        kind = st.radio(
            "Kind", ["full", "incremental", "logical"], horizontal=True, key="bk_kind",
            captions=["pg_basebackup, WAL streamed", "changes since the newest backup (17+)",
                      "pg_dump -Fc of one database"],
        )  # fmt: skip
        database = None
        if kind == "logical":
            database = st.text_input("Database", key="bk_db", placeholder="the target's DSN one")
        if st.button(f"Take a {kind} backup", key="bk_take", type="primary"):
            st.session_state["bk_take_pending"] = True
        take = {
            "full": lambda: api.take_full_backup(target),
            "incremental": lambda: api.take_incremental_backup(target),
            "logical": lambda: api.take_logical_backup(target, database or None),
        }[kind]
        c.confirmed_write(
            "bk_take_pending",
            f"Take a {kind} backup of {target} now? It reads the whole "
            + ("database" if kind == "logical" else "cluster")
            + " through a replication or dump connection.",
            take,
            done=lambda b: f"{b.kind} backup {b.backup_id}: {c.fmt_bytes(b.size_bytes)} in "
            f"{b.duration_s:.1f} s.",
            failed="Backup failed", busy=f"{kind} backup of {target} running…",
        )  # fmt: skip

# ------------------------------------------------------------------------------ restore
with tabs[2]:
    if tabs[2].open is not False:
        usable = (
            backups[backups["status"].isin(["done", "verified"])]
            if not backups.empty
            else pd.DataFrame(columns=["backup_id", "kind"])
        )
        physical = usable[usable["kind"].isin(["full", "incremental"])]
        dumps = usable[usable["kind"] == "logical"]
        left, right = st.columns(2)
        with left:
            st.markdown("**A data directory** (point-in-time recovery)")
            if physical.empty:
                st.caption("No usable physical backup.")
            else:
                dest = st.text_input("New (or empty) directory", key="rs_dest",
                                     placeholder="/srv/restore/" + target)  # fmt: skip
                how = st.selectbox(
                    "Recover to",
                    ["end of the backup", "a time", "an LSN", "a restore point", "latest WAL"],
                    key="rs_how",
                )
                kw: dict = {}
                if how == "a time":
                    kw["target_time"] = st.text_input("Time (ISO 8601, UTC if no zone)",
                                                      key="rs_time")  # fmt: skip
                elif how == "an LSN":
                    kw["target_lsn"] = st.text_input("LSN", key="rs_lsn", placeholder="0/5000060")
                elif how == "a restore point":
                    rps = [p.name for p in api.list_restore_points(target)]
                    kw["target_name"] = st.selectbox("Restore point", rps, key="rs_rp")
                elif how == "latest WAL":
                    kw["latest"] = True
                bid = st.selectbox("Backup", ["newest before the target",
                                              *physical["backup_id"]], key="rs_bid")  # fmt: skip
                if bid != "newest before the target":
                    kw["backup_id"] = bid
                if st.checkbox("Keep it running as a clone (for experiments)", key="rs_start"):
                    kw["start"] = True
                if st.button("Restore", key="rs_go", disabled=not dest):
                    st.session_state["rs_pending"] = True
                c.confirmed_write(
                    "rs_pending",
                    f"Restore into {dest}? Nothing is written on {target}; the directory must "
                    "be new or empty.",
                    api.restore_backup, target, dest, **kw,
                    done=lambda rr: f"Restored {' + '.join(rr.chain)} into {rr.destination} "
                    f"({c.fmt_bytes(rr.size_bytes)}); recovery to {rr.recovery_target}, "
                    "proven by starting it ("
                    f"{(rr.proof or {}).get('recovery_stopping') or 'end of recovery'}). Start "
                    f"it with PostgreSQL {rr.server_major}'s pg_ctl -D {rr.destination} start."
                    if not rr.clone else f"Clone {rr.clone['clone']} running: {rr.clone['url']}",
                    failed="Restore refused or failed", busy="Restoring…",
                )  # fmt: skip
                st.markdown("**A clone of a backup** (restored and kept running on a free port)")
                cl_bid = st.selectbox("Backup to clone", physical["backup_id"].tolist(),
                                      key="cb_bid")  # fmt: skip
                cl_time = st.text_input("At a time inside its window (optional, ISO 8601)",
                                        key="cb_time")  # fmt: skip
                if st.button("Start a clone", key="cb_go"):
                    st.session_state["cb_pending"] = True
                c.confirmed_write(
                    "cb_pending",
                    f"Restore {cl_bid} into a new clone and start it? Nothing is written on "
                    f"{target}.",
                    api.clone_backup, cl_bid, time=cl_time or None,
                    done=lambda cb: f"Clone {cb.clone} running: {cb.url} "
                    f"(recovered to {cb.recovery_target}).",
                    failed="Clone not started", busy="Restoring and starting the clone…",
                )  # fmt: skip
            clones = api.list_clones()
            if clones:
                st.markdown("**Clones** (restored servers opscore keeps running)")
                st.dataframe(pd.DataFrame([{"clone": cl.clone, "running": cl.running,
                                            "backup": cl.backup_id, "url": cl.url}
                                           for cl in clones]),
                             hide_index=True, width="stretch")  # fmt: skip
                gone = st.selectbox("Clone", [cl.clone for cl in clones], key="cl_pick")
                if st.button("Drop the clone", key="cl_drop"):
                    st.session_state["cl_drop_pending"] = True
                c.confirmed_write(
                    "cl_drop_pending",
                    f"Stop clone {gone} and delete its data directory?",
                    api.drop_clone, gone,
                    done=lambda cl: f"Clone {cl.clone} dropped.", failed="Clone not dropped",
                )  # fmt: skip
        with right:
            st.markdown("**A dump into a new database**")
            if dumps.empty:
                st.caption("No usable logical backup.")
            else:
                did = st.selectbox("Dump", dumps["backup_id"].tolist(), key="rd_bid")
                newdb = st.text_input("New database", key="rd_db", placeholder="app_restored")
                no_owner = st.checkbox("Skip ownership and grants (--no-owner)", key="rd_no")
                if st.button("Restore the dump", key="rd_go", disabled=not newdb):
                    st.session_state["rd_pending"] = True
                c.confirmed_write(
                    "rd_pending",
                    f"Create database {newdb!r} on {target} and restore {did} into it? An "
                    "existing database is refused.",
                    api.restore_logical_backup, did, newdb, no_owner=no_owner,
                    done=lambda lr: f"Restored {lr.backup_id} into {lr.database}: "
                    f"{lr.tables_restored} of {lr.tables_in_dump} tables, "
                    f"{c.fmt_bytes(lr.size_bytes)}.",
                    failed="Dump not restored", busy="pg_restore running…",
                )  # fmt: skip


# ------------------------------------------------------------------------------ restore points
def _rp_done(p: api.RestorePoint) -> str | tuple[str, str]:
    warning = api.wal_archiving_warning(target, p.lsn)
    msg = f"Restore point {p.name} at LSN {p.lsn}."
    return (f"{msg} Warning: {warning}", "warning") if warning else msg


with tabs[3]:
    if tabs[3].open is not False:
        if rep.restore_points:
            pts = pd.DataFrame(rep.restore_points)
            pts["created_at"] = c.to_local(pts["created_at"])
            st.dataframe(pts[["name", "lsn", "timeline", "created_at"]], hide_index=True,
                         width="stretch")  # fmt: skip
        else:
            st.caption("No restore points yet.")
        rp = st.text_input("Name", key="rp_name", placeholder="before_migration")
        if st.button("Create a restore point", key="rp_go", disabled=not rp):
            st.session_state["rp_pending"] = True
        c.confirmed_write(
            "rp_pending",
            f"Create restore point {rp!r} on {target}? It writes one WAL record "
            "(pg_create_restore_point) through an admin session.",
            api.create_restore_point, target, rp,
            done=_rp_done,
            failed="Restore point not created",
        )  # fmt: skip

# ------------------------------------------------------------------------------ schedule
with tabs[4]:
    if tabs[4].open is not False:
        sched, serr = c.try_call(api.get_backup_schedule, target)
        if serr:
            st.error(serr.message)
        else:
            d = sched.as_dict()
            if d["jobs"]:
                st.dataframe(
                    pd.DataFrame(
                        [{"job": j, "when": w, "next run (UTC)": d["next_runs"].get(j)}
                         for j, w in d["jobs"].items()]
                    ),
                    hide_index=True,
                    width="stretch",
                )  # fmt: skip
            else:
                st.caption("No scheduled backup jobs (`opscore backup schedule --defaults`).")
            st.caption(f"Retention policy: {d['retention'] or 'none set'}")
            with st.expander("Change the schedule"):
                st.caption(
                    "Cron in UTC (`0 1 * * 0`) or an interval (`every 6h`); empty removes the "
                    "job. Recommended: "
                    + ", ".join(f"{j} `{w}`" for j, w in api.DEFAULT_BACKUP_SCHEDULE.items())
                )
                jobs = {
                    j: st.text_input(j, d["jobs"].get(j, ""), key=f"sch_{j}")
                    for j in api.BACKUP_JOBS
                }
                if st.button("Save the schedule", key="sch_go"):
                    st.session_state["sch_pending"] = True
                c.confirmed_write(
                    "sch_pending",
                    f"Store this schedule for {target}? `opscore serve` runs it from its next "
                    "start.",
                    api.set_backup_schedule, target, jobs,
                    done=lambda _: f"Schedule of {target} saved.", failed="Schedule not saved",
                )  # fmt: skip
        st.markdown("**Retention** (dry run: what would go, and why)")
        r1, r2 = st.columns(2)
        red = r1.number_input("Keep the newest N full backups", 0, 100, 0, key="rt_red")
        win = r2.number_input("Recovery window (days)", 0.0, 3650.0, 0.0, key="rt_win")
        given = {"redundancy": int(red) or None, "recovery_window_days": float(win) or None}
        plan, perr = c.try_call(api.apply_retention, target, dry_run=True, **given)
        if perr:
            st.info(f"{perr.message} {perr.hint or ''}")
        else:
            st.caption(f"Policy: {plan.policy}")
            st.dataframe(pd.DataFrame(plan.keep + plan.delete), hide_index=True,
                         width="stretch")  # fmt: skip
            st.caption(f"{len(plan.delete)} backup(s) and {len(plan.wal_delete)} WAL segment(s) "
                       "would be deleted.")  # fmt: skip
            if plan.delete or plan.wal_delete:
                if st.button("Apply retention", key="rt_go"):
                    st.session_state["rt_pending"] = True
                c.confirmed_write(
                    "rt_pending",
                    f"Delete {', '.join(plan.delete_ids) or 'no backups'} and "
                    f"{len(plan.wal_delete)} WAL segment(s)? This cannot be undone.",
                    api.apply_retention, target, dry_run=False, **given,
                    done=lambda r: f"Retention applied: {len(r.delete)} backup(s) deleted.",
                    failed="Retention not applied",
                )  # fmt: skip
