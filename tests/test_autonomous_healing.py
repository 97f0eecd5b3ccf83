"""Self-healing against a real server (issue 16): an idle-in-transaction blocker healed by
policy while a busy worker with many short transactions is left alone; nothing acts in OFF or
REPORT ONLY; invalid index, stale statistics and bloat remedied through the actions module;
sequences, index health; amcheck finding a corrupted index on a throw-away server."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ops_core import api
from ops_core.analysis.healing import HealingRules
from ops_core.errors import InvalidInput
from ops_core.targets.embedded import EmbeddedServer

from .helpers import run_cli, wait_until

FAST = HealingRules(idle_blocker_s=2.0, stale_min_changes=500, bloat_min_dead_rows=2000)


@pytest.fixture
def heal(repo, target_db):
    api.add_target("heal", target_db)
    return target_db


def _pids(dsn: str, app: str) -> set[int]:
    with psycopg.connect(dsn, autocommit=True) as c:
        rows = c.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)
        ).fetchall()
    return {r[0] for r in rows}


class Scene:
    """An idle-in-transaction session holding row 1 with a waiter behind it, and two busy
    workers updating row 2 in many short transactions (blocking each other for moments)."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.stop = threading.Event()
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE TABLE acct (id int PRIMARY KEY, n int NOT NULL)")
            c.execute("INSERT INTO acct VALUES (1, 0), (2, 0)")
        self.idle = psycopg.connect(dsn, application_name="heal-idle")
        self.idle.execute("UPDATE acct SET n = n + 1 WHERE id = 1")  # transaction left open
        self.idle_pid = self.idle.info.backend_pid
        self.waiter_done = threading.Event()
        self.threads = [threading.Thread(target=self._waiter, daemon=True)]
        self.threads += [threading.Thread(target=self._busy, daemon=True) for _ in range(2)]
        for t in self.threads:
            t.start()
        wait_until(
            lambda: _pids(dsn, "heal-waiter") and len(_pids(dsn, "heal-busy")) == 2,
            what="waiter and busy workers connected",
        )

    def _waiter(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, application_name="heal-waiter") as c:
            c.execute("UPDATE acct SET n = n + 1 WHERE id = 1")
        self.waiter_done.set()

    def _busy(self) -> None:
        with psycopg.connect(self.dsn, application_name="heal-busy") as c:
            while not self.stop.is_set():
                with c.transaction():
                    c.execute("UPDATE acct SET n = n + 1 WHERE id = 2")
                    c.execute("SELECT pg_sleep(0.02)")

    def close(self) -> None:
        self.stop.set()
        try:
            self.idle.close()
        except psycopg.Error:
            pass
        for t in self.threads:
            t.join(timeout=30)


def _journal(dsn_target: str = "heal") -> list:
    return api.healing_actions(dsn_target)


def test_idle_blocker_off_report_only_implement_and_busy_worker_left_alone(heal):
    scene = Scene(heal)
    try:
        wait_until(
            lambda: any(
                i.kind == "idle_in_transaction_blocker"
                for i in api.healing_issues("heal", samples=2, interval_s=0.3, rules=FAST).issues
            ),
            what="the idle blocker judged over its samples",
        )
        busy = _pids(heal, "heal-busy")
        # OFF (the default): found, nothing done, nothing journaled
        run = api.run_healing("heal", samples=3, interval_s=0.3, rules=FAST)
        assert run.mode == "off" and run.actions == []
        assert "nothing done" in run.summary
        assert _journal() == []
        assert scene.idle_pid in _pids(heal, "heal-idle")
        # REPORT ONLY: journaled with the SQL, nothing runs
        api.set_autonomous_config("heal", "healing", "report-only")
        run = api.run_healing("heal", samples=3, interval_s=0.3, rules=FAST)
        acted = [a for a in run.actions if a.kind == "idle_in_transaction_blocker"]
        assert [(a.mode, a.outcome) for a in acted] == [("report_only", "reported")]
        assert scene.idle_pid in _pids(heal, "heal-idle")
        assert not scene.waiter_done.is_set()
        # no action on the busy workers, whatever they were seen doing
        assert all(str(p) not in a.object for a in run.actions for p in busy)
        # IMPLEMENT: the idle blocker ends, the waiter goes on, the busy workers stay
        api.set_autonomous_config("heal", "healing", "implement")
        run = api.run_healing("heal", samples=3, interval_s=0.3, rules=FAST)
        acted = [a for a in run.actions if a.kind == "idle_in_transaction_blocker"]
        assert [(a.mode, a.outcome) for a in acted] == [("implement", "done")]
        assert scene.waiter_done.wait(60), "the waiter never got its lock"
        wait_until(lambda: scene.idle_pid not in _pids(heal, "heal-idle"), what="blocker gone")
        assert _pids(heal, "heal-busy") == busy
        journal = _journal()
        assert [e.outcome for e in journal if e.feature == "terminate_session"] == [
            "done",
            "reported",
        ]
        done = journal[0]
        assert done.evidence["samples_idle_in_same_transaction"] == 3
        assert done.before[0]["pid"] == scene.idle_pid and done.after == []
        for e in journal:
            assert e.requested_by == "self-healing"
            assert all(str(p) not in e.what for p in busy)
    finally:
        scene.close()


def test_dba_policy_on_a_kind_makes_the_feature_stricter(heal):
    scene = Scene(heal)
    try:
        api.set_autonomous_config("heal", "healing", "implement")
        api.set_action_policy("heal", "terminate_session", "report_only")
        cfg = api.autonomous_config("heal")
        assert cfg.modes["self_healing"] == "implement"
        assert cfg.action_policies["self_healing"]["terminate_session"] == "report_only"
        assert cfg.action_policies["self_healing"]["vacuum"] == "implement"
        # dropping another consumer's slot: never unless allowed by name
        assert cfg.action_policies["self_healing"]["drop_inactive_slot"] == "off"
        wait_until(
            lambda: any(
                a.kind == "idle_in_transaction_blocker"
                for a in api.run_healing("heal", samples=2, interval_s=0.3, rules=FAST).actions
            ),
            what="a healing run acting on the blocker",
        )
        assert scene.idle_pid in _pids(heal, "heal-idle")
        assert {e.outcome for e in _journal() if e.feature == "terminate_session"} == {"reported"}
    finally:
        scene.close()


def test_invalid_index_stale_statistics_bloat_and_sequences(heal):
    with psycopg.connect(heal, autocommit=True) as c:
        measured = c.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pgstattuple'"
        ).fetchone()
        if measured:  # the DBA's step: bloat measured with pgstattuple_approx
            c.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        c.execute(
            'CREATE TABLE "Orders" (id int, "Customer" int, note text) '
            "WITH (autovacuum_enabled = false)"
        )
        c.execute("INSERT INTO \"Orders\" SELECT g, g % 100, 'x' FROM generate_series(1, 6000) g")
        c.execute("INSERT INTO \"Orders\" VALUES (1, 1, 'dup')")  # a duplicate id
        c.execute('ANALYZE "Orders"')
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute('CREATE UNIQUE INDEX CONCURRENTLY "Orders_id" ON "Orders" (id)')
        c.execute("DELETE FROM \"Orders\" WHERE note = 'dup'")  # the cause fixed; index invalid
        c.execute('DELETE FROM "Orders" WHERE id > 2000')  # 4000 dead rows, 67 %
        c.execute('CREATE INDEX "Orders_cust" ON "Orders" ("Customer")')
        c.execute('CREATE INDEX "Orders_cust_id" ON "Orders" ("Customer", id)')
        c.execute('CREATE INDEX "Orders_cust_copy" ON "Orders" ("Customer")')
        c.execute("CREATE SEQUENCE small_seq AS smallint")
        c.execute("SELECT setval('small_seq', 32000)")

    def found():
        issues = api.healing_issues("heal", samples=1, rules=FAST).issues
        kinds = {(i.kind, i.object) for i in issues}
        want = {
            ("invalid_index", 'public."Orders_id"'),
            ("stale_statistics", 'public."Orders"'),
            ("table_bloat", 'public."Orders"'),
            ("sequence_exhaustion", "public.small_seq"),
        }
        return issues if want <= kinds else None

    issues = wait_until(found, what="all four conditions (statistics flush)")
    bloat = next(i for i in issues if i.kind == "table_bloat")
    if measured:  # counted on the pages: 4000 dead of 6001 rows (the deleted duplicate too)
        assert bloat.evidence["measured"] and "pgstattuple_approx" in bloat.summary, bloat
        assert 4000 <= bloat.evidence["dead_rows"] <= 4001 and bloat.evidence["dead_pct"] > 60
    else:
        assert "estimate" in bloat.summary, bloat
    seq = next(i for i in issues if i.kind == "sequence_exhaustion")
    assert seq.severity == "critical" and seq.action is None  # a DBA's decision: alert only
    # index health: invalid, duplicate and redundant prefix, named by their real names
    verdicts = {v.index: v.verdict for v in api.index_health("heal")}
    assert verdicts["Orders_id"] == "invalid"
    assert {verdicts["Orders_cust"], verdicts["Orders_cust_copy"]} == {"duplicate", "redundant"}
    assert verdicts["Orders_cust_id"] == "unused"
    api.set_autonomous_config("heal", "healing", "implement")
    run = api.run_healing("heal", samples=1, rules=FAST)
    outcomes = {(a.kind, a.outcome) for a in run.actions}
    assert {
        ("invalid_index", "done"),
        ("stale_statistics", "done"),
        ("table_bloat", "done"),
    } <= outcomes, run.actions
    with psycopg.connect(heal, autocommit=True) as c:
        valid = c.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = '\"Orders_id\"'::regclass"
        ).fetchone()[0]
        assert valid
    after = {v.index: v.verdict for v in api.index_health("heal")}
    assert after["Orders_id"] != "invalid"
    journal = {e.feature: e for e in _journal()}
    assert journal["vacuum"].before[0]["n_dead_tup"] >= 2000
    assert journal["reindex"].before[0]["valid"] is False
    assert journal["reindex"].after[0]["valid"] is True
    again = wait_until(
        lambda: (
            lambda kinds: (
                kinds if "table_bloat" not in kinds and "invalid_index" not in kinds else None
            )
        )({i.kind for i in api.healing_issues("heal", samples=1, rules=FAST).issues}),
        what="healed conditions gone",
    )
    assert "sequence_exhaustion" in again


def test_bad_input_is_refused_and_changes_nothing(heal):
    with pytest.raises(InvalidInput, match="healing, tuning or indexing"):
        api.set_autonomous_config("heal", "bogus", "implement")
    with pytest.raises(InvalidInput, match="report-only"):
        api.set_autonomous_config("heal", "healing", "sometimes")
    with pytest.raises(InvalidInput, match="samples"):
        api.healing_issues("heal", samples=0)
    assert api.autonomous_config("heal").modes == {
        "self_healing": "off",
        "self_tuning": "off",
        "auto_indexing": "off",
    }


@pytest.mark.slow
def test_cli_config_issues_run_report(heal):
    r = run_cli("autonomous", "config", "set", "-t", "heal", "--feature", "healing", "--mode", "x")
    assert r.returncode != 0 and "report-only" in (r.stdout + r.stderr)
    r = run_cli(
        "autonomous", "config", "set", "-t", "heal", "--feature", "healing", "--mode",
        "report-only", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["modes"]["self_healing"] == "report_only"
    r = run_cli("autonomous", "healing", "issues", "-t", "heal", "--samples", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["target"] == "heal"
    r = run_cli("autonomous", "healing", "report", "-t", "heal")
    assert r.returncode == 0 and "self-healing report_only" in r.stdout, r.stdout + r.stderr
    r = run_cli("autonomous", "healing", "corruption", "-t", "heal")
    assert r.returncode == 0 and "No corruption check yet" in r.stdout


@pytest.mark.slow
def test_amcheck_finds_a_corrupted_index_on_a_throwaway_server(opscore_env):
    home = Path(tempfile.mkdtemp(prefix="ops-heal-", dir=tempfile.gettempdir()))
    server = EmbeddedServer(home)
    server.start()
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as c:
            c.execute("CREATE DATABASE healcorrupt")
        dsn = make_conninfo(server.conninfo(), dbname="healcorrupt")
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE TABLE items (id int, label text)")
            c.execute("INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
            c.execute("CREATE INDEX items_label ON items (label)")
            c.execute("CREATE INDEX items_id ON items (id)")
            path = c.execute("SELECT pg_relation_filepath('items_label')").fetchone()[0]
        if "healown" in [t.name for t in api.list_targets()]:
            api.remove_target("healown")
        api.add_target("healown", dsn)
        # without amcheck: said so, nothing invented
        first = api.check_corruption("healown")
        assert not first.available and "amcheck is not installed" in first.method
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE EXTENSION amcheck")
        clean = api.check_corruption("healown")
        assert clean.available and clean.checked == 2 and clean.corrupt == 0
        # corrupt one index page of items_label on disk (the server stopped)
        server.stop()
        f = server.pgdata / path
        data = bytearray(f.read_bytes())
        page = 8192 * 2  # a leaf page: its item data overwritten with bytes out of order
        for i in range(page + 2000, page + 6000, 40):
            data[i : i + 16] = b"\xff" * 8 + b"\x00" * 8
        f.write_bytes(bytes(data))
        server.start()
        bad = api.check_corruption("healown")
        assert bad.corrupt >= 1, bad.results
        broken = {r["index"] for r in bad.results if not r["ok"]}
        assert "items_label" in broken and "items_id" not in broken
        stored = api.corruption_results("healown")
        assert [c.check_id for c in stored][:3] == [bad.check_id, clean.check_id, first.check_id]
    finally:
        try:
            api.remove_target("healown")
        except Exception:  # noqa: BLE001 - best effort
            pass
        server.destroy()
        shutil.rmtree(home, ignore_errors=True)


def test_serve_schedules_self_healing_and_the_corruption_check(heal):
    from datetime import timedelta

    from flows.serve import build_deployments
    from ops_core.config import Settings

    deps = {d.name: d for d in build_deployments(Settings(healing_interval_minutes=10))}
    assert deps["self-healing"].schedules[0].schedule.interval == timedelta(minutes=10)
    assert deps["self-healing"].flow_name == "self-healing"
    assert deps["corruption-check"].parameters["corruption"] is True
    assert deps["corruption-check"].schedules[0].schedule.cron == "47 3 * * 0"
    assert deps["self-tuning"].flow_name == "self-tuning"
    assert deps["self-tuning"].schedules[0].schedule.cron == "23 * * * *"


@pytest.mark.slow
def test_healing_flow_skips_off_targets_and_reports_the_rest(heal, prefect_harness):
    from flows.autonomous import healing_flow

    assert healing_flow(targets=["heal"]) == {"heal": {"mode": "off"}}
    api.set_autonomous_config("heal", "healing", "report-only")
    out = healing_flow(targets=["heal"])
    assert out["heal"]["mode"] == "report_only" and out["heal"]["done"] == 0
    checked = healing_flow(targets=["heal"], corruption=True)
    assert set(checked["heal"]) == {"checked", "corrupt"}


@pytest.mark.slow
def test_app_page_shows_issues_index_health_and_sets_a_mode(heal):
    from .test_app import _run, _tables, _text

    with psycopg.connect(heal, autocommit=True) as c:
        c.execute("CREATE TABLE app_t (id int)")
        c.execute("INSERT INTO app_t SELECT generate_series(1, 100)")
        c.execute("INSERT INTO app_t VALUES (1)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute("CREATE UNIQUE INDEX CONCURRENTLY app_t_id ON app_t (id)")
    at = _run("autonomous.py")
    text, tables = _text(at), _tables(at)
    assert "self_healing" in tables and "off" in tables
    assert "invalid_index" in tables and "app_t_id" in tables
    # the write: Set mode -> confirm -> the config changed
    at.selectbox[1].set_value("report-only")
    next(b for b in at.button if b.label == "Set mode").click()
    at.run()
    next(b for b in at.button if b.label == "Confirm").click()
    at.run()
    assert not at.exception, at.exception
    assert api.autonomous_config("heal").modes["self_healing"] == "report_only"
    assert "Autonomous" in text
