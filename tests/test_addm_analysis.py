"""The pure ADDM analysis on frames shaped like the repository's (no server): threshold,
ties, snapshot-only basis, connection risk."""

from __future__ import annotations

import pandas as pd

from ops_core.analysis.addm import AddmInput, analyze
from ops_core.repository.ash_read import SAMPLE_COLUMNS


def _input(stmts: list[dict], **kw) -> AddmInput:
    base = {"datname": "shop", "rows": 0, "shared_blks_hit": 100, "shared_blks_read": 0,
            "temp_blks_written": 0, "wal_bytes": 0}  # fmt: skip
    tables = pd.DataFrame(
        [{"datname": "shop", "relid": 1, "schemaname": "demo", "relname": "orders",
          "seq_scan": 100, "seq_tup_read": 5_000_000, "n_live_tup": 50_000, "n_dead_tup": 0,
          "n_mod_since_analyze": 0, "vacuum_count": 0, "autovacuum_count": 0,
          "analyze_count": 0, "autoanalyze_count": 0, "last_analyze": None,
          "last_autoanalyze": None, "table_bytes": 5e6}]
    )  # fmt: skip
    return AddmInput(
        elapsed_s=60,
        samples=kw.pop("samples", pd.DataFrame(columns=SAMPLE_COLUMNS)),
        statements=pd.DataFrame([{**base, **s} for s in stmts]),
        tables=tables,
        tables_begin=tables,
        databases=kw.pop("databases", pd.DataFrame([{"datname": "shop", "numbackends": 5}])),
        cluster={},
        settings=kw.pop("settings", {"max_connections": 100, "work_mem": 4096}),
        indexes={"demo.orders": [["id"]]},
        catalog_database="shop",
        **kw,
    )


LOOKUP = "SELECT id FROM demo.orders WHERE reference = $1"
SORT = "SELECT * FROM demo.orders ORDER BY total"
SMALL = "SELECT 1"


def test_tie_threshold_and_snapshot_basis():
    inp = _input(
        [
            {"queryid": 1, "query": LOOKUP, "calls": 100, "rows": 100, "total_exec_time": 4000},
            {
                "queryid": 2,
                "query": SORT,
                "calls": 10,
                "rows": 500_000,
                "total_exec_time": 4000,
                "temp_blks_written": 10_000,
            },
            {"queryid": 3, "query": SMALL, "calls": 10, "total_exec_time": 200},
        ],  # fmt: skip
        min_impact_pct=5,
    )
    res = analyze(inp)
    assert res.db_time_source == "pg_stat_statements" and res.db_time_s == 8.2
    assert any("ADDM needs ASH" in n for n in res.notes)
    types = [f.type for f in res.findings]
    # equal impact: the root-cause order decides, and the tie is explained in both
    assert types[:2] == ["missing_index", "temp_spill"]
    assert all("tie" in f.evidence for f in res.findings[:2])
    assert all(f.basis == "snapshot" for f in res.findings)
    # statement 3 (2.4 %) is below the threshold: no finding names it
    assert all(s["queryid"] != 3 for f in res.findings for s in f.statements)
    spill = res.findings[1]
    assert spill.evidence["per_statement"][0]["temp_per_call"] == "7.8 MB"
    assert "SET work_mem = '16MB'" in spill.recommendations[0].action


def test_nothing_significant_and_connection_risk():
    quiet = _input([{"queryid": 3, "query": SMALL, "calls": 10, "total_exec_time": 200}])
    res = analyze(quiet)
    # 0.2 s of DB time in 60 s: no "Top SQL used 100 % of DB time" after "nothing significant"
    assert [f.type for f in res.findings] == ["nothing_significant"]
    full = _input(
        [{"queryid": 3, "query": SMALL, "calls": 10, "total_exec_time": 200}],
        databases=pd.DataFrame(
            [{"datname": "shop", "numbackends": 85}, {"datname": None, "numbackends": 2}]
        ),
    )
    top = analyze(full).findings[0]
    assert top.type == "connection_saturation" and top.risk_pct == 87.0
    assert top.objects == ["database shop"]


def test_cause_nests_its_symptom_and_ranks_by_what_it_explains():
    from ops_core.analysis.addm import Finding, Recommendation, nest

    spill = Finding("temp_spill", "spill", 3.2, 32.0)
    cpu = Finding("cpu_bound_sql", "cpu", 2.0, 20.0, objects=["public.t"])
    idx = Finding(
        "missing_index", "idx", 1.5, 15.0, objects=["public.t", "public.t.id"],
        recommendations=[Recommendation("sql", 'CREATE INDEX CONCURRENTLY ON public.t (id);', "")],
    )  # fmt: skip
    out = nest([spill, cpu, idx])
    # the missing index explains its own 15 % and the CPU it causes (20 %): 35 % > 32 %
    assert [f.type for f in out] == ["missing_index", "cpu_bound_sql", "temp_spill"]
    assert out[1].evidence["_cause"] is idx and "_cause" not in out[2].evidence
    d = idx.as_dict()
    assert d["recommendations"][0]["sql"].startswith("CREATE INDEX") and d["cause"] is None


def test_missing_index_claims_only_the_scans_own_time():
    """A statement that sleeps (pg_sleep: a Timeout wait) or waits on locks beside its seq scan
    keeps those waits with an index: the finding claims the CPU, I/O and buffer-LWLock time
    ASH sampled, not the statement's whole DB time (a pg_sleep lookup once claimed 97.5 %)."""
    from types import SimpleNamespace

    from ops_core.analysis.addm.indexbase import scan_time_s

    sleepy = SimpleNamespace(
        db_time_s=10.0, ash_s=10.0, ash_cpu_s=0.2, ash_io_s=0.05, ash_lwlock_s=0.05
    )
    assert abs(scan_time_s(sleepy) - 0.3) < 1e-9
    # a parallel seq scan: the leader's IPC waits on its workers go away with the scan
    parallel = SimpleNamespace(
        db_time_s=6.0, ash_s=6.0, ash_cpu_s=3.5, ash_io_s=0.5, ash_lwlock_s=0.0, ash_ipc_s=2.0
    )
    assert scan_time_s(parallel) == 6.0
    # snapshot basis (no ASH): the execution time is all there is to claim
    assert scan_time_s(SimpleNamespace(db_time_s=4.0, ash_s=0.0)) == 4.0


def test_an_index_dropped_for_part_of_the_range_is_named_despite_the_indexed_calls():
    """The lookup's index was dropped for part of the range and is back now (a new index: its
    scans start as a baseline, so the range counts none): 1,800 index lookups of ~4 pages
    dilute 200 scans of the whole table to ~65 pages per call, under the 20 % of the table's
    610 pages a scan is judged by. The unindexed calls (bounded by the table's sequential scans)
    read the whole table each: named. The same statement always served by the index, the table
    scanned as often by others: nothing."""

    def run(blocks: int):
        inp = _input(
            [{"queryid": 1, "query": LOOKUP, "calls": 2000, "rows": 2000,
              "shared_blks_hit": blocks, "total_exec_time": 20_000}],
            min_impact_pct=5,
        )  # fmt: skip
        inp.tables = inp.tables.assign(seq_scan=200, seq_tup_read=200 * 50_000)
        inp.indexes = {"demo.orders": [["id"], ["reference"]]}
        inp.index_catalog = {
            "demo.orders": [
                {"name": "demo.orders_pkey", "oid": 11, "columns": ["id"]},
                {"name": "demo.orders_reference_idx", "oid": 12, "columns": ["reference"]},
            ]
        }
        return [f for f in analyze(inp).findings if f.type == "missing_index"]

    [f] = run(1800 * 4 + 200 * 610)
    assert f.objects[:2] == ["demo.orders", "demo.orders.reference"], f.title
    assert "exists now" in f.title
    ev = f.evidence["per_statement"][0]
    assert ev["blocks_per_call"] < 0.2 * 610 <= ev["blocks_per_unindexed_call"]
    assert ev["unindexed_calls"] == 200
    assert "up to 200 of the statement's 2,000 calls" in f.recommendations[0].rationale
    assert run(2000 * 4) == []  # every call an index lookup


def _samples(rows: list[dict], seconds: int = 60) -> pd.DataFrame:
    """ASH samples (1 s apart) of foreground sessions: each dict gives pid, wait_class, event,
    query_id, query and how many seconds it was seen so."""
    t0 = pd.Timestamp("2026-12-06 10:00:00", tz="UTC")
    out = []
    for r in rows:
        for i in range(r.pop("n")):
            out.append(
                {c: None for c in SAMPLE_COLUMNS}
                | {"sample_time": t0 + pd.Timedelta(seconds=i % seconds), "weight_s": 1.0,
                   "backend_type": "client backend", "state": "active", "db_time": True,
                   "datname": "shop", "usename": "app", "application_name": "shop-api",
                   "wait_event_type": None if r["wait_class"] == "CPU" else r["wait_class"],
                   "wait_event": None if r["wait_class"] == "CPU" else r["event"]}
                | r
            )  # fmt: skip
    return pd.DataFrame(out, columns=SAMPLE_COLUMNS)


SAVEPOINTS = "UPDATE demo.orders SET total = total + $1 WHERE id = $2"
REPORT = "SELECT count(*) FROM demo.orders WHERE total > $1"


def test_unexplained_wait_event_gets_a_finding_of_its_own():
    """A wait no specific finding models (subtransaction SLRU from overflowed savepoints) is
    named with its meaning, statements and sessions, instead of 'nothing significant'."""
    stmts = [
        {"queryid": 11, "query": SAVEPOINTS, "calls": 500, "rows": 500, "total_exec_time": 20000},
        {"queryid": 12, "query": REPORT, "calls": 100, "rows": 100, "total_exec_time": 9000},
    ]
    samples = _samples(
        [
            {"pid": 101, "wait_class": "LWLock", "event": "SubtransSLRU", "query_id": 12,
             "query": REPORT, "n": 30},
            {"pid": 102, "wait_class": "LWLock", "event": "SubtransSLRU", "query_id": 12,
             "query": REPORT, "n": 20},
            {"pid": 103, "wait_class": "CPU", "event": "CPU", "query_id": 11,
             "query": SAVEPOINTS, "n": 40},
            # a parallel query's own coordination and the application's sleep are no cause
            {"pid": 104, "wait_class": "IPC", "event": "ExecuteGather", "query_id": 12,
             "query": REPORT, "n": 20},
            {"pid": 105, "wait_class": "Timeout", "event": "PgSleep", "query_id": None,
             "query": "SELECT pg_sleep(1)", "n": 20},
        ]
    )  # fmt: skip
    res = analyze(_input(stmts, samples=samples, cpu_count=4, min_impact_pct=5))
    top = res.findings[0]
    assert top.type == "wait_event", [f.title for f in res.findings]
    assert top.evidence["event"] == "SubtransSLRU" and top.evidence["known_event"]
    assert top.impact_db_time_s == 50.0 and top.impact_pct == round(100 * 50 / 130, 2)
    assert "SubtransSLRU (subtransaction SLRU)" in top.title and "demo.orders" in top.title
    assert "SAVEPOINT" in top.recommendations[0].action
    assert top.statements[0]["queryid"] == 12 and top.sessions[:2] == [101, 102]
    events = {f.evidence.get("event") for f in res.findings if f.type == "wait_event"}
    assert events == {"SubtransSLRU"}  # not ExecuteGather, not PgSleep


def test_wait_event_is_not_counted_twice_nor_below_the_bar():
    """Lock waits are the lock findings'; an unknown event is named plainly; a few samples
    (chance) or a small share make no finding; WAL LWLocks are the commit/WAL findings'."""
    stmts = [{"queryid": 12, "query": REPORT, "calls": 100, "rows": 100, "total_exec_time": 9000}]
    samples = _samples(
        [
            {"pid": 101, "wait_class": "Lock", "event": "transactionid", "query_id": 12,
             "query": REPORT, "n": 40},
            {"pid": 102, "wait_class": "LWLock", "event": "SomeNewLWLock", "query_id": 12,
             "query": REPORT, "n": 30},
            {"pid": 103, "wait_class": "BufferPin", "event": "BufferPin", "query_id": 12,
             "query": REPORT, "n": 6},  # under 8 samples: could be chance
            # WAL flush waits are the commit-wait finding's to judge (under its 5 ms bar here)
            {"pid": 105, "wait_class": "LWLock", "event": "WALWrite", "query_id": None,
             "query": "COMMIT", "n": 20},
            {"pid": 104, "wait_class": "CPU", "event": "CPU", "query_id": 12,
             "query": REPORT, "n": 60},
        ]
    )  # fmt: skip
    dbs = pd.DataFrame(
        [
            {"datname": "shop", "numbackends": 5, "deadlocks": 3},
            {"datname": "other", "numbackends": 1, "deadlocks": 5},  # not these waiters'
        ]
    )
    res = analyze(_input(stmts, samples=samples, cpu_count=8, min_impact_pct=5, databases=dbs))
    waits = [f for f in res.findings if f.type == "wait_event"]
    assert [f.evidence["event"] for f in waits] == ["SomeNewLWLock"], [f.title for f in waits]
    assert not waits[0].evidence["known_event"] and "SomeNewLWLock" in waits[0].title
    # the range's deadlocks (pg_stat_database) are named with the lock waits
    [lock] = [f for f in res.findings if f.type == "lock_contention"]
    assert lock.evidence["deadlocks"] == 3 and "3 deadlock(s)" in lock.title
    assert "consistent order" in lock.recommendations[0].action


def test_bloat_with_autovacuum_disabled_names_it():
    """Dead rows growing with nothing holding them back are autovacuum's ordinary work -
    unless autovacuum is disabled on the table (or server-wide) and no vacuum ran."""
    stmts = [{"queryid": 12, "query": REPORT, "calls": 100, "rows": 100, "total_exec_time": 9000}]
    samples = _samples(
        [{"pid": 104, "wait_class": "CPU", "event": "CPU", "query_id": 12, "query": REPORT,
          "n": 60}]
    )  # fmt: skip

    def run(options, settings=None):
        inp = _input(stmts, samples=samples, cpu_count=8, min_impact_pct=5,
                     table_catalog={"demo.orders": {"options": options, "reltuples": 50_000}},
                     **({"settings": settings} if settings else {}))  # fmt: skip
        begin = inp.tables.assign(n_dead_tup=1_000)
        inp.tables_begin = begin
        inp.tables = inp.tables.assign(n_dead_tup=60_000)
        return [f for f in analyze(inp).findings if f.type == "vacuum_blocked"]

    assert run([]) == []  # autovacuum on: its next round cleans them
    [f] = run(["autovacuum_enabled=false", "fillfactor=90"])
    assert "autovacuum disabled on the table" in f.title
    assert f.recommendations[0].action == "ALTER TABLE demo.orders RESET (autovacuum_enabled);"
    assert f.evidence["tables"][0]["autovacuum"] == "disabled on the table"
    [f] = run([], {"max_connections": 100, "autovacuum": "off"})
    assert "disabled server-wide" in f.title and "autovacuum = on" in f.recommendations[0].action


FK_DELETE = 'DELETE FROM "Orders" WHERE id = $1'


def _fk_input(child_seq_scans: int, child_indexes: list[list[str]], query: str = FK_DELETE,
              on_update: str | None = "NO ACTION") -> AddmInput:  # fmt: skip
    """A DELETE by primary key on public."Orders", referenced by public."order_Lines"
    ("OrderId") (200,000 rows): the deletes removed 400 rows (or ``query``, an UPDATE, changed
    400 rows)."""
    inp = _input(
        [{"queryid": 21, "query": query, "calls": 400, "rows": 400,
          "total_exec_time": 30_000}]
    )  # fmt: skip
    child = {"datname": "shop", "relid": 2, "schemaname": "public", "relname": "order_Lines",
             "seq_scan": child_seq_scans, "seq_tup_read": child_seq_scans * 200_000,
             "n_live_tup": 200_000, "n_dead_tup": 0, "n_mod_since_analyze": 0,
             "vacuum_count": 0, "autovacuum_count": 0, "analyze_count": 0,
             "autoanalyze_count": 0, "last_analyze": None, "last_autoanalyze": None,
             "table_bytes": 1e7}  # fmt: skip
    inp.tables = pd.concat([inp.tables, pd.DataFrame([child])], ignore_index=True)
    inp.indexes |= {"public.Orders": [["id"]], "public.order_Lines": child_indexes}
    inp.table_catalog = {
        "public.Orders": {"reltuples": 100_000, "relpages": 600, "referenced_by": [
            {"table": "public.order_Lines", "constraint": "order_Lines_OrderId_fkey",
             "columns": ["OrderId"], "ref_columns": ["id"], "on_delete": "NO ACTION"}]},
        "public.order_Lines": {"reltuples": 200_000, "relpages": 1200},
    }  # fmt: skip
    if on_update is not None:  # None: a catalog kept before on_update was read
        inp.table_catalog["public.Orders"]["referenced_by"][0]["on_update"] = on_update
    return inp


def test_update_of_a_referenced_key_checks_the_referencing_table_too():
    """An UPDATE that changes the referenced key (renumbering orders) checks the referencing
    table for every row changed, as a DELETE does; an UPDATE of another column checks
    nothing (PostgreSQL skips it), whatever the referencing table's scans."""
    renumber = 'UPDATE "Orders" SET id = id + 1000000 WHERE id = $1'
    top = analyze(_fk_input(400, [["id"]], renumber, "CASCADE")).findings[0]
    assert top.type == "missing_index", top.title
    assert top.objects == ["public.order_Lines", "public.order_Lines.OrderId"]
    assert "updated in public.Orders" in top.title and "order_Lines_OrderId_fkey" in top.title
    why = top.recommendations[0].rationale
    assert "ON UPDATE CASCADE" in why and "cascades to" in why
    ev = top.evidence["per_statement"][0]
    assert ev["rows_updated"] == 400 and "rows_deleted" not in ev
    assert ev["on_update"] == "CASCADE"
    assert top.recommendations[0].action == (
        'CREATE INDEX CONCURRENTLY ON public."order_Lines" ("OrderId");'
    )
    older = analyze(_fk_input(400, [["id"]], renumber, None)).findings[0]
    why = older.recommendations[0].rationale
    assert "ON UPDATE NO ACTION" in why and " checks " in why
    # another column: no check, so no foreign-key finding
    status = 'UPDATE "Orders" SET status = $2 WHERE id = $1'
    other = analyze(_fk_input(400, [["id"]], status))
    assert not any("order_Lines" in " ".join(f.objects) for f in other.findings)


def test_delete_checking_an_unindexed_foreign_key_names_the_referencing_table():
    """The DELETE's plan is an index lookup on its own table; its time is the foreign-key
    checks, each a scan of the referencing table: the index to create is there, on the
    referencing (mixed-case, quoted) column."""
    top = analyze(_fk_input(400, [["id"]])).findings[0]
    assert top.type == "missing_index", top.title
    assert top.objects == ["public.order_Lines", "public.order_Lines.OrderId"]
    assert "order_Lines_OrderId_fkey" in top.title and "public.Orders" in top.title
    assert top.recommendations[0].action == (
        'CREATE INDEX CONCURRENTLY ON public."order_Lines" ("OrderId");'
    )
    ev = top.evidence["per_statement"][0]
    assert ev["rows_deleted"] == 400 and ev["table_seq_scans"] == 400
    # an index leading with the column: the checks are lookups, nothing to create
    indexed = analyze(_fk_input(400, [["id"], ["OrderId", "qty"]]))
    assert all(f.type != "missing_index" for f in indexed.findings)
    # the referencing table was hardly scanned in the range: the DELETEs' time is elsewhere
    other = analyze(_fk_input(20, [["id"]]))
    assert all(f.type != "missing_index" for f in other.findings)


LOWER_LOOKUP = "SELECT id FROM demo.orders o WHERE lower(o.reference) = lower($1)"


def test_expression_predicates_are_shaped_for_an_index_on_the_expression():
    from ops_core.analysis.addm.sqlshape import canonical_expr, leading_index_expr, shape

    assert shape(LOWER_LOOKUP).eq_exprs == (
        ("demo.orders", "reference", "lower(reference)", "function"),
    )
    assert shape('SELECT * FROM "Accounts" WHERE id::text = $1').eq_exprs == (
        ("public.Accounts", "id", "CAST(id AS text)", "cast"),
    )
    assert shape("SELECT * FROM t WHERE x = $1").eq_exprs == ()
    # an index as pg_get_expr prints it (implicit casts written out) is the same expression
    assert leading_index_expr("lower((reference)::text), upper(x)") == canonical_expr(
        "lower(reference)", casts=False
    )


def _lookup_plan(query: str) -> dict:
    return {
        "Node Type": "Seq Scan",
        "Relation Name": "orders",
        "Schema": "demo",
        "Filter": "(lower(reference) = lower($1))",
        "Plan Rows": 5,
        "Plan Width": 40,
    }


def test_lookup_by_a_function_of_an_indexed_column_wants_an_expression_index():
    stmts = [{"queryid": 31, "query": LOWER_LOOKUP, "calls": 1000, "rows": 1000,
              "total_exec_time": 20_000}]  # fmt: skip
    plain = [{"name": "demo.orders_reference_idx", "oid": 7, "columns": ["reference"]}]
    inp = _input(stmts, explain=_lookup_plan)
    inp.index_catalog = {"demo.orders": plain}
    inp.indexes = {"demo.orders": [["reference"]]}
    top = analyze(inp).findings[0]
    assert top.type == "missing_index" and top.objects == ["demo.orders", "demo.orders.reference"]
    assert "demo.orders_reference_idx on reference cannot serve them" in top.title
    assert top.recommendations[0].action == (
        "CREATE INDEX CONCURRENTLY ON demo.orders ((lower(reference)));"
    )
    # the expression index exists (pg_get_expr's spelling, casts included): nothing to create
    inp2 = _input(stmts, explain=_lookup_plan)
    inp2.index_catalog = {"demo.orders": [
        *plain, {"name": "demo.orders_lower_idx", "oid": 8, "columns": [],
                 "exprs": "lower((reference)::text)"}]}  # fmt: skip
    inp2.indexes = {"demo.orders": [["reference"], []]}
    assert all(f.type != "missing_index" for f in analyze(inp2).findings)


def test_a_waiting_ddl_that_queues_the_others_is_named():
    """Reads queue behind an ALTER TABLE's lock request while the ALTER waits for a long
    report: the lock finding's first action cancels the ALTER, the report stays the root."""
    from ops_core.analysis.addm.sqlshape import strong_lock_command

    assert strong_lock_command("ALTER TABLE t ADD COLUMN x int") == "ALTER TABLE"
    assert strong_lock_command("VACUUM FULL t") == "VACUUM FULL"
    assert strong_lock_command("CREATE INDEX CONCURRENTLY ON t (a)") is None
    assert strong_lock_command("VACUUM t") is None
    report = "SELECT count(*), pg_sleep($1) FROM demo.orders"
    alter = "ALTER TABLE demo.orders ADD COLUMN note text"
    read = "SELECT total FROM demo.orders WHERE id = $1"
    rows = [
        {"pid": 200, "wait_class": "Timeout", "event": "PgSleep", "query_id": 1, "query": report,
         "n": 40},
        {"pid": 201, "wait_class": "Lock", "event": "relation", "query_id": 2, "query": alter,
         "blocking_pids": [200], "n": 40},
        {"pid": 202, "wait_class": "Lock", "event": "relation", "query_id": 3, "query": read,
         "blocking_pids": [201], "n": 40},
        {"pid": 203, "wait_class": "Lock", "event": "relation", "query_id": 3, "query": read,
         "blocking_pids": [201], "n": 40},
    ]  # fmt: skip
    stmts = [{"queryid": 3, "query": read, "calls": 10, "rows": 10, "total_exec_time": 1000}]
    top = analyze(_input(stmts, samples=_samples(rows), cpu_count=4)).findings[0]
    assert top.type == "lock_contention", top.title
    assert top.evidence["root_blockers"][0]["pid"] == 200
    q = top.evidence["queued_ddl"]
    assert (q["pid"], q["command"], q["waiting_for"]) == (201, "ALTER TABLE", [200])
    assert q["queued_behind_s"] == 80.0 and "queued behind ALTER TABLE (pid 201)" in top.title
    assert top.recommendations[0].action == "SELECT pg_cancel_backend(201);"


NEWEST = 'SELECT * FROM demo.orders ORDER BY "createdAt" DESC, id DESC LIMIT $1'


def _newest_plan(query: str) -> dict:
    scan = {"Node Type": "Seq Scan", "Relation Name": "orders", "Schema": "demo",
            "Plan Rows": 50_000, "Plan Width": 40}  # fmt: skip
    sort = {"Node Type": "Sort", "Sort Key": ['"createdAt" DESC', "id DESC"], "Plans": [scan]}
    gather = {"Node Type": "Gather Merge", "Plans": [sort]}
    return {"Node Type": "Limit", "Plan Rows": 5000, "Plans": [gather]}


def test_newest_rows_by_a_sort_of_the_whole_table_want_an_index_on_the_sort_key():
    from ops_core.analysis.addm.indexplans import _sort_keys

    assert _sort_keys(['o."createdAt" DESC', "id"]) == [("createdAt", True), ("id", False)]
    assert _sort_keys(["lower(name)"]) is None
    assert _sort_keys(["a DESC NULLS LAST"]) is None  # an index would need NULLS LAST too
    stmts = [{"queryid": 41, "query": NEWEST, "calls": 500, "rows": 10_000,
              "total_exec_time": 25_000}]  # fmt: skip
    top = analyze(_input(stmts, explain=_newest_plan)).findings[0]
    assert top.type == "missing_index" and top.objects == ["demo.orders", "demo.orders.createdAt"]
    # one direction for every key: a plain index, scanned backwards
    assert top.recommendations[0].action == (
        'CREATE INDEX CONCURRENTLY ON demo.orders ("createdAt", id);'
    )
    assert "ORDER BY createdAt DESC, id DESC LIMIT" in top.title
    # an index leads with the sort column already: something else is wrong, no claim here
    inp = _input(stmts, explain=_newest_plan)
    inp.indexes = {"demo.orders": [["id"], ["createdAt"]]}
    assert all(f.type != "missing_index" for f in analyze(inp).findings)
    # many rows per call (a report reading most of the table): an index would not help
    big = [{**stmts[0], "rows": 500 * 40_000}]
    found = analyze(_input(big, explain=_newest_plan)).findings
    assert all(f.type != "missing_index" for f in found)


JOIN_Q = (
    'SELECT o.id, sum(l.qty) FROM demo.customers o JOIN demo.orders l ON l."OrderRef" = o.id '
    "WHERE o.city = $1 GROUP BY o.id"
)


def _join_plan(other_rows: float, join_rows: float):
    def plan(query: str) -> dict:
        big = {
            "Node Type": "Seq Scan",
            "Relation Name": "orders",
            "Schema": "demo",
            "Alias": "l",
            "Plan Rows": 50_000,
            "Plan Width": 12,
        }
        small = {
            "Node Type": "Index Scan",
            "Relation Name": "customers",
            "Schema": "demo",
            "Alias": "o",
            "Plan Rows": other_rows,
        }
        join = {
            "Node Type": "Hash Join",
            "Hash Cond": '(l."OrderRef" = o.id)',
            "Plan Rows": join_rows,
            "Plans": [big, {"Node Type": "Hash", "Plan Rows": other_rows, "Plans": [small]}],
        }
        return {"Node Type": "HashAggregate", "Plans": [join]}  # fmt: skip

    return plan


def test_join_reading_a_large_table_for_a_few_rows_wants_an_index_on_its_join_column():
    stmts = [{"queryid": 51, "query": JOIN_Q, "calls": 400, "rows": 1200,
              "total_exec_time": 25_000}]  # fmt: skip
    top = analyze(_input(stmts, explain=_join_plan(4, 60))).findings[0]
    assert top.type == "missing_index", top.title
    assert top.objects == ["demo.orders", "demo.orders.OrderRef"]
    assert top.recommendations[0].action == (
        'CREATE INDEX CONCURRENTLY ON demo.orders ("OrderRef");'
    )
    # a join that needs most of the large table (a fact table against a small dimension):
    # an index on the join column would not help, nothing claimed
    fact = analyze(_input(stmts, explain=_join_plan(10, 50_000))).findings
    assert all(f.type != "missing_index" for f in fact)


JIT_Q = "SELECT sum(total * 1.1), avg(total) FROM demo.orders WHERE customer_id = $1"


def test_jit_compilation_that_dominates_a_statement_is_named_with_the_role_and_the_setting():
    stmts = [
        {"queryid": 7, "query": JIT_Q, "calls": 2000, "rows": 2000, "total_exec_time": 9000,
         "jit_time": 7200, "jit_functions": 18000, "username": "App_user"},
        {"queryid": 8, "query": SMALL, "calls": 1000, "total_exec_time": 1000},
    ]  # fmt: skip
    res = analyze(_input(stmts, settings={"max_connections": 100, "jit_above_cost": 10}))
    f = res.findings[0]
    assert f.type == "jit_overhead" and f.statements[0]["queryid"] == 7
    ev = f.evidence["per_statement"][0]
    assert ev["jit_share_pct"] == 80.0 and ev["jit_ms_per_call"] == 3.6
    # the lowered server-wide threshold first, then JIT off for the role in its database
    assert f.recommendations[0].action.startswith("ALTER SYSTEM RESET jit_above_cost;")
    assert f.recommendations[1].action == 'ALTER ROLE "App_user" IN DATABASE shop SET jit = off;'
    assert round(f.impact_db_time_s, 1) == 7.2  # the compile's share of its time, not all of it


def test_jit_that_is_a_small_part_of_long_queries_is_not_a_finding():
    stmts = [
        {"queryid": 7, "query": JIT_Q, "calls": 10, "rows": 10, "total_exec_time": 9000,
         "jit_time": 300, "jit_functions": 90, "username": "app"},
    ]  # fmt: skip
    assert all(f.type != "jit_overhead" for f in analyze(_input(stmts)).findings)
    # a third of a 900 ms analytical statement: JIT may be what makes the rest fast
    stmts[0]["jit_time"] = 3000
    assert all(f.type != "jit_overhead" for f in analyze(_input(stmts)).findings)
    # a third of a 3 ms statement: the compile is the cost
    stmts[0].update(calls=3000, rows=3000)
    assert analyze(_input(stmts)).findings[0].type == "jit_overhead"
    # a repository from before migration 0034 has no JIT columns at all
    old = [{"queryid": 7, "query": JIT_Q, "calls": 10, "rows": 10, "total_exec_time": 9000}]
    assert all(f.type != "jit_overhead" for f in analyze(_input(old)).findings)


SEARCH = 'SELECT id FROM demo.orders WHERE "Note" ILIKE $1'


def _search_plan(query: str) -> dict:
    return {"Node Type": "Seq Scan", "Relation Name": "orders", "Schema": "demo",
            "Filter": '("Note" ~~* $1)', "Plan Rows": 250, "Plan Width": 40}  # fmt: skip


def test_pattern_search_wants_a_trigram_index_unless_one_exists():
    from ops_core.analysis.addm.sqlshape import shape

    assert shape(SEARCH).like_columns == (("demo.orders", "Note", "~~*"),)
    assert shape("SELECT 1 FROM t WHERE x NOT LIKE $1").like_columns == ()
    from ops_core.analysis.addm.sqlshape import predicate_likes

    # a plan's Filter as EXPLAIN VERBOSE writes it: qualified (the statement shape's fallback)
    assert predicate_likes('(("Wk"."Note")::text ~~* $1)') == (("Note", "~~*"),)
    stmts = [{"queryid": 41, "query": SEARCH, "calls": 500, "rows": 600,
              "total_exec_time": 20_000}]  # fmt: skip
    btree = {"name": "demo.orders_Note_idx", "oid": 7, "columns": ["Note"],
             "method": "btree text_ops"}  # fmt: skip
    inp = _input(stmts, explain=_search_plan)
    inp.index_catalog = {"demo.orders": [btree]}
    inp.indexes = {"demo.orders": [["Note"]]}
    top = analyze(inp).findings[0]
    assert top.type == "missing_index" and top.objects == ["demo.orders", "demo.orders.Note"]
    assert "ILIKE" in top.title and "demo.orders_Note_idx cannot serve them" in top.title
    assert [r.action for r in top.recommendations] == [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm;",
        'CREATE INDEX CONCURRENTLY ON demo.orders USING gin ("Note" gin_trgm_ops);',
    ]
    # pg_trgm created: the index alone; a trigram index on the column: no finding
    inp.extensions = {"pg_trgm"}
    assert len(analyze(inp).findings[0].recommendations) == 1
    trgm = {"name": "demo.orders_trgm", "oid": 8, "columns": ["Note"],
            "method": "gin gin_trgm_ops"}  # fmt: skip
    inp.index_catalog = {"demo.orders": [btree, trgm]}
    inp.indexes = {"demo.orders": [["Note"], ["Note"]]}
    assert all(f.type != "missing_index" for f in analyze(inp).findings)


DAY_LOOKUP = 'SELECT id FROM demo.orders WHERE "createdOn" = $1 AND customer_id = $2'


def _day_plan(query: str) -> dict:
    return {"Node Type": "Bitmap Heap Scan", "Relation Name": "orders", "Schema": "demo",
            "Alias": "orders", "Recheck Cond": '(orders."createdOn" = $1)',
            "Filter": "(orders.customer_id = $2)", "Plan Rows": 1, "Plan Width": 8,
            "Plans": [{"Node Type": "Bitmap Index Scan", "Index Name": "orders_createdOn_idx",
                       "Index Cond": '(orders."createdOn" = $1)', "Plan Rows": 822}]}  # fmt: skip


def test_lookups_through_an_unselective_index_want_one_on_the_filtered_column():
    day_idx = {"name": "demo.orders_createdOn_idx", "oid": 9, "columns": ["createdOn"]}
    stmts = [{"queryid": 51, "query": DAY_LOOKUP, "calls": 1000, "rows": 900,
              "shared_blks_hit": 820_000, "total_exec_time": 20_000}]  # fmt: skip
    inp = _input(stmts, explain=_day_plan)
    inp.index_catalog = {"demo.orders": [day_idx]}
    inp.indexes = {"demo.orders": [["createdOn"]]}
    top = analyze(inp).findings[0]
    assert top.type == "missing_index" and "demo.orders.customer_id" in top.objects
    assert top.recommendations[0].action == (
        'CREATE INDEX CONCURRENTLY ON demo.orders (customer_id, "createdOn");'
    )
    assert top.evidence["per_statement"][0]["pages_per_call"] == 820.0
    # few pages per call (the day's rows are few): a fine lookup, no claim from the plan
    stmts[0]["shared_blks_hit"] = 5_000
    inp = _input(stmts, explain=_day_plan)
    inp.index_catalog, inp.indexes = {"demo.orders": [day_idx]}, {"demo.orders": [["createdOn"]]}
    actions = [r.action for f in analyze(inp).findings for r in f.recommendations]
    assert not any('"createdOn")' in a for a in actions)


def test_tables_a_trigger_function_writes():
    from ops_core.analysis.addm.sqlshape import written_tables

    body = """BEGIN
      UPDATE "Counts" SET n = n + 1 WHERE name = TG_TABLE_NAME;
      IF TG_OP = 'INSERT' THEN
        INSERT INTO audit.log (id) VALUES (NEW.id);
      END IF;
      PERFORM 1 FROM other WHERE id = NEW.id;  -- a read: not a write
      RETURN NULL;
    END"""
    assert written_tables(body, "plpgsql") == ("public.Counts", "audit.log")
    assert written_tables("DELETE FROM t WHERE id = $1; SELECT 1", "sql") == ("public.t",)
    assert written_tables("whatever", "c") == () and written_tables("BEGIN oops", "plpgsql") == ()


OR_LOOKUP = "SELECT id FROM demo.orders WHERE email = $1 OR phone = $2"


def _or_plan(query: str) -> dict:
    return {"Node Type": "Seq Scan", "Relation Name": "orders", "Schema": "demo",
            "Filter": "((orders.email = $1) OR (orders.phone = $2))", "Plan Rows": 2,
            "Plan Width": 40}  # fmt: skip


def test_an_or_of_lookups_wants_an_index_on_each_column():
    stmts = [{"queryid": 61, "query": OR_LOOKUP, "calls": 1000, "rows": 1000,
              "total_exec_time": 20_000}]  # fmt: skip
    inp = _input(stmts, explain=_or_plan)
    inp.indexes = {"demo.orders": [["id"]]}
    top = analyze(inp).findings[0]
    assert top.type == "missing_index" and top.objects == [
        "demo.orders", "demo.orders.email", "demo.orders.phone"]  # fmt: skip
    assert [r.action for r in top.recommendations] == [
        "CREATE INDEX CONCURRENTLY ON demo.orders (email);",
        "CREATE INDEX CONCURRENTLY ON demo.orders (phone);",
    ]
    # email indexed already: only phone is missing (an index on email alone serves no call)
    inp = _input(stmts, explain=_or_plan)
    inp.indexes = {"demo.orders": [["id"], ["email"]]}
    top = analyze(inp).findings[0]
    assert [r.action for r in top.recommendations] == [
        "CREATE INDEX CONCURRENTLY ON demo.orders (phone);"
    ]
    assert "email OR phone" in top.title


PAY = 'UPDATE public."Accounts" SET "Balance" = "Balance" - 1 WHERE id = $1'


def _horizon_input(holders, session_xmin_age=None, waiters_blocked_by=None):
    """Dead rows growing on demo.orders (1,000 -> 60,000, autovacuum on) with the end
    snapshot's non-session horizon holders ``holders``; a session holding an old snapshot
    (xmin age ``session_xmin_age``) and two waiters blocked by ``waiters_blocked_by`` when
    given."""
    from datetime import timedelta

    end = pd.Timestamp("2026-12-06 10:01:00", tz="UTC").to_pydatetime()
    stmts = [
        {"queryid": 12, "query": REPORT, "calls": 100, "rows": 100, "total_exec_time": 9000},
        {"queryid": 13, "query": PAY, "calls": 10, "rows": 10, "total_exec_time": 60_000},
    ]
    rows = [{"pid": 104, "wait_class": "CPU", "event": "CPU", "query_id": 12, "query": REPORT,
             "n": 60}]  # fmt: skip
    if session_xmin_age is not None:
        rows.append({"pid": 200, "wait_class": "Client", "event": "ClientRead", "query_id": None,
                     "query": "SELECT 1", "state": "idle in transaction", "db_time": False,
                     "n": 60, "xmin_age": session_xmin_age,
                     "xact_start": pd.Timestamp("2026-12-06 09:50:00", tz="UTC")})  # fmt: skip
    if waiters_blocked_by is not None:
        for pid in (301, 302):
            rows.append({"pid": pid, "wait_class": "Lock", "event": "transactionid",
                         "query_id": 13, "query": PAY, "n": 60,
                         "blocking_pids": [waiters_blocked_by]})  # fmt: skip
    for h in holders:
        h.setdefault("since", (end - timedelta(seconds=h.pop("open_s", 600))).isoformat())
    inp = _input(stmts, samples=_samples(rows), cpu_count=8, min_impact_pct=5,
                 xmin_holders=holders, end_at=end)  # fmt: skip
    inp.tables_begin = inp.tables.assign(n_dead_tup=1_000)
    inp.tables = inp.tables.assign(n_dead_tup=60_000)
    return inp


def _prepared(name="tx:1:node-2", age=5_000, open_s=600, database="shop"):
    return {"kind": "prepared_transaction", "name": name, "database": database,
            "owner": "app", "xmin_age": age, "active": None, "open_s": open_s}  # fmt: skip


def test_vacuum_held_back_by_a_prepared_transaction_a_slot_or_a_standby():
    """Bloat growing with no session holding a snapshot, autovacuum on: before, 'autovacuum's
    ordinary work' (no finding). A prepared transaction, an inactive slot with an xmin or a
    standby's feedback is named as the holder, with what to do about it; the oldest xmin wins
    over a session's younger one; a young prepared transaction or a standby a few transactions
    behind is no holder."""

    def vacuum(inp):
        return [f for f in analyze(inp).findings if f.type == "vacuum_blocked"]

    [f] = vacuum(_horizon_input([_prepared(name="it's:7")]))
    assert "prepared transaction 'it''s:7'" in f.title, f.title
    assert f.evidence["horizon_holder"]["name"] == "it's:7"
    assert f.recommendations[0].action.startswith("ROLLBACK PREPARED 'it''s:7';")
    assert "database shop" in f.recommendations[0].action
    slot = {"kind": "replication_slot", "name": "standby_b", "database": None, "owner": None,
            "since": None, "xmin_age": 40_000, "active": False}  # fmt: skip
    [f] = vacuum(_horizon_input([slot]))
    assert "replication slot 'standby_b' (inactive" in f.title
    assert f.recommendations[0].action == "SELECT pg_drop_replication_slot('standby_b');"
    feedback = {"kind": "standby", "name": "replica1", "database": None, "owner": "repl",
                "xmin_age": 40_000, "active": True}  # fmt: skip
    [f] = vacuum(_horizon_input([feedback]))
    assert "standby 'replica1'" in f.title and "hot_standby_feedback" in f.recommendations[0].action
    # a session with a younger snapshot: the prepared transaction is still the holder
    [f] = vacuum(_horizon_input([_prepared(age=9_000)], session_xmin_age=300))
    assert "prepared transaction" in f.title and f.sessions == []
    # a session older than it: the session
    [f] = vacuum(_horizon_input([_prepared(age=200)], session_xmin_age=9_000))
    assert "held back by session 200" in f.title, f.title
    # nothing plausible: autovacuum's ordinary work
    young = _prepared(open_s=1)
    near = {**feedback, "xmin_age": 12}
    assert vacuum(_horizon_input([young, near])) == []
    assert vacuum(_horizon_input([])) == []


def test_lock_waits_on_pid_0_name_the_prepared_transaction():
    """Waiters whose pg_blocking_pids is {0} wait for a prepared transaction: the lock finding
    names it (the one of the waiters' database) and says to finish it first; without the
    snapshot's list it still says what pid 0 is."""
    inp = _horizon_input(
        [_prepared(name="other-db", database="crm", age=9_999), _prepared()],
        waiters_blocked_by=0,
    )
    [f] = [f for f in analyze(inp).findings if f.type == "lock_contention"]
    assert "prepared transaction 'tx:1:node-2' (database shop" in f.title, f.title
    assert f.recommendations[0].action.startswith("ROLLBACK PREPARED 'tx:1:node-2';")
    assert 0 not in f.sessions
    assert f.evidence["root_blockers"][0]["prepared_transactions"][0]["name"] == "tx:1:node-2"
    inp = _horizon_input([], waiters_blocked_by=0)
    inp.xmin_holders = None  # a snapshot taken before opscore captured them
    [f] = [f for f in analyze(inp).findings if f.type == "lock_contention"]
    assert "prepared transaction (pid 0" in f.title
    assert "pg_prepared_xacts" in f.recommendations[0].action


def test_the_horizon_holder_is_the_idle_writer_not_the_sessions_waiting_for_it():
    """A writer idle in a READ COMMITTED transaction has no snapshot (backend_xmin), only its
    xid; the sessions waiting for its row lock have snapshots. Vacuum waits for the writer's
    xid: it is the holder, not a waiter (whose termination frees nothing)."""
    start = pd.Timestamp("2026-12-06 09:50:00", tz="UTC")
    inp = _horizon_input([])
    rows = [
        {"pid": 200, "wait_class": "Client", "event": "ClientRead", "query_id": None,
         "query": "UPDATE demo.orders SET total = 1 WHERE id = 1", "db_time": False, "n": 60,
         "state": "idle in transaction", "xid_age": 5_000, "xmin_age": None,
         "xact_start": start},
        *({"pid": p, "wait_class": "Lock", "event": "transactionid", "query_id": 13,
           "query": PAY, "n": 60, "xid_age": None, "xmin_age": 4_990, "blocking_pids": [200],
           "xact_start": start + pd.Timedelta(seconds=1)} for p in (301, 302)),
        {"pid": 104, "wait_class": "CPU", "event": "CPU", "query_id": 12, "query": REPORT,
         "n": 60},  # the reads of the bloated table
    ]  # fmt: skip
    inp.samples = _samples([dict(r) for r in rows])
    [f] = [f for f in analyze(inp).findings if f.type == "vacuum_blocked"]
    assert f.sessions == [200] and "held back by session 200" in f.title, f.title
    # a waiter with an older snapshot than any other session is still only the victim
    rows[0]["xid_age"] = None
    inp.samples = _samples([dict(r) for r in rows])
    [f] = [f for f in analyze(inp).findings if f.type == "vacuum_blocked"]
    assert f.sessions in ([301], [302]), f.title  # no one else: named, as before


def test_keyset_rewrite_of_offset_pages():
    """OFFSET pages rewritten to keyset pagination with pglast: the ORDER BY columns compared
    with new parameters after the statement's own, < for a descending order, a row comparison
    for several columns, the WHERE kept; no rewrite for mixed directions, expressions, or a
    shallow literal offset."""
    from ops_core.analysis.addm.pagination import keyset

    assert keyset('SELECT id FROM "T" ORDER BY id LIMIT $1 OFFSET $2') == (
        'SELECT id FROM "T" WHERE id > $3 ORDER BY id LIMIT $1'
    )
    assert keyset(
        'SELECT * FROM s."Ev" WHERE kind = $1 ORDER BY "createdAt" DESC, id DESC '
        "LIMIT 50 OFFSET 100000"
    ) == (
        'SELECT * FROM s."Ev" WHERE kind = $1 AND ("createdAt", id) < ($2, $3) '
        'ORDER BY "createdAt" DESC, id DESC LIMIT 50'
    )
    assert keyset("SELECT id FROM t ORDER BY a, b DESC LIMIT 10 OFFSET $1") is None
    assert keyset("SELECT id FROM t ORDER BY lower(a) LIMIT 10 OFFSET $1") is None
    assert keyset("SELECT id FROM t ORDER BY a LIMIT 10 OFFSET 40") is None
    assert keyset("SELECT id FROM t ORDER BY a LIMIT 10") is None
    assert keyset("SELECT a FROM t UNION SELECT a FROM u ORDER BY a LIMIT 10 OFFSET $1") is None


OFFSET_PAGE = 'SELECT id, "Name" FROM public."Products" ORDER BY id LIMIT $1 OFFSET $2'


def test_deep_offset_pages_are_named_by_what_a_call_touches_for_what_it_returns():
    """A page statement touching ~1,700 buffers per call for 20 rows is deep OFFSET
    pagination (keyset SQL first); the same statement touching a few buffers per row (shallow
    pages) is no finding, nor is an aggregate or a batch of thousands of rows."""

    def run(query, calls, rows, hits):
        stmts = [{"queryid": 31, "query": query, "calls": calls, "rows": rows,
                  "total_exec_time": calls * 16.0, "shared_blks_hit": hits}]  # fmt: skip
        cpu = {"wait_class": "CPU", "event": "CPU", "query_id": 31, "query": query, "n": 60}
        samples = _samples([{"pid": 401 + i, **cpu} for i in range(2)])
        res = analyze(_input(stmts, samples=samples, cpu_count=2, min_impact_pct=5))
        return [f for f in res.findings if f.type == "deep_offset"]

    [f] = run(OFFSET_PAGE, 700, 700 * 20, 700 * 1_734)
    assert f.recommendations[0].action.startswith(
        'SELECT id, "Name" FROM public."Products" WHERE id > $3 ORDER BY id LIMIT $1'
    )
    ev = f.evidence["per_statement"][0]
    assert ev["rows_per_call"] == 20 and ev["buffers_per_call"] == 1734
    assert f.objects == ["public.Products"]
    assert run(OFFSET_PAGE, 700, 700 * 20, 700 * 60) == []  # shallow pages
    assert run(OFFSET_PAGE, 700, 700 * 5_000, 700 * 20_000) == []  # an export, not a page
    agg = 'SELECT count(*) FROM public."Products" GROUP BY "Name" ORDER BY 1 LIMIT 5 OFFSET $1'
    assert run(agg, 700, 700 * 5, 700 * 5_000) == []


def test_connection_churn_is_ranked_by_the_measured_session_start_up():
    """3,000 sessions opened in 60 s in database shop, a session measured at 3 ms to start:
    9 s of server time against 4 s of DB time in statements - the top finding, with the pool
    advice and the application most short-lived sampled sessions came from. A few sessions a
    second, or a rate without a measured cost, is no finding above the threshold."""

    def run(sessions, setup_s):
        dbs = pd.DataFrame([{"datname": "shop", "numbackends": 4, "sessions": sessions}])
        rows = [
            {
                "pid": 500 + i,
                "wait_class": "CPU",
                "event": "CPU",
                "query_id": 12,
                "query": REPORT,
                "n": 1,
                "application_name": "billing",
            }
            for i in range(4)
        ]
        rows.append(
            {
                "pid": 499,
                "wait_class": "CPU",
                "event": "CPU",
                "query_id": 12,
                "query": REPORT,
                "n": 60,
            }
        )  # a long-lived session of the shop
        stmts = [{"queryid": 12, "query": REPORT, "calls": 3000, "rows": 3000,
                  "total_exec_time": 4000}]  # fmt: skip
        return analyze(_input(stmts, samples=_samples(rows), databases=dbs, cpu_count=8,
                              session_setup_s=setup_s))  # fmt: skip

    res = run(3000, 0.003)
    top = res.findings[0]
    assert top.type == "connection_churn", [f.title for f in res.findings]
    assert abs(top.impact_db_time_s - 9.0) < 1e-9
    assert top.evidence["per_second"] == 50 and top.evidence["session_setup_ms"] == 3.0
    assert top.evidence["source"]["application"] == "billing"
    assert "PgBouncer" in top.recommendations[0].action
    assert all(f.type != "connection_churn" for f in run(300, 0.003).findings)  # 5 a second
    unmeasured = run(3000, None)
    assert all(f.type != "connection_churn" for f in unmeasured.findings)
    assert any("connection_churn" in n for n in unmeasured.notes), unmeasured.notes
