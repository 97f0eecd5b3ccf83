"""What a statement touches, from its text (pglast): tables, and the columns compared for
equality with a parameter or constant in its WHERE clause (candidate index keys).

Pure. Texts are pg_stat_statements' normalized ones (constants as ``$1``); a text pglast
cannot parse gives an empty shape (``parsed`` False), never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import pglast
from pglast import ast, enums
from pglast.visitors import Visitor


@dataclass(frozen=True)
class SqlShape:
    parsed: bool
    kind: str = ""  # select, update, delete, insert, other
    tables: tuple[str, ...] = ()  # schema.table as written (schema 'public' when omitted)
    eq_columns: tuple[tuple[str, str], ...] = ()  # (table, column) = $n / constant / IN list
    aggregates: bool = False  # GROUP BY or an aggregate: rows per call say nothing of the filter
    notes: tuple[str, ...] = field(default_factory=tuple)


class _Collect(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[str] = []
        self.aliases: dict[str, str] = {}
        self.eq: list[tuple[list[str], ast.Node]] = []
        self.agg = False

    def visit_RangeVar(self, ancestors, node: ast.RangeVar) -> None:
        name = f"{node.schemaname or 'public'}.{node.relname}"
        if name not in self.tables:
            self.tables.append(name)
        self.aliases[node.relname] = name
        if node.alias is not None:
            self.aliases[node.alias.aliasname] = name

    def visit_FuncCall(self, ancestors, node: ast.FuncCall) -> None:
        fn = node.funcname[-1].sval if node.funcname else ""
        if fn in ("count", "sum", "avg", "min", "max", "array_agg", "string_agg"):
            if node.over is None:
                self.agg = True

    def visit_SelectStmt(self, ancestors, node: ast.SelectStmt) -> None:
        if node.groupClause:
            self.agg = True

    def visit_A_Expr(self, ancestors, node: ast.A_Expr) -> None:
        op = node.name[-1].sval if node.name else ""
        if op != "=" or node.kind not in (enums.A_Expr_Kind.AEXPR_OP, enums.A_Expr_Kind.AEXPR_IN):
            return
        # only predicates of WHERE clauses (not join conditions, not SET lists)
        if "whereClause" not in _members(ancestors):
            return
        for col, other in ((node.lexpr, node.rexpr), (node.rexpr, node.lexpr)):
            if isinstance(col, ast.ColumnRef) and _is_value(other):
                self.eq.append(([f.sval for f in col.fields if isinstance(f, ast.String)], col))


def _members(ancestors) -> list:
    out = []
    a = ancestors
    while a is not None:
        out.append(getattr(a, "member", None))
        a = getattr(a, "parent", None)
    return out


def _is_value(node) -> bool:
    if isinstance(node, tuple | list):
        return bool(node) and all(_is_value(n) for n in node)
    return isinstance(node, ast.ParamRef | ast.A_Const | ast.TypeCast)


def statement_kind(stmt: object) -> str:
    """select / update / delete / insert / other, from a pglast statement node."""
    return {
        ast.SelectStmt: "select",
        ast.UpdateStmt: "update",
        ast.DeleteStmt: "delete",
        ast.InsertStmt: "insert",
    }.get(type(stmt), "other")


@lru_cache(maxsize=4096)
def shape(text: str | None) -> SqlShape:
    if not text:
        return SqlShape(False)
    try:
        tree = pglast.parse_sql(text)
    except Exception:  # noqa: BLE001 - any unparsable text: no shape
        return SqlShape(False, notes=("not parsable",))
    if not tree:
        return SqlShape(False)
    stmt = tree[0].stmt
    kind = statement_kind(stmt)
    v = _Collect()
    v(tree[0])
    cols: list[tuple[str, str]] = []
    for fields, _ in v.eq:
        if len(fields) >= 2:
            table = v.aliases.get(fields[-2])
        elif len(v.tables) == 1:
            table = v.tables[0]
        else:
            table = None  # unqualified column in a join: which table is unknown
        if table and (table, fields[-1]) not in cols:
            cols.append((table, fields[-1]))
    return SqlShape(True, kind, tuple(v.tables), tuple(cols), v.agg)
