"""Auto-indexing's what-if costing: each candidate against every read statement of the
workload that filters, joins or sorts on its leading column.

- With hypopg created in the target database: :func:`~.whatif.hypothetical` (the planner's
  cost without and with the hypothetical index, and whether it would use it).
- Without it (the embedded PostgreSQL 18 has none): an **estimate**, labelled as such, from the
  statement's plan (EXPLAIN, never executed here): each sequential scan of the table whose
  filter holds the candidate's leading column is replaced by an index scan costed the way the
  planner costs one (B-tree descent, leaf pages, heap pages interpolated between the
  correlated and the uncorrelated case by pg_stats correlation squared, CPU per tuple) with
  the selectivity of the candidate's columns from pg_stats. An index that only serves an
  ORDER BY is not estimated (hypopg or a build decides). Builds are verified by execution
  anyway (``ops_core.api.autoindex``), so an estimate that was too hopeful costs a build, not
  a slower workload.

The DB time a candidate saves on a statement: the statement's total time over the range
times the relative cost drop (cost_after / cost_before applied to measured time).
"""

from __future__ import annotations

import math
from typing import Any

import psycopg

from ..collectors import live
from ..targets.index_actions import index_ddl
from . import whatif
from .autoindex import (
    DEFAULT_RANGE_SEL,
    IndexCandidate,
    StatementColumns,
    estimate_bytes,
    selectivity,
    statement_columns,
)

__all__ = ["cost_candidate", "estimate_scan", "filter_columns", "generic_hypothetical"]

BLOCK = 8192.0


_walk = whatif.plan_nodes


def filter_columns(node: dict[str, Any]) -> StatementColumns:
    """The columns a plan node's Filter compares with values (parsed with pglast as the WHERE
    clause of a query on the node's alias; never sent to a server)."""
    alias = (node.get("Alias") or node.get("Relation Name") or "x").replace('"', '""')
    return statement_columns(f'SELECT 1 FROM "{alias}" WHERE {node["Filter"]}')


def estimate_scan(
    node: dict[str, Any],
    columns: list[str],
    table: dict[str, Any],
    stats: dict[str, dict[str, Any]],
    costs: dict[str, float],
) -> tuple[float, str] | None:
    """(estimated cost of an index scan on ``columns`` replacing this sequential scan, how) or
    None when the filter does not hold the leading column."""
    if not node.get("Filter"):
        return None
    f = filter_columns(node)
    eq = {c for _, c in f.eq}
    rng = {c for _, c in f.range}
    if columns[0] not in eq | rng:
        return None
    rows = max(float(table.get("reltuples") or 0), 1.0)
    pages = max(float(table.get("relpages") or 0), 1.0)
    sel = 1.0
    used = []
    for c in columns:
        if c in eq:
            sel *= selectivity(stats.get(c), rows)
            used.append(c)
        elif c in rng:
            sel *= DEFAULT_RANGE_SEL
            used.append(c)
            break
        else:
            break
    n = max(1.0, rows * sel)
    rpc = costs.get("random_page_cost", 4.0)
    spc = costs.get("seq_page_cost", 1.0)
    widths = [float((stats.get(c) or {}).get("avg_width") or 8) for c in columns]
    leaf = math.ceil(n * estimate_bytes(1, widths) / BLOCK)
    descent = math.ceil(math.log(rows) / math.log(256)) + 1
    corr = float((stats.get(columns[0]) or {}).get("correlation") or 0.0)
    uncorr_pages = min(n, pages)
    corr_pages = max(1.0, math.ceil(sel * pages))
    max_io = uncorr_pages * rpc
    min_io = rpc + (corr_pages - 1) * spc
    c2 = corr * corr
    heap = max_io + c2 * (min_io - max_io)
    cpu = n * (
        costs.get("cpu_index_tuple_cost", 0.005)
        + costs.get("cpu_operator_cost", 0.0025) * len(used)
        + costs.get("cpu_tuple_cost", 0.01)
    )
    cost = (descent + leaf) * rpc + heap + cpu
    return cost, (
        f"estimate: {n:.0f} of {rows:.0f} rows by ({', '.join(used)}), correlation "
        f"{corr:.2f}: index scan ~{cost:.1f} vs {node.get('Node Type')} {node['Total Cost']}"
    )


def generic_hypothetical(
    conn: psycopg.Connection, text: str, spec: whatif.IndexSpec
) -> tuple[float | None, float | None, bool, str | None]:
    """(cost before, cost after, used, why not) of a statement with parameters that have no
    sampled value, from its *generic* plan (``live.plan``: GENERIC_PLAN on 16+, a prepared
    statement on 14-15) without and with a hypothetical index (hypopg keeps it in the session
    until ``hypopg_reset``; nothing is built or executed)."""
    before = live.plan(conn, text, fmt="json")
    if not isinstance(before.plan, dict):
        return None, None, False, before.reason
    conn.execute("BEGIN /* opscore */ READ ONLY")
    try:
        made = conn.execute(
            "SELECT /* opscore */ indexname FROM hypopg_create_index(%s)",
            (index_ddl(spec.schema, spec.table, spec.columns).as_string(conn),),
        ).fetchone()
    finally:
        conn.execute("ROLLBACK /* opscore */")  # hypopg's index outlives the transaction
    try:
        after = live.plan(conn, text, fmt="json")
    finally:
        conn.execute("SELECT /* opscore */ hypopg_reset()")
    if not isinstance(after.plan, dict):
        return None, None, False, after.reason
    used = whatif.uses_index(after.plan, spec.table, spec.columns, made[0] if made else "")
    return float(before.plan["Total Cost"]), float(after.plan["Total Cost"]), used, None


def cost_candidate(
    conn: psycopg.Connection,
    cand: IndexCandidate,
    affected: list[dict[str, Any]],
    *,
    hypopg: bool,
    plans: dict[int, dict[str, Any] | None],
    table: dict[str, Any],
    costs: dict[str, float],
) -> None:
    """Cost ``cand`` for each affected read statement (rows: queryid, calls, total_ms, bound:
    the text with values bound or None, why: why not). Fills ``statements``, ``method`` and
    ``saved_ms``."""
    cand.method = "hypopg" if hypopg else "estimate"
    spec = whatif.IndexSpec(cand.schema_name, cand.table_name, tuple(cand.columns))
    for st in affected:
        row: dict[str, Any] = {
            "queryid": int(st["queryid"]),
            "calls": int(st["calls"]),
            "total_ms": round(float(st["total_ms"]), 3),
            "cost_before": None,
            "cost_after": None,
            "used": False,
            "saved_ms": 0.0,
        }
        cand.statements.append(row)
        text = st.get("bound")
        if not text and not (hypopg and st.get("generic")):
            if plans.get(int(st["queryid"])) is None:
                row["why"] = st.get("why") or "no values to cost it with"
                continue
        if hypopg and not text:
            before, after, used, why = generic_hypothetical(conn, st["generic"], spec)
            if before is None or after is None:
                row["why"] = why
                continue
            row.update(cost_before=before, cost_after=after, used=used, plan="generic")
        elif hypopg:
            w = whatif.hypothetical(conn, text, spec)
            if w.cost_before is None or w.cost_after is None:
                row["why"] = w.why_not
                continue
            row.update(cost_before=w.cost_before, cost_after=w.cost_after, used=bool(w.used))
        else:
            plan = plans.get(int(st["queryid"]))
            if plan is None:
                row["why"] = st.get("why") or "no plan"
                continue
            before = float(plan["Total Cost"])
            saved = 0.0
            notes = []
            for node in _walk(plan):
                if node.get("Node Type") not in ("Seq Scan", "Parallel Seq Scan"):
                    continue
                if node.get("Relation Name") != cand.table_name or (
                    node.get("Schema") not in (None, cand.schema_name)
                ):
                    continue
                est = estimate_scan(node, cand.columns, table, cand.column_stats, costs)
                if est is None:
                    continue
                idx_cost, how = est
                notes.append(how)
                saved += max(0.0, float(node["Total Cost"]) - idx_cost)
            row.update(cost_before=before, cost_after=max(before - saved, 0.0), used=saved > 0)
            if notes:
                row["estimate"] = "; ".join(notes)
            else:
                row["why"] = "no sequential scan of the table filtering on the leading column"
        if row["used"] and row["cost_before"]:
            ratio = max(0.0, 1.0 - float(row["cost_after"]) / float(row["cost_before"]))
            row["saved_ms"] = round(float(st["total_ms"]) * ratio, 3)
    cand.saved_ms = sum(r["saved_ms"] for r in cand.statements)
