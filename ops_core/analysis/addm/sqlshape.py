"""What a statement touches, from its text (pglast): tables, and the columns compared for
equality with a parameter or constant in its WHERE clause (candidate index keys).

Pure. Texts are pg_stat_statements' normalized ones (constants as ``$1``); a text pglast
cannot parse gives an empty shape (``parsed`` False), never an error.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache

import pglast
from pglast import ast, enums
from pglast.stream import RawStream
from pglast.visitors import Visitor


@dataclass(frozen=True)
class SqlShape:
    parsed: bool
    kind: str = ""  # select, update, delete, insert, other
    tables: tuple[str, ...] = ()  # schema.table as written (schema 'public' when omitted)
    eq_columns: tuple[tuple[str, str], ...] = ()  # (table, column) = $n / constant / IN list
    aggregates: bool = False  # GROUP BY or an aggregate: rows per call say nothing of the filter
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: (table, column, expression, kind) compared for equality with a value where the column
    #: is inside a function ("function": lower(email)) or a cast ("cast": id::text): an index
    #: on the column cannot serve it. The expression is canonical (:func:`canonical_expr`),
    #: its columns unqualified, as an index on it is written.
    eq_exprs: tuple[tuple[str, str, str, str], ...] = ()
    #: (table, column, operator) matched by a pattern: ``LIKE`` / ``~~`` or ``ILIKE`` / ``~~*``
    #: with a value (a btree on the column serves none of them with a parameter for pattern)
    like_columns: tuple[tuple[str, str, str], ...] = ()
    #: each OR of equality lookups on different columns (``email = $1 OR phone = $2``), as its
    #: (table, column)s: one index serves only its own arm, so each column needs its own
    or_columns: tuple[tuple[tuple[str, str], ...], ...] = ()
    #: an UPDATE's SET columns (of its target table, ``tables[0]``)
    set_columns: tuple[str, ...] = ()


class _Collect(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[str] = []
        self.aliases: dict[str, str] = {}
        self.eq: list[tuple[list[str], ast.Node]] = []
        self.eq_expr: list[tuple[list[str], ast.Node, str]] = []  # (column fields, expr, kind)
        self.like: list[tuple[list[str], str]] = []  # (column fields, ~~ or ~~*)
        self.ors: list[list[list[str]]] = []  # per OR in a WHERE: its arms' equality columns
        self.agg = False

    def visit_BoolExpr(self, ancestors, node: ast.BoolExpr) -> None:
        if node.boolop != enums.BoolExprType.OR_EXPR or "whereClause" not in _members(ancestors):
            return
        arms = []
        for a in node.args:
            col = None
            if isinstance(a, ast.A_Expr) and a.name and a.name[-1].sval == "=":
                for c, other in ((a.lexpr, a.rexpr), (a.rexpr, a.lexpr)):
                    if isinstance(c, ast.ColumnRef) and _is_value(other):
                        col = _fields(c)
            if col is None:
                return  # an arm that is not col = value: not an OR of lookups
            arms.append(col)
        if len({tuple(f) for f in arms}) > 1:
            self.ors.append(arms)

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
        if op in LIKE_OPS and "whereClause" in _members(ancestors):
            col = node.lexpr.arg if isinstance(node.lexpr, ast.TypeCast) else node.lexpr
            if isinstance(col, ast.ColumnRef) and (
                _is_value(node.rexpr) or _is_value_expr(node.rexpr)
            ):
                self.like.append((_fields(col), op))
            return
        if op != "=" or node.kind not in (enums.A_Expr_Kind.AEXPR_OP, enums.A_Expr_Kind.AEXPR_IN):
            return
        # only predicates of WHERE clauses (not join conditions, not SET lists)
        if "whereClause" not in _members(ancestors):
            return
        for col, other in ((node.lexpr, node.rexpr), (node.rexpr, node.lexpr)):
            if isinstance(col, ast.ColumnRef) and _is_value(other):
                self.eq.append(([f.sval for f in col.fields if isinstance(f, ast.String)], col))
            elif _is_value(other) or _is_value_expr(other):
                wrapped = _wrapped_column(col)
                if wrapped is not None:
                    self.eq_expr.append(wrapped)


#: LIKE and ILIKE as pglast names them, in a statement (LIKE) and in a plan's Filter (~~)
LIKE_OPS = frozenset(("~~", "~~*"))


def _table_of(v: _Collect, fields: list[str]) -> str | None:
    """The table a column reference belongs to: by its qualifier, else the only table."""
    if len(fields) >= 2:
        return v.aliases.get(fields[-2])
    return v.tables[0] if len(v.tables) == 1 else None


def _fields(col: ast.ColumnRef) -> list[str]:
    return [f.sval for f in col.fields if isinstance(f, ast.String)]


def _wrapped_column(node) -> tuple[list[str], ast.Node, str] | None:
    """A function of one column and values (``lower(email)``, ``substr(code, 1, 3)``) or a
    cast of a column (``id::text``): (the column's fields, the expression, its kind)."""
    if isinstance(node, ast.TypeCast) and isinstance(node.arg, ast.ColumnRef):
        return _fields(node.arg), node, "cast"
    if isinstance(node, ast.FuncCall) and node.args and node.over is None and not node.agg_star:
        cols = [a for a in node.args if isinstance(a, ast.ColumnRef)]
        others = [a for a in node.args if not isinstance(a, ast.ColumnRef)]
        if len(cols) == 1 and all(_is_value(a) or _is_value_expr(a) for a in others):
            return _fields(cols[0]), node, "function"
    return None


def _is_value_expr(node) -> bool:
    """A function of values only (``lower($1)``): a value for the comparison."""
    return (
        isinstance(node, ast.FuncCall)
        and node.over is None
        and all(_is_value(a) or _is_value_expr(a) for a in node.args or ())
    )


def _unqualified(node: ast.Node) -> ast.Node:
    out = copy.deepcopy(node)

    class _Strip(Visitor):
        def visit_ColumnRef(self, ancestors, col: ast.ColumnRef) -> None:
            col.fields = col.fields[-1:]

    _Strip()(out)
    return out


@lru_cache(maxsize=4096)
def canonical_expr(text: str, casts: bool = True) -> str | None:
    """An expression as pglast prints it (``(id)::text`` and ``CAST(id AS text)`` alike), to
    compare a predicate's expression with an index's (``pg_get_expr``); None if not one.
    ``casts=False`` drops every cast first: pg_get_expr writes the implicit ones
    (``lower(("Email")::text)`` for a varchar column) that the statement does not."""
    try:
        node = pglast.parse_sql(f"SELECT {text}")[0].stmt.targetList[0].val
    except Exception:  # noqa: BLE001 - not an expression: nothing to compare
        return None
    if not casts:
        if isinstance(node, ast.TypeCast):
            node = node.arg

        class _Drop(Visitor):
            def visit_TypeCast(self, ancestors, cast: ast.TypeCast):
                return cast.arg

        _Drop()(node)
    return RawStream()(node)


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
    exprs: list[tuple[str, str, str, str]] = []
    for fields, node, how in v.eq_expr:
        if len(fields) >= 2:
            table = v.aliases.get(fields[-2])
        else:
            table = v.tables[0] if len(v.tables) == 1 else None
        if table and fields:
            expr = canonical_expr(RawStream()(_unqualified(node)))
            if expr and (table, fields[-1], expr, how) not in exprs:
                exprs.append((table, fields[-1], expr, how))
    likes: list[tuple[str, str, str]] = []
    for fields, op in v.like:
        table = _table_of(v, fields)
        if table and fields and (table, fields[-1], op) not in likes:
            likes.append((table, fields[-1], op))
    ors = []
    for arms in v.ors:
        group = tuple(dict.fromkeys((t, f[-1]) for f in arms if (t := _table_of(v, f))))
        if len(group) == len({tuple(f) for f in arms}) and len(group) > 1:
            ors.append(group)
    sets: tuple[str, ...] = ()
    if isinstance(stmt, ast.UpdateStmt):
        sets = tuple(dict.fromkeys(t.name for t in stmt.targetList or () if t.name))
    return SqlShape(
        True, kind, tuple(v.tables), tuple(cols), v.agg, eq_exprs=tuple(exprs),
        like_columns=tuple(likes), or_columns=tuple(ors), set_columns=sets,
    )  # fmt: skip


def _predicate(predicate: str) -> _Collect | None:
    """A plan's predicate text collected as a WHERE clause (parsed by pglast, never run)."""
    try:
        tree = pglast.parse_sql(f"SELECT 1 FROM x WHERE {predicate}")
    except Exception:  # noqa: BLE001 - not a predicate pglast parses: nothing in it
        return None
    v = _Collect()
    v(tree[0])
    return v


@lru_cache(maxsize=4096)
def predicate_likes(predicate: str) -> tuple[tuple[str, str], ...]:
    """(column, ~~ or ~~*) matched by a pattern in a plan's predicate, qualifiers dropped."""
    v = _predicate(predicate)
    return tuple(dict.fromkeys((f[-1], op) for f, op in v.like if f)) if v else ()


@lru_cache(maxsize=4096)
def predicate_columns(predicate: str) -> tuple[str, ...]:
    """Columns a predicate (a plan's Filter or Index Cond) compares for equality with a value,
    qualifiers dropped: a scan's predicate is about its one relation, whatever alias EXPLAIN
    VERBOSE writes (``("Wk".customer_id = $2)`` -> ``('customer_id',)``). Parsed by pglast,
    never sent to a server."""
    v = _predicate(predicate)
    return tuple(dict.fromkeys(fields[-1] for fields, _ in v.eq if fields)) if v else ()


def _queries(node: object, out: list[str]) -> list[str]:
    """Every SQL text inside a parsed PL/pgSQL function (its ``PLpgSQL_expr`` queries)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "query" and isinstance(v, str):
                out.append(v)
            else:
                _queries(v, out)
    elif isinstance(node, list):
        for v in node:
            _queries(v, out)
    return out


@lru_cache(maxsize=1024)
def written_tables(source: str, language: str) -> tuple[str, ...]:
    """The tables a function's body writes (INSERT / UPDATE / DELETE targets, schema 'public'
    when unqualified), for a ``plpgsql`` or ``sql`` function; () for other languages or a body
    pglast cannot parse. Parsed only, never run."""
    if language == "plpgsql":
        try:
            q = "$opscore$"
            fn = pglast.parse_plpgsql(
                f"CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS {q}{source}{q}"
            )
        except Exception:  # noqa: BLE001 - not parsable: nothing to say
            return ()
        texts = _queries(fn, [])
    elif language == "sql":
        texts = [source]
    else:
        return ()
    out: list[str] = []
    for text in texts:
        try:
            stmts = pglast.parse_sql(text)
        except Exception:  # noqa: BLE001 - a fragment pglast does not take (an expression)
            continue
        for raw in stmts:
            rel = getattr(raw.stmt, "relation", None)
            if isinstance(raw.stmt, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt) and rel:
                name = f"{rel.schemaname or 'public'}.{rel.relname}"
                if name not in out:
                    out.append(name)
    return tuple(out)


def leading_index_expr(exprs: str) -> str | None:
    """The first of an index's expressions (``pg_get_expr`` lists them comma-separated),
    canonical and without casts, to compare with a predicate's expression."""
    try:
        first = pglast.parse_sql(f"SELECT {exprs}")[0].stmt.targetList[0].val
    except Exception:  # noqa: BLE001 - not parsable here: unknown, never a wrong match
        return None
    return canonical_expr(RawStream()(first), casts=False)


@lru_cache(maxsize=1024)
def strong_lock_command(text: str | None) -> str | None:
    """The command's name when ``text`` takes a table lock that queues ordinary queries behind
    it (ALTER TABLE, DROP, TRUNCATE, LOCK TABLE, VACUUM FULL, CLUSTER, REINDEX and CREATE INDEX
    without CONCURRENTLY, REFRESH MATERIALIZED VIEW without CONCURRENTLY); else None."""
    if not text:
        return None
    try:
        stmt = pglast.parse_sql(text)[0].stmt
    except Exception:  # noqa: BLE001 - not parsable: not known to be one
        return None

    def opts(o) -> set[str]:
        return {d.defname.lower() for d in (o or ()) if isinstance(d, ast.DefElem)}

    if isinstance(stmt, ast.AlterTableStmt):
        return "ALTER TABLE"
    if isinstance(stmt, ast.DropStmt) and not stmt.concurrent:
        return "DROP"
    if isinstance(stmt, ast.TruncateStmt):
        return "TRUNCATE"
    if isinstance(stmt, ast.LockStmt):
        return "LOCK TABLE"
    if isinstance(stmt, ast.VacuumStmt) and "full" in opts(stmt.options):
        return "VACUUM FULL"
    if isinstance(stmt, ast.ClusterStmt):
        return "CLUSTER"
    if isinstance(stmt, ast.ReindexStmt) and "concurrently" not in opts(stmt.params):
        return "REINDEX"
    if isinstance(stmt, ast.IndexStmt) and not stmt.concurrent:
        return "CREATE INDEX"
    if isinstance(stmt, ast.RefreshMatViewStmt) and not stmt.concurrent:
        return "REFRESH MATERIALIZED VIEW"
    return None
