"""`opscore fleet`: the fleet overview in a terminal, worst first, the Fleet page's columns,
numbers and names whole on one line at 80 and 120 columns; --json is the API's answer."""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from ops_core import api

from .helpers import invoke_cli, run_cli


@pytest.fixture
def small_fleet(repo, target_db):
    """``fc-ok`` sampled, ``fc-down-target-with-a-long-name`` failing (nothing listens),
    ``fc-new`` never sampled; tags on one."""
    for n in ("fc-ok", "fc-new"):
        api.add_target(n, target_db)
    with psycopg.connect(target_db) as c:
        port = c.info.port
    down = "fc-down-target-with-a-long-name"
    api.add_target(down, f"host=127.0.0.1 port={port + 7} dbname=nope", verify=False)
    api.tag_target("fc-ok", {"env": "prod", "region": "eu-west-1"})
    api.run_ash_fleet(["fc-ok", down], duration_s=2, interval_s=1.0, flush_interval_s=1.0)
    return api.fleet_overview(5)


def _tables_fit(out: str, width: int) -> None:
    for ln in out.splitlines():
        assert len(ln) <= width, ln
        if ln[:1] in "┏┃┡│└":
            assert ln.rstrip()[-1:] in "┓┃┩│┘", f"cropped table line: {ln!r}\n{out}"


def _row_order(out: str) -> list[str]:
    return re.findall(r"^│ (fc-[\w-]+) +│", out, re.M)


@pytest.mark.parametrize("columns", ["80", "120", "240"])
def test_fleet_table_worst_first_never_wraps(small_fleet, opscore_env, columns):
    expected = [r.target for r in small_fleet]
    assert expected[0] == "fc-down-target-with-a-long-name"  # the failing collector first
    res = run_cli("fleet", "--window", "5m", env={**opscore_env, "COLUMNS": columns})
    assert res.returncode == 0, res.stderr
    out = res.stdout
    _tables_fit(out, int(columns))
    assert _row_order(out) == expected, out  # every name whole, in the API's order
    assert "3 targets: 1 failing, 1 not sampled, 1 sampling" in out, out
    ok = next(r for r in small_fleet if r.target == "fc-ok")
    line = next(ln for ln in out.splitlines() if ln.startswith("│ fc-ok "))
    cells = [c.strip() for c in line.split("│")[1:-1]]
    assert cells[1] == "sampling"
    # the age of the newest sample: a whole number of seconds, on the row's one line
    assert re.fullmatch(r"\d+", cells[2]) and abs(int(cells[2]) - ok.last_sample_age_s) <= 60
    assert f"{ok.db_time_rate:.2f}" in cells
    # every column of the Fleet page is in the header, or named as left out for the width
    from ops_core.cli.fleet import COLUMNS

    header = next(ln for ln in out.splitlines() if ln.startswith("┃"))
    shown = [h.strip() for h in header.split("┃")[1:-1]]
    dropped = re.search(r"narrow terminal: (.*?) not shown", " ".join(out.split()))
    left_out = dropped.group(1).split(", ") if dropped else []
    assert shown == [c for c in COLUMNS if c not in left_out], (shown, left_out)
    if columns == "240":  # room for every column, the tags too
        assert not left_out and "env=prod, region=eu-west-1" in line
    assert "…" not in "".join(line.split("│")[1:-1]), line  # no figure or name cut
    if "error" in left_out:  # the errors are then printed under the table, whole
        down = small_fleet[0]
        assert f"{down.target}: " in out and down.last_error[:40] in out.replace("\n", "")


def test_fleet_json_is_the_overview(small_fleet):
    res = invoke_cli("fleet", "--json", "--window", "1h")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [d["target"] for d in data] == [r.target for r in small_fleet]
    down = data[0]
    assert down["collector"] == "failing" and down["sampler_errors"] >= 1 and down["last_error"]
    assert {"last_sample_age_s", "db_time_rate", "open_alerts", "tags"} <= set(down)


def test_fleet_window_is_checked_at_the_boundary(repo):
    for bad in ("0m", "25h", "soon", "-5m"):
        res = invoke_cli("fleet", "--window", bad)
        assert res.returncode == 2, (bad, res.stdout)
        assert "--window" in res.stderr or "window" in res.stderr, res.stderr
    assert invoke_cli("fleet", "--window", "90s", "--json").returncode == 0
