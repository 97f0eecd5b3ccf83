"""Catalog coverage: the operations the platform must offer and where each is served."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ops_core import catalog

st.title("Catalog coverage")
ops = catalog.operations()
cov = catalog.coverage()
c1, c2, c3 = st.columns(3)
c1.metric("Operations", cov["operations"])
c2.metric("Served", cov["served"])
c3.metric("Not yet", cov["not_served"])
df = pd.DataFrame([o.as_dict() for o in ops])
only = st.toggle("Only operations not served yet", value=False)
if only:
    df = df[~df["served"]]
st.dataframe(
    df[["kind", "name", "description", "served", "api_function", "cli", "app_page", "flow"]],
    hide_index=True,
    width="stretch",
    column_config={"served": st.column_config.CheckboxColumn("served")},
)
