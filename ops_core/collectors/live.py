"""Live reads of a target (not stored): sessions doing something now, a one-row summary, and
EXPLAIN (never ANALYZE) of a stored statement text. All run in a monitoring session."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ..analysis.waits import wait_class
from ..errors import NotSupported

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
_EXPLAINABLE = ("select", "insert", "update", "delete", "merge", "values", "with", "table")
_PLACEHOLDER = re.compile(r"\$\d+")
_COMMENT = re.compile(r"(--[^\n]*\n)|(/\*.*?\*/)", re.S)


def explain_mode(query: str, version_num: int) -> tuple[bool, str | None]:
    """(generic, why-not): whether EXPLAIN needs GENERIC_PLAN, or why it cannot be explained."""
    text = _COMMENT.sub(" ", query or "").strip()
    if not text:
        return False, "The statement text is empty (not kept by pg_stat_statements)."
    body = text.rstrip().rstrip(";").strip()
    if ";" in body:
        return False, "The text holds more than one statement (or a ';' inside): not explained."
    first = body.split(None, 1)[0].lower().lstrip("(")
    if first not in _EXPLAINABLE:
        return False, (
            f"{first.upper()} is not a statement EXPLAIN can show a plan for "
            "(only SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES, WITH, TABLE)."
        )
    if _PLACEHOLDER.search(body):
        if version_num < 160000:
            return False, (
                "The statement has parameter placeholders ($1, ...): a plan without values "
                f"needs EXPLAIN (GENERIC_PLAN), PostgreSQL 16+; the target runs "
                f"{version_num // 10000}."
            )
        return True, None
    return False, None


def explain(conn: psycopg.Connection, query: str, generic: bool) -> str:
    """EXPLAIN (never ANALYZE: nothing is executed) in the connection's read-only session.

    Without placeholders the text goes through a prepared statement, which the server refuses
    to hold more than one command. With GENERIC_PLAN the placeholders must reach the server
    as text (the simple protocol), so the caller has refused any ';' inside the text first.
    The transaction is read-only and the session time-limited in any case."""
    body = _COMMENT.sub(" ", query).strip().rstrip(";")
    opts = "(GENERIC_PLAN, VERBOSE, COSTS)" if generic else "(VERBOSE, COSTS)"
    stmt = sql.SQL("EXPLAIN " + opts + " ") + sql.SQL(body)  # type: ignore[arg-type]
    conn.execute("BEGIN READ ONLY")
    try:
        rows = conn.execute(stmt, prepare=not generic).fetchall()
    finally:
        conn.execute("ROLLBACK")
    return "\n".join(r[0] for r in rows)
