"""Auto-indexing's what-if costing: each candidate (plain, INCLUDE or partial) against every
read statement of the workload that filters, joins or sorts on its columns.

- With hypopg created in the target database: :func:`hypothetical_plan` (the planner's cost
  without and with the hypothetical index, INCLUDE columns and predicate too, and whether it
  would use it).
- Without it, on a **clone** when auto-indexing's config names one (a server opscore restored
  from the target's backup): :func:`clone_costs` builds the candidate for real inside a
  transaction that is rolled back (the SQL tuning advisor's ``trial_index_on_clone``) and
  plans each statement with it: the planner's own costs, nothing estimated.
- Otherwise (the embedded PostgreSQL 18 has no hypopg): an **estimate**, labelled as such,
  from the statement's plan (EXPLAIN, never executed here): each sequential scan of the table
  whose filter holds the candidate's leading column (a partial index: its predicate, same
  value) is replaced by an index scan costed the way the planner costs one (B-tree descent,
  leaf pages, heap pages interpolated between the correlated and the uncorrelated case by
  pg_stats correlation squared, heap pages skipped for the all-visible part when the index
  holds every column read, CPU per tuple) with the selectivity of the candidate's columns
  from pg_stats. An index that only serves an ORDER BY is not estimated (hypopg, a clone or a
  build decides). Builds are verified by execution anyway (``ops_core.api.autoindex``), so an
  estimate that was too hopeful costs a build, not a slower workload.

The DB time a candidate saves on a statement: the statement's total time over the range
times the relative cost drop (cost_after / cost_before applied to measured time).
"""

from __future__ import annotations

import math
from typing import Any

import psycopg

from ..collectors import live
from ..targets import connection, index_actions
from ..targets.index_actions import index_ddl
from . import whatif
from .autoindex import (
    DEFAULT_RANGE_SEL,
    IndexCandidate,
    StatementColumns,
    selectivity,
    statement_columns,
)
from .autoindex_choice import estimate_bytes

__all__ = ["cost_candidate", "estimate_scan", "filter_columns", "hypothetical_plan", "clone_costs"]

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
    *,
    predicate: dict[str, Any] | None = None,
    covers: bool = False,
    include: list[str] | None = None,
) -> tuple[float, str] | None:
    """(estimated cost of an index scan on ``columns`` replacing this sequential scan, how) or
    None when the index cannot serve the scan: the filter does not hold the leading column, or
    (a partial index) does not hold its predicate with the same value. ``covers``: the index
    holds every column the statement reads (an index-only scan: heap pages only for the part
    the visibility map does not say all-visible)."""
    if not node.get("Filter"):
        return None
    f = filter_columns(node)
    eq = {c for _, c in f.eq}
    rng = {c for _, c in f.range}
    nulls = {c for _, c in f.nulls}
    consts = {c: v for (_, c), v in f.consts.items()}
    frac = 1.0
    if predicate:
        pc, pv = predicate["column"], predicate["value"]
        if not (pc in nulls if pv is None else consts.get(pc) == pv):
            return None
        frac = float(predicate.get("freq") or 1.0)
    elif columns[0] not in eq | rng:
        return None
    rows = max(float(table.get("reltuples") or 0), 1.0)
    pages = max(float(table.get("relpages") or 0), 1.0)
    sel = frac
    used = []
    for c in columns:
        if c in nulls:
            sel *= float((stats.get(c) or {}).get("null_frac") or DEFAULT_RANGE_SEL)
            used.append(c)
        elif c in eq:
            sel *= selectivity(stats.get(c), rows, consts.get(c))
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
    widths = [float((stats.get(c) or {}).get("avg_width") or 8) for c in columns + (include or [])]
    leaf = math.ceil((estimate_bytes(n, widths) - BLOCK) / BLOCK)  # the entries scanned
    descent = math.ceil(math.log(max(rows * frac, 2.0)) / math.log(256)) + 1
    corr = float((stats.get(columns[0]) or {}).get("correlation") or 0.0)
    uncorr_pages = min(n, pages)
    corr_pages = max(1.0, math.ceil(sel * pages))
    max_io = uncorr_pages * rpc
    min_io = rpc + (corr_pages - 1) * spc
    c2 = corr * corr
    heap = max_io + c2 * (min_io - max_io)
    visible = min(1.0, float(table.get("relallvisible") or 0) / pages) if covers else 0.0
    heap *= 1.0 - visible
    cpu = n * (
        costs.get("cpu_index_tuple_cost", 0.005)
        + costs.get("cpu_operator_cost", 0.0025) * len(used)
        + costs.get("cpu_tuple_cost", 0.01)
    )
    cost = (descent + leaf) * rpc + heap + cpu
    how = f"{n:.0f} of {rows:.0f} rows by ({', '.join(used) or 'a full scan of the index'})"
    if predicate:
        how += f" in a partial index of {100 * frac:.1f} % of the rows"
    if covers:
        how += f", index-only ({100 * visible:.0f} % of the pages all-visible)"
    return cost, (
        f"estimate: {how}, correlation {corr:.2f}: index scan ~{cost:.1f} vs "
        f"{node.get('Node Type')} {node['Total Cost']}"
    )


def _ddl(cand: IndexCandidate, conn: psycopg.Connection | None = None) -> str:
    return index_ddl(
        cand.schema_name, cand.table_name, cand.columns, include=cand.include, where=cand.where
    ).as_string(conn)


def hypothetical_plan(
    conn: psycopg.Connection, text: str, cand: IndexCandidate
) -> tuple[float | None, float | None, bool, str | None]:
    """(cost before, cost after, used, why not) of a statement, its values bound or not (then
    its *generic* plan: ``live.plan``, GENERIC_PLAN on 16+, a prepared statement on 14-15)
    without and with the candidate as a hypothetical index, INCLUDE and predicate too (hypopg
    keeps it in the session until ``hypopg_reset``; nothing is built or executed)."""
    before = live.plan(conn, text, fmt="json")
    if not isinstance(before.plan, dict):
        return None, None, False, before.reason
    conn.execute("BEGIN /* opscore */ READ ONLY")
    try:
        made = conn.execute(
            "SELECT /* opscore */ indexname FROM hypopg_create_index(%s)", (_ddl(cand, conn),)
        ).fetchone()
    except psycopg.Error as exc:
        return None, None, False, f"hypopg could not create it: {str(exc).strip()[:200]}"
    finally:
        conn.execute("ROLLBACK /* opscore */")  # hypopg's index outlives the transaction
    try:
        after = live.plan(conn, text, fmt="json")
    finally:
        conn.execute("SELECT /* opscore */ hypopg_reset()")
    if not isinstance(after.plan, dict):
        return None, None, False, after.reason
    used = whatif.uses_index(after.plan, cand.table_name, (), made[0] if made else "")
    return float(before.plan["Total Cost"]), float(after.plan["Total Cost"]), used, None


def clone_costs(
    clone_dsn: str, cand: IndexCandidate, texts: dict[int, str]
) -> dict[int, tuple[float | None, float | None, bool, str | None]]:
    """Per statement (queryid -> text, values bound or ``$n``): (cost before, cost after, used,
    why not), the candidate **built for real** on a clone (a server opscore restored from the
    target's backup, never the target) inside a transaction that is rolled back
    (``actions.trial_index_on_clone``, the SQL tuning advisor's mechanism) and each statement
    planned without it (``live.plan`` on a second connection) and with it (EXPLAIN in the
    trial's read-only transaction; a text with ``$n`` only on 16+, GENERIC_PLAN). Only plain
    reads whose planning calls no function outside pg_catalog are planned."""
    out: dict[int, tuple[float | None, float | None, bool, str | None]] = {}
    before: dict[int, float] = {}
    with connection.connect(clone_dsn, application_name="opscore-trial") as plain:
        for q, text in texts.items():
            why = whatif.read_only_reason(text)
            if why:
                out[q] = (None, None, False, f"not planned: {why}")
                continue
            p = live.plan(plain, text, fmt="json")
            if not isinstance(p.plan, dict):
                out[q] = (None, None, False, p.reason)
                continue
            before[q] = float(p.plan["Total Cost"])
        generic_ok = plain.info.server_version >= 160000
    if not before:
        return out
    with index_actions.trial_index_on_clone(
        clone_dsn, cand.schema_name, cand.table_name, cand.columns, include=cand.include,
        where=cand.where, name=cand.name,
    ) as built:  # fmt: skip
        for q, cost in before.items():
            text = live.rewrite_typed_params(texts[q])
            generic = "$" in text
            if generic and not generic_ok:
                out[q] = (cost, None, False, "no values to plan it with (GENERIC_PLAN: 16+)")
                continue
            opts = "GENERIC_PLAN, FORMAT JSON" if generic else "FORMAT JSON"
            built.execute("SAVEPOINT /* opscore */ plan")
            try:
                doc = whatif.explain_json(built, text, opts)
            except psycopg.Error as exc:
                built.execute("ROLLBACK /* opscore */ TO SAVEPOINT plan")
                out[q] = (cost, None, False, f"the clone could not plan it: {str(exc)[:200]}")
                continue
            plan = doc["Plan"]
            out[q] = (cost, float(plan["Total Cost"]),
                      whatif.uses_index(plan, cand.table_name, (), cand.name), None)  # fmt: skip
    return out


def cost_candidate(
    conn: psycopg.Connection,
    cand: IndexCandidate,
    affected: list[dict[str, Any]],
    *,
    hypopg: bool,
    plans: dict[int, dict[str, Any] | None],
    table: dict[str, Any],
    costs: dict[str, float],
    clone_dsn: str | None = None,
) -> None:
    """Cost ``cand`` for each affected read statement (rows: queryid, calls, total_ms, bound:
    the text with values bound or None, generic: the text with ``$n``, why: why not) with
    hypopg, else on the clone when one is given, else an estimate. Fills ``statements``,
    ``method`` and ``saved_ms``."""
    cand.method = "hypopg" if hypopg else "clone" if clone_dsn else "estimate"
    on_clone: dict[int, tuple] = {}
    if cand.method == "clone":
        texts = {int(st["queryid"]): st.get("bound") or st.get("generic") or "" for st in affected}
        on_clone = clone_costs(clone_dsn, cand, {q: t for q, t in texts.items() if t})  # type: ignore[arg-type]
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
        if cand.method in ("hypopg", "clone"):
            if cand.method == "hypopg":
                before, after, used, why = hypothetical_plan(conn, text or st["generic"], cand)
            else:
                before, after, used, why = on_clone.get(
                    int(st["queryid"]), (None, None, False, "no text")
                )
            if before is None or after is None:
                row["why"] = why
                continue
            row.update(cost_before=before, cost_after=after, used=used)
            if not text:
                row["plan"] = "generic"
        else:
            plan = plans.get(int(st["queryid"]))
            if plan is None:
                row["why"] = st.get("why") or "no plan"
                continue
            before = float(plan["Total Cost"])
            shape = statement_columns(st.get("generic") or "")
            tname = f"{cand.schema_name}.{cand.table_name}"
            held = set(cand.columns) | set(cand.include)
            held |= {cand.predicate["column"]} if cand.predicate else set()
            covers = shape.parsed and not shape.star and set(shape.on(tname)["refs"]) <= held
            saved = 0.0
            notes = []
            for node in _walk(plan):
                if node.get("Node Type") not in ("Seq Scan", "Parallel Seq Scan"):
                    continue
                if node.get("Relation Name") != cand.table_name or (
                    node.get("Schema") not in (None, cand.schema_name)
                ):
                    continue
                est = estimate_scan(
                    node, cand.columns, table, cand.column_stats, costs,
                    predicate=cand.predicate, covers=covers, include=cand.include,
                )  # fmt: skip
                if est is None:
                    continue
                idx_cost, how = est
                notes.append(how)
                saved += max(0.0, float(node["Total Cost"]) - idx_cost)
            row.update(cost_before=before, cost_after=max(before - saved, 0.0), used=saved > 0)
            if notes:
                row["estimate"] = "; ".join(notes)
            else:
                row["why"] = (
                    "no sequential scan of the table whose filter holds the partial index's "
                    "predicate"
                    if cand.predicate
                    else "no sequential scan of the table filtering on the leading column"
                )
        if row["used"] and row["cost_before"]:
            ratio = max(0.0, 1.0 - float(row["cost_after"]) / float(row["cost_before"]))
            row["saved_ms"] = round(float(st["total_ms"]) * ratio, 3)
    cand.saved_ms = sum(r["saved_ms"] for r in cand.statements)
