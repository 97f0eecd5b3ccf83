"""opscore app entry point: navigation and the shared sidebar."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run app/main.py` puts app/ on sys.path, not the project: make `app.*` importable
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.common import logged_in, login_form, require_page_login, target_picker  # noqa: E402

st.set_page_config(page_title="opscore", page_icon=":material/monitoring:", layout="wide")

HERE = Path(__file__).parent / "views"
pages = {
    "Monitor": [
        st.Page(HERE / "overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page(HERE / "fleet.py", title="Fleet", icon=":material/lan:"),
        st.Page(HERE / "performance.py", title="Performance Hub", icon=":material/speed:"),
        st.Page(HERE / "ash.py", title="ASH", icon=":material/stacked_line_chart:"),
        st.Page(HERE / "live.py", title="Live", icon=":material/sensors:"),
        st.Page(HERE / "sqlmon.py", title="SQL Monitor", icon=":material/timer:"),
        st.Page(HERE / "alerts.py", title="Alerts", icon=":material/notifications:"),
        st.Page(HERE / "dashboards.py", title="Dashboards", icon=":material/space_dashboard:"),
        st.Page(HERE / "locks.py", title="Locks", icon=":material/lock:"),
        st.Page(HERE / "vviews.py", title="V$ views", icon=":material/table_view:"),
    ],
    "Diagnose": [
        st.Page(HERE / "workload.py", title="Workload repository", icon=":material/history:"),
        st.Page(HERE / "addm.py", title="ADDM", icon=":material/troubleshoot:"),
        st.Page(HERE / "capacity.py", title="Capacity", icon=":material/trending_up:"),
        st.Page(HERE / "logs.py", title="Logs", icon=":material/description:"),
        st.Page(HERE / "incidents.py", title="Incidents and dumps", icon=":material/emergency:"),
        st.Page(HERE / "tuning.py", title="Tuning", icon=":material/tune:"),
    ],
    "Manage": [
        st.Page(HERE / "resources.py", title="Resources", icon=":material/tune:"),
        st.Page(HERE / "autonomous.py", title="Autonomous", icon=":material/auto_mode:"),
    ],
    "Protect": [
        st.Page(HERE / "backup.py", title="Backup and recovery", icon=":material/backup:"),
    ],
    "About": [
        st.Page(HERE / "catalog.py", title="Catalog coverage", icon=":material/checklist:"),
    ],
}
require_page_login()  # a network bind: nothing shows before the login
nav = st.navigation(pages)
st.sidebar.markdown("### opscore")
target_picker()
if not logged_in():
    with st.sidebar.expander("Log in (write actions)"):
        login_form(st)
nav.run()
