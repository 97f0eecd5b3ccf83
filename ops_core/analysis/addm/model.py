"""ADDM data model: the input frames, findings, recommendations and the result. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from pglast import keywords
from psycopg import sql

#: tie-break order (root causes before symptoms) and the problem types
PRIORITY: tuple[str, ...] = (
    "idle_in_transaction",
    "lock_contention",
    "relation_extension",
    "vacuum_blocked",
    "missing_index",
    "stale_statistics",
    "temp_spill",
    "checkpoint_pressure",
    "wal_volume",
    "index_overhead",
    "commit_waits",
    "io_bound_sql",
    "cpu_bound_sql",
    "connection_saturation",
    "nothing_significant",
    "top_sql",
)
INFO_TYPES = frozenset({"top_sql", "nothing_significant"})


@dataclass
class Recommendation:
    action_type: str  # sql | setting | session | application
    action: str  # the exact action: SQL to run, setting to change, session to end
    rationale: str
    benefit_db_time_s: float | None = None
    benefit_pct: float | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sql"] = self.action if self.action_type == "sql" else None
        return d


#: (cause type, symptom type): a cause explains the symptom's DB time when they share objects
CAUSES: tuple[tuple[str, str], ...] = (
    ("missing_index", "cpu_bound_sql"),
    ("missing_index", "io_bound_sql"),
    ("missing_index", "top_sql"),
    ("stale_statistics", "cpu_bound_sql"),
    ("stale_statistics", "io_bound_sql"),
    ("vacuum_blocked", "io_bound_sql"),
    ("vacuum_blocked", "cpu_bound_sql"),
    ("idle_in_transaction", "lock_contention"),
    ("relation_extension", "wal_volume"),
    ("wal_volume", "commit_waits"),
    ("wal_volume", "checkpoint_pressure"),
)


@dataclass
class Finding:
    type: str
    title: str
    impact_db_time_s: float  # DB time the problem accounts for in the range
    impact_pct: float  # share of total DB time
    evidence: dict[str, Any] = field(default_factory=dict)
    objects: list[str] = field(default_factory=list)
    statements: list[dict[str, Any]] = field(default_factory=list)  # queryid, query
    sessions: list[int] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    basis: str = "ash"  # ash | snapshot (no ASH: pg_stat_statements time) | risk
    risk_pct: float | None = None  # for risk findings (e.g. % of max_connections in use)
    rank: int = 0

    @property
    def cause(self) -> int | None:
        """Rank of the finding that causes this one (shown nested under it), if any."""
        c = self.evidence.get("caused_by_rank")
        return int(c) if c is not None else None

    @property
    def score(self) -> float:
        return max(self.impact_pct, self.risk_pct or 0.0)

    @property
    def is_problem(self) -> bool:
        return self.type not in INFO_TYPES

    @property
    def snapshot_only(self) -> bool:
        return self.basis == "snapshot"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["recommendations"] = [r.as_dict() for r in self.recommendations]
        d["snapshot_only"] = self.snapshot_only
        d["cause"] = self.cause
        return d


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
    server_version_num: int | None = None


@dataclass
class AddmResult:
    db_time_s: float
    db_time_source: str  # ash | pg_stat_statements
    ash_db_time_s: float | None
    pgss_time_s: float
    elapsed_s: float
    ash_samples: int
    breakdown: dict[str, list[dict[str, Any]]]
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)

    @property
    def aas(self) -> float:
        return self.db_time_s / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "findings"}
        d["aas"] = round(self.aas, 3)
        d["findings"] = [f.as_dict() for f in self.findings]
        return d


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


def short(text: str | None, n: int = 120) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= n else t[: n - 1] + "…"
