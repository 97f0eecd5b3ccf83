"""The :class:`Action` record: one change to a target, as ``actions.perform`` runs it (its own
module so the modules that build actions, ``actions`` and ``index_actions``, share it without
importing each other)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

__all__ = ["Action"]


@dataclass(frozen=True)
class Action:
    """One change to a target: a single statement with its values bound apart."""

    feature: str
    what: str  # one line: "restore point 'before-upgrade'"
    sql: str | sql.Composable
    params: tuple[Any, ...] = ()
    why: str = ""
    requested_by: str = "opscore"
    evidence: dict[str, Any] = field(default_factory=dict)
    #: a read-only query whose rows are the state before and after (None: not recorded)
    state_sql: str | sql.Composable | None = None
    state_params: tuple[Any, ...] = ()
    undo_sql: str | None = None  # the way back, when there is one
    #: VACUUM, CREATE INDEX CONCURRENTLY and friends cannot run inside a transaction block
    autocommit: bool = True

    def sql_text(self) -> str:
        return self.sql if isinstance(self.sql, str) else self.sql.as_string()
