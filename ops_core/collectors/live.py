"""Live reads of a target (not stored): sessions doing something now, a one-row summary, and
EXPLAIN (never ANALYZE) of a stored statement text. All run in a monitoring session."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ..analysis.waits import wait_class
from ..errors import NotSupported, OpsCoreError

#: file stems under sql/: folder -> available minimum versions come from the file names
LIVE_SOURCES = ("live_sessions", "live_summary")


def live_sql(source: str, version_num: int) -> str:
    folder = resources.files("ops_core.collectors").joinpath("sql", source)
    versions = sorted(
        int(m.group(1))
        for e in folder.iterdir()
        if (m := re.fullmatch(r"(\d{6})\.sql", e.name)) is not None
    )
    fitting = [v for v in versions if v <= version_num]
    if not fitting:
        raise NotSupported(
            f"{source} needs PostgreSQL {versions[0] // 10000}+; the target runs "
            f"{version_num // 10000}."
        )
    return folder.joinpath(f"{fitting[-1]}.sql").read_text()


def sessions(conn: psycopg.Connection, include_opscore: bool, text_max: int) -> pd.DataFrame:
    q = live_sql("live_sessions", conn.info.server_version)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q, {"include_opscore": include_opscore, "text_max": text_max})
        rows = cur.fetchall()
        names = [d.name for d in cur.description or []]
    df = pd.DataFrame(rows, columns=names)
    df.insert(
        7,
        "wait_class",
        [wait_class(s, w) for s, w in zip(df["state"], df["wait_event_type"], strict=True)],
    )
    return df


def summary(conn: psycopg.Connection, include_opscore: bool) -> dict[str, Any]:
    q = live_sql("live_summary", conn.info.server_version)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q, {"include_opscore": include_opscore})
        row = cur.fetchone()
    return dict(row or {})


# ------------------------------------------------------------------------------- EXPLAIN
# One EXPLAIN path for the app's plan view and ADDM's plan checks. Planning can run code:
# the planner folds IMMUTABLE functions (and estimates with STABLE ones), including those of
# views, column defaults, policies and constraints of the tables named. So a plan is made
#  - never with ANALYZE (nothing is executed), in a read-only transaction;
#  - under the least-privilege role PLAN_ROLE (SET LOCAL ROLE) when it exists: a function that
#    does run can do no more than that role may; on a superuser connection without that role
#    nothing is planned automatically (the reason says how to create it);
#  - automatically only when the statement and the objects it names call no function outside
#    pg_catalog (``allow_functions=True`` is the explicit action that plans them anyway, still
#    under PLAN_ROLE).
PLAN_ROLE = "opscore_explain"
PLAN_ROLE_SETUP = (
    "CREATE ROLE opscore_explain NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;\n"
    "GRANT pg_read_all_data TO opscore_explain;  -- EXPLAIN checks SELECT rights\n"
    "GRANT opscore_explain TO <the monitoring role>;"
)


def create_plan_role(conn: psycopg.Connection) -> bool:
    """Create PLAN_ROLE (the set-up SQL above, for a superuser connection) if it is missing;
    True when it was created. Only for servers opscore owns (the embedded one): on a user's
    server the DBA runs the README's set-up SQL."""
    if conn.execute(
        "SELECT /* opscore */ 1 FROM pg_roles WHERE rolname = %s", (PLAN_ROLE,)
    ).fetchone():
        return False
    ident = sql.Identifier(PLAN_ROLE)
    with contextlib.suppress(psycopg.errors.DuplicateObject):  # created concurrently
        conn.execute(
            sql.SQL(
                "CREATE /* opscore */ ROLE {} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
            ).format(ident)
        )
    conn.execute(sql.SQL("GRANT /* opscore */ pg_read_all_data TO {}").format(ident))
    return True


_EXPLAINABLE = ("select", "insert", "update", "delete", "merge", "values", "with", "table")
_PLACEHOLDER = re.compile(r"\$\d+")
_COMMENT = re.compile(r"(--[^\n]*\n)|(/\*.*?\*/)", re.S)
#: pg_stat_statements normalizes a typed literal (interval '5 min') to ``interval $1``, which is
#: not valid SQL: it becomes ``$1::interval``
_TYPED_PARAM = re.compile(
    r"\b(interval|date|timestamptz|timestamp(?:\s+with(?:out)?\s+time\s+zone)?|"
    r"time(?:\s+with(?:out)?\s+time\s+zone)?|numeric|int[248]?|integer|bigint|smallint|"
    r"boolean|bool|text|varchar|char|float[48]|real|double\s+precision|jsonb?|uuid|inet|"
    r"cidr|bytea|money)\s+(\$\d+)",
    re.I,
)


@dataclass
class Plan:
    """A plan (``plan``: the JSON root node, or the text) or the reason there is none."""

    plan: Any | None
    reason: str | None = None
    method: str | None = None  # plain | generic_plan | prepare_generic
    text: str | None = None  # the text that was planned (after rewriting)


class PlanRefused(NotSupported):
    """A statement is not planned automatically (the message says why, the hint what to do)."""


def _body(query: str) -> str:
    return _COMMENT.sub(" ", query or "").strip().rstrip(";").strip()


def rewrite_typed_params(text: str) -> str:
    """``interval $1`` -> ``$1::interval`` (pg_stat_statements' form of typed literals)."""
    return _TYPED_PARAM.sub(lambda m: f"{m.group(2)}::{' '.join(m.group(1).split())}", text)


def shape_kind(text: str) -> str:
    from ..analysis.addm.sqlshape import shape

    return shape(text).kind


def as_select(text: str) -> str | None:
    """An UPDATE/DELETE's (or INSERT ... SELECT's) row-finding part as a SELECT (same
    tables, joins and WHERE, same parameter numbers): its plan shows how the rows are found,
    and planning it needs only SELECT rights. None for other statements (or when pglast
    cannot parse the text)."""
    import pglast
    from pglast import ast
    from pglast.stream import RawStream

    try:
        stmt = pglast.parse_sql(text)[0].stmt
    except Exception:  # noqa: BLE001 - unparsable
        return None
    if isinstance(stmt, ast.InsertStmt):  # INSERT ... SELECT: the SELECT finds the rows
        sel = stmt.selectStmt
        if stmt.withClause is None and isinstance(sel, ast.SelectStmt) and sel.fromClause:
            return RawStream()(sel)
        return None
    if isinstance(stmt, ast.UpdateStmt):
        extra = stmt.fromClause or ()
    elif isinstance(stmt, ast.DeleteStmt):
        extra = stmt.usingClause or ()
    else:
        return None
    if stmt.withClause is not None:
        return None
    # an UPDATE keeps its SET expressions as the select list: their parameters keep a type
    # the server can infer (PREPARE on 14-15 needs every $n typed)
    cols = [RawStream()(t.val) for t in (getattr(stmt, "targetList", None) or ()) if t.val]
    out = f"SELECT {', '.join(cols) or '1'} FROM " + ", ".join(
        RawStream()(n) for n in (stmt.relation, *extra)
    )
    if stmt.whereClause is not None:
        out += " WHERE " + RawStream()(stmt.whereClause)
    return out


def explain_mode(query: str, version_num: int) -> tuple[bool, str | None]:
    """(placeholders, why-not): whether the text has parameter placeholders (planned as a
    generic plan), or why it cannot be explained at all."""
    body = _body(query)
    if not body:
        return False, "The statement text is empty (not kept by pg_stat_statements)."
    if ";" in body:
        return False, "The text holds more than one statement (or a ';' inside): not explained."
    first = body.split(None, 1)[0].lower().lstrip("(")
    if first not in _EXPLAINABLE:
        return False, (
            f"{first.upper()} is not a statement EXPLAIN can show a plan for "
            "(only SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES, WITH, TABLE)."
        )
    return bool(_PLACEHOLDER.search(body)), None


# -- what the statement would make the planner run
_FUNCS_SQL = """SELECT /* opscore */ DISTINCT format('%%I.%%I', n.nspname, p.proname)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.proname = ANY(%(names)s) AND n.nspname <> 'pg_catalog' AND NOT {ext}
UNION
SELECT DISTINCT format('operator %%s (%%s)', o.oprname, o.oprcode::regproc)
  FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode
 WHERE o.oprname = ANY(%(ops)s) AND p.pronamespace <> 'pg_catalog'::regnamespace AND NOT {ext}
UNION
SELECT DISTINCT format('%%s (of %%s)', p.oid::regprocedure, o.rel::regclass)
  FROM (SELECT r.ev_class AS rel, 'pg_rewrite'::regclass AS cls, r.oid FROM pg_rewrite r
         WHERE r.ev_class = ANY(%(rels)s)
        UNION ALL SELECT a.adrelid, 'pg_attrdef'::regclass, a.oid FROM pg_attrdef a
         WHERE a.adrelid = ANY(%(rels)s)
        UNION ALL SELECT c.conrelid, 'pg_constraint'::regclass, c.oid FROM pg_constraint c
         WHERE c.conrelid = ANY(%(rels)s)
        UNION ALL SELECT pl.polrelid, 'pg_policy'::regclass, pl.oid FROM pg_policy pl
         WHERE pl.polrelid = ANY(%(rels)s)) o(rel, cls, oid)
  JOIN pg_depend dd ON dd.classid = o.cls AND dd.objid = o.oid
                   AND dd.refclassid = 'pg_proc'::regclass
  JOIN pg_proc p ON p.oid = dd.refobjid
 WHERE p.pronamespace <> 'pg_catalog'::regnamespace AND NOT {ext}
""".replace(
    # functions of an installed extension (citext, hstore, PostGIS...) were installed by the
    # DBA, not written by an application user: they do not stop a plan
    "{ext}",
    "EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass "
    "AND e.objid = p.oid AND e.deptype = 'e')",
)
_RELS_SQL = (
    "SELECT /* opscore */ coalesce(array_agg(to_regclass(x)::oid), '{}') FROM unnest(%s::text[]) x"
)


def _names(text: str) -> tuple[list[str], list[str], list[str], list[str]] | None:
    """Functions (qualified when written so), operators, relations and type names the text
    names; None when pglast cannot parse it."""
    import pglast
    from pglast import ast
    from pglast.visitors import Visitor

    try:
        tree = pglast.parse_sql(text)
    except Exception:  # noqa: BLE001 - unparsable: cannot be checked
        return None
    funcs: set[str] = set()
    ops: set[str] = set()
    rels: set[str] = set()
    types: set[str] = set()

    class V(Visitor):
        def visit_FuncCall(self, ancestors, node) -> None:
            funcs.add(".".join(f.sval for f in node.funcname))

        def visit_A_Expr(self, ancestors, node) -> None:
            if node.name:
                ops.add(".".join(getattr(f, "sval", "") for f in node.name))

        def visit_RangeVar(self, ancestors, node) -> None:
            rels.add(".".join(x for x in (node.schemaname, node.relname) if x))

        def visit_TypeName(self, ancestors, node) -> None:
            types.add(".".join(f.sval for f in node.names))

    V()(tree)
    _ = ast
    return sorted(funcs), sorted(ops), sorted(rels), sorted(types)


def calls_outside_catalog(conn: psycopg.Connection, text: str) -> list[str] | None:
    """Functions outside pg_catalog that planning ``text`` could run (named in it, behind its
    operators, or in the views, defaults, constraints and policies of the tables it names);
    None when the text cannot be checked (then it is not planned automatically)."""
    found = _names(text)
    if found is None:
        return None
    funcs, ops, rels, types = found
    out = [f for f in funcs if "." in f and not f.startswith("pg_catalog.")]
    out += [f"type {t}" for t in types if "." in t and not t.startswith("pg_catalog.")]
    plain = [f.lower() for f in funcs if "." not in f]
    rel_oids = conn.execute(_RELS_SQL, (rels,)).fetchone()
    oids = [o for o in (rel_oids[0] if rel_oids else []) if o is not None]
    rows = conn.execute(
        _FUNCS_SQL, {"names": plain, "ops": [o.split(".")[-1] for o in ops], "rels": oids}
    ).fetchall()
    return out + [r[0] for r in rows]


def _plan_role(conn: psycopg.Connection) -> tuple[bool, bool]:
    """(superuser, can use PLAN_ROLE)."""
    row = conn.execute(
        "SELECT /* opscore */ r.rolsuper, "
        "EXISTS (SELECT FROM pg_roles p WHERE p.rolname = %s "
        "AND pg_has_role(current_user, p.oid, 'MEMBER') AND NOT p.rolsuper) "
        "FROM pg_roles r WHERE r.rolname = current_user",
        (PLAN_ROLE,),
    ).fetchone()
    return (bool(row[0]), bool(row[1])) if row else (False, False)


def plan(
    conn: psycopg.Connection,
    query: str,
    *,
    fmt: str = "json",
    allow_functions: bool = False,
    rows_only: bool = False,
) -> Plan:
    """The plan of ``query`` (EXPLAIN, never ANALYZE), or the reason there is none.

    Placeholders ($1...): ``EXPLAIN (GENERIC_PLAN)`` on 16+, a PREPARE planned with
    ``plan_cache_mode = force_generic_plan`` and explained with NULL arguments on 14-15 (the
    generic plan does not look at them). ``rows_only``: an UPDATE/DELETE is planned as the
    SELECT that finds its rows (ADDM's index checks; no write rights needed). See the module's
    EXPLAIN notes for the safety rules."""
    version = conn.info.server_version
    has_params, why = explain_mode(query, version)
    if why:
        return Plan(None, why)
    body = rewrite_typed_params(_body(query))
    superuser, role_ok = _plan_role(conn)
    if superuser and not role_ok:
        return Plan(
            None,
            f"Not planned: the monitoring connection is a superuser and role {PLAN_ROLE} does "
            "not exist (or the connection is not a member of it), so planning could run "
            "application code with superuser rights. Create it (README, set-up SQL): "
            + PLAN_ROLE_SETUP.replace("\n", " "),
        )
    if not allow_functions:
        calls = calls_outside_catalog(conn, body)
        if calls is None:
            return Plan(None, "Not planned automatically: the text could not be checked for "
                        "function calls (not parsable).", text=body)  # fmt: skip
        if calls:
            return Plan(
                None,
                "Not planned automatically: planning could run functions outside pg_catalog ("
                + ", ".join(calls[:5])
                + "). Plan it explicitly if you trust them (it runs under the "
                f"{PLAN_ROLE} role).",
                text=body,
            )
    if rows_only:
        sel = as_select(body)
        if sel is not None:
            body = sel
        elif shape_kind(body) == "insert":
            return Plan(
                None,
                "INSERT ... VALUES finds no rows (nothing to plan for index checks); its cost "
                "is the write itself",
                text=body,
            )
    opts = "FORMAT JSON, VERBOSE" if fmt == "json" else "VERBOSE, COSTS"
    name = f"opscore_plan_{conn.info.backend_pid}"
    conn.execute("BEGIN /* opscore */ READ ONLY")
    prepared = False
    try:
        if role_ok:
            conn.execute(
                sql.SQL("SET /* opscore */ LOCAL ROLE {}").format(sql.Identifier(PLAN_ROLE))
            )
        if not has_params:
            method = "plain"
            stmt = sql.SQL(f"EXPLAIN /* opscore */ ({opts}) ") + sql.SQL(body)  # type: ignore[arg-type]
            rows = conn.execute(stmt, prepare=True).fetchall()
        elif version >= 160000:
            method = "generic_plan"
            stmt = sql.SQL(f"EXPLAIN /* opscore */ (GENERIC_PLAN, {opts}) ") + sql.SQL(body)  # type: ignore[arg-type]
            rows = conn.execute(stmt).fetchall()
        else:
            method = "prepare_generic"
            conn.execute("SET /* opscore */ LOCAL plan_cache_mode = force_generic_plan")
            conn.execute(
                sql.SQL("PREPARE /* opscore */ {} AS ").format(sql.Identifier(name)) + sql.SQL(body)  # type: ignore[arg-type]
            )
            prepared = True
            n = conn.execute(
                "SELECT /* opscore */ cardinality(parameter_types) FROM pg_prepared_statements "
                "WHERE name = %s",
                (name,),
            ).fetchone()
            args = sql.SQL(", ").join([sql.NULL] * int(n[0] if n else 0))
            rows = conn.execute(
                sql.SQL(f"EXPLAIN /* opscore */ ({opts}) EXECUTE {{}}({{}})").format(
                    sql.Identifier(name), args
                )
                if n and n[0]
                else sql.SQL(f"EXPLAIN /* opscore */ ({opts}) EXECUTE {{}}").format(
                    sql.Identifier(name)
                )
            ).fetchall()
    except psycopg.Error as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Plan(None, f"The server could not plan it: {msg}", text=body)
    finally:
        conn.execute("ROLLBACK /* opscore */")
        if prepared:
            with contextlib.suppress(psycopg.Error):
                conn.execute(sql.SQL("DEALLOCATE /* opscore */ {}").format(sql.Identifier(name)))
    if fmt == "json":
        doc = rows[0][0] if rows else None
        return Plan(doc[0]["Plan"] if doc else None, None, method, body)
    return Plan("\n".join(r[0] for r in rows), None, method, body)


def explain(conn: psycopg.Connection, query: str, generic: bool = True) -> str:
    """The text plan of ``query`` (the app's plan view); PlanRefused with the reason when there
    is none (``generic`` is kept for callers: placeholders are detected from the text)."""
    p = plan(conn, query, fmt="text")
    if p.plan is None:
        raise PlanRefused(p.reason or "No plan.", "See `opscore` README, EXPLAIN safety.")
    return str(p.plan)


class Planner:
    """ADDM's plan reads on one connection: cached per text; ``__call__`` gives the JSON plan
    or None, :meth:`plan` the plan with its reason."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.database = conn.info.dbname
        self._cache: dict[str, Plan] = {}

    def plan(self, text: str) -> Plan:
        if text not in self._cache:
            try:
                self._cache[text] = plan(self.conn, text, rows_only=True)
            except psycopg.Error as exc:
                self._cache[text] = Plan(None, f"Plan read failed: {str(exc).strip()}")
        return self._cache[text]

    def __call__(self, text: str) -> dict | None:
        return self.plan(text).plan


def session_setup_s(dsn: str, tries: int = 3) -> float | None:
    """What one new session costs the server before its first statement, measured: the least
    of ``tries`` fresh monitoring sessions' ``statement_timestamp() - backend_start`` (process
    start, authentication, start-up; a local client adds next to nothing). None when the
    target refuses."""
    from ..targets import connection

    best: float | None = None
    for _ in range(max(1, tries)):
        try:
            with connection.monitoring_session(dsn) as conn:
                row = conn.execute(
                    "SELECT /* opscore */ extract(epoch FROM statement_timestamp() - "
                    "backend_start)::float8 FROM pg_stat_activity WHERE pid = pg_backend_pid()"
                ).fetchone()
        except (psycopg.Error, OpsCoreError):
            return best
        if row and row[0] is not None:
            best = float(row[0]) if best is None else min(best, float(row[0]))
    return best
