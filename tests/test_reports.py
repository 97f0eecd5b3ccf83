"""AWR / ASH / compare reports against a real PostgreSQL: a workload with known properties is run
between two snapshots with the ASH sampler on (tests/report_workload.py), then the report models
must rank and quantify it; each notebook is rendered once; bad input gives clear errors."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ops_core import api, repository
from ops_core.analysis import awr as awr_model
from ops_core.config import reset_settings_cache
from ops_core.errors import InvalidInput, NotFound, UnknownTarget
from ops_core.repository import snapshot_ranges

from . import report_workload as wl
from .app_workload import fresh_repository
from .helpers import WAIT_S, invoke_cli, only_evictions, run_cli, wait_until

TARGET = "rpt"


@pytest.fixture(scope="module")
def workload(opscore_env, pg):
    """Fresh repository, a target database, the known workload between snapshots 1 and 2, and
    a lighter second period (snapshots 2..3) for the comparison."""
    fresh_repository()
    dsn = pg.create_database("rpt")
    db = conninfo_to_dict(dsn)["dbname"]
    mp = pytest.MonkeyPatch()
    mp.setenv("OPSCORE_SNAPSHOT_DATABASES", json.dumps([db]))
    reset_settings_cache()
    try:
        api.add_target(TARGET, dsn)
        facts = wl.run(dsn, TARGET)
        # period 2: the sleeper again, faster (0.1 s), and no sort
        with psycopg.connect(dsn, autocommit=True, application_name="rpt-sleeper") as c:
            for _ in range(3):
                c.execute("SELECT pg_sleep(%s) AS rpt_sleeper", (0.1,))
        wl.stats_flushed(dsn)
        s3 = api.take_snapshot(TARGET)
        yield {"facts": facts, "dsn": dsn, "db": db, "s3": s3.snapshot_id}
    finally:
        mp.undo()
        reset_settings_cache()
        pg.drop_database(dsn)


def _mine(df, db):
    return df[df["datname"] == db].reset_index(drop=True)


def test_awr_ranks_and_quantifies_the_workload(workload, pg):
    f, db = workload["facts"], workload["db"]
    r = api.awr_report(TARGET, f.begin_id, f.end_id, top=50)
    assert r.header["version_num"] == pg.version_num
    assert r.header["begin_snapshot_id"] == f.begin_id and r.header["end_snapshot_id"] == f.end_id
    # top SQL by elapsed: the sleeping statement, its time within 10 % of what ran
    el = r.top_sql["elapsed"]
    if pg.embedded is not None:  # alone on the server: first overall
        assert "rpt_sleeper" in el.iloc[0]["query"]
    top = _mine(el, db).iloc[0]
    assert "rpt_sleeper" in top["query"] and int(top["calls"]) == wl.SLEEP_CALLS
    assert top["total_exec_time"] == pytest.approx(f.sleep_total_ms, rel=0.10)
    assert top["mean_exec_time"] == pytest.approx(wl.SLEEP_S * 1000, rel=0.10)
    total_ms = el["total_exec_time"].sum() / el["share_pct"].sum() * 100
    assert top["share_pct"] == pytest.approx(top["total_exec_time"] / total_ms * 100, rel=0.01)
    # the lock waiter's elapsed time is the lock hold
    waiter = el[el["query"].str.contains("rpt_waiter")].iloc[0]
    assert waiter["total_exec_time"] / 1000 == pytest.approx(f.lock_hold_s, abs=1.0)
    # temp: the sort spilled and ranks first among this database's statements
    tmp = _mine(r.top_sql["temp"], db)
    assert "rpt_spill" in tmp.iloc[0]["query"] and tmp.iloc[0]["temp_blks_written"] > 100
    assert int(tmp.iloc[0]["calls"]) == 2
    eff = r.efficiency.set_index("metric")["value_pct"]
    assert eff["SQL time in statements that spilled to temp"] > 0
    assert 0 < eff["buffer hit"] <= 100
    assert any("Temp spills" in h for h in r.highlights)
    # time model from ASH: the lock wait and the sleep are there with about their length
    waits = r.top_waits.set_index("event")
    assert waits.loc["PgSleep", "db_time_s"] >= 0.75 * wl.SLEEP_CALLS * wl.SLEEP_S
    assert waits.loc["PgSleep", "wait_class"] == "Timeout"
    assert r.ash_time_model.set_index("wait_class").loc["Lock", "db_time_s"] >= 1.5
    assert not any("No ASH samples" in n for n in r.notes)
    lp = r.load_profile.set_index("metric")
    assert lp.loc["executions (calls)", "total"] >= wl.SLEEP_CALLS + 3
    assert lp.loc["transactions", "per_second"] > 0
    # tables: the workload's table, with its updates
    t = r.tables[r.tables["relname"] == "rpt_t"].iloc[0]
    assert t["n_tup_upd"] >= 2
    # pg_stat_io by version
    assert (r.io is not None) == (pg.major >= 16)
    if pg.major < 16:
        assert (
            r.io_note
            == f"I/O by backend type (pg_stat_io) not available on PostgreSQL {pg.major} (16+)."
        )
    # no reset inside the interval (on a busy shared server pg_stat_statements may evict)
    assert only_evictions(r.resets), r.resets
    json.dumps(r.as_dict(), default=str)


def test_ash_report_blocking_profiles_and_filters(workload):
    f = workload["facts"]
    a = api.ash_report(TARGET, f.begin_at, f.end_at)
    assert not a.empty and a.header["db_time_s"] > 0
    # the blocker (one episode, or more if a loaded sampler missed beats in between)
    eps = a.blocking[a.blocking["root_pid"] == f.blocker_pid]
    assert len(eps) >= 1, a.blocking
    assert all(f.waiter_pid in w for w in eps["waiters"])
    # sampled every 0.5 s: about the hold, never more than the hold plus two intervals
    assert 0.5 * f.lock_hold_s <= eps["duration_s"].sum() <= f.lock_hold_s + 1.0
    # the blocker as last sampled: idle in transaction after its UPDATE, or (on a loaded
    # machine) caught while running its COMMIT
    assert set(eps["root_state"]) <= {"idle in transaction", "active"}
    assert set(eps["root_query"]) <= {"UPDATE rpt_t SET v = v + 1 WHERE id = 1", "COMMIT"}
    sessions = a.top_sessions.set_index("pid")
    assert 0.5 * f.lock_hold_s <= sessions.loc[f.waiter_pid, "db_time_s"] <= f.lock_hold_s + 1.0
    prof = a.sql_wait_profiles
    sleeper = prof[prof["query"].str.contains("rpt_sleeper", na=False)].iloc[0]
    # nearly all of its time is the sleep; a sample can catch it on CPU between the calls
    assert sleeper["Timeout %"] >= 75.0
    assert sleeper["top_event"].startswith("PgSleep")
    # activity matrix: every bucket of the range, Lock and Timeout columns present
    assert {"Lock", "Timeout"} <= set(a.activity.columns)
    assert a.activity["Timeout"].max() > 0
    # filters
    locks = api.ash_report(TARGET, f.begin_at, f.end_at, wait_class="lock")
    assert set(locks.top_events["wait_class"]) == {"Lock"} and locks.filters["wait_class"] == "Lock"
    sl = api.ash_report(TARGET, f.begin_at, f.end_at, application="rpt-sleeper")
    assert "rpt_sleeper" in sl.top_sql.iloc[0]["query"]
    assert sl.header["db_time_s"] == pytest.approx(wl.SLEEP_CALLS * wl.SLEEP_S, rel=0.3)
    json.dumps(a.as_dict(), default=str)


def test_compare_report_ranks_slower_and_new_sql(workload):
    f = workload["facts"]
    c = api.compare_report(TARGET, f.begin_id, f.end_id, f.end_id, workload["s3"])
    slower = c.slower_sql[c.slower_sql["query"].str.contains("rpt_sleeper", na=False)]
    assert len(slower) == 1
    assert slower.iloc[0]["ratio"] == pytest.approx(5.0, rel=0.15)  # 500 ms vs 100 ms per call
    assert c.new_sql["query"].str.contains("rpt_spill", na=False).any()
    assert not c.differences.empty and any("rpt_sleeper" in s for s in c.differences["subject"])
    # the sampler ran in period 1 only: no made-up shift, a note instead
    assert c.wait_shifts is None
    assert any("cover only one of the two periods" in n for n in c.notes)
    api.create_baseline("rpt-base", TARGET, f.end_id, workload["s3"])
    cb = api.compare_report(TARGET, f.begin_id, f.end_id, baseline="rpt-base")
    assert cb.period2["label"] == "rpt-base" and cb.period2["end_snapshot_id"] == workload["s3"]
    assert cb.slower_sql["query"].str.contains("rpt_sleeper", na=False).any()
    with pytest.raises(InvalidInput, match="not both"):
        api.compare_report(TARGET, f.begin_id, f.end_id, 1, 2, baseline="x")
    with pytest.raises(NotFound, match="no baseline"):
        api.compare_report(TARGET, f.begin_id, f.end_id, baseline="nope")


@pytest.mark.slow
def test_each_notebook_renders_with_the_workload(workload, tmp_path):
    f = workload["facts"]
    awr = api.render_report("awr", TARGET, begin=f.begin_id, end=f.end_id, reports_dir=tmp_path)
    assert awr.html == tmp_path / TARGET / f"awr-{f.begin_id}-{f.end_id}.html"
    assert awr.notebook.exists()
    text = awr.html.read_text()
    for section in (
        "What stands out",
        "ADDM findings",
        "DB time cross-check: ASH against pg_stat_database.active_time",
        "Load profile",
        "Instance efficiency",
        "Time model",
        "Top wait events",
        "SQL ordered by elapsed time",
        "SQL ordered by temp blocks written",
        "I/O by table and index",
        "Table activity",
        "Checkpoints, background writer and WAL",
        "Settings and resets",
        "rpt_sleeper",
        "rpt_spill",
        "PgSleep",
        "plotly",
    ):
        assert section in text, section
    assert "Traceback" not in text
    # plotly.js is shared beside the reports, not inlined: the report stays small
    assert awr.html.stat().st_size < 1_000_000
    assert len(list((tmp_path / "_static").glob("plotly-*.min.js"))) == 1
    assert '<script src="../_static/plotly-' in text
    ash = api.render_report("ash", TARGET, begin=f.begin_at, end=f.end_at, reports_dir=tmp_path)
    text = ash.html.read_text()
    assert ash.html.name.startswith("ash-") and ash.html.suffix == ".html"
    for section in (
        "Activity over time",
        "Top wait events",
        "Wait profile per SQL",
        "Top sessions",
        "Blocking chains",
        "rpt_sleeper",
        "rpt_waiter",
        str(f.blocker_pid),
    ):
        assert section in text, section
    assert "Traceback" not in text
    cmp = api.render_report(
        "compare", TARGET, begin=f.begin_id, end=f.end_id, begin2=f.end_id,
        end2=workload["s3"], reports_dir=tmp_path,
    )  # fmt: skip
    # as the app calls it: positional snapshot ids, for ASH too (the snapshots' interval)
    by_ids = api.render_report("ash", TARGET, f.begin_id, f.end_id, reports_dir=tmp_path)
    assert by_ids.path == by_ids.html and "rpt_sleeper" in by_ids.html.read_text()
    text = cmp.html.read_text()
    for section in ("Differences that matter", "SQL that got slower", "rpt_sleeper", "rpt_spill"):
        assert section in text, section
    assert "Traceback" not in text


def test_cli_text_and_json(workload, opscore_env):
    f = workload["facts"]
    # one real `opscore` process, the rest in this process
    res = run_cli(
        "report", "awr", "-t", TARGET, "--begin", str(f.begin_id), "--end", str(f.end_id),
        "--format", "text", env={"COLUMNS": "160"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "AWR report" in res.stdout and "rpt_sleeper" in res.stdout
    assert "What stands out" in res.stdout
    res = invoke_cli(
        "report", "ash", "-t", TARGET, "--begin", f.begin_at.isoformat(),
        "--end", f.end_at.isoformat(), "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["blocking"][0]["root_pid"] in (f.blocker_pid, data["blocking"][0]["root_pid"])
    assert any(b["root_pid"] == f.blocker_pid for b in data["blocking"])
    res = invoke_cli("report", "awr", "-t", "no-such-target", "--format", "text")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "no-such-target" in res.stderr


def test_bad_input_is_explained(workload, pg, tmp_path):
    f = workload["facts"]
    with pytest.raises(UnknownTarget):
        api.awr_report("no-such-target", 1, 2)
    with pytest.raises(UnknownTarget):
        api.render_report("awr", "no-such-target", begin=1, end=2, reports_dir=tmp_path)
    assert not (tmp_path / "no-such-target").exists()
    with pytest.raises(InvalidInput, match="empty"):
        api.awr_report(TARGET, f.begin_id, f.begin_id)
    with pytest.raises(InvalidInput, match="reversed"):
        api.awr_report(TARGET, f.end_id, f.begin_id)
    with pytest.raises(NotFound, match="no snapshot 999999"):
        api.awr_report(TARGET, f.begin_id, 999999)
    with pytest.raises(InvalidInput, match="report kind"):
        api.render_report("addm-ish", TARGET)
    # snapshot ids of another target
    api.add_target("rpt-other", workload["dsn"])
    other = api.take_snapshot("rpt-other")
    with pytest.raises(InvalidInput, match="belongs to target 'rpt-other'"):
        api.awr_report(TARGET, f.begin_id, other.snapshot_id)
    with pytest.raises(InvalidInput, match="needs two"):
        api.awr_report("rpt-other")  # only one snapshot
    # an ASH range with nothing in it: the report says so, and renders
    day_ago = datetime.now(UTC) - timedelta(days=1)
    empty = api.ash_report(TARGET, day_ago, day_ago + timedelta(minutes=5))
    assert empty.empty and any("No ASH samples" in n for n in empty.notes)
    assert empty.top_sql.empty and empty.blocking.empty
    with pytest.raises(InvalidInput, match="empty or reversed"):
        api.ash_report(TARGET, day_ago, day_ago)
    with pytest.raises(InvalidInput, match="not a wait class"):
        api.ash_report(TARGET, since="5m", wait_class="Sleepy")
    html = api.render_report(
        "ash", TARGET, begin=day_ago, end=day_ago + timedelta(minutes=5), reports_dir=tmp_path
    ).html.read_text()
    assert "No ASH samples exist" in html and "Traceback" not in html


def test_stats_reset_inside_the_interval_is_flagged(workload):
    dsn = workload["dsn"]
    s1 = api.take_snapshot(TARGET)
    with psycopg.connect(dsn, autocommit=True, application_name="rpt-reset") as c:
        c.execute("SELECT pg_stat_reset()")  # this database's counters only
        c.execute("SELECT count(*) FROM rpt_t")
    wl.stats_flushed(dsn, ("rpt-reset",))
    s2 = api.take_snapshot(TARGET)
    r = api.awr_report(TARGET, s1.snapshot_id, s2.snapshot_id)
    sources = {x["source"] for x in r.resets}
    assert "pg_stat_database" in sources, r.resets
    assert any("Statistics reset of pg_stat_database" in n for n in r.notes)
    assert "reset" in r.highlights[0]


def test_restart_inside_the_interval_is_explained(workload):
    """A restart is a reset of everything: the model says what was lost and what counts."""
    f = workload["facts"]
    with repository.session() as conn:
        tid = conn.execute(
            "SELECT target_id FROM opscore.targets WHERE name = %s", (TARGET,)
        ).fetchone()[0]
        agg = snapshot_ranges.range_aggregate(conn, tid, TARGET, f.begin_id, f.end_id)
    restarted = dataclasses.replace(
        agg,
        resets=[
            {"snapshot_id": f.end_id, "source": "server", "reason": "restarted at 2026-11-25T10:00"}
        ],
    )
    r = awr_model.build(restarted)
    assert any("server restarted inside the interval" in n for n in r.notes)
    assert "reset" in r.highlights[0]
    # everything after the restart is still reported
    assert not r.top_sql["elapsed"].empty


def test_report_cli_help():
    res = invoke_cli("report", "--help")
    assert res.returncode == 0 and "awr" in res.stdout and "compare" in res.stdout


def test_awr_carries_the_addm_analysis_of_its_range(workload):
    f = workload["facts"]
    before = {a.analysis_id for a in api.list_addm(TARGET)}
    r = api.awr_report(TARGET, f.begin_id, f.end_id)
    a = r.addm
    assert a is not None and r.addm_note is None
    assert (a.begin_snapshot_id, a.end_snapshot_id, a.database) == (f.begin_id, f.end_id, None)
    assert a.db_time_source == "ash" and a.db_time_s > 0 and a.findings
    # made once, then reused by the next report of the same range
    again = api.awr_report(TARGET, f.begin_id, f.end_id)
    assert again.addm.analysis_id == a.analysis_id
    assert {x.analysis_id for x in api.list_addm(TARGET)} - before <= {a.analysis_id}
    assert api.addm_for_range(TARGET, f.begin_id, f.end_id, run=False).analysis_id == (
        a.analysis_id
    )
    # its problems lead "What stands out", in ADDM's order
    problems = [x for x in a.findings if x.is_problem]
    lead = [h for h in r.highlights if h.startswith("ADDM #")]
    assert [h.split(":")[0] for h in lead] == [f"ADDM #{x.rank}" for x in problems[:3]]
    # the DB-time cross-check adds up: active_time + the reasons + what is left = ASH
    c = r.db_time_check
    assert c.active_time_s == pytest.approx(r.header["active_time_s"], abs=0.01)
    assert c.ash_db_time_s == pytest.approx(r.header["ash_db_time_s"], abs=0.01)
    # DB time is ASH's (one definition), active_time a labelled cross-check
    assert r.header["db_time_s"] == r.header["ash_db_time_s"]
    assert r.header["db_time_source"] == "ASH"
    total = c.active_time_s + sum(p["time_s"] for p in c.parts) + c.residual_s
    assert total == pytest.approx(c.ash_db_time_s, abs=0.01)
    assert r.header["ash_vs_active"] == c.summary and c.summary.startswith("ASH ")
    json.dumps(r.as_dict(), default=str)
    # the second period was not sampled: ADDM says so and keeps to snapshot-only findings
    quiet = api.awr_report(TARGET, f.end_id, workload["s3"])
    assert quiet.addm.db_time_source == "pg_stat_statements" and quiet.db_time_check is None
    assert any("No ASH samples in this range" in n for n in quiet.addm.notes)
    assert all(x.basis == "snapshot" for x in quiet.addm.findings if x.is_problem)


def test_db_time_check_names_sessions_terminated_while_running(workload):
    """A backend terminated while it waits never reports that statement to
    pg_stat_database.active_time: the cross-check finds it in ASH and says so."""
    dsn = workload["dsn"]
    s1 = api.take_snapshot(TARGET)
    stop = threading.Event()
    samples = [0]  # taken so far: the waits below count samples, not seconds, on a busy machine

    def on_sample(st: api.AshRunStats) -> None:
        samples[0] = st.samples

    def sampled(n: int) -> None:
        goal = samples[0] + n
        wait_until(lambda: samples[0] >= goal, what=f"{n} more ASH samples")

    sampler = threading.Thread(
        target=api.run_ash,
        kwargs={
            "target": TARGET,
            "interval_s": 0.25,
            "stop": stop,
            "flush_interval_s": 1.0,
            "on_sample": on_sample,
        },
        daemon=True,
    )
    sampler.start()
    blocker = psycopg.connect(dsn, application_name="rpt-kill-blocker")
    blocker.execute("UPDATE rpt_t SET v = v + 1 WHERE id = 1")
    waiter = psycopg.connect(dsn, autocommit=True, application_name="rpt-kill-waiter")
    pid = waiter.info.backend_pid
    t = threading.Thread(
        target=lambda: pytest.raises(psycopg.Error, waiter.execute, "UPDATE rpt_t SET v = 0"),
        daemon=True,
    )
    t.start()
    wl._wait_for(
        dsn,
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
        (pid,),
    )
    time.sleep(3.0)  # it waits at least 3 s ...
    sampled(12)  # ... and at least 12 samples (3 s of ASH time)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    t.join(WAIT_S)
    blocker.rollback()
    blocker.close()
    sampled(10)  # sampled on past the termination
    stop.set()
    sampler.join(WAIT_S)
    assert not sampler.is_alive(), "the ASH sampler did not stop"
    wl.stats_flushed(dsn, ("rpt-kill-blocker", "rpt-kill-waiter"))
    s2 = api.take_snapshot(TARGET)
    r = api.awr_report(TARGET, s1.snapshot_id, s2.snapshot_id, addm=False)
    c = r.db_time_check
    killed = [p for p in c.parts if p["component"].startswith("statements of sessions terminated")]
    assert killed, c.frame()
    assert str(pid) in killed[0]["detail"] and "1 session(s) terminated" in killed[0]["detail"]
    assert killed[0]["time_s"] >= 2.0  # about the 3 s it waited, as sampled
    # active_time never got it: ASH is well above it, and the summary says why
    assert c.ash_db_time_s > c.active_time_s + 2.0
    assert "terminated while running" in r.header["ash_vs_active"]


@pytest.mark.slow
def test_addm_report_renders_and_refuses_bad_input(workload, tmp_path):
    f = workload["facts"]
    out = api.render_report("addm", TARGET, f.begin_id, f.end_id, reports_dir=tmp_path)
    a = api.addm_for_range(TARGET, f.begin_id, f.end_id, run=False)
    assert out.html.name == f"addm-{f.begin_id}-{f.end_id}-analysis{a.analysis_id}.html"
    text = out.html.read_text()
    for section in (
        "ADDM report",
        "Findings ranked by share of DB time",
        "Impact of each finding",
        "DB time breakdown",
        "DB time by wait class",
        "Findings in detail",
        "Notes",
        "DB time cross-check",  # the analysis note: ASH against pg_stat_statements
        a.findings[0].title,
        "plotly",
    ):
        assert section in text, section
    assert "Traceback" not in text
    # by analysis id, without a target: the same analysis, the same file
    by_id = api.render_report("addm", None, analysis=a.analysis_id, reports_dir=tmp_path)
    assert by_id.html == out.html
    with pytest.raises(NotFound, match="no ADDM analysis 999999"):
        api.render_report("addm", TARGET, analysis=999999, reports_dir=tmp_path)
    with pytest.raises(InvalidInput, match="not both"):
        api.render_report("addm", TARGET, f.begin_id, f.end_id, analysis=a.analysis_id)
    with pytest.raises(InvalidInput, match="reversed"):
        api.render_report("addm", TARGET, f.end_id, f.begin_id, reports_dir=tmp_path)
    api.add_target("rpt-addm-other", workload["dsn"])
    with pytest.raises(InvalidInput, match="is of target 'rpt'"):
        api.render_report("addm", "rpt-addm-other", analysis=a.analysis_id)
    # the CLI: text and JSON without papermill
    res = invoke_cli("report", "addm", "--analysis", str(a.analysis_id), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["analysis_id"] == a.analysis_id
    res = invoke_cli("report", "addm", "--analysis", "999999")
    assert res.returncode != 0 and "no ADDM analysis 999999" in res.stderr


def test_awr_host_settings_indexes_and_every_top_sql_measure(workload, pg):
    """The sections a DBA expects from Oracle's AWR and pg_profile, from what the snapshots hold:
    host/OS of this same-host target, settings not at their default, index usage with sizes
    (measured at the first snapshot, filled in for the range), top SQL by each measure."""
    import os

    from rich.console import Console

    from ops_core.reports import text as text_report

    f, dsn = workload["facts"], workload["dsn"]
    r = api.awr_report(TARGET, f.begin_id, f.end_id, addm=False)
    # host: the test server runs here (embedded, or PostgreSQL 15 over its Unix socket)
    host = r.host.set_index("metric")
    assert host.loc["CPUs", "value"] == os.cpu_count()
    assert host.loc["memory total", "value"] > 0 and host.loc["memory total", "unit"] == "bytes"
    assert 0 <= host.loc["CPU idle", "value"] <= 100
    # settings not at their default, as the target reports them at the end snapshot
    with psycopg.connect(dsn) as c:
        max_conn = c.execute("SHOW max_connections").fetchone()[0]
        pkey_bytes = c.execute("SELECT pg_relation_size('rpt_t_pkey')").fetchone()[0]
    s = r.settings.set_index("name")
    assert s.loc["max_connections", "setting"] == max_conn
    assert set(r.settings.loc[r.settings["changed"] != "", "name"]) == set(
        r.settings_changes["name"]
    ) & set(r.settings["name"])
    # the primary key of the workload's table (its counters moved: the update used it); its
    # size, when a snapshot at or before the end measured it (an index's row is kept in the
    # intervals its counters moved), is the target's; the note says where sizes come from
    both = pd.concat([r.indexes, r.unused_indexes], ignore_index=True)
    pkey = both[both["indexrelname"] == "rpt_t_pkey"]
    assert len(pkey) >= 1, both
    sized = pkey[pkey["index_bytes"].notna()]
    assert (sized["index_bytes"] == pkey_bytes).all(), pkey
    assert r.index_note and ("as measured at" in r.index_note) == (len(sized) > 0)
    # top SQL by every measure; the derived ones add up
    for key in awr_model.TOP_SQL:
        assert key in r.top_sql
    el = r.top_sql["elapsed"]
    assert (el["cpu_time"] <= el["total_exec_time"] + 1e-6).all()
    assert (el["shared_blks_fetched"] == el["shared_blks_hit"] + el["shared_blks_read"]).all()
    assert (el["io_time"] >= 0).all()
    # the terminal report shows the host section too
    with open(os.devnull, "w") as sink:
        console = Console(width=200, record=True, file=sink)
        text_report.awr(r, console)
        out = console.export_text()
    assert "Host / OS" in out and "CPUs" in out
