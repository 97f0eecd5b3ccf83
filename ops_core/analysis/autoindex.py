"""Auto-indexing, the pure part, candidates: which columns each statement of the workload
filters, joins and sorts on (pglast, never regexes), and the index candidates built from them
with the planner's column statistics.

Pure functions over plain data; costing against a server is in :mod:`.autoindex_whatif`, the
loop (build, verify, drop) in ``ops_core.api.autoindex``.

Column order of a candidate: equality columns first, the most selective first (pg_stats
n_distinct), then one range column, or the ORDER BY columns when every other predicate is an
equality (the index then returns the rows in order). A candidate is never a duplicate or a
prefix of a valid index of the table, nor one on the same table and key columns as an index
that regressed before (its INCLUDE and partial alternatives maintain the same key on the same
writes: they are not proposed again either).

Their size, write overhead and the choice of a set are in :mod:`.autoindex_choice`.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

import pglast
from pglast import ast, enums
from pglast.visitors import Visitor
from psycopg import sql

from ..targets.index_actions import index_ddl, predicate_sql
from .addm.sqlshape import statement_kind

__all__ = [
    "StatementColumns",
    "IndexCandidate",
    "statement_columns",
    "row_key",
    "partial_predicate",
    "selectivity",
    "candidates_for",
    "is_covered",
    "index_name",
]

_RANGE_OPS = {"<", ">", "<=", ">="}
#: PostgreSQL's default selectivities when a column has no statistics
DEFAULT_EQ_SEL = 0.005
DEFAULT_RANGE_SEL = 1 / 3
MAX_COLUMNS = 3
MAX_INCLUDE = 2  # at most this many INCLUDE columns (a few extra columns read)
PARTIAL_MAX_FREQ = 0.1  # a partial index's predicate keeps at most this share of the rows
LOW_CARDINALITY = 50  # a column with at most this many distinct values (partial predicates)


@dataclass
class StatementColumns:
    """What one statement does with each table's columns (tables as schema.table)."""

    parsed: bool
    kind: str = ""  # select / insert / update / delete / other
    tables: list[str] = field(default_factory=list)
    eq: list[tuple[str, str]] = field(default_factory=list)
    range: list[tuple[str, str]] = field(default_factory=list)
    join: list[tuple[str, str]] = field(default_factory=list)
    order: list[tuple[str, str]] = field(default_factory=list)
    set_columns: list[tuple[str, str]] = field(default_factory=list)  # UPDATE ... SET col
    nulls: list[tuple[str, str]] = field(default_factory=list)  # col IS NULL (also in eq)
    #: (table, column) -> the constant it is compared with for equality, as text (a text
    #: with literals; pg_stat_statements' texts have $n instead)
    consts: dict[tuple[str, str], str] = field(default_factory=dict)
    #: every column the statement reads of each table (select list, predicates, sorts...)
    refs: list[tuple[str, str]] = field(default_factory=list)
    star: bool = False  # SELECT * / t.*: every column read (no index-only scan)

    def on(self, table: str) -> dict[str, list[str]]:
        pick = {
            "eq": self.eq,
            "range": self.range,
            "join": self.join,
            "order": self.order,
            "set": self.set_columns,
            "nulls": self.nulls,
            "refs": self.refs,
        }
        out = {}
        for k, pairs in pick.items():
            out[k] = list(dict.fromkeys(c for t, c in pairs if t == table))
        return out


def _members(ancestors) -> set:
    out = set()
    a = ancestors
    while a is not None:
        out.add(getattr(a, "member", None))
        a = getattr(a, "parent", None)
    return out


def _fields(node) -> list[str] | None:
    if isinstance(node, ast.ColumnRef):
        names = [f.sval for f in node.fields if isinstance(f, ast.String)]
        return names or None
    return None


def _is_value(node) -> bool:
    """A parameter, a constant, or an expression of them with no column and no subquery
    (``now() - $1::interval``): one value per execution, what an index can be searched by."""
    if isinstance(node, tuple | list):
        return bool(node) and all(_is_value(n) for n in node)
    if isinstance(node, ast.ParamRef | ast.A_Const):
        return True
    if not isinstance(node, ast.TypeCast | ast.A_Expr | ast.FuncCall):
        return False
    found: list[bool] = []

    class C(Visitor):
        def visit_ColumnRef(self, ancestors, n) -> None:
            found.append(True)

        def visit_SubLink(self, ancestors, n) -> None:
            found.append(True)

    C()(node)
    return not found


def statement_columns(text: str) -> StatementColumns:
    """Parse ``text`` (pg_stat_statements' normalized text: constants as ``$n``) and say which
    columns of which table it compares with a value (equality or range), joins on, sorts by,
    or (UPDATE) sets. An unparsable text gives ``parsed`` False."""
    try:
        tree = pglast.parse_sql(text)
    except Exception:  # noqa: BLE001 - an unparsable text: nothing to index for it
        return StatementColumns(False)
    if len(tree) != 1:
        return StatementColumns(False)
    stmt = tree[0].stmt
    kind = statement_kind(stmt)
    tables: list[str] = []
    aliases: dict[str, str] = {}
    raw: list[tuple[str, list[str]]] = []  # (kind, column names as written)
    consts: list[tuple[list[str], str]] = []
    star: list[bool] = []

    class V(Visitor):
        def visit_RangeVar(self, ancestors, node: ast.RangeVar) -> None:
            name = f"{node.schemaname or 'public'}.{node.relname}"
            if name not in tables:
                tables.append(name)
            aliases[node.relname] = name
            if node.alias is not None:
                aliases[node.alias.aliasname] = name

        def visit_A_Expr(self, ancestors, node: ast.A_Expr) -> None:
            where = _members(ancestors)
            if not ({"whereClause", "quals"} & where):
                return
            op = node.name[-1].sval if node.name else ""
            k = node.kind
            left, right = _fields(node.lexpr), _fields(node.rexpr)
            if k == enums.A_Expr_Kind.AEXPR_OP and op == "=" and left and right:
                raw.extend([("join", left), ("join", right)])
                return
            for col, other in ((left, node.rexpr), (right, node.lexpr)):
                if not col or not _is_value(other):
                    continue
                if (k == enums.A_Expr_Kind.AEXPR_OP and op == "=") or (
                    k == enums.A_Expr_Kind.AEXPR_IN and op == "="
                ):
                    raw.append(("eq", col))
                    value = _const(other) if k == enums.A_Expr_Kind.AEXPR_OP else None
                    if value is not None:
                        consts.append((col, value))
                elif (k == enums.A_Expr_Kind.AEXPR_OP and op in _RANGE_OPS) or k in (
                    enums.A_Expr_Kind.AEXPR_BETWEEN,
                    enums.A_Expr_Kind.AEXPR_LIKE,
                ):
                    raw.append(("range", col))

        def visit_NullTest(self, ancestors, node: ast.NullTest) -> None:
            col = _fields(node.arg)
            if (
                col
                and node.nulltesttype == enums.NullTestType.IS_NULL
                and {"whereClause", "quals"} & _members(ancestors)
            ):
                raw.extend([("eq", col), ("nulls", col)])

        def visit_ColumnRef(self, ancestors, node: ast.ColumnRef) -> None:
            if any(isinstance(f, ast.A_Star) for f in node.fields):
                star.append(True)
            elif names := _fields(node):
                raw.append(("refs", names))

        def visit_SortBy(self, ancestors, node: ast.SortBy) -> None:
            col = _fields(node.node)
            if col and "sortClause" in _members(ancestors):
                raw.append(("order", col))

        def visit_ResTarget(self, ancestors, node: ast.ResTarget) -> None:
            if (
                isinstance(stmt, ast.UpdateStmt)
                and node.name
                and "targetList" in _members(ancestors)
            ):
                raw.append(("set", [node.name]))

    V()(tree[0])
    out = StatementColumns(True, kind, tables, star=bool(star))
    where = {"eq": out.eq, "range": out.range, "join": out.join, "order": out.order,
             "set": out.set_columns, "nulls": out.nulls, "refs": out.refs}  # fmt: skip

    def table_of(k: str, names: list[str]) -> str | None:
        if k == "set" or len(names) == 1:
            return tables[0] if len(tables) == 1 else None
        return aliases.get(names[-2])

    for k, names in raw:
        table = table_of(k, names)
        if table and (table, names[-1]) not in where[k]:
            where[k].append((table, names[-1]))
    for names, value in consts:
        if table := table_of("eq", names):
            out.consts[(table, names[-1])] = value
    return out


def _const(node) -> str | None:
    """The value of a string or number constant (under casts), as text; else None."""
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if not isinstance(node, ast.A_Const) or node.isnull:
        return None
    v = node.val
    for attr in ("sval", "ival", "fval", "boolval"):
        if hasattr(v, attr):
            got = getattr(v, attr)
            return str(got).lower() if attr == "boolval" else str(got)
    return None


def selectivity(stats: dict[str, Any] | None, rows: float, value: str | None = None) -> float:
    """The fraction of rows an equality on the column keeps: the value's frequency when it is
    one of pg_stats' most common values, else 1 / distinct values (n_distinct: positive a
    count, negative a fraction of the rows); PostgreSQL's default without statistics."""
    mcv, mcf = list((stats or {}).get("mcv") or []), list((stats or {}).get("mcf") or [])
    if value is not None and value in mcv and len(mcv) == len(mcf):
        return float(mcf[mcv.index(value)])
    nd = (stats or {}).get("n_distinct")
    if nd is None or nd == 0:
        return DEFAULT_EQ_SEL
    distinct = nd if nd > 0 else -nd * max(rows, 1.0)
    return min(1.0, 1.0 / max(distinct, 1.0))


@dataclass
class IndexCandidate:
    schema_name: str
    table_name: str
    columns: list[str]
    name: str
    ddl: str
    #: why: the statements (queryid) and what they do with the columns
    reasons: list[str] = field(default_factory=list)
    #: per affected statement: queryid, calls, total_ms, cost_before, cost_after, used, saved_ms
    statements: list[dict[str, Any]] = field(default_factory=list)
    method: str | None = None  # hypopg / estimate / None (not costed: why in verdict)
    saved_ms: float = 0.0  # DB time its statements would save (per the costing, over the range)
    write_ms: float = 0.0  # DB time the table's writes would lose maintaining it
    est_bytes: float = 0.0
    column_stats: dict[str, Any] = field(default_factory=dict)
    verdict: str = ""  # chosen / not chosen: the reason
    chosen: bool = False
    #: INCLUDE columns (stored in the leaves, not searched: an index-only scan)
    include: list[str] = field(default_factory=list)
    #: partial index: {"column", "value" (None: IS NULL), "freq" (of the rows), "source"}
    predicate: dict[str, Any] | None = None

    @property
    def net_ms(self) -> float:
        return self.saved_ms - self.write_ms

    @property
    def key(self) -> tuple:
        return row_key(self.schema_name, self.table_name, self.columns, self.include,
                       self.predicate)  # fmt: skip

    @property
    def where(self) -> sql.Composed | None:
        p = self.predicate
        return predicate_sql(p["column"], p["value"]) if p else None

    @property
    def label(self) -> str:
        out = f"{self.table_name} ({', '.join(self.columns)})"
        if self.include:
            out += f" INCLUDE ({', '.join(self.include)})"
        if self.predicate:
            out += f" WHERE {self.where.as_string()}"  # type: ignore[union-attr]
        return out

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["net_ms"] = round(self.net_ms, 3)
        return d


def row_key(
    schema: str,
    table: str,
    columns: list[str],
    include: list[str] | None = None,
    predicate: dict[str, Any] | None = None,
) -> tuple:
    """What makes two indexes the same one: table, key columns, INCLUDE columns, predicate."""
    pred = (predicate["column"], predicate["value"]) if predicate else None
    return (schema, table, tuple(columns), tuple(include or ()), pred)


def partial_predicate(
    table: str, column: str, sh: StatementColumns, stats: dict[str, Any] | None
) -> dict[str, Any] | None:
    """A partial index's predicate for the statement's equality (or IS NULL) on ``column`` when
    it keeps a rare part of the table (at most ``PARTIAL_MAX_FREQ`` of the rows by pg_stats):
    ``IS NULL`` with a small null fraction; ``= value`` on a low-cardinality column (at most
    ``LOW_CARDINALITY`` distinct values) whose value is a rare most common value. The value is
    the statement's constant when its text has one; pg_stat_statements' texts have ``$n``
    instead, so it is then the rarest most common value, the one the costing binds and the
    verification executes (the snapshots after the build judge whether the workload uses it)."""
    st = stats or {}
    if (table, column) in sh.nulls:
        frac = float(st.get("null_frac") or 0.0)
        if 0 < frac <= PARTIAL_MAX_FREQ:
            return {"column": column, "value": None, "freq": frac,
                    "source": "IS NULL in the statement, pg_stats null_frac"}  # fmt: skip
        return None
    nd = float(st.get("n_distinct") or 0.0)
    mcv, mcf = list(st.get("mcv") or []), list(st.get("mcf") or [])
    if not (0 < nd <= LOW_CARDINALITY) or not mcv or len(mcv) != len(mcf):
        return None
    value = sh.consts.get((table, column))
    source = "the statement's constant, pg_stats frequency"
    if value is None:
        value = mcv[-1]
        source = (
            "the rarest most common value of pg_stats (pg_stat_statements keeps no "
            "constants): costed and verified with it"
        )
    if value not in mcv:
        return None
    frac = float(mcf[mcv.index(value)])
    if frac > PARTIAL_MAX_FREQ:
        return None
    return {"column": column, "value": value, "freq": frac, "source": source}


def is_covered(columns: list[str], existing: list[list[str]]) -> list[str] | None:
    """The existing index (its columns) that ``columns`` duplicates or is a prefix of."""
    for ix in existing:
        if ix and len(columns) <= len(ix) and list(ix[: len(columns)]) == list(columns):
            return ix
    return None


def index_name(table: str, columns: list[str], extra: str = "") -> str:
    """``ai_<table>_<cols>_<hash>``: recognisable, at most 63 bytes, stable for the same key
    (``extra``: its INCLUDE columns and predicate, in the hash)."""
    digest = hashlib.sha1(f"{table}\0{'|'.join(columns)}{extra}".encode()).hexdigest()[:6]
    base = f"ai_{table}_{'_'.join(columns)}".lower()
    return f"{base[:52]}_{digest}"


def _orders(cols: dict[str, list[str]], sel: dict[str, float]) -> list[tuple[list[str], str]]:
    """Column lists worth costing for one statement's use of one table, with the reason."""
    eq = sorted(cols["eq"], key=lambda c: sel.get(c, DEFAULT_EQ_SEL))[:MAX_COLUMNS]
    rng, order, join = cols["range"], cols["order"], cols["join"]
    out: list[tuple[list[str], str]] = []
    for c in eq:
        out.append(([c], f"equality on {c}"))
    for c in rng[:2]:
        out.append(([c], f"range on {c}"))
    for c in join[:2]:
        out.append(([c], f"join on {c}"))
    if len(eq) >= 2:
        out.append((eq, "equalities on " + ", ".join(eq) + " (most selective first)"))
    if eq and rng:
        out.append((eq[: MAX_COLUMNS - 1] + [rng[0]], f"equalities then a range on {rng[0]}"))
    if order and not rng and len(eq) + len(order) <= MAX_COLUMNS:
        extra = [c for c in order if c not in eq]
        if extra:
            out.append((eq + extra, "equalities then ORDER BY " + ", ".join(extra)))
    return out


def candidates_for(
    statements: list[dict[str, Any]],
    shapes: dict[int, StatementColumns],
    tables: dict[str, dict[str, Any]],
    column_stats: dict[tuple[str, str], dict[str, Any]],
    existing: dict[str, list[list[str]]],
    *,
    regressed: set[tuple] = frozenset(),  # type: ignore[assignment]
    min_rows: float = 1000,
) -> tuple[list[IndexCandidate], list[dict[str, Any]]]:
    """Candidates from the read statements (rows: queryid, calls, total_ms, query), and the
    ones left out with why (covered by an existing index, regressed before, small table).
    ``regressed``: keys (:func:`row_key`) of indexes that regressed; their key columns block.

    ``shapes``: queryid -> :func:`statement_columns`; ``tables``: schema.table -> reltuples
    etc.; ``column_stats``: (schema.table, column) -> pg_stats figures; ``existing``:
    schema.table -> the key columns of each valid index."""
    found: dict[tuple, IndexCandidate] = {}
    skipped: list[dict[str, Any]] = []
    seen_skip: set[tuple] = set()
    for st in statements:
        sh = shapes.get(int(st["queryid"]))
        if sh is None or not sh.parsed or sh.kind != "select":
            continue
        for table in sh.tables:
            t = tables.get(table)
            cols = sh.on(table)
            if not any(cols[k] for k in ("eq", "range", "join", "order")):
                continue
            rows = float(t["reltuples"]) if t else 0.0
            schema, name = table.split(".", 1)
            if t is None or rows < min_rows:
                k = ("small", table)
                if k not in seen_skip:
                    seen_skip.add(k)
                    skipped.append({"table": table, "columns": [],
                                    "why": f"{rows:.0f} rows: a scan is cheap enough"})  # fmt: skip
                continue
            sel = {c: selectivity(column_stats.get((table, c)), rows) for c in cols["eq"]}
            variants: list[tuple[list[str], str, list[str], dict | None]] = [
                (columns, why, [], None) for columns, why in _orders(cols, sel)
            ]
            for pcol in cols["eq"]:
                pred = partial_predicate(table, pcol, sh, column_stats.get((table, pcol)))
                if pred is None:
                    continue
                rest = {**cols, "eq": [c for c in cols["eq"] if c != pcol]}
                test = "IS NULL" if pred["value"] is None else f"= {pred['value']!r}"
                for columns, why in _orders(rest, sel):
                    why = f"{why}, partial: {pcol} {test} keeps {100 * pred['freq']:.1f} % of rows"
                    variants.append((columns, why, [], pred))
            if len(sh.tables) == 1 and not sh.star:
                for columns, why, _, pred in list(variants):
                    skip = {pred["column"]} if pred else set()
                    extra = [c for c in cols["refs"] if c not in columns and c not in skip]
                    if 1 <= len(extra) <= MAX_INCLUDE:
                        variants.append((columns, f"{why}; INCLUDE ({', '.join(extra)}): every "
                                         "column it reads in the index (an index-only scan)",
                                         extra, pred))  # fmt: skip
            for columns, why, include, pred in variants:
                key = row_key(schema, name, columns, include, pred)
                probe = ([pred["column"]] if pred else []) + columns + include
                cover = is_covered(probe, existing.get(table, []))
                if cover is not None or key[:3] in {r[:3] for r in regressed}:
                    if key not in seen_skip:
                        seen_skip.add(key)
                        skipped.append({
                            "table": table, "columns": columns,
                            "why": f"covered by the existing index on ({', '.join(cover)})"
                            if cover is not None else
                            "it regressed before on this workload: never proposed again",
                        })  # fmt: skip
                    continue
                c = found.get(key)
                if c is None:
                    where_ = predicate_sql(pred["column"], pred["value"]) if pred else None
                    extra = "|".join(include) + (where_.as_string() if where_ else "")
                    iname = index_name(name, columns, extra)
                    c = IndexCandidate(
                        schema, name, list(columns), iname,
                        index_ddl(schema, name, columns, name=iname, concurrently=True,
                                  include=include, where=where_).as_string() + ";",
                        column_stats={
                            col: column_stats.get((table, col)) or {}
                            for col in columns + include + ([pred["column"]] if pred else [])
                        },
                        include=list(include), predicate=pred,
                    )  # fmt: skip
                    found[key] = c
                c.reasons.append(f"query {st['queryid']}: {why}")
    return list(found.values()), skipped
