"""Missing indexes that a plan shape shows rather than a filter: "the newest N" (ORDER BY a
column LIMIT n sorting a whole large table), a hash join reading a whole large table to
match a few rows, and an index scan on the wrong index (its condition finds many rows, a
filter on another column throws most of them away). Called from
:func:`indexfind.plan_missing_index` with the statement's plan.

Pure: the plan's Sort Key and Hash Cond texts are wrapped in a SELECT for pglast to parse,
never sent to a server.
"""

from __future__ import annotations

from typing import Any

import pglast
from pglast import enums as en

from .indexbase import (
    LARGE_TABLE_ROWS,
    SELECTIVE,
    _index_finding,
    _table_rows,
    filter_columns,
    index_state,
)
from .model import AddmInput, qident


def _sort_keys(keys: list[str]) -> list[tuple[str, bool]] | None:
    """A plan's Sort Key list as (column, descending), or None when a key is not a plain
    column (an expression) or the NULLS order is not the direction's default."""
    out = []
    for k in keys:
        try:
            sb = pglast.parse_sql(f"SELECT 1 ORDER BY {k}")[0].stmt.sortClause[0]
        except Exception:  # noqa: BLE001 - not parsable: no claim
            return None
        fields = getattr(sb.node, "fields", None)
        if not fields or not isinstance(fields[-1], pglast.ast.String):
            return None
        desc = sb.sortby_dir == en.SortByDir.SORTBY_DESC
        default_nulls = sb.sortby_nulls == en.SortByNulls.SORTBY_NULLS_DEFAULT or (
            sb.sortby_nulls == (en.SortByNulls.SORTBY_NULLS_FIRST if desc
                                else en.SortByNulls.SORTBY_NULLS_LAST)
        )  # fmt: skip
        if not default_nulls:
            return None
        out.append((fields[-1].sval, desc))
    return out


def _limit_sort_scan(node: dict) -> tuple[dict, dict] | None:
    """Limit -> (Gather Merge ->) Sort -> (Parallel) Seq Scan without a filter: the Sort and
    the scan, or None."""
    if node.get("Node Type") != "Limit":
        for c in node.get("Plans", []):
            found = _limit_sort_scan(c)
            if found:
                return found
        return None
    n = node
    while n.get("Plans") and n.get("Node Type") in ("Limit", "Gather Merge"):
        n = n["Plans"][0]
    if n.get("Node Type") != "Sort" or not n.get("Plans"):
        return None
    scan = n["Plans"][0]
    if scan.get("Node Type") != "Seq Scan" or scan.get("Filter"):
        return None
    return n, scan


def sort_limit_missing_index(inp: AddmInput, r: Any, plan: dict, tables: dict, total):
    """ "The newest N": ORDER BY a column LIMIT n over a large table, planned as a sort of the
    whole table (no index leads with the sort column): each call reads and sorts every row to
    return a few; an index on the sort column returns them in order."""
    found = _limit_sort_scan(plan)
    if found is None or r.calls <= 0:
        return None
    sort, scan = found
    keys = _sort_keys(sort.get("Sort Key") or [])
    if not keys:
        return None
    table = f"{scan.get('Schema') or 'public'}.{scan.get('Relation Name')}"
    t = tables.get(table)
    rows = _table_rows(inp, table, t, float(scan.get("Plan Width") or 0))
    per_call = float(r.rows) / float(r.calls)
    if rows < LARGE_TABLE_ROWS or per_call > max(1.0, SELECTIVE * rows):
        return None
    st = index_state(inp, inp.catalog_database, table, keys[0][0])
    if st is None or not st.missing:
        return None
    mixed = len({d for _, d in keys}) > 1  # one direction: a plain index scans either way
    cols = ", ".join(qident(c) + (" DESC" if d and mixed else "") for c, d in keys)
    order = ", ".join(c + (" DESC" if d else "") for c, d in keys)
    ev = {
        "queryid": int(r.queryid),
        "calls": int(r.calls),
        "rows_per_call": round(per_call, 2),
        "table_rows": round(rows),
        "sort_key": sort.get("Sort Key"),
        "plan": {"node": "Limit -> Sort -> Seq Scan", "method": "plan"},
        "db_time_s": round(float(r.db_time_s), 3),
    }
    return _index_finding(
        r, table, [keys[0][0]], cols,
        f"Missing index on {table} ({', '.join(c for c, _ in keys)}): ORDER BY {order} LIMIT "
        f"sorts the whole table for ~{per_call:,.0f} rows per call",
        f"Each call reads and sorts all ~{rows:,.0f} rows to return ~{per_call:,.0f}: an index "
        f"on {order} returns them in order, reading only those.",
        ev, total,
    )  # fmt: skip


def _rows_under(node: dict) -> float:
    return float(node.get("Plan Rows") or 0)


def _seq_scan_below(node: dict) -> dict | None:
    """The Seq Scan a join input is (through a Hash, Gather, Materialize), or None."""
    n = node
    while n.get("Node Type") in ("Hash", "Gather", "Materialize") and n.get("Plans"):
        n = n["Plans"][0]
    return n if n.get("Node Type") == "Seq Scan" else None


def _join_columns(cond: str, alias: str) -> list[str]:
    """Columns of ``alias`` in a join condition's equalities (``(l."OrderRef" = o.id)``)."""
    try:
        where = pglast.parse_sql(f"SELECT 1 WHERE {cond}")[0].stmt.whereClause
    except Exception:  # noqa: BLE001 - not parsable: no claim
        return []
    exprs = list(where.args) if isinstance(where, pglast.ast.BoolExpr) else [where]
    out = []
    for e in exprs:
        if not isinstance(e, pglast.ast.A_Expr) or not e.name or e.name[-1].sval != "=":
            continue
        for side in (e.lexpr, e.rexpr):
            while isinstance(side, pglast.ast.TypeCast):
                side = side.arg
            if isinstance(side, pglast.ast.ColumnRef) and len(side.fields) == 2:
                q, c = (getattr(f, "sval", None) for f in side.fields)
                if q == alias and c and c not in out:
                    out.append(c)
    return out


def join_missing_index(inp: AddmInput, r: Any, plan: dict, tables: dict, total):
    """A hash join that reads a whole large table to match a few rows from the other side
    (``... JOIN lines l ON l.order_id = o.id WHERE o.customer_id = $1``): with an index on
    the large table's join column the planner would look the few rows up instead."""

    def walk(node: dict):
        if node.get("Hash Cond") and len(node.get("Plans", [])) == 2:
            yield node
        for c in node.get("Plans", []):
            yield from walk(c)

    if r.calls <= 0:
        return None
    for join in walk(plan):
        a, b = join["Plans"]
        for big, small in ((a, b), (b, a)):
            scan = _seq_scan_below(big)
            if scan is None or not scan.get("Alias"):
                continue
            table = f"{scan.get('Schema') or 'public'}.{scan.get('Relation Name')}"
            rows = _table_rows(inp, table, tables.get(table), float(scan.get("Plan Width") or 0))
            # few rows on the other side AND few out of the join: a join that needs most of
            # the large table (a fact table joined to a small dimension) is not this
            limit = max(1.0, SELECTIVE * rows)
            if rows < LARGE_TABLE_ROWS or _rows_under(small) > limit or _rows_under(join) > limit:
                continue
            cols = _join_columns(join["Hash Cond"], scan["Alias"])
            if not cols:
                continue
            st = index_state(inp, inp.catalog_database, table, cols[0])
            if st is None or not st.missing:
                continue
            ev = {
                "queryid": int(r.queryid),
                "calls": int(r.calls),
                "table_rows": round(rows),
                "join_condition": join["Hash Cond"],
                "other_side_rows": _rows_under(small),
                "plan": {"node": "Hash Join over a Seq Scan", "method": "plan"},
                "db_time_s": round(float(r.db_time_s), 3),
            }
            return _index_finding(
                r, table, cols, ", ".join(qident(c) for c in cols),
                f"Missing index on {table} ({', '.join(cols)}): a join reads the whole table "
                f"to match ~{_rows_under(small):,.0f} rows of the other side",
                f"Each call scans all ~{rows:,.0f} rows of {table} and hashes them against "
                f"~{_rows_under(small):,.0f} rows ({join['Hash Cond']}); with an index on "
                f"{', '.join(cols)} the planner looks those few up instead.",
                ev, total,
            )  # fmt: skip
    return None


#: pages read per call (pg_stat_statements buffers) for one row returned, at least: an index
#: scan reading that many to return a row finds the rows by the wrong column
WEAK_PAGES_PER_ROW = 20
WEAK_MIN_PAGES = 100  # per call: below that the lookup is cheap whatever index it uses


def _filtered_index_scans(node: dict, out: list[dict]) -> list[dict]:
    """Index scans (plain or bitmap) whose rows a Filter then narrows, with their index name
    and condition: [{scan node, index, cond}]."""
    t = node.get("Node Type")
    if node.get("Filter") and t in ("Index Scan", "Index Only Scan"):
        out.append({"node": node, "index": node.get("Index Name"), "cond": node.get("Index Cond")})
    elif node.get("Filter") and t == "Bitmap Heap Scan":
        kids = [c for c in node.get("Plans", []) if c.get("Node Type") == "Bitmap Index Scan"]
        if len(kids) == 1:  # one index: a BitmapAnd/Or already combines several
            out.append(
                {
                    "node": node,
                    "index": kids[0].get("Index Name"),
                    "cond": kids[0].get("Index Cond"),
                }
            )
    for c in node.get("Plans", []):
        _filtered_index_scans(c, out)
    return out


def weak_index_missing_index(inp: AddmInput, r: Any, plan: dict, tables: dict, total):
    """An index scan on an index of a column that finds many rows (``created_on = $1``: a
    day's orders) whose Filter on another column (``customer_id = $2``) keeps few: the
    statement reads many pages per row it returns (pg_stat_statements buffers). An index on
    the filtered column(s), then the indexed ones, finds the rows directly."""
    if r.calls <= 0:
        return None
    calls = float(r.calls)
    pages = float(r.shared_blks_hit + r.shared_blks_read) / calls
    per_call = float(r.rows) / calls
    if pages < WEAK_MIN_PAGES or pages < WEAK_PAGES_PER_ROW * max(per_call, 1.0):
        return None
    for scan in _filtered_index_scans(plan, []):
        node = scan["node"]
        table = f"{node.get('Schema') or 'public'}.{node.get('Relation Name')}"
        defs = inp.index_catalog.get(table) or []
        used = next(
            (d for d in defs if (d.get("name") or "").split(".")[-1] == scan["index"]), None
        )
        if used is None:
            continue
        filtered = [c for c in filter_columns(node["Filter"]) if c not in used["columns"]]
        cond = [c for c in filter_columns(scan["cond"] or "") if c in used["columns"]]
        if not filtered:
            continue
        st = index_state(inp, inp.catalog_database, table, filtered[0])
        if st is None or not st.missing:
            continue  # an index on the filtered column exists: the planner's choice, not this
        keys = [*filtered, *(c for c in cond if c not in filtered)]
        ev = {
            "queryid": int(r.queryid),
            "calls": int(r.calls),
            "pages_per_call": round(pages, 1),
            "rows_per_call": round(per_call, 2),
            "index_now": used.get("name"),
            "index_cond": scan["cond"],
            "filter": node["Filter"],
            "plan": {"node": node.get("Node Type"), "method": "plan"},
            "db_time_s": round(float(r.db_time_s), 3),
        }
        return _index_finding(
            r, table, keys, ", ".join(qident(c) for c in keys),
            f"Missing index on {table} ({', '.join(keys)}): lookups go through "
            f"{used.get('name')} and filter out most of what it finds",
            f"Each call reads ~{pages:,.0f} pages to return ~{per_call:.1f} rows: "
            f"{used.get('name')} finds the rows of {scan['cond']} and the filter "
            f"{node['Filter']} keeps few of them; an index on ({', '.join(keys)}) finds those "
            "directly.",
            ev, total,
        )  # fmt: skip
    return None
