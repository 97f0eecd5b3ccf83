"""Catalog coverage: every catalog operation from the operation registry, its status and where
it is served (function, CLI command, app page, flow), and what it reads and writes."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ops_core import api

st.title("Catalog coverage")
cov = api.REGISTRY.coverage()
c1, c2, c3, c4 = st.columns(4)
c1.metric("Operations", cov["operations"])
c2.metric("Served", cov["served"])
c3.metric("Not available on PostgreSQL", cov["not_available"])
c4.metric("Not yet", cov["not_yet"])
df = pd.DataFrame([op.as_dict() for op in api.REGISTRY])
df["reads"] = df["reads"].str.join(", ")
df["writes"] = df["writes"].str.join(", ")
show = st.segmented_control(
    "Show", ["all", "served", "not available", "not yet"], default="all", key="catalog_status"
)
if show and show != "all":
    df = df[df["status"].str.startswith(show)]
st.dataframe(
    df[
        [
            "kind",
            "name",
            "description",
            "status",
            "function",
            "reads",
            "writes",
            "cli",
            "app_page",
            "flow",
        ]
    ],
    hide_index=True,
    width="stretch",
)
