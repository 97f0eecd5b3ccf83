"""ADDM: diagnose a snapshot range of a target (DB time from ASH, findings ranked by impact),
store the analysis, read it back."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .. import repository
from ..analysis.addm import AddmInput, Finding, analyze, churn
from ..collectors import live
from ..collectors.addm_catalog import ADDM_SETTINGS, Catalog, num, read_catalog
from ..config import get_settings
from ..errors import InvalidInput, NotFound, OpsCoreError
from ..repository import addm as repo_addm
from ..repository import ash_read, report_reads
from ..repository import snapshot_ranges as ranges
from ..repository import snapshot_reads as reads
from ..repository import targets as repo_targets
from ..repository.snapshot_columnar import RangePlan
from ..targets import connection
from .targets import resolve_target, target_dsn

__all__ = [
    "AddmAnalysis",
    "run_addm",
    "addm_for_range",
    "list_addm",
    "get_addm",
    "addm_findings",
    "addm_recommendations",
    "delete_addm",
]


#: how far back ADDM looks for each statement's history (the snapshots before the range)
HISTORY_LOOKBACK_S = 7 * 86400.0


@dataclass
class AddmAnalysis:
    analysis_id: int
    target: str
    begin_snapshot_id: int
    end_snapshot_id: int
    begin_at: datetime
    end_at: datetime
    created_at: datetime
    database: str | None
    db_time_s: float
    db_time_source: str
    ash_db_time_s: float | None
    pgss_time_s: float
    ash_samples: int
    min_impact_pct: float
    breakdown: dict[str, Any]
    notes: list[str]
    top_finding: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def elapsed_s(self) -> float:
        return (self.end_at - self.begin_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "findings"}
        for k in ("begin_at", "end_at", "created_at"):
            d[k] = d[k].isoformat()
        d["elapsed_s"] = self.elapsed_s
        d["findings"] = [f.as_dict() for f in self.findings]
        return d


def _analysis(row: dict[str, Any], findings: list[Finding] | None = None) -> AddmAnalysis:
    return AddmAnalysis(**row, findings=findings or [])


def _last_interval(conn: psycopg.Connection, target_id: int, target: str) -> tuple[int, int]:
    rows = repo_addm.last_two_snapshots(conn, target_id)
    if len(rows) < 2:
        raise InvalidInput(
            f"Target {target!r} has {len(rows)} usable snapshot(s); ADDM needs a range of two.",
            "Take snapshots before and after the period: "
            f"`opscore snapshot take --target {target}`.",
        )
    return int(rows[1][0]), int(rows[0][0])


def _settings(now: dict[str, Any], snap: Any) -> dict[str, Any]:
    out = dict(now)
    for r in (snap or {}).get("values", []):
        if r["name"] in ADDM_SETTINGS:
            out[r["name"]] = num(r["setting"])
    return out


def _catalog_dsn(dsn: str, database: str | None, statements: Any, samples: Any = None) -> str:
    """The DSN for the catalog and plan reads: the analysed database (``--database``), else the
    database with the most DB time (ASH), or statement time without ASH, when it is not the
    DSN's own (a target registered on ``postgres`` whose application runs elsewhere)."""
    want = database
    if want is None and samples is not None and not samples.empty:
        fg = samples[samples["db_time"].astype(bool) & samples["datname"].notna()]
        if not fg.empty:
            want = str(fg.groupby("datname")["weight_s"].sum().idxmax())
    if want is None and statements is not None and not statements.empty:
        st = statements[statements["datname"].notna()]
        if not st.empty:
            by = pd.to_numeric(st["total_exec_time"]).fillna(0).groupby(st["datname"]).sum()
            if len(by) and float(by.max()) > 0:
                want = str(by.idxmax())
    if want is None or want == conninfo_to_dict(dsn).get("dbname"):
        return dsn
    return make_conninfo(dsn, dbname=want)


def _breaks_range(reset: dict[str, Any]) -> bool:
    """A restart, a new baseline or a pg_stat_statements reset as a whole inside the range.
    Evictions and rows counted from zero (a statement evicted and seen again, or reset alone
    with pg_stat_statements_reset(userid, dbid, queryid); a table's counters) do not make the
    sums meaningless: each such row's delta is its activity since. A server whose
    pg_stat_statements is full evicts in every interval; its ranges were refused."""
    src, why = reset.get("source"), str(reset.get("reason") or "")
    return src in ("server", "all") or (
        src == "pg_stat_statements" and "pg_stat_statements_reset()" in why
    )


def run_addm(
    target: str | None,
    begin_id: int | None = None,
    end_id: int | None = None,
    *,
    database: str | None = None,
    min_impact_pct: float | None = None,
) -> AddmAnalysis:
    """Analyse snapshots ``begin_id``..``end_id`` of ``target`` (default: its last interval;
    target None: the only registered target, or 'demo'),
    store the analysis and return it with its findings (ranked, root causes first).

    ``database`` restricts DB time, statements and tables to one database (default: the whole
    server). Raises InvalidInput for a range spanning a restart or statistics reset.
    """
    if (begin_id is None) != (end_id is None):
        raise InvalidInput(
            "Give both --begin and --end, or neither (the last interval).",
            "Example: opscore addm run --target demo --begin 10 --end 12",
        )
    min_pct = get_settings().addm_min_impact_pct if min_impact_pct is None else min_impact_pct
    if not 0 <= min_pct < 100:
        raise InvalidInput(f"The impact threshold must be 0..100 %, not {min_pct}.")
    target = resolve_target(target).name
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        if begin_id is None or end_id is None:
            begin_id, end_id = _last_interval(repo, t.target_id, t.name)
        agg = ranges.range_aggregate(repo, t.target_id, t.name, begin_id, end_id, False)
        hard = [r for r in agg.resets if _breaks_range(r)]
        if hard:
            r = hard[0]
            raise InvalidInput(
                f"Snapshots {begin_id}..{end_id} of {target} span a restart or statistics reset "
                f"(at snapshot {r['snapshot_id']}: {r.get('reason') or r.get('source')}); the "
                "counters before and after it cannot be added up.",
                f"Analyse the part before it (--end {r['snapshot_id'] - 1}) or after it "
                f"(--begin {r['snapshot_id']}).",
            )
        samples = ash_read.query_samples(
            repo, t.target_id, agg.begin.captured_at, agg.end.captured_at
        )
        tables_begin = reads.tables_frame(repo, RangePlan.single(t.target_id, begin_id))
        history, history_meta = repo_addm.statement_history(
            repo, t.target_id, begin_id, HISTORY_LOOKBACK_S
        )
        snap_settings = reads.cluster_values(repo, end_id, "settings")
        host = reads.cluster_values(repo, end_id, "host") or {}
        holders = (reads.cluster_values(repo, end_id, "xmin_holders") or {}).get("values")
    statements, tables, index_scans = agg.statements, agg.tables, agg.indexes
    if database is not None:
        known = set(agg.databases["datname"]) if not agg.databases.empty else set()
        if database not in known:
            raise InvalidInput(
                f"Database {database!r} is not in the snapshots of {target} "
                f"(known: {', '.join(sorted(known)) or 'none'}).",
                "Give one of those, or no --database for the whole server.",
            )
        samples = samples[samples["datname"] == database]
        statements = statements[statements["datname"] == database]
        if not history.empty:
            history = history[history["datname"] == database]
        tables_begin = (
            tables_begin[tables_begin["datname"] == database]
            if not tables_begin.empty
            else tables_begin
        )
        tables = tables[tables["datname"] == database] if not tables.empty else tables
        if not index_scans.empty:
            index_scans = index_scans[index_scans["datname"] == database]
    cpu = (host.get("values") or {}).get("cpu_count") or (host.get("deltas") or {}).get("cpu_count")
    cat = Catalog()
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        conn: psycopg.Connection | None = None
        try:
            dsn = target_dsn(t)
            want = _catalog_dsn(dsn, database, statements, samples)
            try:
                conn = stack.enter_context(connection.monitoring_session(want))
            except OpsCoreError:
                if want == dsn:
                    raise
                conn = stack.enter_context(connection.monitoring_session(dsn))
        except OpsCoreError as exc:
            notes.append(
                f"Target not reachable for catalog reads ({exc.message}): index and table-option "
                "checks not available; settings from the snapshot."
            )
        explain = None
        catalog_db = None
        setup_s = None
        if conn is not None:
            try:
                cat = read_catalog(conn)
                catalog_db = conn.info.dbname
                notes.append(f"Catalog and plan reads from database {catalog_db}.")
                notes += cat.notes
            except psycopg.Error as exc:
                notes.append(f"Catalog read failed: {str(exc).strip()}")
            explain = live.Planner(conn)
            if _opens_sessions_fast(agg.databases, agg.elapsed_s):
                setup_s = live.session_setup_s(dsn)
        inp = AddmInput(
            elapsed_s=agg.elapsed_s,
            samples=samples.reset_index(drop=True),
            statements=statements.reset_index(drop=True),
            tables=tables.reset_index(drop=True),
            tables_begin=tables_begin.reset_index(drop=True),
            databases=agg.databases,
            cluster=agg.cluster,
            settings=_settings(cat.settings, snap_settings),
            indexes=cat.indexes,
            index_catalog=cat.index_defs,
            extensions=cat.extensions,
            index_scans=index_scans.reset_index(drop=True),
            table_catalog=cat.tables,
            catalog_database=catalog_db,
            explain=explain,
            cpu_count=int(cpu) if cpu else None,
            history=history.reset_index(drop=True),
            history_meta=history_meta,
            min_impact_pct=min_pct,
            server_version_num=agg.end.server_version_num,
            xmin_holders=holders,
            end_at=agg.end.captured_at,
            session_setup_s=setup_s,
        )
        result = analyze(inp)
    result.notes = notes + result.notes
    if agg.failed:
        result.notes.append(f"Failed captures inside the range (skipped): {agg.failed}")
    with repository.session() as repo:
        aid = repo_addm.store(repo, t.target_id, agg.begin, agg.end, database, result, min_pct)
        return _analysis(repo_addm.get(repo, aid), repo_addm.findings(repo, aid))


def _opens_sessions_fast(databases: pd.DataFrame, elapsed_s: float) -> bool:
    """Whether a database of the range opened sessions at connection-churn rates: only then is
    what one costs measured on the target (three short sessions of opscore's own)."""
    if databases.empty or "sessions" not in databases.columns or elapsed_s <= 0:
        return False
    n = pd.to_numeric(databases["sessions"], errors="coerce").fillna(0)
    return bool(((n >= churn.MIN_SESSIONS) & (n / elapsed_s >= churn.MIN_RATE_PER_S)).any())


def addm_for_range(
    target: str | None,
    begin_id: int | None = None,
    end_id: int | None = None,
    *,
    run: bool = True,
) -> AddmAnalysis | None:
    """The ADDM analysis of snapshots ``begin_id``..``end_id`` (default: the last interval) of
    the whole server at the current threshold: the newest stored one (the snapshot flow stores
    one per new interval), unless ASH samples of the range arrived after it was made; else a
    new run (stored) when ``run``, or None."""
    if (begin_id is None) != (end_id is None):
        raise InvalidInput("Give both begin and end snapshot ids, or neither (the last interval).")
    name = resolve_target(target).name
    min_pct = get_settings().addm_min_impact_pct
    with repository.session() as repo:
        t = repo_targets.get(repo, name)
        if begin_id is None or end_id is None:
            begin_id, end_id = _last_interval(repo, t.target_id, t.name)
        b, e = ranges.validate_range(repo, t.target_id, t.name, begin_id, end_id)
        row = repo_addm.find(repo, t.target_id, begin_id, end_id, min_pct)
        if row is not None:
            n, _, _ = report_reads.ash_sample_count(repo, t.target_id, b.captured_at, e.captured_at)
            if n <= row["ash_samples"]:
                return _analysis(row, repo_addm.findings(repo, row["analysis_id"]))
    if not run:
        return None
    return run_addm(name, begin_id, end_id)


def list_addm(target: str | None = None) -> list[AddmAnalysis]:
    with repository.session() as repo:
        tid = repo_targets.get(repo, target).target_id if target else None
        return [_analysis(r) for r in repo_addm.list_analyses(repo, tid)]


def _check_id(analysis_id: int) -> int:
    if not isinstance(analysis_id, int) or analysis_id < 1:
        raise NotFound(
            f"There is no ADDM analysis {analysis_id!r}.",
            "Ids are positive integers (`opscore addm list`).",
        )
    return analysis_id


def get_addm(analysis_id: int) -> AddmAnalysis:
    """One analysis with its findings (and their recommendations)."""
    with repository.session() as repo:
        row = repo_addm.get(repo, _check_id(analysis_id))
        return _analysis(row, repo_addm.findings(repo, analysis_id))


def addm_findings(analysis_id: int) -> list[Finding]:
    with repository.session() as repo:
        return repo_addm.findings(repo, _check_id(analysis_id))


def addm_recommendations(analysis_id: int) -> list[dict[str, Any]]:
    """Every recommendation of an analysis, best first: finding rank, type, and the action."""
    out = []
    for f in addm_findings(analysis_id):
        for r in f.recommendations:
            out.append({"finding_rank": f.rank, "finding_type": f.type, **r.as_dict()})
    return out


def delete_addm(analysis_id: int) -> AddmAnalysis:
    with repository.session() as repo:
        return _analysis(repo_addm.delete(repo, _check_id(analysis_id)))
