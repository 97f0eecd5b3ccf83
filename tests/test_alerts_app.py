"""The Alerts page and the overview's freshness warnings, headless (AppTest)."""

from __future__ import annotations

import os
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ops_core import api

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
PAGES = Path(MAIN).parent / "views"


def _run(page: str | None = None) -> AppTest:
    """A page as an operator who logged in (acknowledge and resolve are writes)."""
    import streamlit as st

    from tests.test_app import APP_TOKEN

    st.cache_data.clear()
    os.environ[api.APP_TOKEN_ENV] = APP_TOKEN
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.session_state["_opscore_login"] = True
    at.run()
    if page:
        at.switch_page(str(PAGES / page))
        at.run()
    assert not at.exception, at.exception
    return at


def _text(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [df.value.to_string() for df in at.dataframe]
    return "\n".join(parts)


def test_alerts_page_and_overview_warnings(repo, target_db):
    api.add_target("ui", target_db)
    api.take_snapshot("ui")
    api.set_backup_schedule("ui", {"full": "every 1h"})  # and no backup: overdue
    api.create_alert_rule("ui_conn", "connections", 0, op=">=", severity="critical")
    run = api.evaluate_alerts("ui")
    (alert_id,) = [r.alert_id for r in run.results if r.status == "firing"]

    at = _run()
    warnings = " ".join(str(w.value) for w in at.warning)
    assert "ui: backups: overdue" in warnings
    assert "1 open alert(s) on ui: ui_conn" in warnings

    at = _run("alerts.py")
    text = _text(at)
    assert "Open alerts 1" in text and "Critical 1" in text and "ui_conn" in text
    at.button(key="alert_ack_btn").click().run()
    at.button(key="alert_ack_yes").click().run()
    assert not at.exception, at.exception
    assert api.get_alert(alert_id).status == "acknowledged"
    assert "Acknowledged 1" in _text(at)
