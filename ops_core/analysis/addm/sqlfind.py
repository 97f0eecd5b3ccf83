"""Findings about statements: missing index, stale statistics, temp spills, I/O-bound with a
low cache hit ratio, CPU-bound SQL, and the top SQL by DB time. Each statement is given to
at most one problem (root cause first, in that order)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .baseline import History, judge
from .indexbase import LARGE_TABLE_ROWS, SELECTIVE, _scans, _table_rows
from .indexfind import missing_index
from .model import (
    AddmInput,
    Finding,
    Recommendation,
    autovacuum_off,
    enable_autovacuum,
    fmt_bytes,
    pct,
    qident,
    qtable,
    short,
)
from .pagination import deep_offset
from .sqlshape import shape


@dataclass
class CpuLoad:
    """Sessions on CPU (ASH, average over the range) against the host's CPU count: saturated
    when more sessions are runnable than there are CPUs."""

    cpu_aas: float = 0.0
    cpus: int | None = None

    @property
    def saturated(self) -> bool:
        return bool(self.cpus) and self.cpu_aas > float(self.cpus or 0)


def _s(r: Any) -> dict[str, Any]:
    return {"queryid": int(r.queryid), "query": r.query}


def _tables(inp: AddmInput) -> dict[str, Any]:
    return {f"{r.schemaname}.{r.relname}": r for r in inp.tables.itertuples(index=False)}


def statement_findings(
    inp: AddmInput,
    prof: pd.DataFrame,
    total: float,
    basis: str,
    load: CpuLoad,
    hist: History,
) -> list[Finding]:
    """``load``: sessions on CPU against the CPU count; ``hist``: the statements' history.
    Every statement finding carries its statement's history judgement (evidence
    ``history``)."""
    tables = _tables(inp)
    groups: dict[tuple[str, str], Finding] = {}
    out: list[Finding] = []
    for r in prof.itertuples(index=False):
        if r.db_time_s <= 0 or pct(r.db_time_s, total) < inp.min_impact_pct / 2:
            continue
        if r.ash_s > 0 and (r.ash_lock_s / r.ash_s) >= 0.5:
            continue  # its time is lock waits: the lock findings cover it
        sh = shape(r.query)
        f = (
            missing_index(inp, r, sh, tables, total)
            or deep_offset(inp, r, sh, total)
            or _stale(inp, r, sh, tables, total)
            or _temp(inp, r, total)
            or _jit(inp, r, total)
            or _index_overhead(inp, r, sh, total)
            or _io_bound(inp, r, sh, tables, total)
            or _cpu_bound(inp, r, tables, total, load, hist)
        )
        if f is None:
            continue
        f.basis = basis
        f.evidence.setdefault("history", judge(hist, r, inp.elapsed_s))
        key = (f.type, ",".join(f.objects) if f.type != "temp_spill" else "")
        if key in groups:  # one finding per cause: add this statement's time to it
            g = groups[key]
            g.impact_db_time_s += f.impact_db_time_s
            g.impact_pct = pct(g.impact_db_time_s, total)
            g.statements += f.statements
            for rec in g.recommendations:
                if rec.benefit_db_time_s is not None:
                    rec.benefit_db_time_s += f.recommendations[0].benefit_db_time_s or 0
                    rec.benefit_pct = pct(rec.benefit_db_time_s, total)
            g.evidence.setdefault("per_statement", []).append(f.evidence)
            continue
        f.evidence = {"per_statement": [f.evidence]}
        groups[key] = f
        out.append(f)
    return out


def _begin_value(inp: AddmInput, t: Any, col: str) -> float | None:
    b = inp.tables_begin
    if b.empty or col not in b.columns:
        return None
    hit = b[b["relid"] == t.relid]
    return float(hit[col].iloc[0]) if len(hit) and not pd.isna(hit[col].iloc[0]) else None


def _stale(inp, r, sh, tables, total) -> Finding | None:
    for table in sh.tables:
        t = tables.get(table)
        if t is None:
            continue
        live, mod = float(t.n_live_tup or 0), float(t.n_mod_since_analyze or 0)
        cat = (
            inp.table_catalog.get(table)
            if getattr(t, "datname", None) == inp.catalog_database
            else None
        )
        if cat is None:
            continue  # the planner's view of the table (reltuples, options) was not read
        opts = cat.get("options") or []
        reltuples = float(cat.get("reltuples") or 0)
        off = abs(live - reltuples) / max(reltuples, 1.0)
        # two signs the statistics are out of date: many rows modified since the last ANALYZE
        # (n_mod_since_analyze, which can lag: a backend flushes its counters only every few
        # seconds when idle), or sequential scans in the range reading more rows per scan than
        # the planner believes the table holds (reltuples) - a scan cannot read more rows
        # than there are, so the planner's count is out of date
        seq = float(t.seq_scan or 0)
        per_scan = float(t.seq_tup_read or 0) / seq if seq > 0 else 0.0
        grown = per_scan > 2 * max(reltuples, 1.0) and per_scan >= 1_000
        modded = mod >= max(1_000, 0.2 * max(live, 1.0))
        if not (grown or modded):
            continue
        # Statistics stay stale only when auto-analyze cannot refresh them: disabled on the
        # table or server-wide, or the table stayed over the threshold with no analyze for
        # longer than two autovacuum rounds. (A short range right after a bulk load is
        # autovacuum's next job, not a finding.)
        av_why = autovacuum_off(inp, table)
        av_off = av_why is not None
        naptime = float(inp.settings.get("autovacuum_naptime") or 60)
        analyzed = int((t.analyze_count or 0) + (t.autoanalyze_count or 0))
        mod0 = _begin_value(inp, t, "n_mod_since_analyze")
        neglected = (
            inp.elapsed_s >= 2 * naptime
            and analyzed == 0
            and mod0 is not None
            and mod0 >= max(1_000, 0.2 * max(live, 1.0))
        )
        if not (av_off or neglected):
            continue
        ev: dict[str, Any] = {
            "queryid": int(r.queryid),
            "table": table,
            "n_live_tup": int(live),
            "n_mod_since_analyze": int(mod),
            "modified_pct_since_analyze": round(100 * mod / max(live, 1.0), 1),
            "last_analyze": str(t.last_analyze)
            if t.last_analyze is not None and not pd.isna(t.last_analyze)
            else None,
            "last_autoanalyze": str(t.last_autoanalyze)
            if t.last_autoanalyze is not None and not pd.isna(t.last_autoanalyze)
            else None,
            "table_options": opts,
            "planner_reltuples": int(reltuples),
            "autoanalyze_possible": not av_off,
            "rows_read_per_seq_scan": round(per_scan) if seq > 0 else None,
            "reltuples_off_pct": round(100 * off, 1),
            "rows_per_call": round(float(r.rows) / max(float(r.calls), 1), 1),
        }
        ev["explain"] = _estimate(inp, r.query, table, live)
        recs = [
            Recommendation(
                "sql",
                f"ANALYZE {qtable(table)};",
                "Fresh statistics give the planner the real row counts and value distribution.",
                0.5 * float(r.db_time_s),
                pct(0.5 * float(r.db_time_s), total),
            )
        ]
        if av_why is not None:
            recs.append(
                enable_autovacuum(
                    table,
                    av_why,
                    f"Auto-analyze is {av_why}, so the statistics of {table} never refresh.",
                )
            )
        return Finding(
            type="stale_statistics",
            title=(
                f"Stale statistics on {table}: the planner counts {reltuples:,.0f} rows, scans "
                f"read ~{per_scan:,.0f} per scan (bad plan risk)"
                if grown
                else f"Stale statistics on {table}: {ev['modified_pct_since_analyze']:.0f} % of "
                "rows changed since the last ANALYZE (bad plan risk)"
            ),
            impact_db_time_s=float(r.db_time_s),
            impact_pct=pct(r.db_time_s, total),
            evidence=ev,
            objects=[table],
            statements=[_s(r)],
            recommendations=recs,
        )
    return None


def _estimate(inp: AddmInput, query: str, table: str, live: float) -> dict[str, Any]:
    if inp.explain is None:
        return {
            "available": False,
            "reason": "EXPLAIN of a parameterized statement needs GENERIC_PLAN (PostgreSQL 16+)",
        }
    plan = inp.explain(query)
    if not plan:
        return {"available": False, "reason": "EXPLAIN failed for this statement"}
    rel = table.split(".", 1)[-1]
    found: dict[str, Any] = {}

    def walk(node: dict) -> None:
        if node.get("Relation Name") == rel and "scan_estimated_rows" not in found:
            found["scan_node"] = node.get("Node Type")
            found["scan_estimated_rows"] = node.get("Plan Rows")
        for c in node.get("Plans", []):
            walk(c)

    walk(plan)
    found["available"] = True
    found["n_live_tup"] = int(live)
    return found


def _temp(inp, r, total) -> Finding | None:
    if r.temp_blks_written <= 0 or r.calls <= 0:
        return None
    per_call = float(r.temp_blks_written) * 8192 / float(r.calls)
    if per_call < 256 * 1024:
        return None
    wm = inp.settings.get("work_mem")
    want = 2 ** math.ceil(math.log2(max(per_call * 2, 1) / 1024))  # kB, power of two
    want_s = f"{want // 1024}MB" if want >= 1024 else f"{want}kB"
    benefit = 0.5 * float(r.db_time_s)
    return Finding(
        type="temp_spill",
        title="Sorts/hashes spilling to temporary files (work_mem too small)",
        impact_db_time_s=float(r.db_time_s),
        impact_pct=pct(r.db_time_s, total),
        evidence={
            "queryid": int(r.queryid),
            "calls": int(r.calls),
            "temp_written": fmt_bytes(float(r.temp_blks_written) * 8192),
            "temp_per_call": fmt_bytes(per_call),
            "work_mem": fmt_bytes(float(wm) * 1024) if isinstance(wm, int | float) else wm,
            "db_time_s": round(float(r.db_time_s), 3),
        },
        objects=[],
        statements=[_s(r)],
        recommendations=[
            Recommendation(
                "setting",
                f"SET work_mem = '{want_s}';  -- in the sessions running these statements "
                f"(or ALTER ROLE ... SET work_mem = '{want_s}')",
                f"Each call writes {fmt_bytes(per_call)} of temp; with work_mem above that the "
                "sort/hash stays in memory. Raise it per role or session, not server-wide.",
                benefit,
                pct(benefit, total),
            )
        ],
    )


#: a write statement's table counts as over-indexed with at least this many indexes of which
#: at least MIN_UNUSED (and half) served no scan in the range
MANY_INDEXES = 6
MIN_UNUSED = 4


#: of a statement's execution time spent compiling it: the compile is the cost when it is most
#: of the time, or a fifth of a statement whose own work is short (JIT makes long analytical
#: statements faster: there turning it off can cost more than the compile it saves)
JIT_SHARE, JIT_SHARE_SHORT, SHORT_RUN_MS = 0.5, 0.2, 10.0
#: PostgreSQL's defaults: below them, a server compiles statements it would not by default
JIT_DEFAULTS = {
    "jit_above_cost": 100_000,
    "jit_inline_above_cost": 500_000,
    "jit_optimize_above_cost": 500_000,
}


def _jit(inp: AddmInput, r: Any, total: float) -> Finding | None:
    """JIT compilation costing a large share of a statement's execution time (pg_stat_
    statements 1.10+): a short statement whose plan cost passes jit_above_cost is compiled on
    every call, and compiling can take longer than running it. The compile is CPU work: the
    statement's share of DB time that it stands for is what turning JIT off for it saves."""
    jit_ms, exec_ms = float(getattr(r, "jit_time", 0) or 0), float(r.total_exec_time or 0)
    if jit_ms <= 0 or exec_ms <= 0:
        return None
    share = min(jit_ms / exec_ms, 1.0)
    calls = max(float(r.calls), 1.0)
    short_run = (exec_ms - jit_ms) / calls < SHORT_RUN_MS
    if share < JIT_SHARE and not (short_run and share >= JIT_SHARE_SHORT):
        return None
    impact = float(r.db_time_s) * share
    lowered = {
        k: v
        for k, v in JIT_DEFAULTS.items()
        if isinstance(inp.settings.get(k), int | float) and 0 <= inp.settings[k] < v
    }
    fns = float(getattr(r, "jit_functions", 0) or 0) / calls
    why = (
        f"~{jit_ms / calls:,.1f} ms of JIT compilation per call ({fns:,.0f} functions) for "
        f"~{exec_ms / calls:,.1f} ms of execution: {100 * share:.0f} % of its time is "
        "compiling it, on every call"
    )
    recs = []
    if lowered:
        names = ", ".join(f"{k} = {v:g}" for k, v in lowered.items())
        recs.append(
            Recommendation(
                "sql",
                "".join(f"ALTER SYSTEM RESET {k}; " for k in lowered) + "SELECT pg_reload_conf();",
                f"The server's {names} (below PostgreSQL's defaults) makes it compile statements "
                f"this cheap. {why}.",
                0.95 * impact,
                pct(0.95 * impact, total),
            )
        )
    user, db = getattr(r, "username", None), getattr(r, "datname", None)
    scope = (
        f"ALTER ROLE {qident(user)} IN DATABASE {qident(db)} SET jit = off;"
        if isinstance(user, str) and isinstance(db, str)
        else "ALTER SYSTEM SET jit = off; SELECT pg_reload_conf();"
    )
    recs.append(
        Recommendation(
            "sql",
            scope,
            f"{why}. Turning JIT off for the sessions that run it (new sessions; or raise "
            "jit_above_cost above its plan's cost) removes the compilation; JIT pays off only "
            "for long analytical queries.",
            0.95 * impact,
            pct(0.95 * impact, total),
        )
    )
    return Finding(
        type="jit_overhead",
        title=f"JIT compilation on every call: {100 * share:.0f} % of the statement's execution "
        "time is compiling it",
        impact_db_time_s=impact,
        impact_pct=pct(impact, total),
        evidence={
            "queryid": int(r.queryid),
            "calls": int(r.calls),
            "jit_ms_per_call": round(jit_ms / calls, 3),
            "exec_ms_per_call": round(exec_ms / calls, 3),
            "jit_functions_per_call": round(fns, 1),
            "jit_share_pct": round(100 * share, 1),
            # as the server sets them: a role's, a database's or a session's own may differ
            "server_settings": {k: inp.settings.get(k, "not read") for k in JIT_DEFAULTS},
        },
        objects=list(shape(r.query).tables),
        statements=[_s(r)],
        recommendations=recs,
    )


def _index_overhead(inp, r, sh, total) -> Finding | None:
    """Writes slowed by indexes nobody reads: every INSERT (and every non-HOT UPDATE) adds an
    entry to each index of the table."""
    if sh.kind not in ("insert", "update") or not sh.tables:
        return None
    datname = getattr(r, "datname", None)
    if isinstance(datname, str) and datname != inp.catalog_database:
        return None
    table = sh.tables[0]
    valid = [d for d in inp.index_catalog.get(table) or [] if d.get("valid", True)]
    sc = inp.index_scans
    if len(valid) < MANY_INDEXES:
        return None
    scans: dict[int, float] = {}
    if sc is not None and not sc.empty and "indexrelid" in sc.columns:
        mine = sc[sc["datname"] == inp.catalog_database] if "datname" in sc.columns else sc
        scans = dict(
            zip(
                mine["indexrelid"].astype("int64"),
                pd.to_numeric(mine["idx_scan"]).fillna(0),
                strict=False,
            )
        )
    # unused: no scan in the range's index deltas (the snapshots keep the indexes that
    # changed); unique and primary-key indexes enforce constraints and are never proposed
    unused = [d for d in valid if not scans.get(d.get("oid"), 0) and not d.get("unique")]
    if len(unused) < max(MIN_UNUSED, len(valid) // 2):
        return None
    share = len(unused) / (len(valid) + 1.0)  # the heap write plus one per index
    impact = float(r.db_time_s) * share
    return Finding(
        type="index_overhead",
        title=(
            f"Writes to {table} maintain {len(valid)} indexes, {len(unused)} of them unused in "
            "this range"
        ),
        impact_db_time_s=impact,
        impact_pct=pct(impact, total),
        evidence={
            "queryid": int(r.queryid),
            "calls": int(r.calls),
            "indexes": len(valid),
            "unused_indexes": [d["name"] for d in unused],
            "impact_estimate": "the statement's DB time times unused indexes / (indexes + 1)",
        },
        objects=[table],
        statements=[_s(r)],
        recommendations=[
            Recommendation(
                "sql",
                f"DROP INDEX CONCURRENTLY {qtable(d['name'])};",
                f"{d['name']} served no scan in this range. Check pg_stat_user_indexes over a "
                "full business cycle (month-end jobs) and on the replicas before dropping it.",
                impact / len(unused),
                pct(impact / len(unused), total),
            )
            for d in unused
        ],
    )


def _io_bound(inp, r, sh, tables, total) -> Finding | None:
    blocks = float(r.shared_blks_hit + r.shared_blks_read)
    if blocks <= 0:
        return None
    hit = float(r.shared_blks_hit) / blocks
    io_share = (r.ash_io_s / r.ash_s) if r.ash_s > 0 else None
    if hit >= 0.9 or r.shared_blks_read < 1_000 or (io_share is not None and io_share < 0.3):
        return None
    sb = inp.settings.get("shared_buffers")  # in 8kB pages
    sizes = {
        t: fmt_bytes(float(tables[t].table_bytes))
        for t in sh.tables
        if t in tables
        and getattr(tables[t], "table_bytes", None) is not None
        and not pd.isna(tables[t].table_bytes)
    }
    benefit = float(r.ash_io_s if r.ash_s > 0 else 0.5 * r.db_time_s)
    return Finding(
        type="io_bound_sql",
        title=f"I/O-bound SQL with a low cache hit ratio ({100 * hit:.0f} %) on "
        + (", ".join(sh.tables) or "its tables"),
        impact_db_time_s=float(r.db_time_s),
        impact_pct=pct(r.db_time_s, total),
        evidence={
            "queryid": int(r.queryid),
            "calls": int(r.calls),
            "cache_hit_pct": round(100 * hit, 1),
            "blocks_read": int(r.shared_blks_read),
            "read": fmt_bytes(float(r.shared_blks_read) * 8192),
            "io_wait_share_pct": None if io_share is None else round(100 * io_share, 1),
            "shared_buffers": fmt_bytes(float(sb) * 8192) if isinstance(sb, int | float) else sb,
            "table_sizes": sizes,
        },
        objects=list(sh.tables),
        statements=[_s(r)],
        recommendations=[
            Recommendation(
                "setting",
                "ALTER SYSTEM SET shared_buffers = '<about 25 % of RAM>';  -- needs a restart",
                "The statement reads its tables from disk on most calls: a larger buffer cache "
                "(if the hot data fits) turns reads into hits.",
                benefit,
                pct(benefit, total),
            ),
            Recommendation(
                "application",
                "Read less: an index or a narrower predicate, a summary table, or partitions so "
                "each run scans only recent data.",
                "The statement scans the whole table on each call.",
                None,
                None,
            ),
        ],
    )


#: without any history, a statement alone must keep this share of the CPUs busy (or show an
#: avoidable cost, or the CPUs be saturated) to be a CPU-bound SQL problem
NO_HISTORY_CPU_SHARE = 0.75


def _avoidable(inp: AddmInput, r: Any, tables: dict[str, Any]) -> list[str]:
    """Avoidable cost in the statement: temp spills, or a plan that scans a large table to
    keep a small share of it (a selective filter on a sequential scan)."""
    out = []
    if float(r.temp_blks_written) > 0:
        out.append(f"spills {fmt_bytes(float(r.temp_blks_written) * 8192)} to temporary files")
    datname = getattr(r, "datname", None)
    if inp.explain is None or (isinstance(datname, str) and datname != inp.catalog_database):
        return out
    p = inp.explain(r.query) if isinstance(r.query, str) else None
    for node in _scans(p, []) if p else []:
        table = f"{node.get('Schema') or 'public'}.{node.get('Relation Name')}"
        rows = _table_rows(inp, table, tables.get(table), float(node.get("Plan Width") or 0))
        est = float(node.get("Plan Rows") or 0)
        if rows >= LARGE_TABLE_ROWS and est <= SELECTIVE * rows:
            out.append(
                f"its plan scans {table} (~{rows:,.0f} rows) to keep ~{est:,.0f} "
                f"(filter {short(node.get('Filter'), 80)})"
            )
    return out


def _cpu_bound(inp, r, tables, total, load: CpuLoad, hist: History) -> Finding | None:
    """A statement on CPU is a problem only with evidence of one: it regressed against its
    own history (or is new since it), or it has an avoidable cost (spills, a selective filter
    on a sequential scan of a large table). Without any history: the CPUs saturated (more
    sessions on CPU than CPUs) or the statement alone holding most of them. Using the CPU
    alone is not a problem: a busy healthy server does that."""
    if r.ash_s <= 0 or r.ash_cpu_s / r.ash_s < 0.7:
        return None
    cpus = float(inp.cpu_count or 0)
    stmt_cpus = float(r.ash_cpu_s) / inp.elapsed_s if inp.elapsed_s > 0 else 0.0
    # large enough to matter: the CPUs are saturated, or this statement alone keeps half of
    # the host's CPUs busy on average
    heavy = cpus > 0 and stmt_cpus >= 0.5 * cpus
    if not (load.saturated or heavy):
        return None
    hj = judge(hist, r, inp.elapsed_s)
    changed = hj["status"] in ("regressed", "new")
    avoid = _avoidable(inp, r, tables)
    why: list[str] = [hj["summary"]] if changed else []
    why += avoid
    sat = f"{load.cpu_aas:.1f} sessions on CPU on average for {load.cpus} CPUs"
    if hj["status"] == "new" and not (heavy or avoid):
        # a new (or rarely seen) statement must be large by itself: on saturated CPUs a
        # small one seen first in a short history is not the cause (seen in a healthy run)
        return None
    if hj["status"] == "as_usual" and not avoid:
        # as usual per call against its own history and nothing avoidable in it: legitimate
        # work, even when the CPUs are saturated (then it is a victim of whatever else grew,
        # which the other findings name, or the host is short of CPUs for its normal load)
        return None
    if hj["status"] == "no_history" and not why:
        if load.saturated:
            why.append(sat + " (no history to compare with)")
        elif cpus > 0 and stmt_cpus >= NO_HISTORY_CPU_SHARE * cpus:
            why.append(
                f"alone it keeps {stmt_cpus:.1f} of {cpus:.0f} CPUs busy (no history to "
                "compare with)"
            )
        else:
            return None
    elif load.saturated:
        why.append(sat)
    mean_ms = float(r.total_exec_time) / max(float(r.calls), 1.0)
    if avoid:
        advice = "remove the avoidable cost: " + "; ".join(avoid)
    elif hj["status"] == "regressed":
        advice = (
            "find what changed since its history (plan, data volume, parameters, an index "
            "dropped): compare EXPLAIN (ANALYZE, BUFFERS) now with the plan it had"
        )
    else:
        advice = "less work per call (fewer rows, cheaper expressions), fewer calls, or off-peak"
    return Finding(
        type="cpu_bound_sql",
        title=f"CPU-bound SQL using {pct(r.db_time_s, total):.0f} % of DB time: {why[0]}",
        impact_db_time_s=float(r.db_time_s),
        impact_pct=pct(r.db_time_s, total),
        evidence={
            "queryid": int(r.queryid),
            "calls": int(r.calls),
            "mean_ms": round(mean_ms, 2),
            "cpu_share_pct": round(100 * r.ash_cpu_s / r.ash_s, 1),
            "cpus_used_avg": round(stmt_cpus, 2),
            "rows_per_call": round(float(r.rows) / max(float(r.calls), 1), 2),
            "why_a_problem": why,
            "history": hj,
        },
        objects=list(shape(r.query).tables),
        statements=[_s(r)],
        recommendations=[
            Recommendation(
                "application",
                f"Statement {int(r.queryid)} ({short(r.query, 80)}): {advice}.",
                "It spends its time on CPU and competes with every other session for the "
                "cores; " + "; ".join(why) + ".",
                float(r.db_time_s) * 0.5,
                pct(float(r.db_time_s) * 0.5, total),
            )
        ],
    )


def top_sql_findings(
    prof: pd.DataFrame, total: float, taken: set[int], min_pct: float, basis: str
) -> list[Finding]:
    out = []
    for r in prof.head(5).itertuples(index=False):
        p = pct(r.db_time_s, total)
        if p < min_pct or int(r.queryid) in taken:
            continue
        out.append(
            Finding(
                type="top_sql",
                title=f"Top SQL: statement {int(r.queryid)} used {p:.0f} % of DB time",
                impact_db_time_s=float(r.db_time_s),
                impact_pct=p,
                evidence={
                    "queryid": int(r.queryid),
                    "calls": int(r.calls),
                    "mean_ms": round(float(r.total_exec_time) / max(float(r.calls), 1), 2),
                    "cpu_s": round(float(r.ash_cpu_s), 2),
                    "io_s": round(float(r.ash_io_s), 2),
                },
                statements=[_s(r)],
                objects=list(shape(r.query).tables),
                basis=basis,
                recommendations=[
                    Recommendation(
                        "application",
                        f"Review statement {int(r.queryid)}: EXPLAIN (ANALYZE, BUFFERS) "
                        f"{short(r.query, 80)}",
                        "The largest consumer of DB time; no specific problem was found in it.",
                        None,
                        None,
                    )
                ],
            )
        )
    return out
