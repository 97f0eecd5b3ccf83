"""ADDM data model: the input frames, findings, recommendations and the result. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from pglast import keywords
from psycopg import sql

# the records live in ops_core.model (the repository stores them without importing analysis)
from ...model.addm import INFO_TYPES, AddmResult, Finding, Recommendation  # noqa: F401

#: tie-break order (root causes before symptoms) and the problem types
PRIORITY: tuple[str, ...] = (
    "idle_in_transaction",
    "lock_contention",
    "relation_extension",
    "vacuum_blocked",
    "missing_index",
    "deep_offset",
    "stale_statistics",
    "temp_spill",
    "jit_overhead",
    "checkpoint_pressure",
    "wal_volume",
    "index_overhead",
    "commit_waits",
    "io_bound_sql",
    "cpu_bound_sql",
    "connection_saturation",
    "connection_churn",
    "wait_event",
    "nothing_significant",
    "top_sql",
)


#: (cause type, symptom type): a cause explains the symptom's DB time when they share objects
CAUSES: tuple[tuple[str, str], ...] = (
    ("missing_index", "cpu_bound_sql"),
    ("missing_index", "io_bound_sql"),
    ("missing_index", "top_sql"),
    ("deep_offset", "io_bound_sql"),
    ("deep_offset", "top_sql"),
    ("stale_statistics", "cpu_bound_sql"),
    ("stale_statistics", "io_bound_sql"),
    ("vacuum_blocked", "io_bound_sql"),
    ("vacuum_blocked", "cpu_bound_sql"),
    ("idle_in_transaction", "lock_contention"),
    ("wait_event", "lock_contention"),
    ("relation_extension", "wal_volume"),
    ("wal_volume", "commit_waits"),
    ("wal_volume", "checkpoint_pressure"),
)


@dataclass
class AddmInput:
    """Everything one analysis reads (frames from the repository and a few live catalog reads).

    ``samples``: ASH samples of the range (``ash_read.SAMPLE_COLUMNS``), may be empty.
    ``statements`` / ``tables`` / ``databases`` / ``cluster``: the snapshot range aggregate
    (``tables_begin``: the begin snapshot's table gauges, for growth).
    ``settings``: name -> value in base units (``int``/``float``) or text.
    ``indexes``: table (schema.name) -> list of index key column lists, for the target's database.
    ``index_catalog``: table -> [{name, oid, columns, valid}] of the same live catalog read.
    ``index_scans``: the range's index deltas (``datname``, ``indexrelid``, ``idx_scan``).
    ``table_catalog``: table -> {options: reloptions, reltuples: the planner's row count,
    relpages: its page count}.
    ``history`` / ``history_meta``: the statements of the lookback before the range, to judge
    each statement against its own history (``baseline``).
    ``explain``: generic-plan EXPLAIN (JSON) of a
    statement text, or None when the server cannot (before 16).
    """

    elapsed_s: float
    samples: pd.DataFrame
    statements: pd.DataFrame
    tables: pd.DataFrame
    tables_begin: pd.DataFrame
    databases: pd.DataFrame
    cluster: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    indexes: dict[str, list[list[str]]] = field(default_factory=dict)
    index_catalog: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    index_scans: pd.DataFrame | None = None
    table_catalog: dict[str, dict[str, Any]] = field(default_factory=dict)  # options, reltuples
    catalog_database: str | None = None  # the database ``indexes``/``table_options`` are of
    explain: Callable[[str], dict | None] | None = None
    cpu_count: int | None = None
    min_impact_pct: float = 5.0
    #: pg_stat_statements sums of the target's earlier snapshots (``statements_frame``
    #: columns) and what they cover (intervals, elapsed_s, from, to): each statement's history
    history: pd.DataFrame | None = None
    history_meta: dict[str, Any] | None = None
    server_version_num: int | None = None
    extensions: set[str] = field(default_factory=set)  # created in ``catalog_database``
    #: what held the xmin horizon at the end snapshot besides sessions (prepared transactions,
    #: replication slots, standbys' feedback: the ``xmin_holders`` source); None when the
    #: snapshot did not capture it (taken by an older opscore)
    xmin_holders: list[dict[str, Any]] | None = None
    end_at: datetime | None = None  # capture time of the end snapshot
    #: what a new session costs the server before its first statement, measured on the target
    #: at analysis time when the range opened sessions fast (None: not measured)
    session_setup_s: float | None = None


_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")
_KEYWORDS = frozenset(
    keywords.RESERVED_KEYWORDS | keywords.TYPE_FUNC_NAME_KEYWORDS | keywords.COL_NAME_KEYWORDS
)


def qident(name: str) -> str:
    """An identifier as SQL: bare when PostgreSQL would read it back unchanged (lower case,
    not a keyword), else double-quoted with quotes doubled (like quote_ident)."""
    if _PLAIN.fullmatch(name) and name not in _KEYWORDS:
        return name
    return sql.Identifier(name).as_string(None)


def qtable(table: str) -> str:
    """``schema.name`` (as ADDM keys tables: the catalog's names joined by the first dot) as
    a quoted qualified name."""
    schema, dot, rel = table.partition(".")
    return f"{qident(schema)}.{qident(rel)}" if dot else qident(table)


def pct(part: float, total: float) -> float:
    return round(100.0 * part / total, 2) if total > 0 else 0.0


def fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def short(text: object, n: int = 120) -> str:
    # Root blockers seen only through their waiters' samples come out of pandas with
    # NaN for text they never reported: treat any non-string as "no text".
    t = " ".join(text.split()) if isinstance(text, str) else ""
    return t if len(t) <= n else t[: n - 1] + "…"


#: how a boolean setting or reloption can be written off
OFF_VALUES = frozenset({"off", "false", "f", "no", "n", "0"})


def autovacuum_off(inp: AddmInput, table: str) -> str | None:
    """Why autovacuum cannot clean ``table`` (schema.name), or None."""
    opts = (inp.table_catalog.get(table) or {}).get("options") or []
    for o in opts:
        name, _, value = str(o).lower().partition("=")
        if name.strip() == "autovacuum_enabled" and value.strip() in OFF_VALUES:
            return "disabled on the table"
    if str(inp.settings.get("autovacuum", "on")).lower() in OFF_VALUES:
        return "disabled server-wide"
    return None


def enable_autovacuum(
    table: str,
    reason: str,
    rationale: str,
    benefit_s: float | None = None,
    benefit_pct: float | None = None,
) -> Recommendation:
    """The statement that lets autovacuum (and auto-analyze) work on ``table`` again, for the
    ``reason`` :func:`autovacuum_off` gave (the table's reloption, or the server's setting)."""
    if reason == "disabled on the table":
        action = f"ALTER TABLE {qtable(table)} RESET (autovacuum_enabled);"
    else:
        action = "ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();"
    return Recommendation("sql", action, rationale, benefit_s, benefit_pct)
