"""The CLI as a DBA reads it: the demo's suggested commands run as printed; at 80 and 120
columns numbers and identifiers stay on one line; SQL to copy comes out whole; with --json an
error is JSON too. Against a small prepared target: shop load with a missing index, ASH
sampled, two snapshots and an ADDM analysis of the interval (what the demo leaves behind)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from ops_core import api
from ops_core.workload import faults
from ops_core.workload.driver import BackgroundShop
from ops_core.workload.schema import setup_shop_schema

from .helpers import invoke_cli, run_cli

TARGET = "uxcli"
ARTIFACTS = Path(__file__).resolve().parent.parent / "reports" / "test-artifacts"


def _keep(name: str, text: str) -> None:
    """The output as a DBA saw it, kept for a look (reports/ is not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_text(text)


@pytest.fixture(scope="module")
def prepared(pg, opscore_env):
    from ops_core import repository

    with repository.session() as repo:
        repository.migrate(repo)
    dsn = pg.create_database("uxcli")
    setup_shop_schema(dsn, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")
    api.add_target(TARGET, dsn)
    try:
        with BackgroundShop(dsn, clients=2), faults.MissingIndex(dsn):
            begin = api.take_snapshot(TARGET)
            sampler = api.ash_sampler(TARGET, interval_s=0.25)
            sampler.start()
            try:
                time.sleep(6)  # the load under the fault: what the interval records
            finally:
                sampler.stop()
            end = api.take_snapshot(TARGET)
        a = api.run_addm(TARGET, begin.snapshot_id, end.snapshot_id)
        assert a.findings and any(r for f in a.findings for r in f.recommendations)
        yield begin.snapshot_id, end.snapshot_id, a
    finally:
        api.remove_target(TARGET)
        pg.drop_database(dsn)


def _steps(prepared):
    from flows.demo import DemoResult
    from ops_core.cli.demo import next_steps

    begin, end, a = prepared
    return next_steps(DemoResult(TARGET, begin_snapshot=begin, end_snapshot=end, addm=a))


@pytest.mark.slow  # end to end: each suggested command a real `opscore` process, the app started
def test_every_command_the_demo_suggests_runs_as_printed(prepared, opscore_env):
    steps = _steps(prepared)
    commands = [c for c, _ in steps if c.startswith("opscore ")]
    assert len(commands) >= 6, steps
    for command in commands:
        argv = shlex.split(command)[1:]
        if argv == ["app"]:
            _app_starts(opscore_env)
            continue
        res = run_cli(*argv, env={**opscore_env, "COLUMNS": "120"})
        assert res.returncode == 0, f"{command}: {res.stderr[-2000:]}"
        assert "Traceback" not in res.stderr and res.stdout.strip(), command
    # each names something of the prepared interval
    begin, end, a = prepared
    joined = " ".join(commands)
    assert f"addm show {a.analysis_id}" in joined and f"snapshot show {end}" in joined
    assert f"--begin {begin} --end {end}" in joined


def _app_starts(env) -> None:
    """`opscore app` as printed: it serves (its health endpoint answers), then it is stopped."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ops_core", "app"],
        env={**__import__("os").environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        while line and "opscore app on http" not in line:
            line = proc.stdout.readline()
        assert line, "opscore app printed no address"
        url = re.search(r"(http://\S+)", line)[1]
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, "opscore app exited (is port 8501 taken?)"
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "opscore app did not answer in 180 s"
            time.sleep(1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _tables_fit(out: str, width: int) -> None:
    """Every table line is within the width and ends with its border (not cropped)."""
    for ln in out.splitlines():
        assert len(ln) <= width, ln
        if ln[:1] in "┏┃┡│└":
            assert ln.rstrip()[-1:] in "┓┃┩│┘", f"cropped table line: {ln!r}\n{out}"


def _lines_keep(out: str, tokens: list[str]) -> None:
    """Every token (a number or identifier that is in the data) is whole on one line."""
    missing = [t for t in tokens if not re.search(rf"(?<![\w.-]){re.escape(t)}(?![\w])", out)]
    assert not missing, f"split or lost: {missing}\n{out}"


@pytest.mark.slow  # CLI end to end: eight real `opscore` processes (the width comes from COLUMNS)
@pytest.mark.parametrize("columns", ["80", "120"])
def test_numbers_and_identifiers_never_wrap(prepared, opscore_env, columns):
    begin, end, a = prepared
    env = {**opscore_env, "COLUMNS": columns}
    width = int(columns)

    res = run_cli("snapshot", "show", str(end), env=env)
    assert res.returncode == 0, res.stderr
    _keep(f"cli-snapshot-show-{columns}.txt", res.stdout)
    _tables_fit(res.stdout, width)
    detail = api.get_snapshot(end)
    top = detail.statements.head(15)
    _lines_keep(res.stdout, [str(q) for q in top.queryid])
    for ln in res.stdout.splitlines():  # no figure shortened: columns are dropped instead
        if re.match(r"^│ *-?\d", ln):
            assert "…" not in "".join(ln.split("│")[1:-2]), ln  # all but the query's cell

    res = run_cli("addm", "show", str(a.analysis_id), env=env)
    assert res.returncode == 0, res.stderr
    _keep(f"cli-addm-show-{columns}.txt", res.stdout)
    ids = [str(s["queryid"]) for f in a.findings for s in f.statements[:3] if s.get("queryid")]
    _lines_keep(res.stdout, ids + [str(a.analysis_id)])

    res = run_cli("addm", "recommendations", str(a.analysis_id), env=env)
    assert res.returncode == 0, res.stderr
    _keep(f"cli-addm-recommendations-{columns}.txt", res.stdout)
    actions = [r["action"] for r in api.addm_recommendations(a.analysis_id)]
    for action in actions:  # printed whole: a copy of the line runs as is
        assert action in res.stdout.splitlines(), (action, res.stdout)

    res = run_cli("ash", "top", "--target", TARGET, "--by", "sql", "--since", "1d", env=env)
    assert res.returncode == 0, res.stderr
    _keep(f"cli-ash-top-{columns}.txt", res.stdout)
    _tables_fit(res.stdout, width)
    ids = re.findall(r"^│ *(-?\d{6,}) *│", res.stdout, re.M)
    assert ids, res.stdout  # the queryids sampled, each whole in its cell

    # V$ views have twenty columns: a narrow terminal leaves whole columns out (named in the
    # caption) instead of squeezing pids and query ids into "179…" or a zero-width column
    for view in ("session", "sql"):
        res = run_cli("v", view, "--target", TARGET, env=env)
        assert res.returncode == 0, res.stderr
        _keep(f"cli-v-{view}-{columns}.txt", res.stdout)
        _tables_fit(res.stdout, width)
        rows = json.loads(run_cli("v", view, "--target", TARGET, "--json", env=env).stdout)["rows"]
        key = "SID" if view == "session" else "SQL_ID"
        shown = set(re.findall(r"^│ *(-?\d+) *│", res.stdout, re.M))
        # live views: sessions come and go between the two calls, the long-lived ones stay
        assert shown & {str(r[key]) for r in rows}, res.stdout


def test_sql_only_prints_a_script(prepared, opscore_env):
    _, _, a = prepared
    res = invoke_cli("addm", "recommendations", str(a.analysis_id), "--sql-only")
    assert res.returncode == 0, res.stderr
    sql = [r["action"] for r in api.addm_recommendations(a.analysis_id)]
    sql = [s for s in sql if s.rstrip().endswith(";")]
    assert sql
    body = [ln for ln in res.stdout.splitlines() if not ln.startswith("-- ")]
    assert body == sql


def test_json_errors_are_json_with_the_same_exit_code(prepared, opscore_env):
    # the first through a real `opscore` process, the rest in this process
    text = run_cli("addm", "show", "987654", env=opscore_env)
    js = invoke_cli("addm", "show", "987654", "--json")
    assert text.returncode == js.returncode != 0
    err = json.loads(js.stdout)["error"]
    assert err["code"] == "not_found" and "987654" in err["message"] and err["hint"]
    # a usage error too, and a bad value (exit code 2 as without --json)
    for argv in (["snapshot", "show", "abc"], ["snapshot", "compare", "-t", TARGET, "--nope"]):
        text = invoke_cli(*argv)
        js = invoke_cli(*argv, "--json")
        assert text.returncode == js.returncode == 2, js.stderr
        assert json.loads(js.stdout)["error"]["code"] == "usage_error"
    # secrets stay scrubbed in the JSON form
    js = invoke_cli("target", "add", "x y", "postgresql://u:s3cret@h/db", "--json")
    assert js.returncode != 0 and "s3cret" not in js.stdout + js.stderr


def test_snapshot_compare_shares_report_compare_option_names(prepared, opscore_env):
    begin, end, _ = prepared
    for argv in (
        ["snapshot", "compare", "-t", TARGET, "--begin", str(begin), "--end", str(end)],
        ["snapshot", "compare", "-t", TARGET, "--begin1", str(begin), "--end1", str(end)],
        ["report", "compare", "-t", TARGET, "--begin", str(begin), "--end", str(end)],
    ):
        res = invoke_cli(*argv, "--begin2", str(begin), "--end2", str(end), "--json")
        assert res.returncode == 0, (argv, res.stdout, res.stderr)


def test_serve_check_says_every_15_min(prepared, opscore_env):
    res = invoke_cli("serve", "--check")
    assert res.returncode == 0, res.stderr
    assert "every " in res.stdout and not re.search(r"\b\d+:\d\d:\d\d\b", res.stdout)
    from ops_core.cli.serve import every

    assert every(900) == "every 15 min" and every(30) == "every 30 s"
    assert every(7200) == "every 2 h" and every(86400) == "daily" and every(90) == "every 90 s"


def test_ash_report_shows_peak_busiest_minute_and_cpus(prepared, opscore_env, tmp_path):
    """ASH shows the burst beside the average, and the host's CPUs as a line on its chart."""
    import os

    from ops_core.reports.ash_view import activity_peaks

    begin, end, _ = prepared
    cpus = api.host_cpu_count(TARGET)
    assert cpus == os.cpu_count()  # the embedded server is local: the host collector ran
    b, e = api.get_snapshot(begin).info.captured_at, api.get_snapshot(end).info.captured_at
    r = api.ash_report(TARGET, b, e)
    peaks = activity_peaks(r)
    assert peaks is not None
    avg = r.header["avg_active_sessions"]
    # the burst is at least the average, and the busiest minute lies between them
    assert peaks["peak"] >= avg > 0, (peaks, avg, r.bucket_s)
    if peaks["minute"] is not None:
        assert peaks["peak"] + 1e-9 >= peaks["minute"] >= avg - 1e-9, (peaks, avg)
    out = api.render_report("ash", TARGET, begin, end, reports_dir=tmp_path)
    html = out.html.read_text()
    assert "Busiest minute" in html and "Peak (" in html
    assert f"{cpus} CPUs" in html
    _keep("ash-report-peaks.html", html)


def test_every_readme_command_names_options_that_exist():
    """Each concrete `opscore ...` line of the README's code blocks parses as printed (the
    command and every option exist; `--help` appended so nothing runs). Syntax summaries with
    [optional] parts or a|b choices are left out."""
    import contextlib
    import io

    import typer.main

    from ops_core.cli import app

    cmd = typer.main.get_command(app)
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    checked, bad = 0, []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        for ln in block.splitlines():
            ln = ln.strip().removeprefix("$ ")
            if "opscore " not in ln:
                continue
            pre = ln.split("opscore ")[0]
            if pre.strip() and not re.fullmatch(r"(\S+=\S*\s+)+", pre):
                continue  # not a command line (prose, another program)
            ln = re.split(r"\s+#", "opscore " + ln.split("opscore ", 1)[1])[0].strip()
            if any(x in ln for x in ("[", "|", "...", "…", "<", ">")):
                continue
            argv = shlex.split(ln)[1:]
            checked += 1
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                    cmd.main([*argv, "--help"], standalone_mode=False, prog_name="opscore")
            except Exception as exc:  # noqa: BLE001 - collected, asserted below
                bad.append((ln, f"{type(exc).__name__}: {exc}"))
    assert checked >= 40 and not bad, bad
