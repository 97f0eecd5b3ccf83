"""The app in a real browser: `opscore app` on a free port, each page opened in headless
Chromium (Debian's package), asserted on visible text, screenshots saved as test artifacts
(``$OPSCORE_TEST_ARTIFACTS``, default ``reports/test-artifacts/app``)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from .app_workload import TOP_SQL, fresh_repository, run_workload
from .cdp import Browser, free_port
from .helpers import running_statement

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium is not installed (apt-get install -y chromium)",
    ),
]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(
    os.environ.get("OPSCORE_TEST_ARTIFACTS", ROOT / "reports" / "test-artifacts" / "app")
)

# url path (with a tab in the query string) -> texts that must be visible once it has run
PAGES: dict[str, list[str]] = {
    # first, on the fresh server: a deep link must open within the app's navigation and
    # sidebar (pages in a directory named "pages" were run bare, without the target picker,
    # until the entry script had run once in the process)
    "backup?bk=Restore": ["Target", "A data directory", "A dump into a new database"],
    "": ["Overview", "shop", "Top SQL, last hour", "apptest_orders"],
    "performance": ["Performance Hub", "Summary", "executions", "Executions / s"],
    "performance?hub=Top+SQL": ["Top SQL", "apptest_orders", "Drill-down", "Share of DB time"],
    "performance?hub=Wait+events": ["PgSleep"],
    "performance?hub=Top+sessions": ["apptest-"],
    "performance?hub=I%2FO": ["Tables", "apptest_orders"],
    "performance?hub=Trends": ["Statement time per second"],
    "ash": ["Active session history", "Breakdown", "PgSleep", "Blocking chains"],
    "live": ["Live", "Idle in transaction", "Max connections", "apptest_orders", "PgSleep"],
    "workload": ["Workload repository", "Take a snapshot now", "Snapshots"],
    "workload?wr=Baselines": ["Create a baseline", "Delete a baseline"],
    "workload?wr=Compare": ["Load profile", "apptest_orders"],
    "addm": ["ADDM", "Analyses", "DB time", "Show analysis"],
    "backup": ["Backup and recovery", "Recoverable from", "No backups of shop yet"],
    "catalog": ["Catalog coverage", "Operations"],
}


def _artifact_name(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (path or "overview").lower()).strip("-")


@pytest.fixture(scope="module")
def app_url(pg, opscore_env):
    fresh_repository()
    dsn = pg.create_database("browser")
    run_workload(dsn, target="shop")
    from ops_core import api

    api.run_addm("shop")  # the ADDM page shows an analysis: findings, evidence tables
    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / "app-server.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "ops_core", "app", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300  # a busy machine: imports alone can take a minute
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("opscore app did not answer on /_stcore/health within 300 s")
        yield SimpleNamespace(url=url, dsn=dsn)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        pg.drop_database(dsn)


@pytest.fixture(scope="module")
def browser():
    b = Browser(CHROMIUM)
    try:
        yield b
    finally:
        b.close()


@pytest.mark.parametrize("path", list(PAGES))
def test_page_in_chromium(app_url, browser, path):
    url = f"{app_url.url}/{path}"
    name = _artifact_name(path)
    with contextlib.ExitStack() as stack:
        if path == "live":  # something for the Live page to show, running until it is shot
            stack.enter_context(
                running_statement(app_url.dsn, TOP_SQL, (600, 1), application_name="apptest-live")
            )
        browser.goto(url)
        text = browser.wait_for(PAGES[path])
        (ARTIFACTS / f"{name}.txt").write_text(text)
        missing = [t for t in PAGES[path] if t not in text]
        assert not missing, f"{url}: not visible: {missing}"
        assert "Traceback" not in text and "StreamlitAPIException" not in text
        assert browser.screenshot(ARTIFACTS / f"{name}.png") > 20_000
