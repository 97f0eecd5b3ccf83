"""Auto-indexing, the pure part: which columns each statement of the workload filters, joins
and sorts on (pglast, never regexes), index candidates built from them with the planner's
column statistics, their write overhead, and the choice of a set under a storage budget.

Pure functions over plain data; costing against a server is in :mod:`.autoindex_whatif`, the
loop (build, verify, drop) in ``ops_core.api.autoindex``.

Column order of a candidate: equality columns first, the most selective first (pg_stats
n_distinct), then one range column, or the ORDER BY columns when every other predicate is an
equality (the index then returns the rows in order). A candidate is never a duplicate or a
prefix of a valid index of the table, nor one on the same table and key columns as an index
that regressed before (its INCLUDE and partial alternatives maintain the same key on the same
writes: they are not proposed again either).

The choice (:func:`choose`) is greedy by net benefit per byte: each round takes the
candidate whose *marginal* net saving (DB time its statements would save over the indexes
already chosen, minus its write overhead) per estimated byte is highest, while it fits the
budget and saves at least ``min_gain_pct`` of its statements' time. A statement is assumed
served by its best index (one index per table access), so benefits do not add up across
indexes of the same statement; that makes the objective submodular and greedy-by-ratio is the
usual knapsack approximation. :func:`choose_exact` enumerates every subset (small cases) so the
benchmark measures the greedy's optimality gap instead of assuming it.
"""

from __future__ import annotations

import hashlib
import itertools
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
    "write_overhead",
    "estimate_bytes",
    "choose",
    "choose_exact",
    "net_of",
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


def estimate_bytes(rows: float, widths: list[float]) -> float:
    """A B-tree's size: per entry an 8-byte tuple header, the keys aligned to 8 bytes and a
    4-byte line pointer, leaves 90 % full, plus about 1 % inner pages."""
    entry = 8 + 8 * -(-sum(max(w, 1.0) for w in widths) // 8) + 4
    return rows * entry / 0.9 * 1.01 + 8192


def write_overhead(
    candidate_columns: list[str],
    writes: list[dict[str, Any]],
    table: dict[str, Any],
) -> tuple[float, list[dict[str, Any]]]:
    """DB time (ms over the range) the table's write statements would lose maintaining one
    more index, and how it was estimated per statement.

    A write's time is split evenly between the heap and the table's valid indexes (each
    B-tree insertion is a descent, a leaf write and its WAL, about what the heap insertion
    costs); one more index adds one share: INSERT: total / (indexes + 1); UPDATE: the same
    share when it sets an indexed column, else only for its non-HOT fraction (a HOT update
    touches no index; the table's n_tup_hot_upd / n_tup_upd); DELETE: nothing now (VACUUM
    removes the entries later, not counted)."""
    n = int(table.get("n_indexes") or 0)
    upd = float(table.get("n_tup_upd") or 0)
    hot = float(table.get("n_tup_hot_upd") or 0)
    non_hot = (1 - hot / upd) if upd > 0 else 1.0
    share = 1.0 / (n + 1)
    total = 0.0
    detail = []
    for w in writes:
        ms = float(w["total_ms"] or 0)
        if w["kind"] == "insert":
            f = share
        elif w["kind"] == "update":
            f = (
                share
                if set(w.get("set_columns") or []) & set(candidate_columns)
                else (share * non_hot)
            )
        else:
            f = 0.0
        total += ms * f
        detail.append({"queryid": w["queryid"], "kind": w["kind"], "calls": w["calls"],
                       "total_ms": round(ms, 3), "overhead_ms": round(ms * f, 3)})  # fmt: skip
    return total, detail


def net_of(
    chosen: list[IndexCandidate], *, per_statement: bool = False
) -> float | dict[int, float]:
    """Net DB time a set saves: per statement the best saving of any index in the set (one
    index per access), minus every index's write overhead."""
    best: dict[int, float] = {}
    for c in chosen:
        for s in c.statements:
            q = int(s["queryid"])
            best[q] = max(best.get(q, 0.0), float(s.get("saved_ms") or 0.0))
    if per_statement:
        return best
    return sum(best.values()) - sum(c.write_ms for c in chosen)


def choose(
    candidates: list[IndexCandidate], budget_bytes: float, min_gain_pct: float = 10.0
) -> list[IndexCandidate]:
    """The greedy choice (see the module): sets ``chosen`` and ``verdict`` on every candidate
    and returns the chosen ones in the order taken."""
    taken: list[IndexCandidate] = []
    left = budget_bytes
    pool = _one_per_family([c for c in candidates if c.method is not None])
    for c in candidates:
        if c.method is None:
            c.verdict = c.verdict or "not costed"
    while pool:
        best_now = net_of(taken, per_statement=True)
        assert isinstance(best_now, dict)
        scored = []
        for c in pool:
            gain = sum(
                max(0.0, float(s.get("saved_ms") or 0) - best_now.get(int(s["queryid"]), 0.0))
                for s in c.statements
            )
            scored.append((gain - c.write_ms, gain, c))
        fitting = [x for x in scored if x[2].est_bytes <= left]
        for net, gain, c in scored:
            base = sum(float(s.get("total_ms") or 0) for s in c.statements) or 1.0
            if gain <= 0:
                whys = [s["why"] for s in c.statements if s.get("why")]
                c.verdict = (
                    "saves nothing over the indexes already chosen"
                    if any(s.get("used") for s in c.statements)
                    else f"not costed: {whys[0]}"
                    if whys and len(whys) == len(c.statements)
                    else "the planner would not use it"
                )
            elif net <= 0:
                c.verdict = f"write overhead {c.write_ms:.1f} ms exceeds the {gain:.1f} ms it saves"
            elif 100 * net / base < min_gain_pct:
                c.verdict = f"saves {100 * net / base:.1f} % of its statements' time " \
                            f"(< {min_gain_pct:g} %)"  # fmt: skip
            elif c.est_bytes > left:
                c.verdict = f"over the storage budget ({c.est_bytes / 2**20:.1f} MB, " \
                            f"{left / 2**20:.1f} MB left)"  # fmt: skip
        ok = [
            x for x in fitting
            if x[0] > 0 and 100 * x[0] / (sum(float(s.get("total_ms") or 0)
                                              for s in x[2].statements) or 1.0) >= min_gain_pct
        ]  # fmt: skip
        if not ok:
            break
        net, gain, pick = max(ok, key=lambda x: x[0] / max(x[2].est_bytes, 1.0))
        pick.chosen = True
        pick.verdict = f"chosen: saves {gain:.1f} ms, costs {pick.write_ms:.1f} ms of writes"
        taken.append(pick)
        left -= pick.est_bytes
        pool.remove(pick)
    return taken


def _one_per_family(pool: list[IndexCandidate]) -> list[IndexCandidate]:
    """Alternatives on the same key columns of a table (plain, INCLUDE, partial) serve the same
    statements: only one competes, the one with the most net saving, or the smallest of those
    within 5 % of it; the others are told which one. The rest of the pool as it was."""
    fam: dict[tuple, list[IndexCandidate]] = {}
    for c in pool:
        fam.setdefault((c.schema_name, c.table_name, tuple(c.columns)), []).append(c)
    keep: set[int] = set()
    for group in fam.values():
        best = max(c.net_ms for c in group)
        near = [c for c in group if c.net_ms >= best - 0.05 * abs(best)]
        pick = min(near, key=lambda c: c.est_bytes)
        keep.add(id(pick))
        for c in group:
            if c is not pick:
                c.verdict = f"{pick.label} does the same for more net saving or less space"
    return [c for c in pool if id(c) in keep]


def choose_exact(
    candidates: list[IndexCandidate], budget_bytes: float, limit: int = 14
) -> tuple[list[IndexCandidate], float]:
    """The best subset by :func:`net_of` under the budget, by enumeration (at most ``limit``
    costed candidates): for measuring the greedy's optimality gap on small cases."""
    pool = [c for c in candidates if c.method is not None]
    if len(pool) > limit:
        raise ValueError(f"{len(pool)} candidates: enumeration is for {limit} or fewer")
    best: list[IndexCandidate] = []
    best_net = 0.0
    for r in range(1, len(pool) + 1):
        for combo in itertools.combinations(pool, r):
            if sum(c.est_bytes for c in combo) > budget_bytes:
                continue
            n = net_of(list(combo))
            assert isinstance(n, float)
            if n > best_net:
                best, best_net = list(combo), n
    return best, best_net
