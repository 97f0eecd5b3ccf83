"""Self-tuning against a real server (issue 16): parameters with context, source, baseline and
evidence; a change applied as a trial, measured on the snapshots after it and rolled back when
the same statements got slower; nothing changes in OFF or REPORT ONLY; pins; bad input."""

from __future__ import annotations

import psycopg
import pytest

from ops_core import api
from ops_core.analysis import tuning as judge
from ops_core.errors import InvalidInput, NotSupported


@pytest.fixture
def tune(repo, target_db):
    api.add_target("tune", target_db)
    with psycopg.connect(target_db, autocommit=True) as c:
        c.execute("CREATE TABLE big (id int PRIMARY KEY, v text)")
        c.execute("INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 100000) g")
        c.execute("ANALYZE big")
    return target_db


def _workload(dsn: str, n: int = 300) -> None:
    """Lookups by primary key, each run in a new session (database settings apply to new
    sessions)."""
    with psycopg.connect(dsn, autocommit=True, application_name="tune-app") as c:
        for i in range(n):
            c.execute("SELECT v FROM big WHERE id = %s", (1 + (i * 7919) % 100000,)).fetchall()


def _interval(dsn: str) -> None:
    api.take_snapshot("tune")
    _workload(dsn)
    api.take_snapshot("tune")


def _db_setting(dsn: str) -> str | None:
    with psycopg.connect(dsn) as c:
        row = c.execute(
            "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s "
            "JOIN pg_database d ON d.oid = s.setdatabase "
            "WHERE d.datname = current_database() AND s.setrole = 0"
        ).fetchone()
    return row[0] if row else None


def test_parameters_show_context_source_baseline_and_evidence(tune):
    params = {p.name: p for p in api.tuning_parameters("tune")}
    assert params["shared_buffers"].context == "postmaster"
    assert params["work_mem"].context == "user" and params["max_wal_size"].context == "sighup"
    # the test server is on this host: memory baselines from its RAM
    assert params["shared_buffers"].baseline is not None
    given = {p.name: p for p in api.tuning_parameters("tune", ram_gb=64)}
    assert given["shared_buffers"].baseline == "16GB"
    assert given["effective_cache_size"].baseline == "48GB"
    assert given["maintenance_work_mem"].baseline == "2GB"
    assert "storage" in " ".join(given["random_page_cost"].evidence)
    # spills to disk are evidence for work_mem
    with psycopg.connect(tune, autocommit=True) as c:
        c.execute("SET work_mem = '64kB'")
        c.execute("SELECT v FROM big ORDER BY v OFFSET 99990").fetchall()
    wm = next(p for p in api.tuning_parameters("tune", ram_gb=64) if p.name == "work_mem")
    assert wm.recommended is not None and "temporary file" in wm.evidence[0]
    # a pin: reported, never recommended
    pinned = api.override_parameter("tune", "work_mem", "8MB")
    assert pinned.status == "pinned" and pinned.pinned == "8MB" and pinned.recommended is None
    assert api.override_parameter("tune", "work_mem", None).status != "pinned"


def test_trial_applied_measured_and_rolled_back_when_it_hurts(tune):
    _interval(tune)
    before_cfg = _db_setting(tune)
    # OFF (default): refused, nothing changed
    [off] = api.apply_tuning("tune", "random_page_cost", "4000")
    assert off.status == "refused" and _db_setting(tune) == before_cfg
    # REPORT ONLY: journaled, nothing changed
    api.set_autonomous_config("tune", "tuning", "report-only")
    [rep] = api.apply_tuning("tune", "random_page_cost", "4000")
    assert rep.status == "reported" and _db_setting(tune) == before_cfg
    # IMPLEMENT: a deliberately bad value (lookups by key turn into sequential scans)
    api.set_autonomous_config("tune", "tuning", "implement")
    [tr] = api.apply_tuning("tune", "random_page_cost", "4000")
    assert (tr.status, tr.scope, tr.old_value) == ("measuring", "database", None)
    with psycopg.connect(tune) as c:
        assert c.execute("SHOW random_page_cost").fetchone()[0] == "4000"
    _interval(tune)
    trials = {x.trial_id: x for x in api.evaluate_tuning("tune")}
    done = trials[tr.trial_id]
    assert done.status == "rolled_back", done.note
    assert done.after_ms_per_call > done.before_ms_per_call and done.statements >= 1
    assert done.rollback_action_id is not None
    with psycopg.connect(tune) as c:  # a new session: the value before is back
        assert c.execute("SHOW random_page_cost").fetchone()[0] == "4"
    assert _db_setting(tune) == before_cfg
    journal = [e for e in api.action_journal("tune", "alter_system")]
    assert [(e.mode, e.outcome) for e in journal] == [
        ("implement", "done"),  # the rollback
        ("implement", "done"),  # the change
        ("report_only", "reported"),
        ("off", "refused"),
    ]
    assert "RESET" in journal[0].sql and journal[1].before[0]["session_value"] == "4"
    # a change that does not hurt these statements is kept (a generous tolerance: two short
    # intervals on a shared machine differ by more than 10 % on their own)
    _interval(tune)
    [ok] = api.apply_tuning("tune", "maintenance_work_mem", "128MB")
    _interval(tune)
    kept = {x.trial_id: x for x in api.evaluate_tuning("tune", tolerance_pct=200)}[ok.trial_id]
    assert kept.status == "kept", kept.note
    with psycopg.connect(tune) as c:
        assert c.execute("SHOW maintenance_work_mem").fetchone()[0] == "128MB"
    report = api.tuning_report("tune")
    assert report.mode == "implement"
    assert report.summary["trials rolled_back"] == 1 and report.summary["trials kept"] == 1
    statuses = [x.status for x in api.tuning_actions("tune")]
    assert statuses == ["kept", "rolled_back", "reported", "refused"]
    assert "autonomous config set --feature tuning" in api.tuning_actions("tune")[-1].note


def test_bad_input_and_restart_parameters(tune):
    api.set_autonomous_config("tune", "tuning", "implement")
    with pytest.raises(InvalidInput, match="not a parameter"):
        api.apply_tuning("tune", "fsync", "off")
    with pytest.raises(InvalidInput, match="Bad value"):
        api.apply_tuning("tune", "work_mem", "lots")
    with pytest.raises(NotSupported, match="restart"):
        api.apply_tuning("tune", "shared_buffers", "1GB")
    with pytest.raises(InvalidInput):
        api.override_parameter("tune", "fsync", "off")
    assert api.tuning_actions("tune") == []
    assert _db_setting(tune) is None


def test_judgement_weights_by_calls_before_and_bounds():
    before = [{"queryid": 1, "calls": 100, "total_ms": 100.0},
              {"queryid": 2, "calls": 10, "total_ms": 1000.0}]  # fmt: skip
    # same speeds, the slow statement run 10x more often: not a regression
    after = [{"queryid": 1, "calls": 100, "total_ms": 100.0},
             {"queryid": 2, "calls": 100, "total_ms": 10000.0}]  # fmt: skip
    assert judge.judge_trial(before, after, 10).verdict == "kept"
    slower = [{"queryid": 1, "calls": 100, "total_ms": 300.0},
              {"queryid": 2, "calls": 10, "total_ms": 1000.0}]  # fmt: skip
    v = judge.judge_trial(before, slower, 10)
    assert v.verdict == "rolled_back" and v.after_ms_per_call > v.before_ms_per_call
    assert judge.judge_trial(before, [], 10).verdict == "measuring"
    assert (
        judge.to_base("4GB", None) == 4 * 1024**3 and judge.to_base("16384", "8kB") == 128 * 1024**2
    )
    assert judge.fmt_memory(16 * 1024**3) == "16GB" and judge.fmt_memory(3 * 1024**2) == "3MB"


@pytest.mark.slow
def test_cli_parameters_override_apply(tune):
    import json

    from .helpers import run_cli

    r = run_cli("autonomous", "tuning", "parameters", "-t", "tune", "--ram-gb", "64", "--json")
    assert r.returncode == 0, r.stderr
    rows = {p["name"]: p for p in json.loads(r.stdout)}
    assert rows["shared_buffers"]["baseline"] == "16GB"
    r = run_cli("autonomous", "tuning", "apply", "-t", "tune", "--value", "8MB")
    assert r.returncode != 0 and "--parameter" in r.stdout + r.stderr
    r = run_cli("autonomous", "tuning", "override", "work_mem", "-t", "tune", "--value", "8MB")
    assert r.returncode == 0 and "pinned at 8MB" in r.stdout, r.stdout + r.stderr
    r = run_cli("autonomous", "tuning", "apply", "-t", "tune", "--parameter", "work_mem",
                "--value", "16MB")  # fmt: skip
    assert r.returncode != 0 and "pinned" in r.stdout + r.stderr
    r = run_cli("autonomous", "tuning", "report", "-t", "tune")
    assert r.returncode == 0 and "self-tuning off" in r.stdout, r.stdout + r.stderr
