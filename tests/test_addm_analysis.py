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
        samples=pd.DataFrame(columns=SAMPLE_COLUMNS),
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

    from ops_core.analysis.addm.indexfind import scan_time_s

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
