"""Alerts: open alerts (acknowledge, resolve), recent history with notification deliveries,
the rules (create, switch on/off, delete, install the default set) and an evaluation on
demand."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.common import confirmed_write, fmt_time, show_flash, try_call, tz_caption
from ops_core import api


@st.cache_data(ttl=10, show_spinner=False)
def _alerts(status: str) -> list[dict]:
    return [a.as_dict() for a in api.list_alerts(status, limit=300)]


@st.cache_data(ttl=10, show_spinner=False)
def _rules() -> list[dict]:
    return [r.as_dict() for r in api.list_alert_rules()]


st.title("Alerts")
show_flash()
open_, err = try_call(_alerts, "open")
if err is not None:
    st.error(f"The repository is unreachable: {err.message}")
    st.stop()

c1, c2, c3 = st.columns(3)
c1.metric("Open alerts", len(open_))
c2.metric("Critical", sum(1 for a in open_ if a["severity"] == "critical"))
c3.metric("Acknowledged", sum(1 for a in open_ if a["status"] == "acknowledged"))


def _frame(alerts: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "id": a["alert_id"],
                "status": a["status"],
                "severity": a["severity"],
                "rule": a["rule"],
                "target": a["target"],
                "fired": fmt_time(a["fired_at"]),
                "resolved": fmt_time(a["resolved_at"]) if a["resolved_at"] else "",
                "summary": a["summary"],
            }
            for a in alerts
        ]
    )


if not open_:
    st.success("No open alert.")
else:
    st.dataframe(_frame(open_), hide_index=True, width="stretch")
    ids = [a["alert_id"] for a in open_]
    pick = st.selectbox("Alert", ids, key="alert_pick")
    b1, b2, _ = st.columns([1, 1, 6])
    if b1.button("Acknowledge", key="alert_ack_btn"):
        st.session_state["alert_ack"] = True
    if b2.button("Resolve", key="alert_resolve_btn"):
        st.session_state["alert_resolve"] = True
    confirmed_write(
        "alert_ack", f"Acknowledge alert {pick}?", api.ack_alert, pick, "app",
        done=lambda a: f"Alert {a.alert_id} acknowledged.", failed="Could not acknowledge",
    )  # fmt: skip
    confirmed_write(
        "alert_resolve", f"Resolve alert {pick} by hand?", api.resolve_alert, pick, "app",
        done=lambda a: f"Alert {a.alert_id} resolved.", failed="Could not resolve",
    )  # fmt: skip

with st.expander("History (resolved alerts)"):
    done, _ = try_call(_alerts, "resolved")
    if done:
        st.dataframe(_frame(done), hide_index=True, width="stretch")
    else:
        st.caption("No resolved alert yet.")
    notes, _ = try_call(api.alert_notifications)
    if notes:
        st.markdown("**Notification deliveries**")
        st.dataframe(
            pd.DataFrame([n.as_dict() for n in notes]).drop(columns=["response"]),
            hide_index=True,
            width="stretch",
        )

st.subheader("Rules")
rules, _ = try_call(_rules)
if rules:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": r["rule_id"],
                    "name": r["name"],
                    "target": r["target"] or "(all)",
                    "kind": r["kind"],
                    "condition": f"{r['metric']} {r['op']} {r['value']:g}",
                    "for (s)": r["for_s"],
                    "clear for (s)": r["clear_for_s"],
                    "severity": r["severity"],
                    "enabled": r["enabled"],
                    "channels": ", ".join(c["type"] for c in r["channels"]) or "default",
                }
                for r in rules
            ]
        ),
        hide_index=True,
        width="stretch",
    )
else:
    st.info("No rules yet: install the default set below or create one.")
c1, c2 = st.columns(2)
if c1.button("Install the default rules", key="alert_defaults_btn"):
    st.session_state["alert_defaults"] = True
confirmed_write(
    "alert_defaults",
    "Install the default rule set (every target; existing rules kept)?",
    api.install_default_alert_rules,
    done=lambda rs: f"{len(rs)} default rules in place.",
    failed="Could not install",
)
if c2.button("Evaluate now", key="alert_eval_btn"):
    run, e = try_call(api.evaluate_alerts)
    st.cache_data.clear()
    if e is not None:
        st.error(e.message)
    else:
        st.dataframe(
            pd.DataFrame([r.as_dict() for r in run.results]).drop(columns=["notifications"]),
            hide_index=True,
            width="stretch",
        )

with st.form("alert_rule_form"):
    st.markdown("**New rule**")
    f1, f2, f3 = st.columns(3)
    name = f1.text_input("Name")
    metric = f2.selectbox("Metric", list(api.ALERT_METRICS))
    kind = f3.selectbox("Kind", list(api.ALERT_KINDS))
    g1, g2, g3, g4 = st.columns(4)
    op = g1.selectbox("Op", [">", ">=", "<", "<="])
    value = g2.number_input("Value", value=0.0)
    for_ = g3.text_input("For", "0s")
    severity = g4.selectbox("Severity", ["warning", "critical", "info"])
    targets = ["(all)"] + [t.name for t in (try_call(api.list_targets)[0] or [])]
    target = st.selectbox("Target", targets)
    webhook = st.text_input("Webhook URL (optional; a token goes in an environment variable)")
    if st.form_submit_button("Create"):
        _, e = try_call(
            api.create_alert_rule, name, metric, value, op=op, kind=kind,
            target=None if target == "(all)" else target, for_s=for_, severity=severity,
            channels=[{"type": "webhook", "url": webhook}] if webhook else None,
        )  # fmt: skip
        st.cache_data.clear()
        if e is not None:
            st.error(f"{e.message} {e.hint or ''}")
        else:
            st.success(f"Rule {name!r} created.")

if rules:
    del_pick = st.selectbox("Rule to delete", [r["name"] for r in rules], key="alert_del_pick")
    if st.button("Delete rule", key="alert_del_btn"):
        st.session_state["alert_del"] = True
    confirmed_write(
        "alert_del", f"Delete rule {del_pick} with its alerts?", api.delete_alert_rule, del_pick,
        done=lambda r: f"Rule {r.name!r} deleted.", failed="Could not delete",
    )  # fmt: skip
tz_caption()
