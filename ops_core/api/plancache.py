"""The plan cache and the optimizer's misestimates, in their PostgreSQL meaning.

PostgreSQL keeps no shared plan cache: its "plan cache" is read from pg_stat_statements'
planning counters (plans vs calls, planning vs execution time) over a snapshot range; the
adaptive statistics are the estimate-vs-actual misestimates the tuning tasks' EXPLAIN ANALYZE
runs saw, with what to do about them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import psycopg

from .. import repository
from ..analysis.addm.indexbase import filter_columns
from ..analysis.sqltune import advisor
from ..collectors import sqlmon_plans
from ..errors import InvalidInput, NotFound, OpsCoreError
from ..repository import snapshot_ranges as ranges
from ..repository import snapshot_reads as reads
from ..repository import sqltune as store
from .common import opscore_shown
from .logs import read_log_entries
from .snapshots import list_snapshots
from .targets import get_target, target_session

__all__ = [
    "plan_cache_statistics",
    "plan_cache_entries",
    "adaptive_statistics",
    "adaptive_suggestions",
]


def _last_range(target: str, begin_id: int | None, end_id: int | None) -> tuple[int, int]:
    if begin_id is not None and end_id is not None:
        return begin_id, end_id
    snaps = list_snapshots(target, limit=2)
    if len(snaps) < 2:
        raise NotFound(
            "The target has fewer than two snapshots.", "Take snapshots (`opscore snapshot take`)."
        )
    return min(s.snapshot_id for s in snaps), max(s.snapshot_id for s in snaps)


def _planning(target: str, begin_id: int | None, end_id: int | None) -> pd.DataFrame:
    t = get_target(target)
    b, e = _last_range(t.name, begin_id, end_id)
    with repository.session() as repo:
        rr = ranges.range_read(repo, t.target_id, t.name, b, e)
        st = reads.statements_frame(repo, rr.plan, opscore_shown(None))
    if st.empty:
        return pd.DataFrame(
            columns=["queryid", "datname", "query", "plans", "calls", "plan_ms", "exec_ms"]
        )
    df = pd.DataFrame(
        {
            "queryid": st["queryid"],
            "datname": st["datname"],
            "query": st["query"],
            "plans": st["plans"].astype("int64") if "plans" in st else 0,
            "calls": st["calls"].astype("int64"),
            "plan_ms": st["total_plan_time"].astype("float64"),
            "exec_ms": st["total_exec_time"].astype("float64"),
        }
    )
    df = df[(df["calls"] > 0) | (df["plans"] > 0)]
    df["mean_plan_ms"] = df["plan_ms"] / df["plans"].where(df["plans"] > 0)
    df["mean_exec_ms"] = df["exec_ms"] / df["calls"].where(df["calls"] > 0)
    df["plans_per_call"] = df["plans"] / df["calls"].where(df["calls"] > 0)
    df["planning_dominates"] = df["plan_ms"] > df["exec_ms"]
    df.attrs.update(begin_id=b, end_id=e)
    return df


def plan_cache_statistics(
    target: str, begin_id: int | None = None, end_id: int | None = None
) -> dict[str, Any]:
    """PostgreSQL's "plan cache" as pg_stat_statements' planning counters over a snapshot range
    (default the last two snapshots): plans vs calls (a plan per call: no plan reuse),
    planning vs execution time, the statements where planning dominates. Planning counters
    need pg_stat_statements.track_planning = on (zero plans otherwise: said in ``note``)."""
    df = _planning(target, begin_id, end_id)
    plans, calls = int(df["plans"].sum()), int(df["calls"].sum())
    out = {
        "begin_id": df.attrs.get("begin_id"),
        "end_id": df.attrs.get("end_id"),
        "statements": len(df),
        "plans": plans,
        "calls": calls,
        "plans_per_call": round(plans / calls, 3) if calls else None,
        "plan_ms": float(df["plan_ms"].sum()),
        "exec_ms": float(df["exec_ms"].sum()),
        "planning_dominated_statements": int(df["planning_dominates"].sum()),
        "note": None,
    }
    if calls and not plans:
        out["note"] = (
            "No planning was counted: pg_stat_statements.track_planning is off on the target "
            "(set it on to see plans and planning time)."
        )
    return out


def plan_cache_entries(
    target: str, begin_id: int | None = None, end_id: int | None = None, limit: int = 50
) -> pd.DataFrame:
    """Statements by planning time: plans, calls, plans per call, mean plan vs exec ms,
    whether planning dominates (a candidate for a prepared statement / plan reuse)."""
    if limit < 1:
        raise InvalidInput(f"limit {limit} must be at least 1.")
    df = _planning(target, begin_id, end_id)
    return df.sort_values("plan_ms", ascending=False).head(limit).reset_index(drop=True)


#: the log tail read for auto_explain plans
AUTO_EXPLAIN_LOG_BYTES = 16 * 1024 * 1024


def _logged_misestimates(t: Any) -> tuple[list[dict[str, Any]], str | None]:
    """Misestimates in the actual plans auto_explain logged (log_analyze on), or why none."""
    try:
        with target_session(t) as conn:
            off = sqlmon_plans.settings(conn).reason_off()
        if off:
            return [], off
        src, entries, _ = read_log_entries(t, AUTO_EXPLAIN_LOG_BYTES)
    except (OpsCoreError, psycopg.Error) as exc:
        return [], f"the target's log could not be read: {getattr(exc, 'message', exc)}"
    if src.path is None:
        return [], f"the server log is not readable here: {src.reason}"
    out = []
    for p in sqlmon_plans.parse_entries(entries):
        if p.document is None or not p.analyzed:
            continue
        for m in advisor.misestimates(p.document["Plan"]):
            out.append({"source": "auto_explain", "logged_at": p.time, "task_id": None,
                        "seq": None, "database": p.database, **m})  # fmt: skip
    return out, None


def adaptive_statistics(target: str) -> pd.DataFrame:
    """Estimate-vs-actual misestimates (10x or more) per table and plan node, worst first:
    from the EXPLAIN ANALYZE runs of the target's tuning tasks, and from the actual plans
    auto_explain logged (JSON with log_analyze, where the log is readable: ``attrs['note']``
    says why not otherwise)."""
    t = get_target(target)
    with repository.session() as repo:
        rows = [{"source": "tuning task", "logged_at": None, **r}
                for r in store.all_misestimates(repo, t.target_id)]  # fmt: skip
    logged, why = _logged_misestimates(t)
    cols = [
        "source", "logged_at", "task_id", "seq", "database", "schema", "table", "node", "filter",
        "estimated_rows", "actual_rows", "factor",
    ]  # fmt: skip
    df = pd.DataFrame(rows + logged, columns=cols)
    df = df.sort_values("factor", ascending=False, kind="stable").reset_index(drop=True)
    df.attrs["note"] = f"No auto_explain plans: {why}" if why else None
    return df


def adaptive_suggestions(target: str) -> list[dict[str, Any]]:
    """What to do about the misestimates: per table, ANALYZE (and, when the filter compares
    several columns, CREATE STATISTICS on them; a single skewed column: a higher statistics
    target), with the worst factor seen."""
    df = adaptive_statistics(target)
    out = []
    for (schema, table), g in df.groupby(["schema", "table"], dropna=False):
        worst = g.sort_values("factor", ascending=False).iloc[0]
        cols = sorted({c for f in g["filter"].dropna() for c in _filter_cols(str(f))})
        # auto_explain plans name the schema only with log_verbose
        ident = f'"{schema}"."{table}"' if isinstance(schema, str) else f'"{table}"'
        sugg = [f"ANALYZE {ident};"]
        if len(cols) >= 2:
            sugg.append(
                f"CREATE STATISTICS ON {', '.join(cols[:8])} FROM {ident}; ANALYZE {ident};"
            )
        elif cols:
            sugg.append(
                f"ALTER TABLE {ident} ALTER COLUMN {cols[0]} SET STATISTICS 1000; ANALYZE {ident};"
            )
        out.append(
            {
                "schema": schema,
                "table": table,
                "worst_factor": float(worst["factor"]),
                "estimated_rows": float(worst["estimated_rows"]),
                "actual_rows": float(worst["actual_rows"]),
                "columns": cols,
                "suggestions": sugg,
            }
        )
    return sorted(out, key=lambda x: -x["worst_factor"])


def _filter_cols(text: str) -> list[str]:
    return [c for c in filter_columns(text) if c]
