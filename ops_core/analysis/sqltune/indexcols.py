"""Index columns for a scanned table, read with pglast (never regexes over SQL): the columns a
plan's Filter compares for equality come first (``addm.indexbase.filter_columns``), then one
column it compares by range (``<``, ``>=``, BETWEEN: a B-tree serves one range after its
equalities), or else, for a single-table statement with ORDER BY ... LIMIT, the ORDER BY
columns (the index then returns the rows in order and the LIMIT stops the scan)."""

from __future__ import annotations

import pglast
from pglast import ast, enums

from ..addm.indexbase import filter_columns

_RANGE = {"<", ">", "<=", ">="}


def _col(node: object) -> str | None:
    if isinstance(node, ast.ColumnRef):
        names = [f.sval for f in node.fields if isinstance(f, ast.String)]
        return names[-1] if names else None
    if isinstance(node, ast.TypeCast):  # (col)::type as the planner prints a cast column
        return None
    return None


def _value(node: object) -> bool:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    return isinstance(node, (ast.A_Const, ast.ParamRef))


def _walk(node: object):
    if isinstance(node, ast.Node):
        yield node
        for name in node:  # the node's attribute names
            yield from _walk(getattr(node, name))
    elif isinstance(node, tuple):
        for x in node:
            yield from _walk(x)


def range_columns(filter_text: str) -> list[str]:
    """Columns a plan's Filter compares with a value by range (in order of appearance)."""
    try:
        stmt = pglast.parse_sql(f"SELECT 1 FROM x WHERE {filter_text}")[0].stmt
    except pglast.parser.ParseError:
        return []
    out: list[str] = []
    for n in _walk(stmt.whereClause):
        if not isinstance(n, ast.A_Expr):
            continue
        if n.kind == enums.A_Expr_Kind.AEXPR_BETWEEN:
            c = _col(n.lexpr)
        elif n.kind == enums.A_Expr_Kind.AEXPR_OP and n.name and n.name[-1].sval in _RANGE:
            c = _col(n.lexpr) if _value(n.rexpr) else _col(n.rexpr) if _value(n.lexpr) else None
        else:
            continue
        if c and c not in out:
            out.append(c)
    return out


def order_columns(text: str) -> list[str]:
    """The ORDER BY columns of a single-table SELECT with a LIMIT, all plain columns in one
    direction; [] otherwise."""
    try:
        stmt = pglast.parse_sql(text)[0].stmt
    except pglast.parser.ParseError:
        return []
    if not isinstance(stmt, ast.SelectStmt) or stmt.limitCount is None or not stmt.sortClause:
        return []
    if len(stmt.fromClause or ()) != 1 or not isinstance(stmt.fromClause[0], ast.RangeVar):
        return []
    cols, dirs = [], set()
    for s in stmt.sortClause:
        c = _col(s.node)
        if c is None:
            return []
        cols.append(c)
        dirs.add(s.sortby_dir == enums.SortByDir.SORTBY_DESC)
    return cols if len(dirs) == 1 else []


def index_columns(filter_text: str, statement: str) -> list[str]:
    """Equality columns, then one range column or the ORDER BY columns (at most 3 in all)."""
    eq = [c for c in filter_columns(filter_text) if c]
    cols = list(dict.fromkeys(eq))
    rng = [c for c in range_columns(filter_text) if c not in cols]
    if rng:
        cols.append(rng[0])
    elif cols:
        cols += [c for c in order_columns(statement) if c not in cols]
    return cols[:3]


def limit_params(text: str) -> dict[int, str]:
    """``$n`` given as LIMIT or OFFSET of the top-level SELECT -> the value to bind when no
    column statistics can say (LIMIT 10, OFFSET 0)."""
    try:
        stmt = pglast.parse_sql(text)[0].stmt
    except pglast.parser.ParseError:
        return {}
    out: dict[int, str] = {}
    if isinstance(stmt, ast.SelectStmt):
        for node, value in ((stmt.limitCount, "10"), (stmt.limitOffset, "0")):
            while isinstance(node, ast.TypeCast):
                node = node.arg
            if isinstance(node, ast.ParamRef):
                out[node.number] = value
    return out
