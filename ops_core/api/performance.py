"""Performance Hub and Live: target status, top SQL with per-call figures, a statement's
history and plan, load trends, ASH activity over time, object I/O, live sessions.

Reads of the repository go through ops_core.repository; live reads of a target run in a
monitoring session (read-only, time-limited, ``application_name=opscore``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pandas as pd
from psycopg.conninfo import make_conninfo

from .. import repository
from ..analysis import compare as compare_model
from ..analysis import sql_share
from ..collectors import live
from ..collectors.scrub import scrub
from ..config import get_settings
from ..errors import InvalidInput, NotFound, OpsCoreError
from ..repository import ash_read, perf_reads
from ..repository import snapshot_ranges as ranges
from ..repository import snapshot_reads as reads
from ..repository import targets as repo_targets
from ..targets import connection
from .ash import WAIT_CLASSES, ash_db_time
from .cache import cached_read
from .common import opscore_shown, time_range
from .targets import get_target, target_dsn

__all__ = [
    "TargetStatus",
    "ExplainResult",
    "TOP_SQL_ORDER",
    "target_status",
    "targets_status",
    "live_sessions",
    "live_summary",
    "snapshot_bounds",
    "top_statements",
    "statement_history",
    "explain_statement",
    "load_profile",
    "load_trends",
    "ash_activity_grid",
    "object_io",
]


# ------------------------------------------------------------------------------ status
@dataclass
class TargetStatus:
    """What the Overview shows of one target: live reachability, repository freshness."""

    name: str
    reachable: bool
    error: str | None = None
    hint: str | None = None
    version: str | None = None
    sessions: int | None = None  # client backends now
    active_sessions: int | None = None  # client backends running a statement now
    idle_in_transaction: int | None = None
    last_snapshot_id: int | None = None
    last_snapshot_at: datetime | None = None
    last_snapshot_status: str | None = None
    last_ash_sample: datetime | None = None
    db_time_last_hour_s: float | None = None  # from ASH; None when no samples in the hour
    aas_last_hour: float | None = None  # average active sessions over the hour (DB time / 3600)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("last_snapshot_at", "last_ash_sample"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


def target_status(name: str, *, now: datetime | None = None) -> TargetStatus:
    """Status of one target. A target that is down is reported (``reachable=False`` with the
    reason), never raised; an unknown target raises UnknownTarget."""
    end = now or datetime.now(UTC)
    with repository.session() as repo:  # one repository session for all the reads
        t = repo_targets.get(repo, name)
        st = TargetStatus(name=t.name, reachable=False)
        snaps = reads.list_snapshots(repo, t.target_id, 1)
        st.last_ash_sample = ash_read.last_sample_time(repo, t.target_id)
        if st.last_ash_sample is not None and st.last_ash_sample >= end - timedelta(hours=1):
            df = ash_read.db_time(repo, t.target_id, end - timedelta(hours=1), end, [])
            st.db_time_last_hour_s = float(df["db_time_s"].sum()) if len(df) else 0.0
            st.aas_last_hour = round(st.db_time_last_hour_s / 3600.0, 3)
    if snaps:
        st.last_snapshot_id = snaps[0].snapshot_id
        st.last_snapshot_at = snaps[0].captured_at
        st.last_snapshot_status = snaps[0].status
    try:
        with connection.monitoring_session(target_dsn(t)) as conn:
            s = live.summary(conn, opscore_shown(None))
        st.reachable = True
        st.version = s.get("version")
        st.sessions, st.active_sessions = s.get("sessions"), s.get("active")
        st.idle_in_transaction = s.get("idle_in_transaction")
    except OpsCoreError as exc:
        st.error, st.hint = exc.message, exc.hint
    return st


def targets_status(*, now: datetime | None = None) -> list[TargetStatus]:
    """Status of every registered target (see :func:`target_status`), checked in parallel so
    one target that is down (connect timeout) does not hold up the others."""
    with repository.session() as repo:
        names = [t.name for t in repo_targets.all_targets(repo)]
    if len(names) <= 1:
        return [target_status(n, now=now) for n in names]
    with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
        return list(pool.map(lambda n: target_status(n, now=now), names))


# ------------------------------------------------------------------------------ live
def live_sessions(target: str, *, include_opscore: bool | None = None) -> pd.DataFrame:
    """Sessions doing something now on a target (active, idle in transaction, waiting
    background processes): pid, user, database, application, state, wait class/event,
    query_id, query, query_s/xact_s/state_s (seconds), blocking_pids."""
    t = get_target(target)
    with connection.monitoring_session(target_dsn(t)) as conn:
        df = live.sessions(conn, opscore_shown(include_opscore), get_settings().ash_query_text_max)
    if "query" in df.columns:  # running texts may hold passwords (ALTER ROLE ... PASSWORD)
        df["query"] = df["query"].map(scrub)
    return df


def live_summary(target: str, *, include_opscore: bool | None = None) -> dict[str, Any]:
    """One row about a target now: version, start time, sessions, active, idle in
    transaction, waiting on locks, max_connections."""
    t = get_target(target)
    with connection.monitoring_session(target_dsn(t)) as conn:
        return live.summary(conn, opscore_shown(include_opscore))


# ------------------------------------------------------------------------------ ranges
def snapshot_bounds(
    target: str, begin: datetime | str, end: datetime | str | None = None
) -> tuple[int, int]:
    """The snapshot ids that bound a time range of a target, for snapshot_range & co.
    Raises NotFound when the range does not hold two usable snapshots."""
    b, e = time_range(begin, end if end is not None else datetime.now(UTC))
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        lo, hi = perf_reads.snapshot_bounds(repo, t.target_id, b, e)
    if lo is None or hi is None or lo >= hi:
        raise NotFound(
            f"Fewer than two snapshots of {target} cover {b:%Y-%m-%d %H:%M} to "
            f"{e:%Y-%m-%d %H:%M} UTC.",
            f"Take snapshots (`opscore snapshot take {target}`, or start the flows) or pick "
            "a longer range.",
        )
    return lo, hi


#: orderings of top_statements -> column
TOP_SQL_ORDER: dict[str, str] = {
    "total time": "total_ms",
    "mean time": "mean_ms",
    "calls": "calls",
    "rows": "rows",
    "shared blocks read": "shared_blks_read",
    "temp blocks written": "temp_blks_written",
    "WAL bytes": "wal_bytes",
}


def top_statements(
    target: str,
    begin_id: int,
    end_id: int,
    *,
    order_by: str = "total_ms",
    limit: int = 50,
    include_opscore: bool | None = None,
) -> pd.DataFrame:
    """Statements of a snapshot range with totals and per-call figures, largest first.

    Columns: queryid, datname, username, query, calls, total_ms, mean_ms, plan_ms, pct_db_time
    (the row's share of DB time: the ASH DB time of its query id, database and user over the
    range's, the figure the AWR report gives; the rows add up to at most 100 %; None without
    ASH samples), pct_sql_time (cross-check: its share of
    pg_stat_statements execution time), rows, rows_per_call, shared_blks_read, shared_blks_hit,
    hit_pct, blks_per_call, read_ms (I/O wait reading), temp_blks_written, wal_bytes."""
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1 (got {limit}).")
    valid = set(TOP_SQL_ORDER.values())
    if order_by not in valid:
        raise InvalidInput(f"{order_by!r} is not a top SQL ordering.", "Use " + ", ".join(valid))
    own = opscore_shown(include_opscore)
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        return cached_read(
            repo,
            "top_statements",
            t.target_id,
            (begin_id, end_id, order_by, limit, own),
            lambda: _top_statements(repo, t, begin_id, end_id, order_by, limit, own),
        )


def _top_statements(repo, t, begin_id: int, end_id: int, order_by: str, limit: int, own: bool):
    """top_statements' work, in its repository session (cached by it)."""
    rr = ranges.range_read(repo, t.target_id, t.name, begin_id, end_id)
    st = reads.statements_frame(repo, rr.plan, own)
    b, e = rr.begin.captured_at, rr.end.captured_at
    by_sql = ash_read.db_time(repo, t.target_id, b, e, sql_share.ASH_KEYS)
    db_total = float(by_sql["db_time_s"].sum()) if len(by_sql) else 0.0
    cols = [
        "queryid", "datname", "username", "query", "calls", "total_ms", "mean_ms", "plan_ms",
        "pct_db_time", "pct_sql_time", "rows", "rows_per_call", "shared_blks_read",
        "shared_blks_hit", "hit_pct", "blks_per_call", "read_ms", "temp_blks_written", "wal_bytes",
    ]  # fmt: skip
    if st.empty:
        return pd.DataFrame(columns=cols)
    calls = st["calls"].astype("float64").where(st["calls"] > 0)
    blocks = st["shared_blks_read"].astype("float64") + st["shared_blks_hit"].astype("float64")
    total = float(st["total_exec_time"].sum())
    out = pd.DataFrame(
        {
            "queryid": st["queryid"],
            "datname": st["datname"],
            "username": st["username"],
            "query": st["query"],
            "calls": st["calls"].astype("int64"),
            "total_ms": st["total_exec_time"].astype("float64"),
            "mean_ms": st["total_exec_time"].astype("float64") / calls,
            "plan_ms": st["total_plan_time"].astype("float64"),
            "pct_db_time": sql_share.db_time_shares(st, by_sql, db_total),
            "pct_sql_time": st["total_exec_time"].astype("float64") / total * 100 if total else 0.0,
            "rows": st["rows"].astype("int64"),
            "rows_per_call": st["rows"].astype("float64") / calls,
            "shared_blks_read": st["shared_blks_read"].astype("int64"),
            "shared_blks_hit": st["shared_blks_hit"].astype("int64"),
            "hit_pct": st["shared_blks_hit"].astype("float64") / blocks.where(blocks > 0) * 100,
            "blks_per_call": blocks / calls,
            "read_ms": st["shared_blk_read_time"].astype("float64"),
            "temp_blks_written": st["temp_blks_written"].astype("int64"),
            "wal_bytes": st["wal_bytes"].astype("float64"),
        }
    )
    out = out[out["calls"] > 0]
    out = out.sort_values(order_by, ascending=False, na_position="last").head(limit)
    out = out.reset_index(drop=True)
    out.attrs.update(
        begin_at=rr.begin.captured_at.isoformat(),
        end_at=rr.end.captured_at.isoformat(),
        total_ms=total,
        db_time_s=db_total,
        statements=len(st),
    )
    return out


def statement_history(
    target: str, queryid: int, begin_id: int | None = None, end_id: int | None = None
) -> pd.DataFrame:
    """One statement across snapshots: per snapshot its calls, total/mean time (ms), rows,
    blocks, and calls per second over the snapshot interval."""
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        df = perf_reads.statement_history(repo, t.target_id, int(queryid), begin_id, end_id)
    calls = df["calls"].astype("float64").where(df["calls"] > 0)
    df["mean_ms"] = df["total_exec_time"] / calls
    df["calls_per_s"] = df["calls"] / df["interval_s"].where(df["interval_s"] > 0)
    return df


@dataclass
class ExplainResult:
    queryid: int
    datname: str | None
    query: str
    explainable: bool
    generic: bool  # EXPLAIN (GENERIC_PLAN): placeholders kept, PostgreSQL 16+
    plan: str | None
    reason: str | None  # why there is no plan

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def explain_statement(target: str, queryid: int) -> ExplainResult:
    """The plan of a stored statement via EXPLAIN without ANALYZE (nothing is executed), in
    a read-only monitoring session on the statement's database. Statements with parameter
    placeholders are explained with GENERIC_PLAN on PostgreSQL 16+; otherwise (and for
    statements EXPLAIN cannot show) the result says why there is no plan."""
    t = get_target(target)
    with repository.session() as repo:
        row = perf_reads.statement_text(repo, t.target_id, int(queryid))
    dsn = target_dsn(t)
    if row["datname"]:
        dsn = make_conninfo(dsn, dbname=row["datname"])
    res = ExplainResult(int(queryid), row["datname"], row["query"], False, False, None, None)
    with connection.monitoring_session(dsn) as conn:
        generic, why = live.explain_mode(row["query"], conn.info.server_version)
        if why:
            res.reason = why
            return res
        try:
            res.plan = live.explain(conn, row["query"], generic)
        except Exception as exc:  # psycopg.Error: a plan the server refuses is an answer
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            res.reason = f"The server could not plan it: {msg}"
            return res
    res.explainable, res.generic = True, generic
    return res


# ------------------------------------------------------------------------------ load
def load_profile(
    target: str, begin_id: int, end_id: int, *, include_opscore: bool | None = None
) -> pd.DataFrame:
    """Load profile of a snapshot range: metric, total, per_second, per_transaction.

    The first row is ``DB time (s, ASH)``: the range's DB time (ASH, foreground sessions on CPU
    or in non-idle waits; None without ASH samples), the figure the AWR report and ADDM give;
    ``SQL time (s, pg_stat_statements; not DB time)`` is its cross-check."""
    own = opscore_shown(include_opscore)
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        return cached_read(
            repo,
            "load_profile",
            t.target_id,
            (begin_id, end_id, own),
            lambda: _load_profile(repo, t, begin_id, end_id, own),
        )


def _load_profile(repo, t, begin_id: int, end_id: int, own: bool) -> pd.DataFrame:
    """load_profile's work, in its repository session (cached by it)."""
    rr = ranges.range_read(repo, t.target_id, t.name, begin_id, end_id)
    period = SimpleNamespace(  # what compare.load_profile reads of a range aggregate
        elapsed_s=(rr.end.captured_at - rr.begin.captured_at).total_seconds(),
        statements=reads.statements_frame(repo, rr.plan, own),
        databases=reads.databases_frame(repo, rr.ids, own),
        cluster=reads.cluster_sums(repo, rr.ids),
    )
    b, e = rr.begin.captured_at, rr.end.captured_at
    n = ash_read.db_time(repo, t.target_id, b, e, [])
    lp = compare_model.load_profile(period)  # type: ignore[arg-type]
    samples = int(n["samples"].iloc[0]) if len(n) else 0
    dbt = float(n["db_time_s"].iloc[0]) if samples else None
    xacts = lp.loc[lp["metric"] == "transactions", "total"]
    xacts_n = float(xacts.iloc[0]) if len(xacts) and pd.notna(xacts.iloc[0]) else 0.0
    el = period.elapsed_s
    row = pd.DataFrame(
        [
            {
                "metric": "DB time (s, ASH)",
                "total": dbt,
                "per_second": dbt / el if dbt is not None and el > 0 else None,
                "per_transaction": dbt / xacts_n if dbt is not None and xacts_n > 0 else None,
            }
        ]
    )
    return pd.concat([row, lp], ignore_index=True)


def load_trends(
    target: str, begin_id: int, end_id: int, *, include_opscore: bool | None = None
) -> pd.DataFrame:
    """Per snapshot of a range, rates over its interval: sql_time_s_per_s (SQL time per second:
    pg_stat_statements execution time of the calls completed in the interval = average active
    statements; not DB time, which is ASH-sampled), calls_per_s, xacts_per_s, rows_per_s,
    blks_read_per_s (8 kB blocks read), hit_pct, temp_mb_per_s, wal_mb_per_s, backends."""
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        ranges.validate_range(repo, t.target_id, t.name, begin_id, end_id)
        df = perf_reads.trends(repo, t.target_id, begin_id, end_id, opscore_shown(include_opscore))
    iv = df["interval_s"].astype("float64")
    blocks = (df["blks_read"] + df["blks_hit"]).astype("float64")
    out = pd.DataFrame(
        {
            "snapshot_id": df["snapshot_id"],
            "captured_at": df["captured_at"],
            "sql_time_s_per_s": df["exec_ms"].astype("float64") / 1000.0 / iv,
            "calls_per_s": df["calls"].astype("float64") / iv,
            "xacts_per_s": df["xacts"].astype("float64") / iv,
            "rows_per_s": df["rows"].astype("float64") / iv,
            "blks_read_per_s": df["blks_read"].astype("float64") / iv,
            "hit_pct": df["blks_hit"].astype("float64") / blocks.where(blocks > 0) * 100,
            "temp_mb_per_s": df["temp_bytes"].astype("float64") / 1048576.0 / iv,
            "wal_mb_per_s": pd.to_numeric(df["wal_bytes"]).astype("float64") / 1048576.0 / iv,
            "backends": df["backends"],
        }
    )
    return out


def ash_activity_grid(
    target: str, begin: datetime | str, end: datetime | str, *, bucket: str | None = None
) -> pd.DataFrame:
    """Average active sessions over time by wait class: bucket_start (UTC), wait_class, aas
    (DB time of the bucket / its length), one row per bucket of the range and wait class seen
    (zero where nothing was sampled). ``bucket``: 'minute' or 'hour' (default: minute up to a
    day, hour beyond). ``attrs``: bucket, source, db_time_s (whole range), avg_aas (over the
    range), peak_aas (busiest bucket)."""
    b, e = time_range(begin, end)
    if bucket is None:
        bucket = "minute" if e - b <= timedelta(days=1) else "hour"
    if bucket not in ("minute", "hour"):
        raise InvalidInput(f"{bucket!r} is not a bucket.", "Use minute or hour.")
    df = ash_db_time(target, b, e, by=[bucket, "wait_class"])
    secs = 60.0 if bucket == "minute" else 3600.0
    freq = "min" if bucket == "minute" else "h"
    # every bucket of the range, so idle stretches show as zero instead of being skipped
    grid = pd.date_range(
        pd.Timestamp(b).floor(freq), pd.Timestamp(e).floor(freq), freq=freq, name="bucket_start"
    )
    if df.empty:
        out = pd.DataFrame(columns=["bucket_start", "wait_class", "aas"])
        out["aas"] = out["aas"].astype("float64")
    else:
        wide = (
            df.assign(aas=df["db_time_s"] / secs, bucket_start=pd.to_datetime(df[bucket], utc=True))
            .pivot_table(index="bucket_start", columns="wait_class", values="aas", aggfunc="sum")
            .reindex(grid.tz_convert("UTC") if grid.tz else grid.tz_localize("UTC"))
            .fillna(0.0)
        )
        wide = wide.loc[:, wide.sum() > 0]
        out = wide.reset_index().melt(
            id_vars="bucket_start", var_name="wait_class", value_name="aas"
        )
        order = {w: i for i, w in enumerate(WAIT_CLASSES)}
        out = out.sort_values(
            ["bucket_start", "wait_class"],
            key=lambda c: c.map(order) if c.name == "wait_class" else c,
        ).reset_index(drop=True)
    peak = float(out.groupby("bucket_start")["aas"].sum().max()) if len(out) else 0.0
    out.attrs.update(
        bucket=bucket,
        source=df.attrs.get("source"),
        bucket_s=secs,
        db_time_s=float(df["db_time_s"].sum()) if len(df) else 0.0,
        avg_aas=(float(df["db_time_s"].sum()) if len(df) else 0.0) / (e - b).total_seconds(),
        peak_aas=peak,
    )
    return out


def object_io(
    target: str, begin_id: int, end_id: int, *, limit: int = 20
) -> dict[str, pd.DataFrame | None]:
    """File and object I/O of a snapshot range: ``io`` (pg_stat_io by backend type, object
    and context; None before PostgreSQL 16), ``tables`` and ``indexes`` (blocks read from
    disk or OS cache vs found in shared buffers), largest readers first."""
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        rr = ranges.range_read(repo, t.target_id, t.name, begin_id, end_id)
        has_io = any((i.sources or {}).get("pg_stat_io") == "ok" for i in (rr.begin, rr.end))
        agg = SimpleNamespace(
            tables=reads.tables_frame(repo, rr.plan),
            indexes=reads.indexes_frame(repo, rr.plan),
            io=reads.io_frame(repo, rr.ids) if has_io else None,
        )
    tables = agg.tables.copy()
    if not tables.empty:
        tables["blks_read"] = tables[
            ["heap_blks_read", "idx_blks_read", "toast_blks_read", "tidx_blks_read"]
        ].sum(axis=1)
        tables["blks_hit"] = tables[
            ["heap_blks_hit", "idx_blks_hit", "toast_blks_hit", "tidx_blks_hit"]
        ].sum(axis=1)
        tot = (tables["blks_read"] + tables["blks_hit"]).astype("float64")
        tables["hit_pct"] = tables["blks_hit"] / tot.where(tot > 0) * 100
        tables = tables.sort_values(["blks_read", "blks_hit"], ascending=False).head(limit)
        tables = tables[
            ["datname", "schemaname", "relname", "blks_read", "blks_hit", "hit_pct",
             "seq_scan", "idx_scan", "n_tup_ins", "n_tup_upd", "n_tup_del", "total_bytes"]
        ].reset_index(drop=True)  # fmt: skip
    indexes = agg.indexes.copy()
    if not indexes.empty:
        indexes = indexes.sort_values(["idx_blks_read", "idx_blks_hit"], ascending=False)
        indexes = indexes.head(limit)[
            ["datname", "schemaname", "relname", "indexrelname", "idx_scan", "idx_blks_read",
             "idx_blks_hit", "index_bytes"]
        ].reset_index(drop=True)  # fmt: skip
    io = agg.io
    if io is not None and not io.empty:
        io = io[["backend_type", "object", "context", "reads", "read_bytes", "read_time",
                 "writes", "write_bytes", "write_time", "extends", "hits", "fsyncs"]]  # fmt: skip
        io = io[(io[["reads", "writes", "extends", "hits"]] != 0).any(axis=1)]
        io = io.reset_index(drop=True)
    return {"io": io, "tables": tables, "indexes": indexes}
