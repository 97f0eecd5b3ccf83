"""Deep LIMIT/OFFSET pagination: every page reads and throws away all the rows before it.

``ORDER BY id LIMIT 20 OFFSET 200000`` is correct SQL on an index that is there and used:
the index scan still walks 200,020 entries (and fetches their rows) to return 20. No index
fixes it; keyset pagination does (``WHERE id > $last ORDER BY id LIMIT 20``: the index seeks
to the page). pg_stat_statements does not keep the offsets a parameter took, so the evidence
is what a call cost against what it returned: a page that touches at least READ_PER_ROW
buffers per row returned (a page read by keyset touches a few per row: the index path and
each row's heap page) and at least MIN_BUFFERS per call.
"""

from __future__ import annotations

from typing import Any

import pglast
from pglast import ast, enums
from pglast.stream import RawStream
from pglast.visitors import Visitor

from .model import AddmInput, Finding, Recommendation, pct, short
from .sqlshape import SqlShape

#: a page returns at most this many rows (more is a batch or an export, not a page)
MAX_PAGE_ROWS = 1_000
#: buffers touched per row returned from which the rows skipped are the cost
READ_PER_ROW = 10
MIN_BUFFERS = 300
#: a literal OFFSET under this is a shallow page, whatever the cost comes from
MIN_LITERAL_OFFSET = 1_000
#: buffers a keyset page touches besides its rows' heap pages: a B-tree's root-to-leaf path
#: (3-4 levels up to hundreds of millions of entries) - only the benefit estimate uses it
KEYSET_INDEX_PATH = 4.0


class _Params(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.highest = 0

    def visit_ParamRef(self, ancestors, node: ast.ParamRef) -> None:
        self.highest = max(self.highest, node.number or 0)


def _page(query: str) -> tuple[Any, ast.SelectStmt] | None:
    """The parsed statement and its top-level SELECT when it pages by OFFSET over an ORDER BY
    (a literal offset deep enough, or a parameter)."""
    try:
        tree = pglast.parse_sql(query)
    except Exception:  # noqa: BLE001 - unparsable: not judged
        return None
    if len(tree) != 1 or not isinstance(tree[0].stmt, ast.SelectStmt):
        return None
    sel = tree[0].stmt
    off = sel.limitOffset
    if off is None or not sel.sortClause:
        return None
    if isinstance(off, ast.A_Const):
        val = getattr(off.val, "ival", None)
        if not isinstance(val, int) or val < MIN_LITERAL_OFFSET:
            return None
    elif not isinstance(off, ast.ParamRef):
        return None
    return tree, sel


def keyset(query: str) -> str | None:
    """The statement rewritten to keyset pagination: OFFSET dropped, the ORDER BY columns
    compared with the previous page's last values (a new parameter each, after the
    statement's own), ``<`` for a descending order. None when the order mixes directions or
    sorts by something other than columns (then the advice is in words)."""
    page = _page(query)
    if page is None:
        return None
    tree, sel = page
    if sel.op != enums.SetOperation.SETOP_NONE:
        return None  # a UNION's pages: its WHERE is in each arm, not rewritten here
    cols, dirs = [], set()
    for sb in sel.sortClause:
        if not isinstance(sb.node, ast.ColumnRef):
            return None
        cols.append(sb.node)
        dirs.add(sb.sortby_dir == enums.SortByDir.SORTBY_DESC)
    if len(dirs) != 1:
        return None
    params = _Params()
    params(tree[0])
    nxt = [ast.ParamRef(number=params.highest + 1 + i) for i in range(len(cols))]
    op = "<" if dirs.pop() else ">"
    if len(cols) == 1:
        left, right = cols[0], nxt[0]
    else:
        left = ast.RowExpr(args=tuple(cols), row_format=enums.CoercionForm.COERCE_IMPLICIT_CAST)
        right = ast.RowExpr(args=tuple(nxt), row_format=enums.CoercionForm.COERCE_IMPLICIT_CAST)
    cond: ast.Node = ast.A_Expr(
        kind=enums.A_Expr_Kind.AEXPR_OP, name=(ast.String(sval=op),), lexpr=left, rexpr=right
    )
    if sel.whereClause is not None:
        cond = ast.BoolExpr(boolop=enums.BoolExprType.AND_EXPR, args=(sel.whereClause, cond))
    sel.whereClause = cond
    sel.limitOffset = None
    return RawStream()(tree)


def deep_offset(inp: AddmInput, r: Any, sh: SqlShape, total: float) -> Finding | None:
    """The finding for a statement paging deep by OFFSET, judged on what its calls touched
    against what they returned."""
    if not sh.parsed or sh.kind != "select" or sh.aggregates or not r.query:
        return None
    if _page(r.query) is None:
        return None
    calls = max(float(r.calls), 1.0)
    rows = float(r.rows) / calls
    buffers = float(r.shared_blks_hit + r.shared_blks_read) / calls
    if rows > MAX_PAGE_ROWS or buffers < max(MIN_BUFFERS, READ_PER_ROW * max(rows, 1.0)):
        return None
    rewritten = keyset(r.query)
    order = ", ".join(RawStream()(sb) for sb in _page(r.query)[1].sortClause)  # type: ignore[index]
    # what a keyset page would touch: about the rows it returns (their heap pages) and an
    # index path; the rest of what each call touched is the skipped rows
    saved = max(0.0, 1.0 - (rows + KEYSET_INDEX_PATH) / buffers)
    benefit = float(r.db_time_s) * saved
    how = (
        f"{rewritten}  -- the previous page's last {order.replace(' DESC', '')} as the new "
        "parameter(s)"
        if rewritten
        else f"Page by the last row seen instead of OFFSET: WHERE ({order}) beyond the "
        "previous page's last values, ORDER BY the same, LIMIT n"
    )
    return Finding(
        type="deep_offset",
        title=(
            f"Pages read by OFFSET: each call touches {buffers:,.0f} buffers to return "
            f"{rows:,.1f} rows, {pct(r.db_time_s, total):.0f} % of DB time"
        ),
        impact_db_time_s=float(r.db_time_s),
        impact_pct=pct(r.db_time_s, total),
        evidence={
            "queryid": int(r.queryid),
            "calls": int(r.calls),
            "rows_per_call": round(rows, 2),
            "buffers_per_call": round(buffers, 1),
            "order_by": order,
            "keyset_sql": rewritten,
            "judged": f"at least {READ_PER_ROW} buffers touched per row returned and "
            f"{MIN_BUFFERS} per call, with an OFFSET over an ORDER BY: the skipped rows are "
            "the cost (pg_stat_statements keeps no parameter values)",
        },
        objects=list(sh.tables),
        statements=[{"queryid": int(r.queryid), "query": r.query}],
        recommendations=[
            Recommendation(
                "application",
                how,
                f"Statement {int(r.queryid)} ({short(r.query, 80)}) skips the rows before "
                "each page by reading them: deep pages cost as much as reading the table up "
                "to them. Keyset pagination seeks the index to the page (the ORDER BY must "
                "be unique: end it with the primary key), so every page costs what the "
                "first one does.",
                benefit,
                pct(benefit, total),
            )
        ],
    )
