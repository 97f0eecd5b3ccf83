"""Compare two periods (snapshot ranges) of one target: the model reports and the app render.

Pure functions over :class:`~ops_core.repository.snapshot_ranges.RangeAggregate` frames:
load profile per second and per transaction, top SQL side by side, I/O, wait events (when
ASH summaries are given), settings that differ and resets inside either period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from ..model.serialize import frame_records


class Period(Protocol):  # what compare needs of a range aggregate
    target: str
    elapsed_s: float
    statements: pd.DataFrame
    databases: pd.DataFrame
    io: pd.DataFrame | None
    cluster: dict[str, dict[str, Any]]
    resets: list[dict[str, Any]]
    begin: Any
    end: Any


def _col(df: pd.DataFrame, name: str) -> float:
    if df is None or df.empty or name not in df.columns:
        return 0.0
    return float(pd.to_numeric(df[name]).fillna(0).sum())


def load_profile(p: Period) -> pd.DataFrame:
    """Metric totals of a period, per second and per transaction."""
    st, db = p.statements, p.databases
    if "toplevel" in st.columns and len(st):
        st = st[st["toplevel"].fillna(True).astype(bool)]  # nested statements count once
    wal = p.cluster.get("pg_stat_wal", {})
    ckpt = p.cluster.get("checkpointer", {})
    xacts = _col(db, "xact_commit") + _col(db, "xact_rollback")
    metrics: list[tuple[str, float | None]] = [
        ("SQL time (s, pg_stat_statements; not DB time)", _col(st, "total_exec_time") / 1000.0),
        ("executions", _col(st, "calls")),
        ("transactions", xacts),
        ("rollbacks", _col(db, "xact_rollback")),
        ("rows (statements)", _col(st, "rows")),
        ("logical reads (blocks)", _col(db, "blks_hit") + _col(db, "blks_read")),
        ("physical reads (blocks)", _col(db, "blks_read")),
        ("tuples inserted", _col(db, "tup_inserted")),
        ("tuples updated", _col(db, "tup_updated")),
        ("tuples deleted", _col(db, "tup_deleted")),
        ("temp bytes", _col(db, "temp_bytes")),
        ("WAL bytes", float(wal["wal_bytes"]) if "wal_bytes" in wal else None),
        ("WAL records", float(wal["wal_records"]) if "wal_records" in wal else None),
        (
            "checkpoints",
            float(ckpt.get("num_timed", 0) + ckpt.get("num_requested", 0)) if ckpt else None,
        ),
        ("sessions", _col(db, "sessions")),
        ("deadlocks", _col(db, "deadlocks")),
    ]
    rows = []
    for name, total in metrics:
        per_s = total / p.elapsed_s if total is not None and p.elapsed_s > 0 else None
        per_tx = total / xacts if total is not None and xacts > 0 else None
        rows.append(
            {"metric": name, "total": total, "per_second": per_s, "per_transaction": per_tx}
        )
    return pd.DataFrame(rows)


def compare_load(p1: Period, p2: Period) -> pd.DataFrame:
    a, b = load_profile(p1), load_profile(p2)
    out = a.merge(b, on="metric", suffixes=("_1", "_2"))
    d1, d2 = out["per_second_1"].astype("float64"), out["per_second_2"].astype("float64")
    out["change_pct"] = ((d1 - d2) / d2.where(d2 != 0) * 100).round(1)
    return out


STMT_KEY = ["queryid", "datname", "username", "toplevel"]


def top_sql(p1: Period, p2: Period, top: int = 10, by: str = "total_exec_time") -> pd.DataFrame:
    """Statements side by side: the top ``top`` of either period by ``by``."""
    cols = STMT_KEY + [
        "query",
        "calls",
        "total_exec_time",
        "mean_exec_time",
        "rows",
        "shared_blks_read",
        "shared_blks_hit",
        "temp_blks_written",
        "wal_bytes",
    ]

    def prep(df: pd.DataFrame) -> pd.DataFrame:
        if df is None or df.empty:
            return pd.DataFrame(columns=cols)
        return df[cols].copy()

    a, b = prep(p1.statements), prep(p2.statements)
    pick = set()
    for df in (a, b):
        if not df.empty:
            pick |= set(map(tuple, df.nlargest(top, by)[STMT_KEY].astype(str).values))
    merged = a.merge(b, on=STMT_KEY, how="outer", suffixes=("_1", "_2"))
    if merged.empty:
        return merged
    keys = merged[STMT_KEY].astype(str).apply(tuple, axis=1)
    merged = merged[keys.isin(pick)].copy()
    merged["query"] = merged["query_1"].combine_first(merged["query_2"])
    merged = merged.drop(columns=["query_1", "query_2"])
    total1 = _col(p1.statements, by) or None
    total2 = _col(p2.statements, by) or None
    merged[f"{by}_pct_1"] = (merged[f"{by}_1"].astype("float64") / total1 * 100) if total1 else None
    merged[f"{by}_pct_2"] = (merged[f"{by}_2"].astype("float64") / total2 * 100) if total2 else None
    merged["delta"] = merged[f"{by}_1"].astype("float64").fillna(0) - merged[f"{by}_2"].astype(
        "float64"
    ).fillna(0)
    return merged.sort_values("delta", key=abs, ascending=False).reset_index(drop=True)


def io_compare(p1: Period, p2: Period) -> pd.DataFrame | None:
    if p1.io is None or p2.io is None:
        return None
    key = ["backend_type", "object", "context"]
    cols = key + ["reads", "read_bytes", "writes", "write_bytes", "hits", "extends", "fsyncs"]
    out = p1.io[cols].merge(p2.io[cols], on=key, how="outer", suffixes=("_1", "_2")).fillna(0)
    out = out[(out.drop(columns=key) != 0).any(axis=1)]
    return out.reset_index(drop=True)


def waits_compare(w1: pd.DataFrame | None, w2: pd.DataFrame | None) -> pd.DataFrame | None:
    """DB time by wait event in both periods (frames: wait_event_type, wait_event, db_time_s)."""
    if w1 is None and w2 is None:
        return None
    key = ["wait_event_type", "wait_event"]
    empty = pd.DataFrame(columns=key + ["db_time_s"])
    a = w1 if w1 is not None else empty
    b = w2 if w2 is not None else empty
    out = a.merge(b, on=key, how="outer", suffixes=("_1", "_2")).fillna(
        {"db_time_s_1": 0, "db_time_s_2": 0}
    )
    return out.sort_values("db_time_s_1", ascending=False).reset_index(drop=True)


@dataclass
class Comparison:
    target: str
    period1: dict[str, Any]
    period2: dict[str, Any]
    load_profile: pd.DataFrame
    top_sql: pd.DataFrame
    io: pd.DataFrame | None  # None: pg_stat_io not available on this server
    waits: pd.DataFrame | None  # None: no ASH data for these periods
    resets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "period1": self.period1,
            "period2": self.period2,
            "load_profile": frame_records(self.load_profile),
            "top_sql": frame_records(self.top_sql),
            "io": frame_records(self.io),
            "waits": frame_records(self.waits),
            "resets": self.resets,
            "notes": self.notes,
        }


def _period(p: Period, label: str | None) -> dict[str, Any]:
    return {
        "label": label,
        "begin_snapshot_id": p.begin.snapshot_id,
        "end_snapshot_id": p.end.snapshot_id,
        "begin_at": p.begin.captured_at.isoformat(),
        "end_at": p.end.captured_at.isoformat(),
        "elapsed_s": p.elapsed_s,
    }


def compare(
    p1: Period,
    p2: Period,
    *,
    top: int = 10,
    waits1: pd.DataFrame | None = None,
    waits2: pd.DataFrame | None = None,
    label2: str | None = None,
) -> Comparison:
    notes = []
    io = io_compare(p1, p2)
    if io is None:
        notes.append("I/O by backend (pg_stat_io) not available: needs PostgreSQL 16+.")
    waits = waits_compare(waits1, waits2)
    if waits is None:
        notes.append("Wait events not available: no ASH samples cover these periods.")
    resets = [{"period": 1, **r} for r in p1.resets] + [{"period": 2, **r} for r in p2.resets]
    if resets:
        notes.append(
            f"{len(resets)} reset(s)/new baseline(s) inside the periods: counters there are "
            "counted from the reset (see resets)."
        )
    return Comparison(
        target=p1.target,
        period1=_period(p1, None),
        period2=_period(p2, label2),
        load_profile=compare_load(p1, p2),
        top_sql=top_sql(p1, p2, top),
        io=io,
        waits=waits,
        resets=resets,
        notes=notes,
    )
