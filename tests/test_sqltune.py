"""SQL Tuning Advisor against a real server: a selective seq scan gets an index (costed with
hypopg where the target has it, otherwise said), stale statistics get ANALYZE, a non-sargable
predicate gets a rewrite that returns the same rows and is measured faster, a data-modifying
statement is never executed (row count), bad SQL gets the parser's message, a spilling sort
gets a measured work_mem setting that becomes a profile; accepting goes through the action
policy. Tables have mixed-case names."""

from __future__ import annotations

import psycopg
import pytest

from ops_core import api
from ops_core.errors import InvalidInput, NotSupported
from tests.addm_helpers import ensure_plan_role

SCHEMA = [
    'CREATE TABLE "Orders" (id int PRIMARY KEY, customer int, created timestamptz, note text)',
    "INSERT INTO \"Orders\" SELECT g, g %% 5000, timestamptz '2026-01-01 00:00+00'"
    " + g * interval '1 minute', md5(g::text) FROM generate_series(1, 60000) g",
    'CREATE INDEX "Orders_created_idx" ON "Orders" (created)',
    "SELECT pg_stat_force_next_flush()",  # the inserts counted before ANALYZE resets them
    'ANALYZE "Orders"',
    'CREATE TABLE "Stale" (id int, k int)',
    'ALTER TABLE "Stale" SET (autovacuum_enabled = off)',
    'INSERT INTO "Stale" SELECT g, g %% 10 FROM generate_series(1, 20000) g',
]
LOOKUP = 'SELECT id, note FROM "Orders" WHERE customer = 42'
TRUNC = (
    "SELECT count(*) FROM \"Orders\" WHERE date_trunc('day', created) = '2026-01-20 00:00:00+00'"
)
SPILL = 'SELECT note, id FROM "Orders" ORDER BY note DESC, id'
DELETE = 'DELETE FROM "Orders" WHERE customer = 7'


@pytest.fixture
def tuned(repo, target_db, pg):
    ensure_plan_role(pg)  # the README's set-up SQL: planning/executing as the least privilege
    with psycopg.connect(target_db, autocommit=True) as c:
        for stmt in SCHEMA:
            c.execute(stmt.replace("%%", "%"))
        hypopg = c.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone()
        if hypopg:  # the DBA created it (opscore never creates extensions on a target)
            c.execute("CREATE EXTENSION hypopg")
    api.add_target("tune", target_db)
    return target_db, bool(hypopg)


def _recs(task_id):
    return api.tuning_recommendations(task_id)


@pytest.mark.slow
def test_tuning_task_end_to_end(tuned):
    dsn, hypopg = tuned
    tasks = {}
    for key, text in (("lookup", LOOKUP), ("trunc", TRUNC), ("spill", SPILL)):
        tasks[key] = api.create_tuning_task("tune", text).task_id
    tasks["stale"] = api.create_tuning_task("tune", 'SELECT * FROM "Stale" WHERE k = 3').task_id
    tasks["delete"] = api.create_tuning_task("tune", DELETE).task_id
    tasks["param"] = api.create_tuning_task("tune", LOOKUP.replace("42", "$1")).task_id
    for key, tid in tasks.items():
        t = api.execute_tuning_task(tid, runs=3)
        assert t.status == "done" and t.finished_at is not None, key
    # index for the selective seq scan: costed with hypopg where created, else said why not
    idx = [r for r in _recs(tasks["lookup"]) if r.type == "index"]
    assert idx and '"Orders"' in idx[0].sql and "customer" in idx[0].sql
    assert idx[0].sql.startswith("CREATE INDEX CONCURRENTLY")
    if hypopg:
        assert idx[0].method == "hypopg" and idx[0].cost_after < idx[0].cost_before
        assert idx[0].measured_speedup is None and "hypothetical" in idx[0].why_not
    else:
        assert idx[0].method is None and idx[0].measured_speedup is None
        assert "hypopg" in idx[0].why_not and "clone" in idx[0].why_not
    # a parameterized statement: executed with a value from the column's statistics, said
    f = api.get_tuning_task(tasks["param"]).statements[0]["findings"]
    assert f["executed"] is True, f
    used = f["parameters"]["$1"]
    assert used["column"] == '"public"."Orders".customer' and used["source"]
    assert f"customer = '{used['value']}'" in f["executed_sql"]
    assert any(r.type == "index" for r in _recs(tasks["param"]))
    # the non-sargable predicate: a rewrite, the same rows, measured faster on the target
    rw = next(r for r in _recs(tasks["trunc"]) if r.type == "rewrite")
    assert rw.evidence["same_rows"] is True and rw.method == "target"
    assert "created >=" in rw.sql and "date_trunc" not in rw.sql
    with psycopg.connect(dsn) as c:
        assert c.execute(TRUNC).fetchone() == c.execute(rw.sql).fetchone()
    assert rw.before_ms > 0 and rw.after_ms > 0 and rw.measured_speedup > 1.0, rw
    # stale statistics: ANALYZE, with the reason
    st = next(r for r in _recs(tasks["stale"]) if r.type == "statistics")
    assert st.sql == 'ANALYZE "public"."Stale";' and "never been analysed" in st.rationale
    # the sort that spills: work_mem tried as SET LOCAL and measured
    setting = next(r for r in _recs(tasks["spill"]) if r.type == "setting")
    assert "work_mem" in setting.sql and setting.before_ms and setting.after_ms
    # the DELETE was never executed: every row is still there; its findings say so
    with psycopg.connect(dsn) as c:
        assert c.execute('SELECT count(*) FROM "Orders" WHERE customer = 7').fetchone()[0] == 12
    d = api.get_tuning_task(tasks["delete"])
    assert d.statements[0]["findings"]["executed"] is False
    assert "DELETE" in d.statements[0]["findings"]["why_not_executed"]
    # accepting the index: through the action policy (report_only by default: journaled only)
    acc = api.accept_recommendation(idx[0].rec_id)
    assert acc.outcome == "reported" and acc.action_id
    entry = api.get_action(acc.action_id)
    assert "CREATE INDEX CONCURRENTLY" in entry.sql and '"Orders"' in entry.sql
    with psycopg.connect(dsn) as c:  # nothing ran
        assert not c.execute(
            "SELECT 1 FROM pg_indexes WHERE tablename = 'Orders' AND indexdef LIKE '%%customer%%'"
        ).fetchone()
    # a setting becomes a profile; enable/disable; export
    prof = api.accept_recommendation(setting.rec_id)
    assert prof.outcome == "profile"
    p = api.list_sql_profiles("tune")[0]
    assert p.settings["work_mem"].endswith("MB") and p.measured_speedup == setting.measured_speedup
    assert "SET LOCAL work_mem" in api.export_sql_profile(p.profile_id)
    assert "every statement" in api.export_sql_profile(p.profile_id, "alter_database")
    assert not api.set_sql_profile_enabled(p.profile_id, False).enabled
    assert "[DISABLED]" in api.export_sql_profile(p.profile_id)
    with pytest.raises(NotSupported):
        api.export_sql_profile(p.profile_id, "hints")  # no pg_hint_plan here: said
    api.drop_sql_profile(p.profile_id)
    assert api.list_sql_profiles("tune") == []
    listed = {t.task_id for t in api.list_tuning_tasks("tune")}
    assert set(tasks.values()) <= listed
    api.delete_tuning_task(tasks["delete"])
    assert tasks["delete"] not in {t.task_id for t in api.list_tuning_tasks("tune")}


def test_bad_sql_gets_the_parser_message(repo, target_db):
    api.add_target("tune2", target_db)
    with pytest.raises(InvalidInput, match="syntax error"):
        api.create_tuning_task("tune2", "SELEC * FROM x")
    with pytest.raises(InvalidInput, match="exactly one"):
        api.create_tuning_task("tune2")
    assert api.list_tuning_tasks("tune2") == []


@pytest.mark.slow
def test_cli_tune_create_json_and_bad_sql(repo, target_db):
    import json

    from tests.helpers import run_cli

    api.add_target("tunecli", target_db)
    ok = run_cli("sql", "tune", "create", "SELECT 1 AS one", "--target", "tunecli", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["task_id"] > 0
    bad = run_cli("sql", "tune", "create", "SELECT FROM WHERE", "--target", "tunecli")
    assert bad.returncode != 0 and "syntax error" in (bad.stdout + bad.stderr)
    assert "Traceback" not in bad.stderr


def test_index_columns_equalities_then_range_or_order_by():
    from ops_core.analysis.sqltune import indexcols

    f = "((category = $1) AND (price < $2))"
    assert indexcols.index_columns(f, "SELECT 1") == ["category", "price"]
    rng = "((created_at >= '2024-03-01'::timestamptz) AND (created_at < $2))"
    assert indexcols.index_columns(rng, "SELECT 1") == ["created_at"]
    top = "SELECT id, at FROM events WHERE account = $1 ORDER BY at DESC LIMIT $2"
    assert indexcols.index_columns("(account = $1)", top) == ["account", "at"]
    mixed = "SELECT id FROM events WHERE account = $1 ORDER BY at DESC, id DESC LIMIT 5"
    assert indexcols.index_columns("(account = $1)", mixed) == ["account", "at", "id"]
    both = "SELECT id FROM events WHERE account = $1 ORDER BY at DESC, id ASC LIMIT 5"
    assert indexcols.index_columns("(account = $1)", both) == ["account"]  # mixed directions
    assert indexcols.limit_params(top) == {2: "10"}
    assert indexcols.index_columns("(lower(email) = $1)", "SELECT 1") == []


def test_an_index_led_by_a_wider_one_of_the_task_is_marked_covered():
    from ops_core.api.sqltune import TuningRecommendation, _mark_covered

    def rec(i, cols, table="t"):
        ddl = f'CREATE INDEX CONCURRENTLY "i{i}" ON "public"."{table}" ({cols});'
        return TuningRecommendation(i, 1, i, "index", ddl, "r", "hypopg", None, None, None, None,
                                    None, None, {}, None, None)  # fmt: skip

    recs = [rec(1, '"x"'), rec(2, '"x", "y"'), rec(3, '"x"', "u"), rec(4, '"x", "y"')]
    _mark_covered(recs)
    assert recs[0].evidence["covered_by"] == 2 and "covered by recommendation 2" in recs[0].why_not
    assert "covered_by" not in recs[1].evidence  # the widest, first of its kind: built
    assert "covered_by" not in recs[2].evidence  # another table
    assert recs[3].evidence["covered_by"] == 2  # the same index again


def test_plan_alternatives_are_chosen_from_what_the_plan_shows(target_db):
    """Settings tried as SET LOCAL follow evidence in the actual plan: a scan that discards
    almost all it reads tries random_page_cost, a misestimated hash build side tries the other
    join methods, a merge join over a disk sort tries without it; a plain plan tries nothing."""
    from ops_core.analysis.sqltune.advisor import _settings_to_try

    with psycopg.connect(target_db, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS alt_scan; CREATE TABLE alt_scan AS "
                  "SELECT g AS id, g % 1000 AS v FROM generate_series(1, 20000) g; "
                  "ANALYZE alt_scan")  # fmt: skip
        doc = c.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM alt_scan WHERE v = 7"
        ).fetchone()[0][0]
        small = c.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM alt_scan WHERE id < 100000"
        ).fetchone()[0][0]
        c.execute("DROP TABLE alt_scan")
    tried = [s for s, _ in _settings_to_try(doc)]
    assert {"random_page_cost": "1.1"} in tried
    assert _settings_to_try(small) == []  # keeps every row it reads: nothing to try

    hash_off = {"Plan": {"Node Type": "Hash Join", "Plans": [
        {"Node Type": "Seq Scan", "Actual Rows": 10, "Plan Rows": 10},
        {"Node Type": "Hash", "Plan Rows": 50, "Actual Rows": 90000, "Actual Loops": 1},
    ]}}  # fmt: skip
    assert [s for s, _ in _settings_to_try(hash_off)] == [{"enable_hashjoin": "off"}]
    merge = {"Plan": {"Node Type": "Merge Join", "Plans": [
        {"Node Type": "Sort", "Sort Space Type": "Disk", "Sort Space Used": 9000},
        {"Node Type": "Index Scan"},
    ]}}  # fmt: skip
    tried = [s for s, _ in _settings_to_try(merge)]
    assert {"enable_mergejoin": "off"} in tried and any("work_mem" in s for s in tried)


@pytest.mark.parametrize(
    ("where", "column"),
    [
        ("lower(email) = lower($1)", "email"),  # the value side is a function of a parameter
        ('lower($1) = lower("Email")', "Email"),  # either way round, mixed case kept
        ("id::text = $1::text", "id"),
        ("date(ts) = current_date", "ts"),
        ("id + 1 = 5", "id"),
    ],
)
def test_structure_names_a_wrapped_column_whatever_the_value_side_is(where, column):
    from ops_core.analysis.sqltune.structure import check

    found, _ = check(f"SELECT * FROM u WHERE {where}")
    assert [(f.kind, f.column) for f in found] == [("non_sargable", column)]


@pytest.mark.parametrize(
    "where",
    [
        "upper(a) = upper(b)",  # two columns: a join condition, not a lookup by a value
        "email = lower($1)",  # the column itself is compared: an index on it serves
        "ts > now() - interval '1 day'",
    ],
)
def test_structure_does_not_flag_what_an_index_on_the_column_serves(where):
    from ops_core.analysis.sqltune.structure import check

    assert check(f"SELECT * FROM u WHERE {where}")[0] == []


def test_structure_names_pattern_searches_no_btree_serves():
    from ops_core.analysis.sqltune.structure import check

    found, _ = check("""SELECT * FROM shop."Books" WHERE "Title" ILIKE '%war%'""")
    assert [(f.kind, f.column) for f in found] == [("pattern_search", "Title")]
    assert 'CREATE INDEX CONCURRENTLY ON shop."Books" USING gin ("Title" gin_trgm_ops)' in (
        found[0].message
    )
    assert check("SELECT * FROM b WHERE title LIKE '%peace'")[0][0].kind == "pattern_search"
    # a prefix (a B-tree with text_pattern_ops serves it), NOT LIKE, an unknown pattern: nothing
    for where in ("title LIKE 'war%'", "title NOT LIKE '%a%'", "title LIKE $1"):
        assert check(f"SELECT * FROM b WHERE {where}")[0] == [], where
