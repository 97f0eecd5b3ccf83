"""ASH report model: activity of one target over a time range. Pure (frames in, dataclass out).

DB time is sampled time of sessions that were running or in a non-idle wait (see
:mod:`ops_core.analysis.waits`); average active sessions (AAS) = DB time / elapsed seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from ..model.serialize import frame_records
from .waits import WAIT_CLASSES

#: stable colours per wait class (Oracle-like: CPU green, I/O blue, locks red)
CLASS_COLORS: dict[str, str] = {
    "CPU": "#2ca02c",
    "IO": "#1f77b4",
    "Lock": "#d62728",
    "LWLock": "#ff7f0e",
    "IPC": "#9467bd",
    "Timeout": "#8c564b",
    "BufferPin": "#e377c2",
    "Extension": "#7f7f7f",
    "Client": "#bcbd22",
    "Activity": "#17becf",
    "Other": "#aaaaaa",
}


@dataclass
class AshFrames:
    """What the repository gives the ASH report (see :func:`ops_core.api.ash_report`)."""

    activity: pd.DataFrame  # bucket, wait_class, db_time_s, samples
    bucket_s: int
    by_event: pd.DataFrame  # wait_class, event, samples, time_s, db_time_s
    by_sql: pd.DataFrame  # query_id, samples, time_s, db_time_s, query
    by_session: pd.DataFrame  # pid, backend_start, usename, application_name, ...
    by_user: pd.DataFrame
    by_app: pd.DataFrame
    by_database: pd.DataFrame
    sql_waits: pd.DataFrame  # query_id, wait_class, event, db_time_s
    blocking: pd.DataFrame  # ops_core.analysis.blocking.COLUMNS
    sample_rows: int = 0
    first_sample: datetime | None = None
    last_sample: datetime | None = None
    background: pd.DataFrame | None = None  # ash_read.background_time: not DB time


@dataclass
class AshReport:
    target: str
    begin: datetime
    end: datetime
    filters: dict[str, Any]
    header: dict[str, Any]
    highlights: list[str]
    notes: list[str]
    bucket_s: int
    activity: pd.DataFrame  # bucket x wait class (columns), values = average active sessions
    wait_classes: pd.DataFrame  # wait_class, db_time_s, pct, avg_active_sessions
    top_events: pd.DataFrame
    top_sql: pd.DataFrame
    top_sessions: pd.DataFrame
    top_users: pd.DataFrame
    top_apps: pd.DataFrame
    top_databases: pd.DataFrame
    blocking: pd.DataFrame
    sql_wait_profiles: pd.DataFrame  # query_id, query, db_time_s, then one column per class (%)
    empty: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # background processes working (checkpointer, autovacuum, WAL writer...): not DB time
    background: pd.DataFrame | None = None  # backend_type, wait_class, event, time_s, samples

    def as_dict(self) -> dict[str, Any]:
        act = self.activity.reset_index()
        act["bucket"] = act["bucket"].astype(str)
        return {
            "target": self.target,
            "begin": self.begin.isoformat(),
            "end": self.end.isoformat(),
            "filters": self.filters,
            "header": {
                k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.header.items()
            },
            "highlights": self.highlights,
            "notes": self.notes,
            "bucket_s": self.bucket_s,
            "activity": frame_records(act),
            "wait_classes": frame_records(self.wait_classes),
            "top_events": frame_records(self.top_events),
            "top_sql": frame_records(self.top_sql),
            "top_sessions": frame_records(self.top_sessions),
            "top_users": frame_records(self.top_users),
            "top_apps": frame_records(self.top_apps),
            "top_databases": frame_records(self.top_databases),
            "blocking": frame_records(self.blocking),
            "sql_wait_profiles": frame_records(self.sql_wait_profiles),
            "background": frame_records(self.background),
            "empty": self.empty,
        }


def _share(df: pd.DataFrame, elapsed_s: float, top: int | None = None) -> pd.DataFrame:
    df = df.copy()
    if "db_time_s" not in df.columns:
        df["db_time_s"] = pd.Series(dtype="float64")
    total = float(df["db_time_s"].sum()) if len(df) else 0.0
    df["pct"] = df["db_time_s"] / total * 100.0 if total > 0 else 0.0
    df["avg_active_sessions"] = df["db_time_s"] / elapsed_s if elapsed_s > 0 else 0.0
    df = df[df["db_time_s"] > 0] if len(df) else df
    df = df.sort_values("db_time_s", ascending=False)
    return (df.head(top) if top else df).reset_index(drop=True)


def activity_matrix(activity: pd.DataFrame, bucket_s: int, begin: datetime, end: datetime):
    """Average active sessions per bucket (rows, every bucket of the range) and class (columns,
    in WAIT_CLASSES order)."""
    idx = pd.date_range(begin, end, freq=f"{bucket_s}s", inclusive="left")
    if activity is None or activity.empty:
        return pd.DataFrame(index=pd.Index(idx, name="bucket"))
    m = activity.pivot_table(
        index="bucket", columns="wait_class", values="db_time_s", aggfunc="sum", fill_value=0.0
    )
    m.index = pd.to_datetime(m.index, utc=True)
    m = m.reindex(idx.union(m.index), fill_value=0.0) / float(bucket_s)
    m.index.name = "bucket"
    cols = [c for c in WAIT_CLASSES if c in m.columns] + [
        c for c in m.columns if c not in WAIT_CLASSES
    ]
    return m[cols]


def sql_wait_profiles(sql_waits: pd.DataFrame, by_sql: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """For the top query ids: DB time and its split by wait class (percent of that query)."""
    if sql_waits is None or sql_waits.empty or by_sql is None or by_sql.empty:
        return pd.DataFrame(columns=["query_id", "db_time_s", "top_event", "query"])
    top_ids = by_sql[by_sql["db_time_s"] > 0].head(top)
    rows = []
    for r in top_ids.itertuples(index=False):
        w = sql_waits[sql_waits["query_id"] == r.query_id]
        total = float(w["db_time_s"].sum())
        if total <= 0:
            continue
        by_cls = w.groupby("wait_class")["db_time_s"].sum() / total * 100.0
        ev = w.sort_values("db_time_s", ascending=False).iloc[0]
        row = {
            "query_id": r.query_id,
            "db_time_s": total,
            "top_event": f"{ev.event} ({ev.db_time_s / total * 100:.0f} %)",
        }
        for cls in WAIT_CLASSES:
            if cls in by_cls.index:
                row[f"{cls} %"] = float(by_cls[cls])
        row["query"] = r.query
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=["query_id", "db_time_s", "top_event", "query"])
    cls_cols = [f"{c} %" for c in WAIT_CLASSES if f"{c} %" in out.columns]
    out[cls_cols] = out[cls_cols].fillna(0.0)
    return out[["query_id", "db_time_s", "top_event", *cls_cols, "query"]]


def _short(q: Any, n: int = 80) -> str:
    s = " ".join(str(q or "").split())
    return s if len(s) <= n else s[: n - 1] + "…"


def build(
    target: str,
    begin: datetime,
    end: datetime,
    frames: AshFrames,
    *,
    filters: dict[str, Any] | None = None,
    top: int = 10,
) -> AshReport:
    elapsed = (end - begin).total_seconds()
    flt = {k: v for k, v in (filters or {}).items() if v is not None}
    classes = frames.by_event.groupby("wait_class", as_index=False)[["db_time_s"]].sum()
    wait_classes = _share(classes, elapsed)
    db_time = float(wait_classes["db_time_s"].sum()) if len(wait_classes) else 0.0
    notes: list[str] = []
    empty = frames.sample_rows == 0
    if empty:
        notes.append(
            "No ASH samples exist for this target in this range"
            + (" with these filters" if flt else "")
            + ": was the sampler (`opscore ash run`) running? Nothing below is missing data, "
            "there is simply none."
        )
    elif db_time == 0:
        notes.append(
            "Samples exist but none is DB time: every sampled session was idle in a transaction "
            "or waiting for its client."
        )
    if frames.first_sample is not None and frames.sample_rows:
        gap_start = (frames.first_sample - begin).total_seconds()
        gap_end = (end - frames.last_sample).total_seconds() if frames.last_sample else 0
        if gap_start > max(60.0, 0.1 * elapsed) or gap_end > max(60.0, 0.1 * elapsed):
            notes.append(
                f"Samples cover only {frames.first_sample:%Y-%m-%d %H:%M:%S} to "
                f"{frames.last_sample:%Y-%m-%d %H:%M:%S} UTC of the range; AAS is averaged over "
                "the whole range."
            )
    top_events = _share(frames.by_event, elapsed, top)
    top_sql = _share(frames.by_sql, elapsed, top)
    sessions = _share(frames.by_session, elapsed, top)
    blocking = frames.blocking
    r = AshReport(
        target=target,
        begin=begin,
        end=end,
        filters=flt,
        header={
            "target": target,
            "begin": begin,
            "end": end,
            "elapsed_s": elapsed,
            "filters": ", ".join(f"{k}={v}" for k, v in flt.items()) or "none",
            "samples": frames.sample_rows,
            "db_time_s": db_time,
            "avg_active_sessions": db_time / elapsed if elapsed > 0 else 0.0,
            "background_s": float(frames.background["time_s"].sum())
            if frames.background is not None and len(frames.background)
            else 0.0,
            "bucket_s": frames.bucket_s,
        },
        highlights=[],
        notes=notes,
        bucket_s=frames.bucket_s,
        activity=activity_matrix(frames.activity, frames.bucket_s, begin, end),
        wait_classes=wait_classes,
        top_events=top_events,
        top_sql=top_sql,
        top_sessions=sessions,
        top_users=_share(frames.by_user, elapsed, top),
        top_apps=_share(frames.by_app, elapsed, top),
        top_databases=_share(frames.by_database, elapsed, top),
        blocking=blocking,
        sql_wait_profiles=sql_wait_profiles(frames.sql_waits, frames.by_sql, top),
        empty=empty,
        background=frames.background,
    )
    hl: list[str] = []
    if db_time > 0:
        hl.append(
            f"{db_time:,.1f} s of DB time in {elapsed:,.0f} s: on average "
            f"{db_time / elapsed:,.2f} active sessions."
        )
        c = wait_classes.iloc[0]
        hl.append(f"Largest wait class: {c.wait_class} with {c.pct:.0f} % of DB time.")
        if len(top_events):
            e = top_events.iloc[0]
            what = (
                "CPU (running, no wait event)"
                if e.event == "CPU"
                else f"{e.event} ({e.wait_class})"
            )
            hl.append(f"Top event: {what}, {e.pct:.0f} % of DB time.")
        if len(top_sql) and pd.notna(top_sql.iloc[0].query_id):
            q = top_sql.iloc[0]
            hl.append(
                f"Top SQL {q.query_id}: {q.pct:.0f} % of DB time ({q.db_time_s:,.1f} s) — "
                f"{_short(q.query)}"
            )
    if blocking is not None and not blocking.empty:
        b = blocking.iloc[0]
        hl.append(
            f"{len(blocking)} blocking episode(s); the longest: pid {b.root_pid} "
            f"({b.root_state}) blocked {b.max_waiters} session(s) for {b.duration_s:,.1f} s "
            f"— {_short(b.root_query)}"
        )
    if not hl:
        hl.append("Nothing to report: no DB time was sampled in this range.")
    r.highlights = hl
    return r


__all__ = ["AshFrames", "AshReport", "CLASS_COLORS", "build", "activity_matrix"]
