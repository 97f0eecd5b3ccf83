"""What each alert metric reads: the live row of a target (``collectors.health_reads``) and
the repository's freshness (last snapshot, ASH flush, ADDM analysis, backup).

Each metric gives an :class:`Observation`: a value, or why the value is not available on this
server (never a made-up number)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ..backup import catalog as backup_catalog
from ..backup import schedule as backup_schedule
from ..backup import wal as backup_wal
from ..backup.store import default_store_path
from ..collectors.health_reads import data_disk
from ..collectors.host import is_local
from ..config import Settings
from ..errors import OpsCoreError
from ..model.target import Target
from ..repository import alerts as repo
from ..repository import ml as repo_ml
from ..repository import quotas as repo_quotas
from ..targets.connection import parse_dsn

WRAPAROUND = 2**31


@dataclass
class Observation:
    value: float | None = None
    unavailable: str | None = None  # why there is no value
    limit: float | None = None  # absence rules: the limit the schedule allows
    detail: dict[str, Any] = field(default_factory=dict)
    note: str | None = None  # said in the alert's summary after the comparison (what moved)


@dataclass
class Context:
    """What one evaluation knows about one target."""

    target: Target
    repo: psycopg.Connection
    settings: Settings
    local: bool
    reading: dict[str, Any] | None = None
    reading_error: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def is_local_target(t: Target) -> bool:
    """The target's server runs on this host (its data directory is readable here)."""
    try:
        return is_local(parse_dsn(t.dsn), t.embedded)
    except OpsCoreError:
        return False


def _live(fn: Callable[[dict[str, Any], Context], Observation]):
    def wrapped(ctx: Context) -> Observation:
        if ctx.reading is None:
            return Observation(unavailable=f"target unreachable: {ctx.reading_error}")
        return fn(ctx.reading, ctx)

    return wrapped


def _num(r: dict[str, Any], col: str, default: float | None = 0.0) -> float | None:
    v = r.get(col)
    return default if v is None else float(v)


@_live
def _connections(r, ctx):
    return Observation(_num(r, "client_connections"))


@_live
def _connections_pct(r, ctx):
    """Client connections as a share of those an application can open: max_connections
    minus superuser_reserved_connections (live) minus reserved_connections (PostgreSQL 16+,
    for roles with pg_use_reserved_connections; the live row does not read it: as the newest
    snapshot's ``limits`` capture has it), or of a database's CONNECTION LIMIT when fuller."""
    extra, said = _reserved_connections(r, ctx)
    usable = max(1, r["max_connections"] - r["reserved_connections"] - extra)
    server = 100.0 * r["client_connections"] / usable
    db = r.get("fullest_db_pct")
    if db is not None and db > server:
        return Observation(
            float(db),
            detail={"database": r["fullest_limited_db"], "of": "the database's CONNECTION LIMIT"},
        )
    detail = {
        "connections": r["client_connections"],
        "usable": usable,
        "of": "max_connections - superuser_reserved_connections"
        + (" - reserved_connections" if extra else ""),
        "max_connections": r["max_connections"],
        "superuser_reserved_connections": r["reserved_connections"],
        "reserved_connections": extra,
    }
    if said:
        detail["reserved_connections_from"] = said
    return Observation(server, detail=detail)


def _reserved_connections(r: dict[str, Any], ctx: Context) -> tuple[int, str | None]:
    """reserved_connections of the target (0 before PostgreSQL 16, where it does not exist)
    and where it comes from: the newest snapshot that captured the limits; unknown (no such
    snapshot yet) counts 0 and says so, the share then being of at most that many."""
    if (r.get("version_num") or 0) < 160000:
        return 0, None
    lim = repo_ml.newest_limits(ctx.repo, ctx.target.target_id)
    if lim is None or lim["reserved_connections"] is None:
        return 0, (
            "not captured yet (no snapshot of this target holds the limits): counted as 0, "
            "the share may be understated until a snapshot is taken"
        )
    return int(lim["reserved_connections"]), f"snapshot of {lim['captured_at']:%Y-%m-%d %H:%M} UTC"


def _simple(col: str):
    return _live(lambda r, ctx: Observation(_num(r, col)))


@_live
def _prepared(r, ctx):
    n = int(r.get("prepared_transactions") or 0)
    return Observation(
        _num(r, "prepared_transaction_max_s") or 0.0,
        detail={
            "prepared_transactions": n,
            "oldest_gid": r.get("oldest_prepared_gid"),
            "database": r.get("oldest_prepared_database"),
        }
        if n
        else {},
        note=f"prepared transaction '{r.get('oldest_prepared_gid')}' in database "
        f"{r.get('oldest_prepared_database')}: COMMIT PREPARED or ROLLBACK PREPARED it, as its "
        "coordinator decided"
        if n
        else None,
    )


@_live
def _wraparound(r, ctx):
    xid, mxid = _num(r, "max_xid_age"), _num(r, "max_mxid_age")
    return Observation(
        100.0 * max(xid or 0, mxid or 0) / WRAPAROUND,
        detail={"xid_age": xid, "mxid_age": mxid, "database": r.get("oldest_xid_database")},
    )


def _replication(col_primary: str, standby_col: str | None):
    @_live
    def fn(r, ctx):
        if r["in_recovery"]:
            if standby_col is None:
                return Observation(unavailable="this server is a standby (measured on its primary)")
            v = r.get(standby_col)
            if v is None:
                return Observation(unavailable="this standby has not replayed a transaction yet")
            return Observation(float(v), detail={"role": "standby"})
        if not r["standbys"]:
            return Observation(
                unavailable="no standby is connected and this server is not a standby"
            )
        return Observation(_num(r, col_primary), detail={"standbys": r["standbys"]})

    return fn


@_live
def _disk(r, ctx):
    if not ctx.local:
        return Observation(
            unavailable="PostgreSQL does not report free disk space over SQL and the data "
            "directory is not on this host"
        )
    if not r.get("data_directory"):
        return Observation(
            unavailable="the monitoring role may not read data_directory (grant pg_monitor)"
        )
    usage = data_disk(r["data_directory"])
    if usage is None:
        return Observation(unavailable=f"{r['data_directory']} is not readable from here")
    return Observation(100.0 * usage["used_bytes"] / usage["total_bytes"], detail=usage)


def _segment(name: str | None) -> int | None:
    if not name or len(name) < 24:
        return None
    try:
        return backup_wal.parse_segment(name[:24])[1]
    except Exception:
        return None


@_live
def _wal_archive(r, ctx):
    if r["in_recovery"]:
        return Observation(unavailable="this server is a standby (archiving is its primary's)")
    if r["archive_mode"] == "off":
        wal_job = _wal_receiver(ctx)
        if wal_job is None:
            return Observation(
                unavailable="archive_mode is off and no opscore WAL job is scheduled "
                "for this target (opscore backup schedule --wal 'every 5m')"
            )
        return wal_job
    last_time = r.get("last_archived_time")
    since = last_time or r["started_at"]
    cur, last = _segment(r.get("current_wal_file")), _segment(r.get("last_archived_wal"))
    # the segment being written is never archived yet: more than one means one waits
    pending = cur - last if cur is not None and last is not None else None
    failing = r.get("last_failed_time") is not None and (
        last_time is None or r["last_failed_time"] > last_time
    )
    detail = {
        "last_archived_wal": r.get("last_archived_wal"),
        "last_archived_time": last_time,
        "current_wal_file": r.get("current_wal_file"),
        "failed_count": r.get("failed_count"),
        "failing": failing,
    }
    waiting = failing or (pending is not None and pending > 1)
    return Observation((r["now"] - since).total_seconds() if waiting else 0.0, detail=detail)


def _wal_receiver(ctx: Context) -> Observation | None:
    cfg = backup_catalog.get_config(ctx.repo, ctx.target.target_id)
    if "wal" not in cfg.schedule:
        return None
    store = cfg.store_path or default_store_path(ctx.target.name)
    from pathlib import Path

    state = backup_wal.read_state(Path(store) / "wal")
    at = state.get("at")
    if not at:
        return Observation(unavailable="the opscore WAL job has not received WAL yet")
    when = datetime.fromisoformat(at)
    return Observation(
        (ctx.now - when).total_seconds(), detail={"source": "opscore WAL receiver", **state}
    )


def _counter(col: str):
    return _live(lambda r, ctx: Observation(_num(r, col, None)))


# --------------------------------------------------------------------- absence (schedule)
def _snapshot(ctx: Context) -> Observation:
    last = repo.last_snapshot(ctx.repo, ctx.target.target_id)
    if last is None or last["last_ok_at"] is None:
        return Observation(unavailable="no good snapshot of this target yet")
    s = ctx.settings
    if s.snapshot_cron:
        period = _cron_period(s.snapshot_cron, ctx.now)
    else:
        period = s.snapshot_interval_minutes * 60.0
    return Observation(
        (ctx.now - last["last_ok_at"]).total_seconds(),
        limit=period,
        detail={"last_ok_at": last["last_ok_at"], "last_status": last["last_status"]},
    )


def _ash(ctx: Context) -> Observation:
    st = repo.ash_status(ctx.repo, ctx.target.target_id)
    if st is None:
        return Observation(unavailable="no ASH sampler has run for this target yet")
    return Observation(
        (ctx.now - st["last_flush_at"]).total_seconds(),
        limit=ctx.settings.ash_flush_interval_s,
        detail={
            "last_flush_at": st["last_flush_at"],
            "last_sample_time": st["last_sample_time"],
            "errors": st["errors"],
            "last_error": st["last_error"],
        },
    )


def _cron_period(expr: str, now: datetime) -> float:
    from cronsim import CronSim

    it = iter(CronSim(expr, now, reverse=True))
    a, b = next(it), next(it)
    return (a - b).total_seconds()


def _last_due(when: str, now: datetime) -> datetime:
    spec = backup_schedule.parse_when("backup", when)
    if "cron" in spec:
        from cronsim import CronSim

        return next(iter(CronSim(spec["cron"], now, reverse=True)))
    return now - timedelta(seconds=spec["interval_s"])


def _backup(ctx: Context, grace_s: float) -> Observation:
    cfg = backup_catalog.get_config(ctx.repo, ctx.target.target_id)
    jobs = {j: w for j, w in cfg.schedule.items() if j in ("full", "incremental")}
    if not jobs:
        return Observation(
            unavailable="no backup schedule for this target (opscore backup schedule ...)"
        )
    # the newest run that should have finished by now (the grace is its time to run)
    due = max(_last_due(w, ctx.now - timedelta(seconds=grace_s)) for w in jobs.values())
    last = repo.newest_backup(ctx.repo, ctx.target.target_id)
    started = last["last_ok_started_at"] if last else None
    detail = {
        "due_at": due,
        "schedule": jobs,
        "last_ok_started_at": started,
        "last_status": last["last_status"] if last else None,
    }
    # age of the newest usable backup against the age it may have: since the due run
    age = (ctx.now - started).total_seconds() if started else float("inf")
    allowed = (ctx.now - due).total_seconds() + 60.0  # a cron-started run starts late by <60 s
    if age == float("inf"):
        age = (ctx.now - due).total_seconds() + 60.0 + 1.0
        detail["note"] = "no usable backup at all"
    return Observation(age, limit=allowed - grace_s, detail=detail)


def _addm(ctx: Context) -> Observation:
    a = repo.newest_addm(ctx.repo, ctx.target.target_id)
    if a is None:
        return Observation(unavailable="no ADDM analysis of this target yet")
    findings = a["findings"] or []
    top = max((f["impact_pct"] for f in findings), default=0.0)
    return Observation(
        float(top),
        detail={
            "analysis_id": a["analysis_id"],
            "created_at": a["created_at"],
            "findings": [f for f in findings if f["impact_pct"] >= 1][:5],
        },
    )


#: the capacity forecasts of a target (``ops_core.api.capacity`` registers its reader here
#: when imported: the alert engine sits below the service layer and does not import it)
ForecastReader = Callable[[Target], list[Any]]
FORECAST_READER: list[ForecastReader] = []
#: forecast rule metric -> forecast metric name (or prefix, for the sequences)
FORECAST_METRICS = {
    "days_until_disk_full": "database_size",
    "days_until_connections_max": "connections",
    "days_until_xid_wraparound": "xid_age",
    "days_until_mxid_wraparound": "mxid_age",
    "days_until_sequence_exhausted": "sequence:",
}
NOT_IN_SIGHT_DAYS = 5 * 365.0  # the forecasts' lookahead: "not in sight" reads as this


def _forecast(metric: str) -> Callable[[Context], Observation]:
    def fn(ctx: Context) -> Observation:
        if not FORECAST_READER:
            return Observation(unavailable="capacity forecasts are not loaded (ops_core.api)")
        cache = ctx.__dict__.setdefault("_forecasts", None)
        if cache is None:
            try:
                cache = FORECAST_READER[0](ctx.target)
            except OpsCoreError as e:
                return Observation(unavailable=f"no capacity forecast: {e.message}")
            ctx.__dict__["_forecasts"] = cache
        name = FORECAST_METRICS[metric]
        fcs = [
            f
            for f in cache
            if (f.metric.startswith(name) if name.endswith(":") else f.metric == name)
        ]
        if not fcs:
            return Observation(unavailable=f"no {name.rstrip(':')} forecast: not captured yet")
        with_limit = [f for f in fcs if f.limit is not None]
        if not with_limit:
            return Observation(unavailable="; ".join(fcs[0].notes) or "no limit known")
        soonest = min(
            with_limit,
            key=lambda f: NOT_IN_SIGHT_DAYS if f.days_until is None else f.days_until,
        )
        days = NOT_IN_SIGHT_DAYS if soonest.days_until is None else float(soonest.days_until)
        level = getattr(soonest, "level", None)
        horizon = getattr(soonest, "horizon_days", None)
        interval = f"{level * 100:g} %" if level else None
        note = (
            f"Forecast of {soonest.metric}: {soonest.method} (chosen by held-out error) on "
            f"{soonest.history_points} points, {horizon:g}-day horizon, {interval} prediction "
            f"interval; limit {soonest.limit:.6g} ({soonest.limit_source}); pessimistic "
            f"(interval's upper edge): "
            + (
                "not in sight"
                if soonest.days_until_upper is None
                else f"{soonest.days_until_upper:g} days"
            )
            + "."
            if horizon is not None
            else None
        )
        return Observation(
            days,
            note=note,
            detail={
                "forecast": soonest.metric,
                "method": soonest.method,
                "horizon_days": horizon,
                "interval": interval,
                "history_points": soonest.history_points,
                "history_begin": soonest.history_begin,
                "history_end": soonest.history_end,
                "holdout_mape": soonest.holdout,
                "last_value": soonest.last_value,
                "limit": soonest.limit,
                "limit_source": soonest.limit_source,
                "days_until": soonest.days_until,
                "days_until_upper": soonest.days_until_upper,
                "in_sight": soonest.days_until is not None,
                "notes": soonest.notes[:4],
            },
        )

    return fn


#: the anomaly detector's score of a target's latest snapshot interval (``ops_core.api``
#: registers ``ml_alerts.latest_interval_anomaly`` here when imported): (target, score at which
#: an ADDM analysis is run for the anomaly) -> {"score", "detail"} or {"unavailable"}
AnomalyReader = Callable[[Target, float], dict[str, Any]]
ANOMALY_READER: list[AnomalyReader] = []


def _anomaly(ctx: Context, value: float) -> Observation:
    if not ANOMALY_READER:
        return Observation(unavailable="anomaly detection is not loaded (ops_core.api)")
    cache = ctx.__dict__.setdefault("_anomaly", {})
    if value not in cache:
        try:
            cache[value] = ANOMALY_READER[0](ctx.target, value)
        except OpsCoreError as e:
            cache[value] = {"unavailable": f"no anomaly score: {e.message}"}
    got = cache[value]
    if got.get("unavailable"):
        return Observation(unavailable=got["unavailable"])
    d = got["detail"]
    moved = ", ".join(
        f"{m['metric']} {m['value']:.4g} (expected {m['low']:.4g}-{m['high']:.4g})"
        for m in d["metrics"][:3]
    )
    note = f"Latest interval (ending {d['interval_end']:%Y-%m-%d %H:%M:%S} UTC): {moved}." + (
        f" ADDM analysis {d['addm_analysis_id']}." if d.get("addm_analysis_id") else ""
    )
    return Observation(float(got["score"]), detail=d, note=note)


def _quota(ctx: Context) -> Observation:
    worst = repo_quotas.worst_usage(ctx.repo, ctx.target.target_id)
    if worst is None:
        return Observation(unavailable="no evaluated quota on this target (opscore resource quota)")
    lim, measured = float(worst["lim"]), float(worst["measured"])
    pct = 100.0 * measured / lim if lim > 0 else (100.0 if measured > 0 else 0.0)
    return Observation(pct, detail={"quota": worst["name"], "measured": measured, "limit": lim})


OBSERVERS: dict[str, Callable[[Context], Observation]] = {
    "connections": _connections,
    "connections_pct": _connections_pct,
    "idle_in_transaction_s": _simple("idle_in_transaction_max_s"),
    "longest_transaction_s": _simple("longest_transaction_s"),
    "prepared_transaction_age_s": _prepared,
    "blocked_sessions": _simple("blocked_sessions"),
    "longest_blocked_s": _simple("longest_blocked_s"),
    "wraparound_pct": _wraparound,
    "replication_lag_s": _replication("replica_lag_s", "standby_replay_age_s"),
    "replication_lag_bytes": _replication("replica_lag_bytes", None),
    "disk_used_pct": _disk,
    "wal_archive_stalled_s": _wal_archive,
    "deadlocks_total": _counter("deadlocks"),
    "xact_commit_total": _counter("xact_commit"),
    "xact_rollback_total": _counter("xact_rollback"),
    "temp_bytes_total": _counter("temp_bytes"),
    "wal_bytes_total": _counter("wal_bytes"),
    "snapshot": _snapshot,
    "ash_sampler": _ash,
    "addm_impact_pct": _addm,
    "quota_used_pct": _quota,
    **{m: _forecast(m) for m in FORECAST_METRICS},
}


def observe(metric: str, ctx: Context, value: float = 0.0) -> Observation:
    """The metric's observation on this target (``value``: the rule's, for ``backup``'s
    grace)."""
    if metric == "backup":
        return _backup(ctx, value)
    if metric == "anomaly_score":
        return _anomaly(ctx, value)
    return OBSERVERS[metric](ctx)
