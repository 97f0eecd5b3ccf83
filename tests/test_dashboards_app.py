"""The new app pages run headless against a real target and show what the api answers:
Resources, V$ views, Locks, Logs, Incidents and dumps, Dashboards."""

from __future__ import annotations

import pytest

from ops_core import api
from tests.test_alerts_app import _run, _text


@pytest.mark.slow  # six pages, ~20 s each headless
def test_operations_pages_render(repo, target_db):
    api.add_target("pg_ui", target_db)
    api.set_quota("ui_db", "database", "postgres", "size_bytes", soft_limit="1TB", target="pg_ui")
    api.evaluate_quotas("pg_ui")
    api.open_incident("ui incident", target="pg_ui")
    checks = {
        "resources.py": "ui_db",
        "vviews.py": "SERIAL#",
        "locks.py": "Deadlocks",
        "logs.py": "Server log",
        "incidents.py": "ui incident",
        "dashboards.py": "Dashboards",
    }
    for page, needle in checks.items():
        at = _run(page)
        assert needle in _text(at), page
