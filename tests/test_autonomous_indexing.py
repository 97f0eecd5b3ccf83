"""Auto-indexing against a real server (issue 16): candidates from the workload's statements
(a lookup by a non-indexed column of the mixed-case table "Orders" is found; a prefix of a
DBA's index never proposed; an index on a write-heavy table not chosen), OFF does nothing,
REPORT ONLY journals a recommendation and builds nothing, IMPLEMENT builds it concurrently and
verifies it by execution and on the snapshots; an unused auto-index is dropped, a DBA's own
unused index never is. hypopg costs candidates where it is installed (PG15 here), an estimate
from the plan where not (the embedded PG18)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from ops_core import api
from ops_core.collectors import live
from ops_core.errors import NotFound
from tests.backup_helpers import drop_slot, fast_backups, new_dir  # noqa: F401

TARGET = "aix"


@pytest.fixture(scope="module")
def world(pg):
    """One database for the module: "Orders" (60k rows; a DBA index on (status, created_at)
    and an unused DBA index on amount) and "Events" (40k rows, written to far more than read)."""
    dsn = pg.create_database("aix")
    with pg.admin() as a:
        live.create_plan_role(a)  # the README's set-up SQL (planning on superuser sessions)
    with psycopg.connect(dsn, autocommit=True) as c:
        hypopg = c.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone()
        if hypopg:
            c.execute("CREATE EXTENSION IF NOT EXISTS hypopg")  # the DBA's step
        c.execute(
            'CREATE TABLE "Orders" (id bigint PRIMARY KEY, customer_id int, status text, '
            "created_at timestamptz, amount numeric)"
        )
        c.execute(
            "INSERT INTO \"Orders\" SELECT g, (g * 7919) % 6000, (ARRAY['new','paid',"
            "'shipped'])[1 + g % 3], now() - g * interval '1 minute', g % 1000 "
            "FROM generate_series(1, 60000) g"
        )
        c.execute('CREATE INDEX "Orders_status_created" ON "Orders" (status, created_at)')
        c.execute('CREATE INDEX dba_amount_idx ON "Orders" (amount)')
        c.execute('CREATE TABLE "Events" (id bigserial PRIMARY KEY, ref int, payload text)')
        c.execute(
            'INSERT INTO "Events" (ref, payload) SELECT g % 20000, md5(g::text) '
            "FROM generate_series(1, 40000) g"
        )
        c.execute('ANALYZE "Orders"')
        c.execute('ANALYZE "Events"')
    yield dsn, bool(hypopg)
    pg.drop_database(dsn)


def _workload(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True, application_name="aix-app") as c:
        for i in range(120):
            c.execute(
                'SELECT id, amount FROM "Orders" WHERE customer_id = %s', ((i * 37) % 6000,)
            ).fetchall()
        for s in ("new", "paid"):
            c.execute('SELECT count(*) FROM "Orders" WHERE status = %s', (s,)).fetchall()
        c.execute('SELECT id FROM "Events" WHERE ref = %s', (1,)).fetchall()
    with psycopg.connect(dsn, application_name="aix-app") as c:  # one transaction: fast
        with c.cursor() as cur:
            cur.executemany(
                'INSERT INTO "Events" (ref, payload) VALUES (%s, %s)',
                [(i, "x") for i in range(10000)],
            )


def _interval(dsn: str) -> None:
    api.take_snapshot(TARGET)
    _workload(dsn)
    api.take_snapshot(TARGET)


def _indexes(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as c:
        return c.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()


def _by_cols(cands, table: str, columns: list[str]):
    """The plain candidate(s) on these key columns (no INCLUDE, not partial)."""
    return [
        c
        for c in cands.candidates
        if c.table_name == table and c.columns == columns and not c.include and not c.predicate
    ]


@pytest.mark.slow
def test_candidates_found_prefix_never_and_write_heavy_not_chosen(world, repo):
    dsn, hypopg = world
    api.add_target(TARGET, dsn)
    _interval(dsn)
    cands = api.indexing_candidates(TARGET)
    assert cands.method == ("hypopg" if hypopg else "estimate")
    # the lookup by customer_id: plain or (customer_id) INCLUDE (id, amount), whichever saves
    # more (hypopg sees the index-only scan; the estimate within 5 %: the smaller)
    family = [
        c for c in cands.candidates if c.table_name == "Orders" and c.columns == ["customer_id"]
    ]
    [orders] = [c for c in family if c.chosen]
    assert orders.include in ([], ["id", "amount"]), orders.include
    assert orders.saved_ms > 0 and any(s["used"] for s in orders.statements)
    assert '"public"."Orders"' in orders.ddl and "CONCURRENTLY" in orders.ddl
    # (status) is a prefix of the DBA's (status, created_at): never proposed, said why
    assert not _by_cols(cands, "Orders", ["status"])
    assert any(s["columns"] == ["status"] and "covered" in s["why"] for s in cands.skipped)
    # "Events": 10,000 inserts for 1 lookup: the index would cost more than it saves
    events_all = [c for c in cands.candidates if c.table_name == "Events" and c.columns == ["ref"]]
    assert events_all and not any(c.chosen for c in events_all)
    [events] = [c for c in events_all if "does the same" not in c.verdict]
    assert events.write_ms > events.saved_ms, (events.write_ms, events.saved_ms)
    assert "write overhead" in events.verdict or "planner would not" in events.verdict
    assert [c.table_name for c in cands.chosen] == ["Orders"]
    # the CLI shows the same answer (in-process: no interpreter start-up)
    from typer.testing import CliRunner

    from ops_core.cli import app

    r = CliRunner().invoke(app, ["autonomous", "indexing", "candidates", "-t", TARGET, "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert [c["columns"] for c in got["candidates"] if c["chosen"]] == [["customer_id"]]
    r = CliRunner().invoke(app, ["autonomous", "indexing", "config", "set", "-t", TARGET,
                                 "--mode", "sometimes"])  # fmt: skip
    assert r.exit_code != 0 and api.indexing_config(TARGET).mode == "off"
    # the app's Autonomous page: the candidates with their verdicts
    from .test_app import _run, _tables

    at = _run("autonomous.py")
    assert not at.exception, at.exception
    shown = _tables(at)
    assert "Orders (customer_id)" in shown and "write overhead" in shown


@pytest.mark.slow
def test_cycle_off_report_implement_verify_and_drop_unused(world, repo):
    dsn, _ = world
    api.add_target(TARGET, dsn)
    _interval(dsn)
    catalog = _indexes(dsn)
    # OFF (the default): nothing journaled, nothing built
    run = api.run_indexing(TARGET)
    assert run.mode == "off" and run.steps == [] and "off" in run.summary
    assert api.action_journal(TARGET) == [] and _indexes(dsn) == catalog
    # REPORT ONLY: the recommendation journaled with its SQL, nothing built
    api.set_indexing_config(TARGET, mode="report-only")
    run = api.run_indexing(TARGET)
    [step] = run.steps
    assert (step.action, step.outcome) == ("create", "reported")
    [rec] = api.indexing_recommendations(TARGET)
    assert rec.columns == ["customer_id"] and rec.table_name == "Orders" and not rec.created
    [entry] = api.action_journal(TARGET)
    assert (entry.mode, entry.outcome) == ("report_only", "reported")
    assert "CREATE INDEX CONCURRENTLY" in entry.sql and '"Orders"' in entry.sql
    assert _indexes(dsn) == catalog
    # IMPLEMENT outside the maintenance window: deferred
    api.set_indexing_config(TARGET, mode="implement", validation_hours=0)
    hour = __import__("datetime").datetime.now(__import__("datetime").UTC).hour
    api.set_indexing_config(TARGET, window_start_hour=(hour + 2) % 24,
                            window_end_hour=(hour + 3) % 24)  # fmt: skip
    run = api.run_indexing(TARGET)
    assert [s.outcome for s in run.steps] == ["deferred"] and _indexes(dsn) == catalog
    # IMPLEMENT: built concurrently, faster by execution, journaled with before/after
    api.set_indexing_config(TARGET, clear_window=True)
    run = api.run_indexing(TARGET)
    [step] = run.steps
    assert (step.action, step.outcome) == ("create", "done"), step.detail
    [made] = api.indexing_created(TARGET)
    assert made.status == "verifying" and made.created
    v = made.verification
    assert v["after"]["ms_per_call"] < v["before"]["ms_per_call"], v
    names = [n for n, _ in _indexes(dsn)]
    assert made.index_name in names and "dba_amount_idx" in names
    create = next(e for e in api.action_journal(TARGET) if e.outcome == "done")
    assert create.mode == "implement"
    assert made.index_name not in str(create.before) and made.index_name in str(create.after)
    assert any(r["indisvalid"] for r in create.after if made.index_name in r["index"])
    # verified on the snapshots: the lookups per call got faster -> kept
    _interval(dsn)
    run = api.run_indexing(TARGET)
    assert ("verify", "kept") in [(s.action, s.outcome) for s in run.steps], run.steps
    [kept] = api.indexing_created(TARGET)
    snap = kept.verification["snapshots"]
    assert kept.status == "kept" and snap["after_ms_per_call"] < snap["before_ms_per_call"]
    # unused for the configured period (0 days here) -> dropped; the DBA's unused index stays
    api.set_indexing_config(TARGET, unused_days=0)
    run = api.run_indexing(TARGET)
    assert ("drop", "done") in [(s.action, s.outcome) for s in run.steps], run.steps
    names = [n for n, _ in _indexes(dsn)]
    assert kept.index_name not in names and "dba_amount_idx" in names
    [gone] = api.indexing_dropped(TARGET)
    assert gone.status == "unused" and gone.drop_action_id is not None
    drops = [e for e in api.action_journal(TARGET, "drop_index")]
    assert len(drops) == 1 and "dba_amount_idx" not in drops[0].sql
    report = api.indexing_report(TARGET)
    assert report.config.mode == "implement" and report.counts["unused"] == 1
    assert any(h["index"] == "dba_amount_idx" and not h["auto_indexing"]
               for h in report.index_health)  # fmt: skip


def test_serve_schedules_the_auto_indexing_flow():
    from flows.serve import build_deployments
    from ops_core.config import Settings

    deps = {d.name: d for d in build_deployments(Settings(indexing_cron="5 * * * *"))}
    assert deps["auto-indexing"].flow_name == "auto-indexing"
    assert deps["auto-indexing"].schedules[0].schedule.cron == "5 * * * *"


def test_bad_config_is_refused(target_db, repo):
    api.add_target(TARGET, target_db)
    from ops_core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="budget_mb"):
        api.set_indexing_config(TARGET, budget_mb=0)
    with pytest.raises(InvalidInput, match="start and end"):
        api.set_indexing_config(TARGET, window_start_hour=2)
    with pytest.raises(InvalidInput, match="mode"):
        api.set_indexing_config(TARGET, mode="sometimes")
    assert (
        api.indexing_config(TARGET).budget_mb == 1024 and api.indexing_config(TARGET).mode == "off"
    )


# ------------------------------------------------------------- the pure part, no server
def test_statement_columns_and_candidate_order():
    from ops_core.analysis import autoindex as ai

    sh = ai.statement_columns(
        'SELECT o.id FROM "Orders" o JOIN items i ON i.order_id = o.id '
        "WHERE o.status = $1 AND o.customer_id = $2 AND o.created_at > now() - $3::interval "
        "ORDER BY o.created_at"
    )
    t = "public.Orders"
    assert sh.on(t)["eq"] == ["status", "customer_id"] and sh.on(t)["range"] == ["created_at"]
    assert ("public.items", "order_id") in sh.join and sh.on(t)["order"] == ["created_at"]
    upd = ai.statement_columns('UPDATE "Orders" SET status = $1 WHERE id = $2')
    assert upd.kind == "update" and upd.on(t)["set"] == ["status"]
    assert not ai.statement_columns("SELEKT nonsense").parsed
    stats = {(t, "status"): {"n_distinct": 3}, (t, "customer_id"): {"n_distinct": -0.1}}
    cands, skipped = ai.candidates_for(
        [{"queryid": 1, "calls": 10, "total_ms": 100.0}], {1: sh},
        {t: {"reltuples": 100000.0}}, stats, {t: [["status", "created_at", "id"]]},
    )  # fmt: skip
    cols = [c.columns for c in cands]
    # equality columns most selective first (customer_id: 10,000 values; status: 3)
    assert ["customer_id", "status"] in cols and ["status", "customer_id"] not in cols
    assert ["customer_id", "status", "created_at"] in cols
    # (status) and (status, created_at) are prefixes of the existing index: left out, said why
    assert ["status"] not in cols and any(s["columns"] == ["status"] for s in skipped)
    assert all(c.ddl.startswith('CREATE INDEX CONCURRENTLY "ai_orders_') for c in cands)


def test_write_overhead_and_greedy_against_exact():
    from ops_core.analysis import autoindex as ai
    from ops_core.analysis import autoindex_choice as choice

    table = {"n_indexes": 1, "n_tup_upd": 100.0, "n_tup_hot_upd": 90.0}
    writes = [{"queryid": 1, "kind": "insert", "calls": 1000, "total_ms": 100.0},
              {"queryid": 2, "kind": "update", "calls": 10, "total_ms": 40.0,
               "set_columns": ["v"]},
              {"queryid": 3, "kind": "delete", "calls": 10, "total_ms": 40.0}]  # fmt: skip
    ms, _ = choice.write_overhead(["k"], writes, table)
    assert ms == pytest.approx(100 / 2 + 40 / 2 * 0.1)  # update of another column: non-HOT
    ms_v, _ = choice.write_overhead(["v"], writes, table)
    assert ms_v == pytest.approx(100 / 2 + 40 / 2)  # it sets an indexed column

    def cand(name, saved: dict[int, float], write, size):
        c = ai.IndexCandidate("public", "t", [name], name, "")
        c.method, c.write_ms, c.est_bytes = "hypopg", write, size
        c.statements = [{"queryid": q, "total_ms": 100.0, "saved_ms": v, "used": True}
                        for q, v in saved.items()]  # fmt: skip
        c.saved_ms = sum(saved.values())
        return c

    pool = [cand("a", {1: 90, 2: 50}, 10, 100), cand("b", {1: 80}, 5, 60),
            cand("c", {2: 60, 3: 70}, 20, 80), cand("w", {4: 5}, 30, 10)]  # fmt: skip
    chosen = choice.choose(pool, budget_bytes=180, min_gain_pct=5)
    greedy = choice.net_of(chosen)
    best, exact = choice.choose_exact(pool, 180)
    assert sum(c.est_bytes for c in chosen) <= 180 and greedy <= exact
    assert not next(c for c in pool if c.name == "w").chosen  # writes cost more than it saves
    assert "write overhead" in next(c for c in pool if c.name == "w").verdict
    assert greedy >= 0.8 * exact, (greedy, exact, [c.name for c in best])


# ------------------------------------------------- partial and INCLUDE candidates, built
PENDING = 'SELECT id, created_at FROM "Tickets" WHERE status = %s ORDER BY created_at LIMIT 20'
REGION = 'SELECT sum(amount) FROM "Tickets" WHERE region = %s'


def _plan_role_and_hypopg(pg, dsn: str) -> None:
    """The read-only plan role on the server, hypopg in the database where it is installed."""
    with pg.admin() as a:
        live.create_plan_role(a)
    with psycopg.connect(dsn, autocommit=True) as c:
        if c.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone():
            c.execute("CREATE EXTENSION IF NOT EXISTS hypopg")


@pytest.fixture(scope="module")
def tickets(pg):
    """ "Tickets" (60k rows, vacuumed: all-visible): status 'pending' on 2 % of the rows (a
    queue read oldest first), 20 regions of 5 % each scattered over the table (a sum of one
    region's amounts: a plain index on region still visits most heap pages)."""
    dsn = pg.create_database("aixp")
    _plan_role_and_hypopg(pg, dsn)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            'CREATE TABLE "Tickets" (id bigint PRIMARY KEY, status text, region int, '
            "created_at timestamptz, amount numeric, note text)"
        )
        c.execute(
            "INSERT INTO \"Tickets\" SELECT g, CASE WHEN g % 50 = 0 THEN 'pending' "
            "WHEN g % 5 < 2 THEN 'open' ELSE 'closed' END, (g * 7919) % 20, "
            "now() - g * interval '1 minute', g % 997, md5(g::text) "
            "FROM generate_series(1, 60000) g"
        )
        c.execute('VACUUM (ANALYZE) "Tickets"')
    yield dsn
    pg.drop_database(dsn)


@pytest.mark.slow
def test_partial_and_include_candidates_chosen_and_built(tickets, repo):
    dsn = tickets
    api.add_target("aixp", dsn)
    api.take_snapshot("aixp")
    with psycopg.connect(dsn, autocommit=True, application_name="aixp-app") as c:
        for i in range(40):
            c.execute(PENDING, ("pending",)).fetchall()
            c.execute(REGION, (i % 20,)).fetchall()
    api.take_snapshot("aixp")
    cands = api.indexing_candidates("aixp")
    for x in cands.candidates:
        print(f"{x.label}: {x.verdict}; saves {x.saved_ms:.1f} ms, {x.est_bytes / 1024:.0f} kB")
    chosen = {(tuple(x.columns), tuple(x.include), bool(x.predicate)): x for x in cands.chosen}
    # the queue read: a partial index on its sort column, only the pending 2 % of the rows
    [queue] = [x for x in cands.chosen if x.predicate]
    assert queue.columns == ["created_at"] and queue.predicate["column"] == "status"
    assert queue.predicate["value"] == "pending" and queue.predicate["freq"] < 0.05
    assert """WHERE "status" = 'pending'""" in queue.ddl and "CONCURRENTLY" in queue.ddl
    plain = [x for x in cands.candidates if x.columns == ["status", "created_at"]]
    assert plain and all(queue.est_bytes < 0.2 * p.est_bytes for p in plain)
    # the regional sum: (region) INCLUDE (amount) for an index-only scan; the plain (region)
    # alternative is not chosen (it reads most heap pages)
    assert (("region",), ("amount",), False) in chosen, chosen.keys()
    inc = chosen[("region",), ("amount",), False]
    assert 'INCLUDE ("amount")' in inc.ddl
    assert (("region",), (), False) not in chosen
    # built concurrently through the actions module, verified faster by execution
    api.set_indexing_config("aixp", mode="implement")
    run = api.run_indexing("aixp")
    assert sorted(s.outcome for s in run.steps) == ["done", "done"], run.steps
    defs = dict(_indexes(dsn))
    assert "WHERE (status = 'pending'::text)" in defs[queue.name], defs
    assert "INCLUDE (amount)" in defs[inc.name], defs
    made = {r.index_name: r for r in api.indexing_created("aixp")}
    assert made[queue.name].predicate["value"] == "pending" and made[inc.name].include == ["amount"]
    for r in made.values():
        v = r.verification
        assert v["after"]["ms_per_call"] < v["before"]["ms_per_call"], (r.index_name, v)
        assert all(s["used"] for s in v["after"]["statements"]), v
    # the same index is not proposed again while it is verifying
    again = api.run_indexing("aixp")
    assert not [s for s in again.steps if s.action == "create"], again.steps


# ----------------------------------------------- regressed on the snapshots -> dropped
LOOKUP_V = 'SELECT id FROM "Accounts" WHERE v = %s'
UPDATE_V = 'UPDATE "Accounts" SET v = %s WHERE id = %s'


@pytest.fixture(scope="module")
def accounts(pg):
    """The table "Accounts" (60k rows, fillfactor 50: its updates of v are HOT while v is not
    indexed) with six indexes on text columns: once v is indexed, every update of v is no
    longer HOT and inserts into all eight indexes, not just the new one (what the
    write-overhead estimate, one index's share of the update's time, does not see)."""
    dsn = pg.create_database("aixr")
    _plan_role_and_hypopg(pg, dsn)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            'CREATE TABLE "Accounts" (id int PRIMARY KEY, v int, a text, b text, c text, d text, '
            "e text, f text) WITH (fillfactor = 50, autovacuum_enabled = false)"
        )
        c.execute(
            'INSERT INTO "Accounts" SELECT g, g, md5(g::text), md5((g + 1)::text), '
            "md5((g + 2)::text), md5((g + 3)::text), md5((g + 4)::text), md5((g + 5)::text) "
            "FROM generate_series(1, 60000) g"
        )
        for col in "abcdef":
            c.execute(f'CREATE INDEX "Accounts_{col}" ON "Accounts" ({col})')
        c.execute('VACUUM (ANALYZE) "Accounts"')
    yield dsn
    pg.drop_database(dsn)


def _write_heavy(dsn: str, round_: int) -> None:
    """3 lookups by v (a scan of the table each without an index on v) and 10,000 updates of
    v (different rows each round), one transaction for the updates: the lookups are about a
    third of the updates' time, enough for the estimate to choose the index."""
    with psycopg.connect(dsn, autocommit=True, application_name="aixr-app") as c:
        for i in range(3):
            c.execute(LOOKUP_V, (1000 + i,)).fetchall()
    with psycopg.connect(dsn, application_name="aixr-app") as c:
        with c.cursor() as cur:
            base = round_ * 30000
            cur.executemany(UPDATE_V, [(-i, base + i * 3 + 1) for i in range(10000)])


@pytest.mark.slow
def test_index_that_slowed_the_writes_is_dropped_and_never_proposed_again(accounts, repo):
    dsn = accounts
    api.add_target("aixr", dsn)
    api.take_snapshot("aixr")
    _write_heavy(dsn, 0)
    api.take_snapshot("aixr")
    with psycopg.connect(dsn) as c:
        hot, upd = c.execute(
            "SELECT n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables WHERE relname = 'Accounts'"
        ).fetchone()
    assert upd >= 10000 and hot >= 0.9 * upd, (hot, upd)  # HOT while v is not indexed
    api.set_indexing_config("aixr", mode="implement", validation_hours=0)
    run = api.run_indexing("aixr")
    [step] = [s for s in run.steps if s.action == "create"]
    assert step.outcome == "done", step  # the lookups got faster by execution
    [made] = api.indexing_created("aixr")
    cand = made.evidence["candidate"]
    print("chosen:", [(s["total_ms"], s["saved_ms"]) for s in cand["statements"]],
          [(w["total_ms"], w["overhead_ms"]) for w in cand["column_stats"]["writes"]])  # fmt: skip
    assert made.columns == ["v"] and made.status == "verifying"
    writes = made.evidence["candidate"]["column_stats"]["writes"]
    assert [w["kind"] for w in writes] == ["update"] and made.est_write_ms > 0
    # the same work after the build, on the snapshots: the updates are no longer HOT
    api.take_snapshot("aixr")
    _write_heavy(dsn, 1)
    api.take_snapshot("aixr")
    run = api.run_indexing("aixr")
    assert ("drop", "done") in [(s.action, s.outcome) for s in run.steps], run.steps
    [gone] = api.indexing_dropped("aixr")
    snap = gone.verification["snapshots"]
    print("regressed:", gone.note, snap["before_ms_per_call"], snap["after_ms_per_call"])
    assert gone.status == "regressed" and snap["after_ms_per_call"] > snap["before_ms_per_call"]
    assert made.index_name not in [n for n, _ in _indexes(dsn)]
    drop = next(e for e in api.action_journal("aixr", "drop_index"))
    assert drop.mode == "implement" and made.index_name in drop.sql
    # never proposed again for this workload: left out with why, nothing built
    cands = api.indexing_candidates("aixr")
    assert not [c for c in cands.chosen if c.key == gone.key]
    assert any(s["columns"] == ["v"] and "regressed before" in s["why"] for s in cands.skipped), (
        cands.skipped
    )
    run = api.run_indexing("aixr")
    assert not [s for s in run.steps if s.action == "create" and s.outcome == "done"], run.steps


# ------------------------------------------------- costing on a clone without hypopg
@pytest.mark.slow
@pytest.mark.usefixtures("fast_backups")
def test_candidates_costed_on_a_clone_when_there_is_no_hypopg(repo, pg):
    """No hypopg in the target database: with a clone configured, each candidate is built on
    the clone inside a rolled-back transaction and the statements planned with it (the
    planner's costs, not the estimate); the target never gets an index."""
    dsn = pg.create_database("aixc")
    with pg.admin() as a:
        live.create_plan_role(a)
    store = Path(tempfile.mkdtemp(prefix="ops-store-", dir=tempfile.gettempdir()))
    name, clone = "aixc", f"aic_{dsn.split('dbname=')[1].split()[0][-8:]}"
    slot = f"opscore_test_{clone}"
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute('CREATE TABLE "Orders" (id int PRIMARY KEY, customer int, note text)')
            c.execute(
                'INSERT INTO "Orders" SELECT g, g % 5000, md5(g::text) '
                "FROM generate_series(1, 40000) g"
            )
            c.execute('ANALYZE "Orders"')
        api.add_target(name, dsn)
        api.set_backup_store(name, store)
        api.create_wal_slot(name, slot)
        api.take_full_backup(name)
        api.restore_backup(name, new_dir(), start=True, clone=clone)
        with pytest.raises(NotFound):
            api.set_indexing_config(name, clone="no-such-clone")
        assert api.set_indexing_config(name, clone=clone).clone == clone
        catalog = _indexes(dsn)
        api.take_snapshot(name)
        with psycopg.connect(dsn, autocommit=True, application_name="aixc-app") as c:
            for i in range(30):
                c.execute('SELECT id, note FROM "Orders" WHERE customer = %s', (i,)).fetchall()
        api.take_snapshot(name)
        cands = api.indexing_candidates(name)
        assert cands.method == "clone" and any(clone in n for n in cands.notes), cands.notes
        [pick] = cands.chosen
        assert pick.columns == ["customer"] and pick.method == "clone"
        [st] = pick.statements
        print(f"on clone {clone}: cost {st['cost_before']} -> {st['cost_after']}")
        assert st["used"] and st["cost_after"] < 0.1 * st["cost_before"] and "estimate" not in st
        assert _indexes(dsn) == catalog  # the target never got an index
        # a clone that is not running is not used: the estimate, said why
        api.stop_clone(clone)
        again = api.indexing_candidates(name)
        assert again.method == "estimate" and any("not running" in n for n in again.notes)
    finally:
        if clone in [c.clone for c in api.list_clones()]:
            api.drop_clone(clone)
        drop_slot(pg, slot)
        shutil.rmtree(store, ignore_errors=True)
        pg.drop_database(dsn)
