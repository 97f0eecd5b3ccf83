"""Server log: entries newest first, filtered by severity, time, database, user and text,
when opscore can read the log (otherwise the reason)."""

from __future__ import annotations

import streamlit as st

from app.common import current_target, range_picker, try_call
from ops_core import api

st.title("Server log")
target = current_target()
if target is None:
    st.stop()
begin, end = range_picker("logs_range", default="Last hour")
c1, c2, c3, c4 = st.columns(4)
sev = c1.multiselect("Severity", api.LOG_SEVERITIES, key="logs_sev")
db = c2.text_input("Database", key="logs_db") or None
user = c3.text_input("User", key="logs_user") or None
text = c4.text_input("Text", key="logs_text") or None
page_no = st.number_input("Page", min_value=1, value=1, key="logs_page")
page, err = try_call(
    api.server_log, target, since=begin, until=end, severity=sev or None, database=db,
    user=user, text=text, limit=100, offset=(int(page_no) - 1) * 100,
)  # fmt: skip
if err is not None:
    st.error(err.message)
    st.stop()
if not page.readable:
    st.warning(f"The server log cannot be read: {page.reason}")
    st.stop()
st.caption(f"{page.source} ({page.format}, {page.how}): {page.matched} matching entries")
st.dataframe(page.entries, hide_index=True, width="stretch")
