"""AWR report model: one target between two snapshots. Pure (frames in, dataclass out).

Input is a :class:`~ops_core.repository.snapshot_ranges.RangeAggregate` (sums of the per-interval
deltas) and, optionally, ASH DB time of the same interval. Every figure is a counter delta or an
ASH sum; a section whose source the server lacks says so instead of showing a number.

Units: times in ms (statements) or s (DB time), sizes in bytes (the display layer formats), and
shares in percent (0-100).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from ..model.serialize import frame_records
from . import awr_sections as sections
from .awr_highlights import addm_highlights, highlights
from .awr_sections import _moved, checkpoints, indexes, tables, wal
from .dbtime_check import DbTimeCheck
from .dbtime_check import check as db_time_check
from .sql_share import db_time_shares

BLOCK = 8192  # PostgreSQL block size assumed for block -> bytes (the default build)

#: top-SQL rankings: key -> (column ranked by, heading, unit of that column); the measures of
#: pg_profile's top-SQL sections that pg_stat_statements gives
TOP_SQL: dict[str, tuple[str, str, str]] = {
    "elapsed": ("total_exec_time", "SQL ordered by elapsed time", "ms"),
    "cpu": ("cpu_time", "SQL ordered by execution time less I/O time (CPU-ish)", "ms"),
    "io_time": ("io_time", "SQL ordered by I/O time (track_io_timing)", "ms"),
    "planning": ("total_plan_time", "SQL ordered by planning time", "ms"),
    "calls": ("calls", "SQL ordered by executions", "calls"),
    "rows": ("rows", "SQL ordered by rows", "rows"),
    "gets": ("shared_blks_fetched", "SQL ordered by shared blocks fetched (hit + read)", "blocks"),
    "reads": ("shared_blks_read", "SQL ordered by shared blocks read", "blocks"),
    "dirtied": ("shared_blks_dirtied", "SQL ordered by shared blocks dirtied", "blocks"),
    "temp": ("temp_blks_written", "SQL ordered by temp blocks written", "blocks"),
    "wal": ("wal_bytes", "SQL ordered by WAL generated", "bytes"),
}
SQL_COLUMNS = [
    "queryid",
    "datname",
    "username",
    "calls",
    "total_exec_time",
    "mean_exec_time",
    "cpu_time",
    "io_time",
    "total_plan_time",
    "rows",
    "shared_blks_fetched",
    "shared_blks_hit",
    "shared_blks_read",
    "shared_blks_dirtied",
    "temp_blks_written",
    "wal_bytes",
    "query",
]
_IO_TIMES = ("shared_blk_read_time", "shared_blk_write_time", "temp_blk_read_time",
             "temp_blk_write_time")  # fmt: skip


def _derived(st: pd.DataFrame) -> pd.DataFrame:
    """Per statement: I/O time (block read/write time, needs track_io_timing), execution time
    less I/O time (the nearest pg_stat_statements has to CPU time: it also holds lock and
    other waits) and shared blocks fetched (hit + read)."""
    st = st.copy()

    def col(name: str) -> pd.Series:
        if name not in st.columns:
            return pd.Series(0.0, index=st.index)
        return pd.to_numeric(st[name], errors="coerce").fillna(0).astype("float64")

    io = sum((col(c) for c in _IO_TIMES), pd.Series(0.0, index=st.index))
    st["io_time"] = io
    st["cpu_time"] = (col("total_exec_time") - io).clip(lower=0)
    st["shared_blks_fetched"] = col("shared_blks_hit") + col("shared_blks_read")
    for c in SQL_COLUMNS:
        if c not in st.columns:
            st[c] = None
    return st


def version_label(num: int | None) -> str:
    if not num:
        return "unknown"
    major = num // 10000
    return f"{major}.{num % 10000}" if major >= 10 else f"{major}.{num // 100 % 100}.{num % 100}"


def _sum(df: pd.DataFrame | None, col: str) -> float:
    if df is None or df.empty or col not in df.columns:
        return 0.0
    return float(pd.to_numeric(df[col], errors="coerce").fillna(0).sum())


def _num(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _pct(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return part / whole * 100.0


@dataclass
class AshInput:
    """ASH DB time of the report interval (from :func:`ops_core.api.ash_db_time`)."""

    by_class: pd.DataFrame  # wait_class, samples, time_s, db_time_s
    by_event: pd.DataFrame  # wait_class, event, samples, time_s, db_time_s
    first_sample: datetime | None = None  # first and last sample time in the interval
    last_sample: datetime | None = None
    sessions: pd.DataFrame | None = None  # report_reads.ash_session_edges; None: not read
    by_sql: pd.DataFrame | None = None  # query_id, db_time_s (ASH DB time per statement)
    background: pd.DataFrame | None = None  # ash_read.background_time: not DB time

    @property
    def db_time_s(self) -> float:
        return _sum(self.by_class, "db_time_s")

    @property
    def empty(self) -> bool:
        return self.by_class is None or self.by_class.empty or self.db_time_s <= 0


@dataclass
class AwrReport:
    target: str
    header: dict[str, Any]
    highlights: list[str]  # "what stands out", most important first
    notes: list[str]  # caveats: resets, missing sources, no ASH
    load_profile: pd.DataFrame  # metric, unit, total, per_second, per_transaction
    efficiency: pd.DataFrame  # metric, value_pct, detail
    time_model: pd.DataFrame  # component, time_s, pct_of_db_time, source
    ash_time_model: pd.DataFrame | None  # wait_class, db_time_s, pct, avg_active_sessions
    top_waits: pd.DataFrame | None  # wait_class, event, db_time_s, pct, avg_active_sessions
    top_sql: dict[str, pd.DataFrame]  # TOP_SQL key -> frame with share_pct
    io: pd.DataFrame | None  # pg_stat_io rows that moved; None: not available
    io_note: str | None
    tables: pd.DataFrame
    indexes: pd.DataFrame
    checkpoints: pd.DataFrame  # metric, value, unit
    wal: pd.DataFrame  # metric, value, unit
    settings_changes: pd.DataFrame
    resets: list[dict[str, Any]] = field(default_factory=list)
    failed_snapshots: list[int] = field(default_factory=list)
    # background processes working (checkpointer, autovacuum, WAL writer...): not DB time
    background: pd.DataFrame | None = None  # backend_type, wait_class, event, time_s, samples
    db_time_check: DbTimeCheck | None = None  # ASH vs active_time, with the reasons
    addm: Any = None  # the ADDM analysis of the same range (ops_core.api.AddmAnalysis)
    addm_note: str | None = None  # why there is no ADDM analysis
    host: pd.DataFrame | None = None  # metric, value, unit (awr_sections.host)
    host_note: str | None = None  # why host figures are missing or partial
    settings: pd.DataFrame | None = None  # non-default settings at the end snapshot
    unused_indexes: pd.DataFrame | None = None  # no scan in the interval, largest first
    index_note: str | None = None  # where index sizes come from, or why there are none

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "header": self.header,
            "highlights": self.highlights,
            "notes": self.notes,
            "load_profile": frame_records(self.load_profile),
            "efficiency": frame_records(self.efficiency),
            "time_model": frame_records(self.time_model),
            "ash_time_model": frame_records(self.ash_time_model),
            "top_waits": frame_records(self.top_waits),
            "top_sql": {k: frame_records(v) for k, v in self.top_sql.items()},
            "io": frame_records(self.io),
            "io_note": self.io_note,
            "tables": frame_records(self.tables),
            "indexes": frame_records(self.indexes),
            "checkpoints": frame_records(self.checkpoints),
            "wal": frame_records(self.wal),
            "settings_changes": frame_records(self.settings_changes),
            "resets": self.resets,
            "failed_snapshots": self.failed_snapshots,
            "background": frame_records(self.background),
            "db_time_check": self.db_time_check.as_dict() if self.db_time_check else None,
            "addm": self.addm.as_dict() if self.addm is not None else None,
            "addm_note": self.addm_note,
            "host": frame_records(self.host),
            "host_note": self.host_note,
            "settings": frame_records(self.settings),
            "unused_indexes": frame_records(self.unused_indexes),
            "index_note": self.index_note,
        }


# ------------------------------------------------------------------------------ sections
def load_profile(agg: Any) -> pd.DataFrame:
    st, db = agg.statements, agg.databases
    wal = agg.cluster.get("pg_stat_wal", {})
    commits, rollbacks = _sum(db, "xact_commit"), _sum(db, "xact_rollback")
    xacts = commits + rollbacks
    metrics: list[tuple[str, str, float | None]] = [
        ("DB time (sessions active)", "s", _sum(db, "active_time") / 1000.0),
        ("SQL execution time", "s", _sum(st, "total_exec_time") / 1000.0),
        ("transactions", "count", xacts),
        ("commits", "count", commits),
        ("rollbacks", "count", rollbacks),
        ("executions (calls)", "count", _sum(st, "calls")),
        ("rows (statements)", "count", _sum(st, "rows")),
        ("logical reads", "blocks", _sum(db, "blks_hit") + _sum(db, "blks_read")),
        ("blocks read (not in shared buffers)", "blocks", _sum(db, "blks_read")),
        ("blocks hit", "blocks", _sum(db, "blks_hit")),
        ("rows inserted", "count", _sum(db, "tup_inserted")),
        ("rows updated", "count", _sum(db, "tup_updated")),
        ("rows deleted", "count", _sum(db, "tup_deleted")),
        ("temp files", "count", _sum(db, "temp_files")),
        ("temp written", "bytes", _sum(db, "temp_bytes")),
        ("WAL generated", "bytes", _num(wal, "wal_bytes")),
        ("WAL records", "count", _num(wal, "wal_records")),
        ("sessions opened", "count", _sum(db, "sessions")),
        ("deadlocks", "count", _sum(db, "deadlocks")),
    ]
    rows = []
    for name, unit, total in metrics:
        rows.append(
            {
                "metric": name,
                "unit": unit,
                "total": total,
                "per_second": total / agg.elapsed_s
                if total is not None and agg.elapsed_s > 0
                else None,
                "per_transaction": total / xacts if total is not None and xacts > 0 else None,
            }
        )
    return pd.DataFrame(rows)


def efficiency(agg: Any) -> pd.DataFrame:
    st, db = agg.statements, agg.databases
    wal = agg.cluster.get("pg_stat_wal", {})
    hit, read = _sum(db, "blks_hit"), _sum(db, "blks_read")
    exec_ms = _sum(st, "total_exec_time")
    spill_ms = (
        float(st.loc[st["temp_blks_written"] > 0, "total_exec_time"].sum()) if not st.empty else 0.0
    )
    commits, rollbacks = _sum(db, "xact_commit"), _sum(db, "xact_rollback")
    calls, plans = _sum(st, "calls"), _sum(st, "plans")
    rows = [
        ("buffer hit", _pct(hit, hit + read), f"{hit:,.0f} hits, {read:,.0f} reads"),
        (
            "SQL time in statements that spilled to temp",
            _pct(spill_ms, exec_ms),
            f"{spill_ms:,.0f} of {exec_ms:,.0f} ms",
        ),
        ("rollbacks", _pct(rollbacks, commits + rollbacks), f"{rollbacks:,.0f} rollbacks"),
        (
            "WAL full-page images",
            _pct(_num(wal, "wal_fpi"), _num(wal, "wal_records")),
            "share of WAL records",
        ),
        ("executions planned", _pct(plans, calls), "0 unless pg_stat_statements.track_planning"),
    ]
    return pd.DataFrame(rows, columns=["metric", "value_pct", "detail"])


def time_model(agg: Any, ash: AshInput | None) -> pd.DataFrame:
    """DB time and the other time measures of the interval.

    DB time has one definition (ops_core.model.waits): the ASH-sampled time of foreground
    sessions on CPU or in a non-idle wait. Only it is a percentage base; with no ASH samples,
    ``pg_stat_database.active_time`` stands in (said in the row). The statistics measures
    (active_time, pg_stat_statements SQL time, planning, I/O, idle in transaction) are
    cross-checks, shown without a share: they measure other things (completed calls only,
    client sessions only, parallel work counted per process) and may exceed DB time."""
    st, db = agg.statements, agg.databases
    active = _sum(db, "active_time") / 1000.0
    has_ash = ash is not None and not ash.empty
    if has_ash:
        assert ash is not None
        base = ash.db_time_s
        head = ("DB time (ASH: foreground sessions on CPU or in non-idle waits)", base, "ASH")
    else:
        base = active
        head = (
            "DB time (no ASH samples: sessions active)",
            active,
            "pg_stat_database.active_time",
        )
    rows: list[tuple[str, float, float | None, str]] = [
        (head[0], head[1], 100.0 if base > 0 else None, head[2])
    ]
    if has_ash:
        rows.append(
            (
                "cross-check: sessions active",
                active,
                None,
                "pg_stat_database.active_time (client sessions only)",
            )
        )
    for name, value, source in (
        ("cross-check: SQL time (statement execution)", _sum(st, "total_exec_time") / 1000.0,
         "pg_stat_statements total_exec_time"),
        ("cross-check: planning", _sum(st, "total_plan_time") / 1000.0, "pg_stat_statements"),
        ("cross-check: data file reads", _sum(st, "shared_blk_read_time") / 1000.0,
         "pg_stat_statements (needs track_io_timing)"),
        ("cross-check: temp file I/O",
         (_sum(st, "temp_blk_read_time") + _sum(st, "temp_blk_write_time")) / 1000.0,
         "pg_stat_statements (needs track_io_timing)"),
        ("idle in transaction (not DB time)", _sum(db, "idle_in_transaction_time") / 1000.0,
         "pg_stat_database"),
    ):  # fmt: skip
        rows.append((name, value, None, source))
    if has_ash and ash is not None and ash.background is not None and not ash.background.empty:
        rows.append(
            (
                "background activity (not DB time)",
                _sum(ash.background, "time_s"),
                None,
                "ASH samples of background processes (see Background activity)",
            )
        )
    return pd.DataFrame(rows, columns=["component", "time_s", "pct_of_db_time", "source"])


def _aas(df: pd.DataFrame, elapsed_s: float) -> pd.DataFrame:
    df = df.copy()
    total = _sum(df, "db_time_s")
    df["pct"] = df["db_time_s"] / total * 100.0 if total > 0 else 0.0
    df["avg_active_sessions"] = df["db_time_s"] / elapsed_s if elapsed_s > 0 else None
    return df


def top_sql(
    statements: pd.DataFrame, top: int = 10, ash: AshInput | None = None
) -> dict[str, pd.DataFrame]:
    """Per ranking: the top statements with their share of the ranked metric's total
    (``share_pct``) and, with ASH, their share of DB time (``pct_db_time``: the statement's
    ASH DB time over the interval's, the figure ADDM and the Performance Hub give)."""
    out: dict[str, pd.DataFrame] = {}
    st = statements
    if st is not None and not st.empty:
        st = st[st["toplevel"].fillna(True)] if "toplevel" in st.columns else st
        st = _derived(st)
    total_db = ash.db_time_s if ash is not None and not ash.empty else 0.0
    if st is not None and not st.empty and "queryid" in st.columns:
        st = st.assign(
            pct_db_time=db_time_shares(st, ash.by_sql if ash is not None else None, total_db)
        )
    for key, (col, _, _) in TOP_SQL.items():
        if st is None or st.empty:
            out[key] = pd.DataFrame(columns=["rank", *SQL_COLUMNS, "share_pct", "pct_db_time"])
            continue
        vals = pd.to_numeric(st[col], errors="coerce").fillna(0).astype("float64")
        total = float(vals.sum())
        pick = vals[vals > 0].sort_values(ascending=False).head(top).index
        df = st.loc[pick, SQL_COLUMNS].copy()
        df["share_pct"] = vals.loc[pick] / total * 100.0 if total > 0 else None
        df["pct_db_time"] = st.loc[pick, "pct_db_time"] if "pct_db_time" in st else None
        df.insert(0, "rank", range(1, len(df) + 1))
        out[key] = df.reset_index(drop=True)
    return out


# ------------------------------------------------------------------------------ assembly
def build(
    agg: Any,
    *,
    ash: AshInput | None = None,
    host: str | None = None,
    top: int = 10,
    settings: list[dict[str, Any]] | None = None,
    index_sizes: pd.DataFrame | None = None,
    sizes_at: datetime | None = None,
    local_host: bool | None = None,
) -> AwrReport:
    """The AWR report of a range aggregate (and ASH DB time of the same interval).

    ``settings``: the non-default settings of the end snapshot (the settings capture);
    ``index_sizes``: datname, indexrelid, index_bytes measured at ``sizes_at``, the newest
    size measurement at or before the end, for indexes the range itself did not measure;
    ``local_host``: whether the target runs on opscore's host (host figures exist only then)."""
    begin, end = agg.begin, agg.end
    version_num = end.server_version_num or begin.server_version_num
    notes: list[str] = []
    resets = list(agg.resets)
    for r in resets:
        if r.get("source") == "server":
            notes.append(
                f"The server restarted inside the interval ({r['reason']}, seen at snapshot "
                f"{r['snapshot_id']}): activity between the snapshot before it and the restart "
                "is lost; everything after the restart is counted."
            )
        elif r.get("source") == "all":
            notes.append(
                f"Snapshot {r['snapshot_id']} starts a new baseline (no deltas for its interval)."
            )
        elif "eviction" in str(r.get("reason")):
            notes.append(
                f"pg_stat_statements evicted entries at snapshot {r['snapshot_id']}: {r['reason']}."
            )
        else:
            notes.append(
                f"Statistics reset of {r['source']} at snapshot {r['snapshot_id']}: "
                f"{r['reason']}. Counters there are counted from the reset."
            )
    if agg.failed:
        notes.append(
            f"{len(agg.failed)} failed capture(s) inside the interval (snapshots "
            f"{', '.join(map(str, agg.failed))}): their intervals are covered by the next "
            "successful snapshot."
        )
    if not agg.snapshot_ids:
        notes.append("No snapshot with deltas in this range: there is nothing to report.")
    if ash is not None and not ash.empty and ash.first_sample and ash.last_sample:
        covered = (ash.last_sample - ash.first_sample).total_seconds()
        if covered < 0.8 * agg.elapsed_s - 60:
            notes.append(
                f"ASH samples cover only {ash.first_sample:%H:%M:%S} to "
                f"{ash.last_sample:%H:%M:%S} UTC ({covered:,.0f} s of the {agg.elapsed_s:,.0f} s "
                "interval): the wait-class split describes that part only."
            )
    if ash is None or ash.empty:
        notes.append(
            "No ASH samples exist in this interval: the time model by wait class and the top "
            "wait events need the ASH sampler (`opscore ash run`) running during the interval."
        )
    io_note = None
    if agg.io is None:
        major = (version_num or 0) // 10000
        io_note = f"I/O by backend type (pg_stat_io) not available on PostgreSQL {major} (16+)."
    st = agg.statements
    sql_time = _sum(st, "total_exec_time") / 1000.0
    has_ash = ash is not None and not ash.empty
    active_s = _sum(agg.databases, "active_time") / 1000.0
    header = {
        "target": agg.target,
        "host": host,
        "version": version_label(version_num),
        "version_num": version_num,
        "begin_snapshot_id": begin.snapshot_id,
        "end_snapshot_id": end.snapshot_id,
        "begin_at": begin.captured_at,
        "end_at": end.captured_at,
        "elapsed_s": agg.elapsed_s,
        # DB time: ASH (foreground sessions on CPU or in non-idle waits); active_time only
        # when no ASH sample exists (db_time_source says which)
        "db_time_s": ash.db_time_s if has_ash else active_s,
        "db_time_source": "ASH" if has_ash else "pg_stat_database.active_time (no ASH)",
        "active_time_s": active_s,
        "sql_time_s": sql_time,
        "ash_db_time_s": ash.db_time_s if has_ash else None,
        "background_s": _sum(ash.background, "time_s")
        if has_ash and ash.background is not None
        else None,
        "snapshots": len(agg.snapshot_ids),
        "statements": int(len(st)) if st is not None else 0,
        "transactions": _sum(agg.databases, "xact_commit") + _sum(agg.databases, "xact_rollback"),
    }
    ash_tm = tw = None
    if ash is not None and not ash.empty:
        ash_tm = _aas(ash.by_class[["wait_class", "db_time_s"]], agg.elapsed_s)
        ash_tm = ash_tm[ash_tm["db_time_s"] > 0].reset_index(drop=True)
        tw = _aas(ash.by_event[["wait_class", "event", "db_time_s"]], agg.elapsed_s)
        tw = tw[tw["db_time_s"] > 0].head(top).reset_index(drop=True)
    io = (
        _moved(agg.io, ["reads", "writes", "extends", "hits", "fsyncs"])
        if agg.io is not None
        else None
    )
    report = AwrReport(
        target=agg.target,
        header=header,
        highlights=[],
        notes=notes,
        load_profile=load_profile(agg),
        efficiency=efficiency(agg),
        time_model=time_model(agg, ash),
        ash_time_model=ash_tm,
        top_waits=tw,
        top_sql=top_sql(st, top, ash),
        io=io,
        io_note=io_note,
        tables=tables(agg),
        indexes=indexes(agg, index_sizes),
        checkpoints=checkpoints(agg),
        wal=wal(agg),
        settings_changes=agg.settings_changes,
        resets=resets,
        failed_snapshots=list(agg.failed),
        background=ash.background if has_ash and ash is not None else None,
    )
    if ash is not None and not ash.empty and active_s > 0:
        report.db_time_check = db_time_check(
            active_s, ash.db_time_s, agg.databases, ash.sessions, begin.captured_at,
            end.captured_at,
        )  # fmt: skip
        header["ash_vs_active"] = report.db_time_check.summary
        tm = report.time_model
        tm.loc[tm["component"] == "cross-check: sessions active", "source"] = (
            "pg_stat_database.active_time (why it differs from ASH: the cross-check below)"
        )
    report.host, report.host_note = sections.host(agg, local_host)
    report.settings = sections.settings(settings, agg.settings_changes)
    report.unused_indexes = sections.unused_indexes(agg, index_sizes)
    report.index_note = sections.index_size_note(report.indexes, sizes_at)
    report.highlights = highlights(report, agg.elapsed_s)
    return report


def interval_label(begin: datetime, end: datetime) -> str:
    return f"{begin:%Y-%m-%d %H:%M:%S} → {end:%Y-%m-%d %H:%M:%S} UTC"


__all__ = [
    "AshInput",
    "AwrReport",
    "TOP_SQL",
    "addm_highlights",
    "build",
    "version_label",
    "interval_label",
]
