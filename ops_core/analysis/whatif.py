"""What-if index costing: would this index make this statement faster, and by how much?

One small API, used by the SQL Tuning Advisor (and meant for auto-indexing):

- :func:`hypopg_status` — whether the target can cost hypothetical indexes (the hypopg
  extension created in the statement's database), or why not;
- :func:`hypothetical` — the planner's cost of the statement without and with a hypothetical
  index (hypopg: nothing is built, nothing is locked; costs only, nothing measured);
- :func:`measure` — the statement executed read-only (``EXPLAIN (ANALYZE)`` in a READ ONLY
  transaction that is rolled back, under a statement timeout), its execution times;
- :func:`on_clone` — the index built for real on a clone (a server opscore restored from its
  own backup) inside a transaction visible only to one connection, the statement executed
  alternately without it (another connection) and with it, medians and the ratio; the index is
  rolled back.

Statements that write (INSERT/UPDATE/DELETE/MERGE, data-modifying CTEs, SELECT ... FOR
UPDATE, parsed with pglast) are never executed: :func:`read_only_reason` says why.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ..collectors import live
from ..targets import actions, connection

__all__ = [
    "IndexSpec",
    "WhatIf",
    "hypopg_status",
    "hypothetical",
    "read_only_reason",
    "measure",
    "on_clone",
    "compare",
    "same_rows",
    "PLANNER_SETTINGS",
    "plan_cost",
    "uses_index",
]


@dataclass(frozen=True)
class IndexSpec:
    schema: str
    table: str
    columns: tuple[str, ...]

    def ddl(self, name: str | None = None, concurrently: bool = True) -> str:
        """The CREATE INDEX statement, identifiers quoted (advice text)."""
        return (
            actions.index_ddl(
                self.schema, self.table, self.columns, name=name, concurrently=concurrently
            ).as_string()
            + ";"
        )

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table} ({', '.join(self.columns)})"


@dataclass
class WhatIf:
    index: IndexSpec
    method: str | None  # hypopg / clone / None
    cost_before: float | None = None
    cost_after: float | None = None
    used: bool | None = None  # the plan with the index uses it
    before_ms: float | None = None  # median of the measured runs
    after_ms: float | None = None
    runs: int = 0
    measured_speedup: float | None = None
    why_not: str | None = None  # why there is no measured speed-up
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["index"] = self.index.label
        return d


# ------------------------------------------------------------------------- plan helpers
def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first, the node itself first."""
    yield node
    for c in node.get("Plans", []):
        yield from plan_nodes(c)


def plan_cost(plan: dict[str, Any] | None) -> float | None:
    return float(plan["Total Cost"]) if plan else None


def uses_index(plan: dict[str, Any], table: str, columns: tuple[str, ...], name: str = "") -> bool:
    """Whether a JSON plan scans ``table`` through an index (named ``name`` when given)."""
    if plan.get("Node Type", "").startswith(("Index", "Bitmap Index")) and (
        not name or plan.get("Index Name") == name
    ):
        return True
    return any(uses_index(c, table, columns, name) for c in plan.get("Plans", []))


def read_only_reason(text: str) -> str | None:
    """Why ``text`` must not be executed (it writes, or cannot be checked), or None for a
    plain read-only query (a SELECT without FOR UPDATE/SHARE and without data-modifying CTEs,
    parsed with pglast)."""
    import pglast
    from pglast import ast
    from pglast.visitors import Visitor

    try:
        stmts = pglast.parse_sql(text)
    except pglast.parser.ParseError as exc:
        return f"not parsable: {exc}"
    if len(stmts) != 1:
        return "more than one statement"
    stmt = stmts[0].stmt
    if not isinstance(stmt, ast.SelectStmt):
        return f"a {type(stmt).__name__.removesuffix('Stmt').upper()} statement writes"
    found: list[str] = []

    class V(Visitor):
        def visit_InsertStmt(self, ancestors, node) -> None:
            found.append("a data-modifying CTE (INSERT)")

        def visit_UpdateStmt(self, ancestors, node) -> None:
            found.append("a data-modifying CTE (UPDATE)")

        def visit_DeleteStmt(self, ancestors, node) -> None:
            found.append("a data-modifying CTE (DELETE)")

        def visit_MergeStmt(self, ancestors, node) -> None:
            found.append("a data-modifying CTE (MERGE)")

        def visit_LockingClause(self, ancestors, node) -> None:
            found.append("SELECT ... FOR UPDATE/SHARE locks rows")

        def visit_IntoClause(self, ancestors, node) -> None:
            found.append("SELECT INTO creates a table")

    V()(stmt)
    return f"it holds {found[0]}" if found else None


def _role(conn: psycopg.Connection) -> None:
    """Run what follows under the least-privilege plan role when the connection may."""
    row = conn.execute(
        "SELECT /* opscore */ EXISTS (SELECT FROM pg_roles p WHERE p.rolname = %s "
        "AND pg_has_role(current_user, p.oid, 'MEMBER') AND NOT p.rolsuper)",
        (live.PLAN_ROLE,),
    ).fetchone()
    if row and row[0]:
        conn.execute(
            sql.SQL("SET /* opscore */ LOCAL ROLE {}").format(sql.Identifier(live.PLAN_ROLE))
        )


def explain_json(
    conn: psycopg.Connection, text: str, options: str = "FORMAT JSON"
) -> dict[str, Any]:
    """The JSON plan of ``text`` with EXPLAIN ``options`` (one of this module's fixed option
    lists, never user input); the statement text is what the caller chose to plan."""
    stmt = sql.SQL("EXPLAIN /* opscore */ ({}) {}").format(sql.SQL(options), sql.SQL(text))  # type: ignore[arg-type]
    row = conn.execute(stmt).fetchone()
    assert row is not None
    return row[0][0]


def _explain(conn: psycopg.Connection, text: str, *, analyze: bool) -> dict[str, Any]:
    return explain_json(
        conn, text, "ANALYZE, TIMING OFF, FORMAT JSON" if analyze else "FORMAT JSON"
    )


# ------------------------------------------------------------------------------ hypopg
def hypopg_status(conn: psycopg.Connection) -> tuple[bool, str | None]:
    """(usable, why not): hypopg must be created in this database (opscore does not create
    extensions on a target: ``CREATE EXTENSION hypopg`` is the DBA's)."""
    row = conn.execute(
        "SELECT /* opscore */ (SELECT extversion FROM pg_extension WHERE extname = 'hypopg'),"
        " (SELECT default_version FROM pg_available_extensions WHERE name = 'hypopg')"
    ).fetchone()
    created, available = row if row else (None, None)
    if created:
        return True, None
    if available:
        return False, (
            f"hypopg {available} is installed on the server but not created in database "
            f"{conn.info.dbname} (CREATE EXTENSION hypopg there to cost indexes without "
            "building them)"
        )
    return False, "the server has no hypopg extension (hypothetical indexes need it)"


def hypothetical(conn: psycopg.Connection, text: str, index: IndexSpec) -> WhatIf:
    """The planner's cost of ``text`` without and with a hypothetical ``index`` (hypopg, in a
    read-only transaction that is rolled back; nothing is built or executed)."""
    res = WhatIf(index, "hypopg")
    ok, why = hypopg_status(conn)
    if not ok:
        res.method, res.why_not = None, why
        return res
    conn.execute("BEGIN /* opscore */ READ ONLY")
    try:
        before = _explain(conn, text, analyze=False)["Plan"]
        ddl = actions.index_ddl(index.schema, index.table, index.columns).as_string(conn)
        made = conn.execute(
            "SELECT /* opscore */ indexname FROM hypopg_create_index(%s)", (ddl,)
        ).fetchone()
        after = _explain(conn, text, analyze=False)["Plan"]
        conn.execute("SELECT /* opscore */ hypopg_reset()")
    except psycopg.Error as exc:
        res.why_not = f"hypopg could not cost it: {str(exc).strip().splitlines()[0]}"
        return res
    finally:
        conn.execute("ROLLBACK /* opscore */")
    res.cost_before, res.cost_after = plan_cost(before), plan_cost(after)
    res.used = uses_index(after, index.table, index.columns, made[0] if made else "")
    res.why_not = (
        "hypopg's index is hypothetical: costed by the planner, not executed (measure it on a "
        "clone)"
    )
    return res


# ------------------------------------------------------------------------ measurement
def _run_once(conn: psycopg.Connection, text: str, timeout_ms: int) -> tuple[float, dict]:
    """One execution in the connection's current transaction (read-only): (ms, the whole
    EXPLAIN ANALYZE document: Plan, JIT, times)."""
    conn.execute(
        sql.SQL("SET /* opscore */ LOCAL statement_timeout = {}").format(sql.Literal(timeout_ms))
    )
    doc = _explain(conn, text, analyze=True)
    return float(doc["Execution Time"]), doc


def measure(
    conn: psycopg.Connection, text: str, *, runs: int = 3, timeout_ms: int = 30000
) -> tuple[list[float], dict[str, Any] | None]:
    """Execute a read-only ``text`` ``runs`` times, each in a READ ONLY transaction rolled back
    (under the plan role when the connection may use it, with a statement timeout): the
    execution times (ms) and the last EXPLAIN ANALYZE document (Plan, JIT...). Raises
    ValueError for a statement that writes (never executed)."""
    why = read_only_reason(text)
    if why:
        raise ValueError(f"not executed: {why}")
    times: list[float] = []
    plan = None
    for _ in range(runs):
        conn.execute("BEGIN /* opscore */ READ ONLY")
        try:
            _role(conn)
            ms, plan = _run_once(conn, text, timeout_ms)
            times.append(ms)
        finally:
            conn.execute("ROLLBACK /* opscore */")
    return times, plan


def on_clone(
    clone_dsn: str, text: str, index: IndexSpec, *, runs: int = 5, timeout_ms: int = 30000
) -> WhatIf:
    """Build ``index`` for real on a clone (visible to one connection only, rolled back at the
    end) and execute ``text`` alternately without it (a second connection) and with it,
    ``runs`` times each: the medians and the ratio before/after, and whether the plan used it.
    A statement that writes is not executed (``why_not`` says so)."""
    res = WhatIf(index, "clone")
    why = read_only_reason(text)
    if why:
        res.why_not = f"not executed: {why}"
        return res
    before_ms: list[float] = []
    after_ms: list[float] = []
    with connection.connect(clone_dsn, application_name="opscore-trial") as plain:
        plain.execute("BEGIN /* opscore */ READ ONLY")
        try:
            res.cost_before = plan_cost(_explain(plain, text, analyze=False)["Plan"])
        finally:
            plain.execute("ROLLBACK /* opscore */")
        with actions.trial_index_on_clone(
            clone_dsn, index.schema, index.table, index.columns
        ) as built:
            built.execute("SAVEPOINT /* opscore */ trial")
            after_plan = _explain(built, text, analyze=False)["Plan"]  # planned with the index
            res.cost_after = plan_cost(after_plan)
            res.used = uses_index(after_plan, index.table, index.columns)
            # warm both once (caches), then alternate before/after
            for i in range(runs + 1):
                plain.execute("BEGIN /* opscore */ READ ONLY")
                try:
                    ms, _ = _run_once(plain, text, timeout_ms)
                finally:
                    plain.execute("ROLLBACK /* opscore */")
                built.execute("ROLLBACK /* opscore */ TO SAVEPOINT trial")
                ms2, _ = _run_once(built, text, timeout_ms)
                if i:
                    before_ms.append(ms)
                    after_ms.append(ms2)
    res.runs = runs
    res.before_ms = statistics.median(before_ms)
    res.after_ms = statistics.median(after_ms)
    if res.after_ms > 0:
        res.measured_speedup = round(res.before_ms / res.after_ms, 2)
    else:
        res.measured_speedup = None
        res.why_not = "the run with the index took no measurable time"
    return res


#: planner settings a tuning trial or a profile may set (SET LOCAL, the session only)
PLANNER_SETTINGS = frozenset(
    {
        "work_mem",
        "hash_mem_multiplier",
        "random_page_cost",
        "seq_page_cost",
        "effective_cache_size",
        "jit",
        "enable_nestloop",
        "enable_hashjoin",
        "enable_mergejoin",
        "enable_seqscan",
        "enable_indexscan",
        "enable_bitmapscan",
        "enable_sort",
        "enable_hashagg",
        "enable_material",
        "max_parallel_workers_per_gather",
        "plan_cache_mode",
        "from_collapse_limit",
        "join_collapse_limit",
    }
)


def _set_local(conn: psycopg.Connection, settings: dict[str, str]) -> None:
    for name, value in settings.items():
        if name not in PLANNER_SETTINGS:
            raise ValueError(f"{name} is not a planner setting a trial may change")
        conn.execute(
            sql.SQL("SET /* opscore */ LOCAL {} = {}").format(
                sql.Identifier(name), sql.Literal(str(value))
            )
        )


def compare(
    conn: psycopg.Connection,
    before: str,
    after: str,
    *,
    after_settings: dict[str, str] | None = None,
    runs: int = 3,
    timeout_ms: int = 30000,
) -> tuple[list[float], list[float], dict[str, Any] | None]:
    """Execute ``before`` and ``after`` (with ``after_settings`` as SET LOCAL) alternately,
    ``runs`` times each after one warm-up pair, each run in its own READ ONLY transaction rolled
    back: (before ms, after ms, after's last actual plan). Raises ValueError for a statement
    that writes (nothing is executed)."""
    for text in (before, after):
        why = read_only_reason(text)
        if why:
            raise ValueError(f"not executed: {why}")
    b: list[float] = []
    a: list[float] = []
    plan = None
    for i in range(runs + 1):
        for which in ("before", "after"):
            conn.execute("BEGIN /* opscore */ READ ONLY")
            try:
                _role(conn)
                if which == "after" and after_settings:
                    _set_local(conn, after_settings)
                ms, doc = _run_once(conn, before if which == "before" else after, timeout_ms)
            finally:
                conn.execute("ROLLBACK /* opscore */")
            if i:
                (b if which == "before" else a).append(ms)
                if which == "after":
                    plan = doc["Plan"]
    return b, a, plan


def same_rows(conn: psycopg.Connection, one: str, other: str, *, timeout_ms: int = 30000) -> bool:
    """Whether two read-only queries return the same rows (as a multiset: count and a digest
    of the sorted rows), executed in a READ ONLY transaction rolled back."""
    for text in (one, other):
        why = read_only_reason(text)
        if why:
            raise ValueError(f"not executed: {why}")
    q = (
        "SELECT /* opscore */ count(*), md5(string_agg(r::text, E'\\n' ORDER BY r::text))"
        " FROM ({}) r"
    )
    out = []
    conn.execute("BEGIN /* opscore */ READ ONLY")
    try:
        _role(conn)
        conn.execute(
            sql.SQL("SET /* opscore */ LOCAL statement_timeout = {}").format(
                sql.Literal(timeout_ms)
            )
        )
        for text in (one, other):
            out.append(conn.execute(sql.SQL(q).format(sql.SQL(text))).fetchone())  # type: ignore[arg-type]
    finally:
        conn.execute("ROLLBACK /* opscore */")
    return out[0] == out[1]
