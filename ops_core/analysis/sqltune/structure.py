"""SQL structure checks (pglast, never regexes over SQL): non-sargable predicates (a function,
cast or arithmetic around a column), pattern searches no B-tree serves, OR across columns,
NOT IN over a subquery, correlated scalar subqueries, OFFSET pagination, SELECT * feeding a
sort. Each finding says why; some carry a rewrite that should return the same rows (the advisor
executes both and compares them before it says so)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta

import pglast
from pglast import ast, enums
from pglast.stream import RawStream
from pglast.visitors import Visitor

from ..addm.model import qident, qtable

_CMP = {"=", "<", ">", "<=", ">="}
_TRUNC_STEP = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
}


@dataclass
class StructureFinding:
    kind: str  # non_sargable / or_across_columns / not_in_subquery / correlated_subquery /
    #            offset_pagination / select_star_sort / pattern_search
    message: str
    column: str | None = None
    rewrite: str | None = None  # the whole statement rewritten, when there is one


class ParseFailed(ValueError):
    """pglast could not parse the text: the parser's own message."""


def parse(text: str) -> ast.Node:
    try:
        stmts = pglast.parse_sql(text)
    except pglast.parser.ParseError as exc:
        raise ParseFailed(str(exc)) from None
    if len(stmts) != 1:
        raise ParseFailed(f"{len(stmts)} statements: give one statement")
    return stmts[0].stmt


def _col(node) -> str | None:
    if isinstance(node, ast.ColumnRef):
        names = [f.sval for f in node.fields if isinstance(f, ast.String)]
        return ".".join(names) if names else None
    return None


def _const(node) -> ast.A_Const | None:
    if isinstance(node, ast.A_Const) and not node.isnull:
        return node
    if isinstance(node, ast.TypeCast) and isinstance(node.arg, ast.A_Const):
        return node.arg
    return None


def _is_value(node) -> bool:
    """A constant, a parameter, or an expression of those only (``lower($1)``, ``$1::text``,
    ``now() - interval '1 day'``): the side of a comparison an index lookup takes as given."""
    if node is None:
        return False
    if _const(node) is not None or isinstance(
        node, (ast.ParamRef, ast.A_Const, ast.SQLValueFunction)
    ):
        return True
    if isinstance(node, ast.TypeCast):
        return _is_value(node.arg)
    if isinstance(node, ast.FuncCall):
        return all(_is_value(a) for a in node.args or ())
    if isinstance(node, ast.A_Expr) and node.kind == enums.A_Expr_Kind.AEXPR_OP:
        return (node.lexpr is None or _is_value(node.lexpr)) and _is_value(node.rexpr)
    return False


def _sval(c: ast.A_Const) -> str | int | float | None:
    v = c.val
    if isinstance(v, ast.String):
        return v.sval
    if isinstance(v, ast.Integer):
        return v.ival
    if isinstance(v, ast.Float):
        return float(v.fval)
    return None


def _in_where(ancestors) -> bool:
    a = ancestors
    while a is not None:
        if getattr(a, "member", None) == "whereClause":
            return True
        a = getattr(a, "parent", None)
    return False


def _range(col: ast.Node, lo: str, hi: str) -> ast.BoolExpr:
    def op(name: str, value: str) -> ast.A_Expr:
        return ast.A_Expr(
            kind=enums.A_Expr_Kind.AEXPR_OP,
            name=(ast.String(sval=name),),
            lexpr=copy.deepcopy(col),
            rexpr=ast.A_Const(val=ast.String(sval=value)),
        )

    return ast.BoolExpr(boolop=enums.BoolExprType.AND_EXPR, args=(op(">=", lo), op("<", hi)))


def _next(value: str, unit: str) -> str | None:
    try:
        start = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if unit in _TRUNC_STEP:
        return (start + _TRUNC_STEP[unit]).isoformat(sep=" ")
    if unit == "month":
        y, m = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
        return start.replace(year=y, month=m).isoformat(sep=" ")
    if unit == "year":
        return start.replace(year=start.year + 1).isoformat(sep=" ")
    return None


class _Checks(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[StructureFinding] = []
        self.rewrote = False

    def visit_A_Expr(self, ancestors, node: ast.A_Expr):
        if node.kind in (enums.A_Expr_Kind.AEXPR_LIKE, enums.A_Expr_Kind.AEXPR_ILIKE):
            self._pattern(ancestors, node)
            return None
        if node.kind != enums.A_Expr_Kind.AEXPR_OP or not _in_where(ancestors):
            return None
        op = node.name[-1].sval if node.name else ""
        if op not in _CMP:
            return None
        side, value = node.lexpr, node.rexpr
        if _is_value(side):
            side, value = value, side
        if not _is_value(value) or _is_value(side):
            return None
        # date_trunc('unit', col) = 'value' -> col >= value AND col < value + unit
        if isinstance(side, ast.FuncCall) and side.args and len(side.args) >= 2:
            fn = side.funcname[-1].sval.lower()
            col = _col(side.args[1]) if fn == "date_trunc" else None
            unit = _const(side.args[0])
            if col is None:
                cols = [c for a in (side.args or ()) if (c := _col(a))]
                if cols:
                    self.found.append(
                        StructureFinding(
                            "non_sargable",
                            f"{RawStream()(side)} {op} ... wraps column {cols[0]} in a function: "
                            "an index on the column cannot serve it (an expression index can)",
                            cols[0],
                        )
                    )
                return None
            c = _const(value)
            msg = (
                f"{RawStream()(node)} applies date_trunc to column {col}: an index on {col} "
                "cannot serve it; a range on the column can"
            )
            if op == "=" and unit is not None and c is not None and isinstance(_sval(c), str):
                hi = _next(str(_sval(c)), str(_sval(unit)).lower())
                if hi is not None:
                    self.found.append(StructureFinding("non_sargable", msg, col))
                    self.rewrote = True
                    return _range(side.args[1], str(_sval(c)), hi)
            self.found.append(StructureFinding("non_sargable", msg, col))
            return None
        if isinstance(side, ast.FuncCall):
            cols = [c for a in (side.args or ()) if (c := _col(a))]
            if cols:
                self.found.append(
                    StructureFinding(
                        "non_sargable",
                        f"{RawStream()(side)} wraps column {cols[0]} in a function: an index on "
                        f"the column cannot serve it (an index on the expression can)",
                        cols[0],
                    )
                )
            return None
        # col::text = '42' -> col = 42 (an implicit or explicit cast of the column)
        if isinstance(side, ast.TypeCast) and (col := _col(side.arg)):
            c = _const(value)
            self.found.append(
                StructureFinding(
                    "non_sargable",
                    f"{RawStream()(node)} casts column {col}: an index on {col} cannot serve it; "
                    "compare the column with a value of its own type",
                    col,
                )
            )
            if c is not None and isinstance(_sval(c), str) and str(_sval(c)).lstrip("-").isdigit():
                self.rewrote = True
                return ast.A_Expr(
                    kind=node.kind,
                    name=node.name,
                    lexpr=side.arg,
                    rexpr=ast.A_Const(val=ast.Integer(ival=int(str(_sval(c))))),
                )
            return None
        # col + k = v -> col = v - k (integers)
        if isinstance(side, ast.A_Expr) and side.name and side.name[-1].sval in ("+", "-"):
            col = _col(side.lexpr)
            k = _const(side.rexpr)
            c = _const(value)
            if col:
                self.found.append(
                    StructureFinding(
                        "non_sargable",
                        f"{RawStream()(node)} computes on column {col}: an index on {col} "
                        "cannot serve it; move the arithmetic to the other side",
                        col,
                    )
                )
                kv, cv = (_sval(k) if k else None), (_sval(c) if c else None)
                if isinstance(kv, int) and isinstance(cv, int):
                    new = cv - kv if side.name[-1].sval == "+" else cv + kv
                    self.rewrote = True
                    return ast.A_Expr(
                        kind=node.kind,
                        name=node.name,
                        lexpr=side.lexpr,
                        rexpr=ast.A_Const(val=ast.Integer(ival=new)),
                    )
        return None

    def _pattern(self, ancestors, node: ast.A_Expr) -> None:
        """col LIKE '%word%' (a leading wildcard) or col ILIKE '...': no B-tree on the column
        serves them; a trigram index (pg_trgm) does. NOT LIKE and parameters (the pattern
        unknown) are left alone."""
        op = node.name[-1].sval if node.name else ""
        col = _col(node.lexpr.arg if isinstance(node.lexpr, ast.TypeCast) else node.lexpr)
        c = _const(node.rexpr)
        pattern = _sval(c) if c is not None else None
        if op not in ("~~", "~~*") or col is None or not isinstance(pattern, str):
            return
        if not _in_where(ancestors):
            return
        if op == "~~" and not pattern.startswith(("%", "_")):
            return  # a prefix: a B-tree with text_pattern_ops (or the C collation) serves it
        kind = "ILIKE" if op == "~~*" else "LIKE with a leading wildcard"
        self.found.append(
            StructureFinding(
                "pattern_search",
                f"{RawStream()(node)}: {kind} cannot use a B-tree on {col}; a trigram index "
                f"can (CREATE EXTENSION IF NOT EXISTS pg_trgm; CREATE INDEX CONCURRENTLY ON "
                f"<table> USING gin ({qident(col.split('.')[-1])} gin_trgm_ops))",
                col,
            )
        )

    def visit_BoolExpr(self, ancestors, node: ast.BoolExpr):
        if (
            node.boolop == enums.BoolExprType.NOT_EXPR
            and isinstance(node.args[0], ast.SubLink)
            and node.args[0].subLinkType == enums.SubLinkType.ANY_SUBLINK
        ):
            self.found.append(
                StructureFinding(
                    "not_in_subquery",
                    "NOT IN (subquery) returns no row at all when the subquery yields a "
                    "NULL, and cannot be planned as an anti-join: use NOT EXISTS",
                )
            )
            return None
        if node.boolop != enums.BoolExprType.OR_EXPR or not _in_where(ancestors):
            return None
        cols = set()
        for a in node.args:
            if isinstance(a, ast.A_Expr):
                cols |= {c for c in (_col(a.lexpr), _col(a.rexpr)) if c}
        if len(cols) > 1:
            self.found.append(
                StructureFinding(
                    "or_across_columns",
                    f"OR over different columns ({', '.join(sorted(cols))}): one index cannot "
                    "serve it; a UNION of two indexed lookups (or a BitmapOr over one index per "
                    "column) can",
                )
            )
        return None

    def visit_SubLink(self, ancestors, node: ast.SubLink):
        t = node.subLinkType
        if t == enums.SubLinkType.ALL_SUBLINK and node.operName:
            op = node.operName[-1].sval
            if op == "<>":  # NOT IN (subquery) parses as <> ALL
                self.found.append(
                    StructureFinding(
                        "not_in_subquery",
                        "NOT IN (subquery) returns no row at all when the subquery yields a "
                        "NULL, and cannot be planned as an anti-join: use NOT EXISTS",
                    )
                )
        if t == enums.SubLinkType.EXPR_SUBLINK:
            members = []
            a = ancestors
            while a is not None:
                members.append(getattr(a, "member", None))
                a = getattr(a, "parent", None)
            if "targetList" in members:
                self.found.append(
                    StructureFinding(
                        "correlated_subquery",
                        "a scalar subquery in the select list runs once per row when it is "
                        "correlated: a LEFT JOIN (with GROUP BY, or LATERAL) usually plans better",
                    )
                )
        return None


def _range_vars(stmt: ast.Node) -> list[ast.RangeVar]:
    out: list[ast.RangeVar] = []

    class _Tables(Visitor):
        def visit_RangeVar(self, ancestors, node: ast.RangeVar) -> None:
            out.append(node)

    _Tables()(stmt)
    return out


def check(text: str) -> tuple[list[StructureFinding], str | None]:
    """The structure findings of one statement and, when some predicate could be rewritten,
    the whole statement rewritten (to be verified by execution: same rows, faster)."""
    stmt = parse(text)
    v = _Checks()
    tree = copy.deepcopy(stmt)
    v(tree)
    found = v.found
    tables = {f"{r.schemaname or 'public'}.{r.relname}" for r in _range_vars(stmt)}
    if len(tables) == 1:  # the pattern search's table is the statement's only one
        for f in found:
            f.message = f.message.replace("<table>", qtable(next(iter(tables))))
    if isinstance(stmt, ast.SelectStmt):
        if stmt.limitOffset is not None:
            off = _const(stmt.limitOffset)
            n = _sval(off) if off else None
            if n is None or (isinstance(n, int) and n >= 1000):
                found.append(
                    StructureFinding(
                        "offset_pagination",
                        "OFFSET pagination reads and throws away every skipped row: page by the "
                        "last key seen (WHERE key > $last ORDER BY key LIMIT n)",
                    )
                )
        star = any(
            isinstance(t.val, ast.ColumnRef) and isinstance(t.val.fields[-1], ast.A_Star)
            for t in (stmt.targetList or ())
            if isinstance(t, ast.ResTarget)
        )
        if star and stmt.sortClause:
            found.append(
                StructureFinding(
                    "select_star_sort",
                    "SELECT * feeding a sort carries every column through it (wide rows spill "
                    "to disk sooner): select the columns needed",
                )
            )
    return found, (RawStream()(tree) if v.rewrote else None)


def parameter_columns(text: str) -> dict[int, tuple[str, str]]:
    """$n -> (table as written, schema-qualified and quoted; column) for parameters compared
    with a column (``col = $1``, ``t.col < $2``, ``col IN ($3)``); a column of a join whose
    table cannot be told is left out."""
    stmt = parse(text)
    tables: list[str] = []
    aliases: dict[str, str] = {}
    out: dict[int, tuple[str, str]] = {}

    class V(Visitor):
        def visit_RangeVar(self, ancestors, node: ast.RangeVar) -> None:
            name = f'"{node.schemaname or "public"}"."{node.relname}"'
            if name not in tables:
                tables.append(name)
            aliases[node.relname] = name
            if node.alias is not None:
                aliases[node.alias.aliasname] = name

    V()(stmt)

    class P(Visitor):
        def visit_A_Expr(self, ancestors, node: ast.A_Expr) -> None:
            sides = [(node.lexpr, node.rexpr), (node.rexpr, node.lexpr)]
            for col, other in sides:
                params = other if isinstance(other, tuple | list) else (other,)
                if not isinstance(col, ast.ColumnRef):
                    continue
                names = [f.sval for f in col.fields if isinstance(f, ast.String)]
                if not names:
                    continue
                if len(names) >= 2:
                    table = aliases.get(names[-2])
                elif len(tables) == 1:
                    table = tables[0]
                else:
                    continue
                for p in params:
                    if isinstance(p, ast.TypeCast):
                        p = p.arg
                    if isinstance(p, ast.ParamRef) and table:
                        out.setdefault(p.number, (table, names[-1]))

    P()(stmt)
    return out


def bind_values(text: str, values: dict[int, str]) -> str:
    """The statement with each ``$n`` of ``values`` replaced by that value as an untyped
    literal (the server gives it the column's type)."""
    stmt = copy.deepcopy(parse(text))

    class R(Visitor):
        def visit_ParamRef(self, ancestors, node: ast.ParamRef):
            if node.number in values:
                return ast.A_Const(val=ast.String(sval=values[node.number]))
            return None

    R()(stmt)
    return RawStream()(stmt)


def param_numbers(text: str) -> set[int]:
    """The numbers of the ``$n`` parameters in a statement."""
    found: set[int] = set()

    class N(Visitor):
        def visit_ParamRef(self, ancestors, node: ast.ParamRef) -> None:
            found.add(node.number)

    N()(parse(text))
    return found
