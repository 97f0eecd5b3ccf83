"""Index changes as :class:`~ops_core.targets.actions.Action` s: ``CREATE INDEX CONCURRENTLY``,
``DROP INDEX CONCURRENTLY`` and the clone trial of an index. Re-exported by
``ops_core.targets.actions``; like every other action they run only through
``actions.perform`` (policy + journal + way back) — this module builds them, it executes
nothing on a target."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from . import connection
from .action_model import Action

__all__ = [
    "index_ddl",
    "predicate_sql",
    "create_index",
    "drop_index",
    "trial_index_on_clone",
    "INDEX_STATE",
]

#: the indexes of one table with their validity and size (the state before and after)
INDEX_STATE = (
    "SELECT /* opscore */ indexrelid::regclass::text AS index, indisvalid, "
    "pg_relation_size(indexrelid) AS bytes FROM pg_index WHERE indrelid = to_regclass(%s) "
    "ORDER BY 1"
)


def predicate_sql(column: str, value: str | None) -> sql.Composed:
    """A partial index's predicate: ``column = 'value'`` (the value a literal, typed by the
    column), or ``column IS NULL`` when ``value`` is None."""
    if value is None:
        return sql.SQL("{} IS NULL").format(sql.Identifier(column))
    return sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(value))


def index_ddl(
    schema: str,
    table: str,
    columns: tuple[str, ...] | list[str],
    *,
    name: str | None = None,
    concurrently: bool = False,
    include: tuple[str, ...] | list[str] = (),
    where: sql.Composable | None = None,
) -> sql.Composed:
    """``CREATE INDEX [CONCURRENTLY] [name] ON schema.table (columns) [INCLUDE (columns)]
    [WHERE predicate]``, identifiers quoted, values literals (the one place that composes it:
    actions below, hypopg's hypothetical indexes, clone trials)."""
    return sql.SQL("CREATE INDEX {conc}{name}ON {table} ({cols}){incl}{where}").format(
        conc=sql.SQL("CONCURRENTLY " if concurrently else ""),
        name=sql.SQL("{} ").format(sql.Identifier(name)) if name else sql.SQL(""),
        table=sql.Identifier(schema, table),
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        incl=sql.SQL(" INCLUDE ({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in include))
        if include
        else sql.SQL(""),
        where=sql.SQL(" WHERE {}").format(where) if where is not None else sql.SQL(""),
    )


def create_index(
    schema: str,
    table: str,
    columns: tuple[str, ...] | list[str],
    *,
    name: str,
    why: str,
    evidence: dict[str, Any],
    requested_by: str = "opscore",
    include: tuple[str, ...] | list[str] = (),
    where: sql.Composable | None = None,
) -> Action:
    """``CREATE INDEX CONCURRENTLY name ON schema.table (columns) [INCLUDE (...)] [WHERE ...]``
    (no lock that stops writes); the way back is ``DROP INDEX CONCURRENTLY``. State: the
    table's indexes."""
    extra = (f" include ({', '.join(include)})" if include else "") + (
        f" where {where.as_string()}" if where is not None else ""
    )
    return Action(
        feature="create_index",
        what=f"create index {name} on {schema}.{table} ({', '.join(columns)}){extra}",
        sql=index_ddl(
            schema, table, columns, name=name, concurrently=True, include=include, where=where
        ),
        why=why,
        evidence=evidence,
        requested_by=requested_by,
        state_sql=INDEX_STATE,
        state_params=(sql.Identifier(schema, table).as_string(),),
        undo_sql=sql.SQL("DROP INDEX CONCURRENTLY {};")
        .format(sql.Identifier(schema, name))
        .as_string(),
    )


def drop_index(
    schema: str,
    table: str,
    name: str,
    *,
    why: str,
    evidence: dict[str, Any],
    undo_sql: str | None = None,
    requested_by: str = "opscore",
) -> Action:
    """``DROP INDEX CONCURRENTLY IF EXISTS schema.name`` (no lock that stops reads or writes of
    the table); ``undo_sql`` (its CREATE INDEX) is the way back. State: the table's indexes."""
    return Action(
        feature="drop_index",
        what=f"drop index {schema}.{name} on {table}",
        sql=sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, name)),
        why=why,
        evidence=evidence,
        requested_by=requested_by,
        state_sql=INDEX_STATE,
        state_params=(sql.Identifier(schema, table).as_string(),),
        undo_sql=undo_sql,
    )


@contextmanager
def trial_index_on_clone(
    clone_dsn: str,
    schema: str,
    table: str,
    columns: tuple[str, ...] | list[str],
    *,
    include: tuple[str, ...] | list[str] = (),
    where: sql.Composable | None = None,
    name: str | None = None,
) -> Iterator[psycopg.Connection]:
    """A connection to a clone (a server opscore restored from its own backup, never a
    monitored target) in an open transaction that has built the index for real; the index is
    visible to this connection only and is rolled back when the block ends. The transaction is
    read-only after the build: what runs in the block cannot write."""
    conn = connection.connect(
        clone_dsn, read_only=False, autocommit=True, application_name="opscore-trial"
    )
    try:
        conn.execute("BEGIN /* opscore */")
        conn.execute(index_ddl(schema, table, columns, include=include, where=where, name=name))
        conn.execute("SET /* opscore */ TRANSACTION READ ONLY")
        yield conn
    finally:
        try:
            conn.execute("ROLLBACK /* opscore */")
        finally:
            conn.close()
