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
def shop(pg, opscore_env):
    """A fresh repository with target ``shop`` after a workload (snapshots, ASH, ADDM)."""
    fresh_repository()
    dsn = pg.create_database("browser")
    try:
        run_workload(dsn, target="shop")
        from ops_core import api

        api.run_addm("shop")  # the ADDM page shows an analysis: findings, evidence tables
        yield dsn
    finally:
        pg.drop_database(dsn)


@pytest.fixture(scope="module")
def app_url(shop):
    dsn = shop
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


def _js(browser: Browser, expression: str):
    return browser.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"][
        "value"
    ]


def test_awr_report_in_chromium(shop, browser, tmp_path):
    """The AWR report of the workload, opened from disk with no network: under 1 MB, its charts
    drawn by the shared plotly.js beside it, and the sections a DBA expects from Oracle's AWR
    (contents with anchors, host/OS figures of this same-host target, settings)."""
    from ops_core import api

    out = api.render_report("awr", "shop", reports_dir=tmp_path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert out.html.stat().st_size < 1_000_000
    browser.goto(out.html.as_uri())
    expected = ["Contents", "Host / OS", "CPUs", "memory total", "Settings not at their default",
                "max_connections", "Index usage and size", "SQL ordered by planning time",
                "SQL ordered by I/O time"]  # fmt: skip
    text = browser.wait_for(expected)
    (ARTIFACTS / "awr-report.txt").write_text(text)
    missing = [t for t in expected if t not in text]
    assert not missing, f"not visible in the AWR report: {missing}"
    assert "Traceback" not in text
    assert _js(browser, "typeof Plotly") == "object"  # loaded from ../_static, offline
    assert _js(browser, "document.querySelectorAll('.js-plotly-plot .main-svg').length") >= 1
    # the table of contents links to headings that exist
    anchors = _js(
        browser,
        "Array.from(document.querySelectorAll('nav.opscore-toc a')).map(a => "
        "!!document.getElementById(a.getAttribute('href').slice(1)))",
    )
    assert anchors and all(anchors), anchors
    assert browser.screenshot(ARTIFACTS / "awr-report.png") > 20_000
    _js(browser, "document.getElementById('host').scrollIntoView()")
    assert browser.screenshot(ARTIFACTS / "awr-report-host.png") > 20_000
