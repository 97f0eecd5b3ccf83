"""Autonomous database: the mode of each feature per target, self-healing issues found now,
the actions it took (the journal, with evidence), index health and corruption checks,
self-tuning, and auto-indexing (candidates, its indexes, a cycle)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import common as c
from ops_core import api

st.title("Autonomous")
c.show_flash()
target = c.current_target()
if target is None:
    st.stop()

cfg, err = c.try_call(api.autonomous_config, target)
if err:
    st.error(err.message)
    st.stop()

st.subheader("Feature modes")
st.caption(
    "off: nothing acts (default) · report-only: every action is journaled with its SQL, "
    "nothing runs · implement: done, journaled with the state before and after. A policy a DBA "
    "set on a kind of change (Actions) makes a feature stricter, never looser."
)
st.dataframe(
    pd.DataFrame(
        [
            {
                "feature": f,
                "mode": m,
                "changes it may make": ", ".join(
                    f"{k} = {v}" for k, v in cfg.action_policies[f].items()
                ),
            }
            for f, m in cfg.modes.items()
        ]
    ),
    hide_index=True,
    width="stretch",
)
for n in cfg.notes:
    st.caption(n)
c1, c2, c3 = st.columns([2, 2, 1])
feature = c1.selectbox("Feature", ["healing", "tuning", "indexing"])
mode = c2.selectbox("Mode", ["off", "report-only", "implement"])
if c3.button("Set mode"):
    st.session_state["auto_mode"] = True
c.confirmed_write(
    "auto_mode", f"Set {feature} to {mode} on {target}?", api.set_autonomous_config,
    target, feature, mode, "app",
    done=lambda r: f"{feature} is {mode} on {r.target}.", failed="Could not set the mode",
)  # fmt: skip

tab_i, tab_a, tab_x, tab_c, tab_t, tab_ai = st.tabs(
    ["Self-healing issues", "Actions taken", "Index health", "Corruption", "Self-tuning",
     "Auto-indexing"]
)  # fmt: skip
_COLOR = {"critical": "🔴", "warning": "🟠", "info": "🔵"}

with tab_i:
    found, ierr = c.try_call(api.healing_issues, target, samples=2, interval_s=1.0)
    if ierr:
        st.error(ierr.message)
    elif not found.issues:
        st.success(f"No issue found ({found.samples} samples over {found.observed_s:.0f} s).")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "severity": f"{_COLOR.get(i.severity, '')} {i.severity}",
                        "issue": i.kind,
                        "object": i.object,
                        "what": i.summary,
                        "remedy": i.remedy,
                        "action": i.action or "alert only",
                    }
                    for i in found.issues
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        pick = st.selectbox("Evidence of", [f"{i.kind} {i.object}" for i in found.issues])
        chosen = next(i for i in found.issues if f"{i.kind} {i.object}" == pick)
        st.json(chosen.evidence, expanded=False)
    for n in found.not_checked if found else []:
        st.caption(f"Not checked: {n}")
    if st.button("Run a healing cycle now", type="primary"):
        st.session_state["auto_heal"] = True
    c.confirmed_write(
        "auto_heal",
        f"Run self-healing on {target} (mode {cfg.modes['self_healing']})?",
        api.run_healing, target,
        done=lambda r: r.summary, failed="Healing cycle failed",
        busy="Sampling blockers and checking…",
    )  # fmt: skip

with tab_a:
    acts, aerr = c.try_call(api.healing_actions, target, 200)
    if aerr:
        st.error(aerr.message)
    elif not acts:
        st.info("Self-healing has not acted or reported anything on this target yet.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "id": e.action_id,
                        "started": c.fmt_time(e.started_at),
                        "kind": e.feature,
                        "mode": e.mode,
                        "outcome": e.outcome,
                        "what": e.what,
                        "why": e.why,
                        "SQL": e.sql,
                    }
                    for e in acts
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        one = st.selectbox("Journal entry", [e.action_id for e in acts])
        entry = next(e for e in acts if e.action_id == one)
        st.json({"evidence": entry.evidence, "before": entry.before, "after": entry.after})

with tab_x:
    verdicts, verr = c.try_call(api.index_health, target)
    if verr:
        st.error(verr.message)
    else:
        df = pd.DataFrame([v.as_dict() for v in verdicts])
        if df.empty:
            st.info("No user index in this database.")
        else:
            counts = df["verdict"].value_counts()
            cols = st.columns(len(counts))
            for col, (verdict, n) in zip(cols, counts.items(), strict=True):
                col.metric(verdict, int(n))
            df["size"] = df["bytes"].map(c.fmt_bytes)
            shown = ["verdict", "schema", "index", "table", "size", "scans", "detail", "definition"]
            st.dataframe(
                df[shown],
                hide_index=True,
                width="stretch",
            )

with tab_c:
    checks, cerr = c.try_call(api.corruption_results, target)
    if cerr:
        st.error(cerr.message)
    elif not checks:
        st.info("No corruption check yet.")
    else:
        last = checks[0]
        (st.error if last.corrupt else st.success)(
            f"{c.fmt_time(last.finished_at)}: {last.method}: {last.checked} checked, "
            f"{last.corrupt} corrupt, {last.skipped} skipped"
        )
        bad = [r for r in last.results if not r["ok"]]
        if bad:
            st.dataframe(pd.DataFrame(bad), hide_index=True, width="stretch")
    if st.button("Check now (reads every B-tree index)"):
        st.session_state["auto_amcheck"] = True
    c.confirmed_write(
        "auto_amcheck", f"Run amcheck on every B-tree index of {target}?",
        api.check_corruption, target,
        done=lambda r: (f"{r.checked} checked, {r.corrupt} corrupt", "error" if r.corrupt
                        else "success"),
        failed="Check failed", busy="Checking indexes…",
    )  # fmt: skip

with tab_t:
    params, perr = c.try_call(api.tuning_parameters, target)
    if perr:
        st.error(perr.message)
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "parameter": p.name,
                        "value": p.value,
                        "context": p.context,
                        "source": p.source,
                        "baseline": p.baseline or "",
                        "recommended": p.recommended or "",
                        "status": p.status,
                        "evidence": "; ".join(p.evidence),
                    }
                    for p in params
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    trials, terr = c.try_call(api.tuning_actions, target)
    if trials:
        st.markdown("**Trials** (value before -> after, measured on the snapshots after it)")
        st.dataframe(
            pd.DataFrame([x.as_dict() for x in trials]).drop(columns=["target_id"]),
            hide_index=True,
            width="stretch",
        )
    b1, b2, _ = st.columns([2, 2, 4])
    if b1.button("Apply recommendations"):
        st.session_state["auto_tune"] = True
    if b2.button("Evaluate trials"):
        st.session_state["auto_eval"] = True
    c.confirmed_write(
        "auto_tune",
        f"Apply the recommended changes on {target} (mode {cfg.modes['self_tuning']})?",
        api.apply_tuning, target,
        done=lambda r: f"{len(r)} trial(s): " + ", ".join(f"{x.parameter} {x.status}" for x in r),
        failed="Could not apply",
    )  # fmt: skip
    c.confirmed_write(
        "auto_eval", f"Judge the trials of {target} (rolling back what hurt)?",
        api.evaluate_tuning, target,
        done=lambda r: "Trials judged.", failed="Could not evaluate",
    )  # fmt: skip

with tab_ai:
    icfg, ierr = c.try_call(api.indexing_config, target)
    if ierr:
        st.error(ierr.message)
    else:
        window = (f"{icfg.window_start_hour}-{icfg.window_end_hour} h UTC"
                  if icfg.window_start_hour is not None else "any time")  # fmt: skip
        st.caption(
            f"auto-indexing {icfg.mode} · budget {icfg.budget_mb:g} MB · {icfg.max_builds} "
            f"build(s) per cycle · window {window} · validation {icfg.validation_hours:g} h · "
            f"unused after {icfg.unused_days:g} days (`opscore autonomous indexing config set`)"
        )
    cands, cerr2 = c.try_call(api.indexing_candidates, target)
    if cerr2:
        st.error(cerr2.message)
    elif not cands.candidates:
        st.info("No index candidate. " + " ".join(cands.notes))
    else:
        st.markdown(f"**Candidates** (snapshots {cands.begin_id}-{cands.end_id}, costed by "
                    f"{cands.method})")  # fmt: skip
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "chosen": "yes" if x.chosen else "",
                        "index": f"{x.schema_name}.{x.label}",  # INCLUDE / WHERE shown
                        "saved ms": round(x.saved_ms, 1),
                        "writes ms": round(x.write_ms, 1),
                        "size": c.fmt_bytes(x.est_bytes),
                        "verdict": x.verdict,
                        "SQL": x.ddl,
                    }
                    for x in cands.candidates
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        for n in cands.notes:
            st.caption(n)
    for title, fn in (("Recommended (report-only)", api.indexing_recommendations),
                      ("Created by auto-indexing", api.indexing_created)):  # fmt: skip
        rows, rerr = c.try_call(fn, target)
        if rows:
            st.markdown(f"**{title}**")
            st.dataframe(
                pd.DataFrame([r.as_dict() for r in rows])[
                    [
                        "autoindex_id",
                        "status",
                        "index_name",
                        "table_name",
                        "columns",
                        "created_at",
                        "dropped_at",
                        "note",
                    ]
                ],  # fmt: skip
                hide_index=True,
                width="stretch",
            )
    if st.button("Run an auto-indexing cycle"):
        st.session_state["auto_index"] = True
    c.confirmed_write(
        "auto_index",
        f"Run auto-indexing on {target} (mode {cfg.modes['auto_indexing']})?",
        api.run_indexing, target,
        done=lambda r: r.summary, failed="Auto-indexing failed", busy="Costing candidates…",
    )  # fmt: skip
