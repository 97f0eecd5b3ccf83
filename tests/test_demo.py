"""`opscore demo --quick`, the README's first command, end to end on a fresh embedded server."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from .helpers import run_cli


@pytest.mark.skipif(
    bool(os.environ.get("OPSCORE_TEST_DSN")), reason="the demo runs on the embedded server only"
)
def test_demo_quick_runs_the_flows_and_finds_the_injected_problem():
    home = Path(tempfile.mkdtemp(prefix="ops-demo-", dir="/tmp"))
    reports = home / "reports"
    # a fresh home: the demo starts its own embedded server and repository there
    env = {
        "OPSCORE_HOME": str(home),
        "OPSCORE_REPORTS_DIR": str(reports),
        "OPSCORE_REPOSITORY_DSN": "",
    }
    try:
        res = run_cli("demo", "--quick", env=env, timeout=600)
        out = res.stdout
        assert res.returncode == 0, res.stderr[-3000:]
        assert "Traceback" not in res.stderr
        assert "ADDM analysis" in out
        # the first injected problem is named as a finding, with its root session
        assert "idle in transaction" in out
        htmls = sorted(p.name for p in reports.rglob("*.html"))
        assert any(n.startswith("awr-") for n in htmls) and any(n.startswith("ash-") for n in htmls)
    finally:
        run_cli("db", "stop", env=env)
        shutil.rmtree(home, ignore_errors=True)
