"""Capacity and workload ML: forecasts with their bands, anomalies on the series, workload
patterns (statement clusters, interval classes, response-time predictions), maintenance
windows as an hour-of-week heatmap."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import common as c
from ops_core import api
from ops_core.model.formats import fmt_bytes

st.title("Capacity and anomalies")
target = c.current_target()
if target is None:
    st.stop()

tab_f, tab_s, tab_a, tab_p, tab_w = st.tabs(
    ["Forecasts", "Storage growth", "Anomalies", "Workload patterns", "Maintenance windows"]
)

with tab_f:
    horizon = st.slider("Horizon (days)", 1, 180, 30)
    rep, err = c.try_call(api.capacity_forecasts, target, horizon_days=horizon)
    if err:
        st.error(err.message)
    else:
        rows = [
            {
                "metric": f.metric,
                "unit": f.unit,
                "now": f.last_value,
                "limit": f.limit,
                "days until": f.days_until,
                "days until (pessimistic)": f.days_until_upper,
                "method": f.method,
                "notes": "; ".join(f.notes),
            }
            for f in rep.forecasts
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        for n in rep.not_captured:
            st.caption(f"Not forecast: {n}")
        for f in rep.forecasts:
            if f.frame.empty:
                continue
            fig = go.Figure()
            fr = f.frame
            fig.add_trace(
                go.Scatter(
                    x=fr["at"], y=fr["upper"], line={"width": 0}, showlegend=False, hoverinfo="skip"
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=fr["at"],
                    y=fr["lower"],
                    fill="tonexty",
                    line={"width": 0},
                    name="95 % interval",
                )
            )
            fig.add_trace(go.Scatter(x=fr["at"], y=fr["mean"], name=f"forecast ({f.method})"))
            if f.limit is not None:
                fig.add_hline(y=f.limit, line_dash="dash", annotation_text="limit")
            fig.update_layout(title=f"{f.metric} ({f.unit})", height=280, margin={"t": 40, "b": 10})
            st.plotly_chart(fig, width="stretch")

with tab_s:
    s_horizon = st.slider("Horizon (days)", 1, 180, 30, key="storage_horizon")
    for by, label in (("database", "Databases"), ("table", "Fastest-growing tables")):
        g, gerr = c.try_call(api.storage_growth, target, horizon_days=s_horizon, by=by)
        if gerr:
            st.error(gerr.message)
            break
        st.subheader(label)
        if g.attrs.get("note"):
            st.caption(g.attrs["note"])
        elif by == "database":
            st.caption(
                f"Free space of the data directory's filesystem: {fmt_bytes(g.attrs['free_bytes'])}"
            )
        if g.empty:
            st.info(g.attrs["empty_note"])
            continue
        view = g.copy()
        for col in ("size_bytes", "growth_bytes_per_day", "forecast_bytes"):
            view[col] = view[col].map(fmt_bytes)
        name = ["datname"] + (["schemaname", "relname"] if by == "table" else [])
        st.dataframe(
            view[[*name, "size_bytes", "growth_bytes_per_day", "share_of_growth_pct",
                  "forecast_bytes", "days_until_full", "method"]],
            hide_index=True,
            width="stretch",
        )  # fmt: skip
        if by == "table" and g["growth_bytes_per_day"].fillna(0).gt(0).any():
            labels = g["schemaname"] + "." + g["relname"]
            fig = go.Figure(go.Bar(x=g["growth_bytes_per_day"] / 2**20, y=labels, orientation="h"))
            fig.update_layout(
                xaxis_title="growth (MB/day)", yaxis={"autorange": "reversed"},
                height=80 + 24 * len(g), margin={"t": 10, "b": 10},
            )  # fmt: skip
            st.plotly_chart(fig, width="stretch")

with tab_a:
    if st.button("Detect now", type="primary"):
        _, derr = c.try_call(api.ml_anomalies, target)
        if derr:
            st.error(derr.message)
    series, serr = c.try_call(api.workload_series, target)
    found, aerr = c.try_call(api.ml_anomalies, target, detect=False)
    if serr or aerr:
        st.error((serr or aerr).message)
    elif series.empty:
        st.info("No snapshot history yet.")
    else:
        metric = st.selectbox("Metric", list(series.columns))
        fig = go.Figure(go.Scatter(x=series.index, y=series[metric], name=metric))
        for _, a in found.iterrows():
            fig.add_vrect(
                x0=a["begin_at"],
                x1=a["end_at"],
                opacity=0.25,
                line_width=0,
                fillcolor="red" if a["severity"] == "alert" else "orange",
            )
        fig.update_layout(height=320, margin={"t": 20, "b": 10})
        st.plotly_chart(fig, width="stretch")
        st.metric("Anomalies stored", len(found))
        if not found.empty:
            view = found[
                ["anomaly_id", "begin_at", "end_at", "severity", "score", "addm_analysis_id"]
            ].copy()
            view["metrics"] = [", ".join(m["metric"] for m in ms) for ms in found["metrics"]]
            st.dataframe(view, hide_index=True, width="stretch")

with tab_p:
    pat, perr = c.try_call(api.ml_patterns, target)
    cls, cerr = c.try_call(api.ml_classifications, target)
    pred, prerr = c.try_call(api.ml_predictions, target)
    if perr or cerr or prerr:
        st.error((perr or cerr or prerr).message)
    elif not pat.statements:
        st.info("No statement history yet.")
    else:
        st.subheader(f"Statement clusters ({pat.statements} statements)")
        st.dataframe(pd.DataFrame(pat.clusters), hide_index=True, width="stretch")
        for n in pat.notes:
            st.caption(n)
        st.subheader("Workload class per interval")
        counts = cls["class"].value_counts()
        st.write(", ".join(f"{k}: {v} intervals" for k, v in counts.items()))
        view = cls[["captured_at", "class", "share"]].copy()
        view["evidence"] = [
            ", ".join(f"{k} {v:.0%}" for k, v in e.get("time_share", {}).items())
            for e in cls["evidence"]
        ]
        st.dataframe(view, hide_index=True, width="stretch")
        st.subheader("Next interval: expected mean time per call (90 % interval)")
        st.dataframe(
            pred.drop(columns=["outliers"]).assign(outliers=[len(o) for o in pred["outliers"]]),
            hide_index=True,
            width="stretch",
        )

with tab_w:
    w, werr = c.try_call(api.maintenance_windows, target)
    if werr:
        st.error(werr.message)
    else:
        st.write(w.note)
        if w.windows:
            st.dataframe(pd.DataFrame(w.windows), hide_index=True, width="stretch")
        grid = w.heatmap.pivot(index="day", columns="hour", values="mean_aas")
        grid = grid.reindex(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
        st.plotly_chart(
            go.Figure(
                go.Heatmap(
                    z=grid.to_numpy(),
                    x=list(grid.columns),
                    y=list(grid.index),
                    colorscale="Blues",
                    colorbar={"title": "AAS"},
                )
            ),
            width="stretch",
        )
