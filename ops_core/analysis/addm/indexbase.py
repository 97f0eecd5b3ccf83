"""What the missing-index checks share: the size thresholds, the indexes leading with a column
(:class:`IndexState`), a table's row and page counts, the sequential scans of a plan, the
columns a plan's Filter compares, and the finding that creates an index with the time its scan
costs. :mod:`indexfind` (filters, counters, foreign keys, expressions) and :mod:`indexplans`
(sort and join shapes) build on it; neither imports the other's way back.

Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .model import AddmInput, Finding, Recommendation, pct, qtable

LARGE_TABLE_ROWS = 5_000  # rows read per sequential scan for a table to count as large
SELECTIVE = 0.01  # at most this share of the scanned rows returned per call
SCAN_SHARE = 0.2  # pages read per call (average) vs the table's pages: the statement scans
BLOCK = 8192


@dataclass
class IndexState:
    """Indexes leading with a column: ``valid`` ones now (name, oid, columns), the ``invalid``
    ones, and the scans the valid ones served in the range."""

    valid: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[dict[str, Any]] = field(default_factory=list)
    scans_in_range: int = 0

    @property
    def missing(self) -> bool:
        return not self.valid


def index_state(inp: AddmInput, datname: str | None, table: str, column: str) -> IndexState | None:
    """The indexes of ``table`` leading with ``column``; None when the catalog of that table's
    database was not read (then no missing-index claim is made)."""
    if datname != inp.catalog_database or table not in inp.indexes:
        return None
    defs = inp.index_catalog.get(table)
    if defs is None:  # only the key columns are known
        defs = [{"name": None, "oid": None, "columns": c} for c in inp.indexes[table]]
    leading = [d for d in defs if d.get("columns") and d["columns"][0] == column]
    st = IndexState(
        valid=[d for d in leading if d.get("valid", True)],
        invalid=[d for d in leading if not d.get("valid", True)],
    )
    sc = inp.index_scans
    oids = {int(d["oid"]) for d in st.valid if d.get("oid") is not None}
    if oids and sc is not None and not sc.empty and "indexrelid" in sc.columns:
        mine = sc[(sc["datname"] == datname) & sc["indexrelid"].astype("int64").isin(oids)]
        st.scans_in_range = int(pd.to_numeric(mine["idx_scan"]).fillna(0).sum())
    return st


def _table_pages(inp: AddmInput, table: str, t: Any) -> float | None:
    cat = inp.table_catalog.get(table) or {}
    pages = float(cat.get("relpages") or 0)
    if pages <= 0:
        size = getattr(t, "table_bytes", None)
        pages = float(size) / BLOCK if size is not None and not pd.isna(size) else 0.0
    return pages or None


def _plan_index(inp: AddmInput, query: str, table: str) -> str | None | bool:
    """The index the statement's current generic plan uses on ``table``: its name, False when
    the plan scans the table without one, None when the server cannot say (before 16)."""
    if inp.explain is None:
        return None
    plan = inp.explain(query)
    if not plan:
        return None
    rel = table.split(".", 1)[-1]
    found: list[str | bool] = []

    def walk(node: dict, heap: bool = False) -> None:
        mine = node.get("Relation Name") == rel
        if mine or (heap and node.get("Node Type") == "Bitmap Index Scan"):
            found.append(node.get("Index Name") or False)
        for c in node.get("Plans", []):
            walk(c, mine and node.get("Node Type") == "Bitmap Heap Scan")

    walk(plan)
    named = [f for f in found if f]
    return named[0] if named else (False if found else None)


def _scans(node: dict, out: list[dict]) -> list[dict]:
    """Sequential scans with a filter in a JSON plan (parallel ones included)."""
    if node.get("Node Type") == "Seq Scan" and node.get("Filter"):
        out.append(node)
    for c in node.get("Plans", []):
        _scans(c, out)
    return out


def filter_columns(filter_text: str) -> list[str]:
    """Columns a plan's Filter compares for equality with a value (pglast), e.g.
    ``((t.id = $1) AND (t.kind = 'a'::text))`` -> ``['id', 'kind']`` (qualified or not)."""
    from .sqlshape import predicate_columns

    return list(predicate_columns(filter_text))


def _table_rows(inp: AddmInput, table: str, t: Any, width: float = 0.0) -> float:
    """The most the range or the catalog says the table holds (an unanalysed new table has
    reltuples -1 and no range counters: its current size over the row width then; a table
    full of dead rows has few live ones but a scan reads all pages)."""
    cat = inp.table_catalog.get(table) or {}
    best = max(float(cat.get("reltuples") or 0), 0.0)
    pages = float(cat.get("pages_now") or cat.get("relpages") or 0)
    if pages > 0:
        best = max(best, pages * BLOCK / (max(width, 8.0) + 28.0))
    if t is not None:
        best = max(best, float(t.n_live_tup or 0))
        if t.seq_scan:
            best = max(best, float(t.seq_tup_read or 0) / float(t.seq_scan))
    return best


def _index_finding(
    r,
    table: str,
    cols: list[str],
    keys_sql: str,
    title: str,
    why: str,
    ev: dict[str, Any],
    total: float,
) -> Finding:
    """A missing_index finding whose action creates an index on ``table`` (``keys_sql``: its
    key list as SQL), claiming what the scan costs (:func:`scan_time_s`)."""
    impact = scan_time_s(r)
    ev["scan_time_s"] = round(impact, 3)
    benefit = 0.95 * impact
    sql = f"CREATE INDEX CONCURRENTLY ON {qtable(table)} ({keys_sql});"
    recs = [Recommendation("sql", sql, why, benefit, pct(benefit, total))]
    return missing_index_finding(r, table, cols, title, impact, ev, recs, total)


def missing_index_finding(r, table, cols, title, impact, ev, recs, total) -> Finding:
    """A missing_index finding on columns ``cols`` of ``table`` for statement ``r``."""
    return Finding(
        type="missing_index",
        title=title,
        impact_db_time_s=impact,
        impact_pct=pct(impact, total),
        evidence=ev,
        objects=[table, *(f"{table}.{c}" for c in cols)],
        statements=[{"queryid": int(r.queryid), "query": r.query}],
        recommendations=recs,
    )


def scan_time_s(r: Any) -> float:
    """The part of a statement's DB time an index takes away: the scan's own work when ASH
    sampled it: CPU, I/O reads, buffer LWLocks, and IPC (a parallel scan's leader waits on its
    workers: the index takes that away with the scan). Waits on locks, clients or timers
    (pg_sleep) stay with an index, so they are not claimed. Without samples, its execution
    time."""
    if float(getattr(r, "ash_s", 0.0) or 0.0) <= 0:
        return float(r.db_time_s)
    cols = ("ash_cpu_s", "ash_io_s", "ash_lwlock_s", "ash_ipc_s")
    return sum(float(getattr(r, c, 0.0) or 0.0) for c in cols)
