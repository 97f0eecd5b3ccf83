"""Capacity planning: forecasts with prediction intervals and ``days_until`` each limit,
exhaustion alerts, storage growth, from the target's snapshot history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import psycopg

from .. import repository
from ..alerts import metrics as alert_metrics
from ..analysis import capacity as cap
from ..analysis.ml.series import load_rates
from ..collectors.limits import read_limits
from ..errors import InvalidInput, OpsCoreError
from ..repository import ml as repo_ml
from .common import opscore_shown
from .targets import resolve_target, target_session

__all__ = [
    "CapacityReport",
    "capacity_forecasts",
    "capacity_alerts",
    "storage_growth",
    "response_time_forecasts",
]

#: PostgreSQL refuses new transaction IDs (and multixacts) 3 million before the 2^31
#: wraparound horizon (xidStopLimit / multiStopLimit): the limit the forecasts count down to
WRAP_STOP = float(2**31 - 3_000_000)
NO_WRAP = (
    "transaction-ID and multixact age vs wraparound: no snapshot of this target holds them "
    "yet (age(datfrozenxid) and mxid_age(datminmxid) are captured with every snapshot since "
    "opscore read them; take snapshots)"
)
NO_SEQ = (
    "sequences vs their max: no snapshot of this target holds a sequence with a readable "
    "last value (none exist, none called yet, or no SELECT/USAGE privilege on them)"
)
NO_DISK = (
    "filesystem free space unknown: host figures are captured only for a target on "
    "opscore's host; days_until is null"
)
NO_SIZE_HISTORY = (
    "No size history yet: sizes are read by a snapshot every snapshot_sizes_interval_minutes "
    "(default 60), and a target's first snapshot is its baseline (nothing stored per database "
    "or table). Take snapshots over time (`opscore serve` schedules them)."
)
#: sequences forecast per report: the fullest ones (each forecast fits its candidates)
MAX_SEQUENCES = 10


@dataclass
class CapacityReport:
    target: str
    horizon_days: float
    forecasts: list[cap.Forecast]
    not_captured: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "horizon_days": self.horizon_days,
            "forecasts": [f.as_dict() for f in self.forecasts],
            "not_captured": self.not_captured,
        }


#: target (id, name, registered at) -> (newest snapshot id, its forecasts): the alert engine
#: evaluates every minute, the forecasts change only with a new snapshot
_ALERT_CACHE: dict[tuple[Any, ...], tuple[int | None, list[cap.Forecast]]] = {}


def _forecasts_for_alerts(t: Any) -> list[cap.Forecast]:
    """The alert engine's forecast rules read this (30-day horizon; days_until beyond it
    from the trend), computed again only when the target has a new snapshot."""
    with repository.session() as repo:
        newest = repo_ml.newest_snapshot(repo, t.target_id)
    who = (t.target_id, t.name, t.created_at)
    hit = _ALERT_CACHE.get(who)
    if hit is not None and newest is not None and hit[0] == newest:
        return hit[1]
    out = _report(t, pd.Timedelta(days=30), with_rates=False).forecasts
    _ALERT_CACHE[who] = (newest, out)
    return out


alert_metrics.FORECAST_READER[:] = [_forecasts_for_alerts]


def _horizon(days: float) -> pd.Timedelta:
    if not 0 < days <= 366:
        raise InvalidInput(f"horizon_days={days} is out of range.", "Give 1 to 366 days.")
    return pd.Timedelta(days=days)


def _series(df: pd.DataFrame, col: str) -> pd.Series:
    s = pd.Series(
        pd.to_numeric(df[col]).to_numpy(dtype="float64"),
        index=pd.to_datetime(df["captured_at"], utc=True),
    )
    return s.dropna()


def capacity_forecasts(target: str | None = None, *, horizon_days: float = 30) -> CapacityReport:
    """Forecasts of total database size (limit: its size plus the filesystem's free space,
    known for a target on this host), connections (limit: max_connections minus the
    reserved connections, as captured, else read from the target, else unknown), WAL
    generation and statement time; each with its method (chosen by held-out error),
    prediction interval and ``days_until``."""
    return _report(resolve_target(target), _horizon(horizon_days))


def _report(t: Any, horizon: pd.Timedelta, with_rates: bool = True) -> CapacityReport:
    """The capacity report; without ``with_rates`` only the forecasts that have a limit (what
    the alert rules compare: WAL generation and statement time have none)."""
    own = opscore_shown(None)
    with repository.session() as repo:
        c = repo_ml.capacity_series(repo, t.target_id, own)
        trends = repo_ml.snapshot_series(repo, t.target_id, own) if with_rates else None
    out: list[cap.Forecast] = []
    # database size vs the filesystem
    size = _series(c, "db_size_bytes") if not c.empty else pd.Series(dtype="float64")
    limit = source = None
    disk_note = None
    free = _free_bytes(c)
    if free is not None:
        if len(size):
            limit = float(size.iloc[-1]) + free
            source = "database size now + free space of the data directory's filesystem"
    else:
        disk_note = NO_DISK
    f = cap.forecast(
        size,
        metric="database_size",
        unit="bytes",
        horizon=horizon,
        limit=limit,
        limit_source=source,
    )
    if disk_note:
        f.notes.append(disk_note)
    out.append(f)
    # connections vs max_connections
    conns = _series(c, "connections") if not c.empty else pd.Series(dtype="float64")
    limit, source, lim_note = _connection_limit(t, c)
    f = cap.forecast(
        conns,
        metric="connections",
        unit="sessions",
        horizon=horizon,
        limit=limit,
        limit_source=source,
    )
    if lim_note:
        f.notes.append(lim_note)
    out.append(f)
    if trends is not None and not trends.empty:
        rates = load_rates(trends).set_index("captured_at")
        out.append(
            cap.forecast(
                rates["wal_mb_per_s"] * 86400 / 1024,
                metric="wal_generation",
                unit="GB/day",
                horizon=horizon,
            )
        )
        out.append(
            cap.forecast(
                rates["stmt_time_s_per_s"],
                metric="stmt_time",
                unit="s/s (statement time per second)",
                horizon=horizon,
            )
        )
    with repository.session() as repo:
        wrap = repo_ml.wraparound_series(repo, t.target_id)
        seqs = repo_ml.sequence_series(repo, t.target_id)
    missing: list[str] = []
    if wrap.empty:
        missing.append(NO_WRAP)
    else:
        out.extend(_wraparound(wrap, horizon))
    seq_fc = _sequences(seqs, horizon)
    if seq_fc:
        out.extend(seq_fc)
    else:
        missing.append(NO_SEQ)
    return CapacityReport(t.name, horizon.total_seconds() / 86400, out, missing)


def _free_bytes(c: pd.DataFrame) -> float | None:
    """Free space of the data directory's filesystem at the newest snapshot that read it
    (host figures: targets on opscore's host), else None."""
    if c.empty or not c["disk_total_bytes"].notna().any():
        return None
    last = c.dropna(subset=["disk_total_bytes", "disk_used_bytes"]).iloc[-1]
    return float(last["disk_total_bytes"]) - float(last["disk_used_bytes"])


def _connection_limit(t: Any, c: pd.DataFrame) -> tuple[float | None, str | None, str | None]:
    """Connections usable by clients: max_connections minus superuser_reserved_connections
    (and reserved_connections from PostgreSQL 16) as the newest snapshot captured them; for a
    history captured before opscore read them, as the target has them now; else unknown
    (never a default assumed). Returns (limit, where it comes from, a note)."""
    captured = c.dropna(subset=["max_connections", "reserved"]) if not c.empty else c
    if not captured.empty:
        row = captured.iloc[-1]
        extra = row["reserved_conn"] if pd.notna(row["reserved_conn"]) else 0.0
        how = (
            "captured with the snapshots"
            if row["limits_from"] == "limits"
            else "from the non-default settings captured with the snapshots"
        )
        return (
            float(row["max_connections"]) - float(row["reserved"]) - float(extra),
            f"max_connections {row['max_connections']:.0f} - superuser_reserved_connections "
            f"{row['reserved']:.0f}"
            + (f" - reserved_connections {extra:.0f}" if extra else "")
            + f" ({how}, {pd.Timestamp(row['captured_at']):%Y-%m-%d %H:%M} UTC)",
            None,
        )
    try:
        with target_session(t) as conn:
            now = read_limits(conn)
    except (OpsCoreError, psycopg.Error) as e:
        reason = getattr(e, "message", None) or str(e).strip().splitlines()[0]
        return (
            None,
            None,
            "max_connections unknown: no snapshot of this target captured the connection "
            f"limits and the target cannot be read now ({reason}); days_until is null",
        )
    extra = float(now.get("reserved_connections") or 0)
    return (
        float(now["max_connections"]) - float(now["superuser_reserved_connections"]) - extra,
        f"max_connections {now['max_connections']} - superuser_reserved_connections "
        f"{now['superuser_reserved_connections']}"
        + (f" - reserved_connections {extra:.0f}" if extra else "")
        + " (read from the target now: the snapshots did not capture them)",
        None,
    )


def _when(days: float | None) -> str:
    return "reached now" if days == 0 else "not in sight" if days is None else f"in {days} days"


def _wraparound(w: pd.DataFrame, horizon: pd.Timedelta) -> list[cap.Forecast]:
    """The oldest database's transaction-ID and multixact age against the stop limit, with the
    autovacuum context: when anti-wraparound autovacuum is forced (autovacuum_freeze_max_age)
    and when the vacuum failsafe engages (vacuum_failsafe_age)."""
    out = []
    for col, label, freeze, failsafe in (
        ("xid_age", "xid_age", "freeze_max_age", "failsafe_age"),
        ("mxid_age", "mxid_age", "mxid_freeze_max_age", "mxid_failsafe_age"),
    ):
        per = w.groupby("captured_at")[col].max()
        s = pd.Series(per.to_numpy(dtype="float64"), index=pd.to_datetime(per.index, utc=True))
        last = w[w["captured_at"] == w["captured_at"].max()]
        oldest = last.sort_values(col, ascending=False).iloc[0]
        f = cap.forecast(
            s,
            metric=label,
            unit="transactions" if col == "xid_age" else "multixacts",
            horizon=horizon,
            limit=WRAP_STOP,
            limit_source="2^31 - 3 million: where PostgreSQL stops assigning "
            + ("transaction IDs" if col == "xid_age" else "multixact IDs"),
        )
        fz, fs = float(oldest[freeze]), float(oldest[failsafe])
        f.notes.append(f"oldest database: {oldest['datname']}")
        if not bool(oldest["autovacuum"]):
            f.notes.append(
                "autovacuum is off: only anti-wraparound autovacuum runs (it is forced even "
                "so); schedule VACUUM (FREEZE)"
            )
        d_fz, d_fs = cap.days_to(f, fz), cap.days_to(f, fs)
        f.notes.append(
            f"anti-wraparound autovacuum is forced at age {fz:,.0f} (autovacuum_"
            + ("" if col == "xid_age" else "multixact_")
            + "freeze_max_age): "
            + _when(d_fz)
        )
        f.notes.append(f"the vacuum failsafe engages at age {fs:,.0f}: " + _when(d_fs))
        if d_fz == 0 and f.slope_per_day and f.slope_per_day > 0:
            f.notes.append(
                "the age keeps growing past the freeze age: vacuum is not keeping up, or "
                "something holds the horizon back (long transactions, prepared transactions, "
                "replication slots, standbys with hot_standby_feedback)"
            )
        out.append(f)
    return out


def _sequences(q: pd.DataFrame, horizon: pd.Timedelta) -> list[cap.Forecast]:
    """Values used of the fullest non-cycling sequences against their range (ascending: last
    value - min value of max - min; descending: the mirror)."""
    q = q.dropna(subset=["last_value", "min_value", "max_value", "increment_by"])
    if q.empty:
        return []
    q = q.assign(
        used=lambda d: (d["last_value"] - d["min_value"]).where(
            d["increment_by"] > 0, d["max_value"] - d["last_value"]
        ),
        span=lambda d: d["max_value"] - d["min_value"],
    )
    keys = ["datname", "schemaname", "sequencename"]
    last = q.sort_values("captured_at").groupby(keys).tail(1)
    last = last.assign(frac=last["used"] / last["span"].where(last["span"] > 0))
    last = last.sort_values("frac", ascending=False).head(MAX_SEQUENCES)
    out = []
    for _, row in last.iterrows():
        g = q[
            (q["datname"] == row["datname"])
            & (q["schemaname"] == row["schemaname"])
            & (q["sequencename"] == row["sequencename"])
        ]
        s = pd.Series(g["used"].to_numpy(dtype="float64"), index=pd.to_datetime(g["captured_at"]))
        name = f"sequence:{row['datname']}.{row['schemaname']}.{row['sequencename']}"
        cycles = bool(row["cycle"])
        f = cap.forecast(
            s,
            metric=name,
            unit="values used",
            horizon=horizon,
            limit=None if cycles else float(row["span"]),
            limit_source=None
            if cycles
            else f"{row['data_type']} sequence range (max_value - min_value)",
        )
        f.notes.append(f"{row['frac'] * 100:.4g} % of its range used")
        if cycles:
            f.notes.append("CYCLE: the sequence wraps to its start instead of failing")
        out.append(f)
    return out


def capacity_alerts(target: str | None = None, *, within_days: float = 30) -> pd.DataFrame:
    """Resource-exhaustion alerts: every forecast limit reached within ``within_days`` by the
    forecast (severity critical) or only by its interval's upper edge (warning)."""
    rep = capacity_forecasts(target, horizon_days=max(within_days, 1))
    rows = []
    for f in rep.forecasts:
        if f.limit is None:
            continue
        if f.days_until is not None and f.days_until <= within_days:
            sev = "critical"
        elif f.days_until_upper is not None and f.days_until_upper <= within_days:
            sev = "warning"
        else:
            continue
        rows.append(
            {
                "target": rep.target,
                "metric": f.metric,
                "severity": sev,
                "days_until": f.days_until,
                "days_until_upper": f.days_until_upper,
                "last_value": f.last_value,
                "limit": f.limit,
                "limit_source": f.limit_source,
                "method": f.method,
            }
        )
    cols = [
        "target",
        "metric",
        "severity",
        "days_until",
        "days_until_upper",
        "last_value",
        "limit",
        "limit_source",
        "method",
    ]
    return pd.DataFrame(rows, columns=cols)


STORAGE_BY = ("database", "table")


def storage_growth(
    target: str | None = None,
    *,
    horizon_days: float = 30,
    by: str = "database",
    limit: int = 10,
) -> pd.DataFrame:
    """Storage growth with the forecast size at the horizon, per database (``by='database'``)
    or for the ``limit`` fastest-growing tables (``by='table'``: heap + indexes + TOAST, from
    the sized snapshots). Each row's ``days_until_full``: days until its growth alone would
    fill the free space of the data directory's filesystem (the forecast's trend against
    size now + free space; null when the free space is unknown — targets not on opscore's
    host — or the size does not grow); ``share_of_growth_pct``: its part of the growth of all
    rows of its kind."""
    horizon = _horizon(horizon_days)
    key = (by or "").strip().lower()
    if key not in STORAGE_BY:
        raise InvalidInput(f"{by!r} is not a storage grouping.", "Use database or table.")
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit={limit} is out of range.", "Give 1 to 1000.")
    t = resolve_target(target)
    own = opscore_shown(None)
    with repository.session() as repo:
        free = _free_bytes(repo_ml.capacity_series(repo, t.target_id, own))
        if key == "database":
            df = repo_ml.database_sizes(repo, t.target_id, own)
            series = {
                (str(d),): pd.Series(
                    g["size_bytes"].to_numpy(), index=pd.to_datetime(g["captured_at"], utc=True)
                )
                for d, g in df.groupby("datname", sort=True)
            }
        else:
            series = _table_series(
                repo_ml.table_sizes(repo, t.target_id, own),
                repo_ml.sized_snapshot_times(repo, t.target_id),
                limit,
            )
    rows = []
    for who, s in series.items():
        name = who[0] if key == "database" else f"{who[1]}.{who[2]}"
        f = cap.forecast(
            s,
            metric=f"{key}_size:{name}",
            unit="bytes",
            horizon=horizon,
            limit=None if free is None or s.empty else float(s.iloc[-1]) + free,
            limit_source=None if free is None else "size now + free space of the filesystem",
        )
        end = f.frame.iloc[-1] if not f.frame.empty else None
        row = {"datname": who[0]}
        if key == "table":
            row.update(schemaname=who[1], relname=who[2])
        row.update(
            # the size last read, not the forecaster's resampled bucket (a mean when two
            # snapshots fall into one step)
            size_bytes=None if s.empty else float(s.iloc[-1]),
            growth_bytes_per_day=f.slope_per_day,
            forecast_bytes=None if end is None else float(end["mean"]),
            forecast_lower=None if end is None else float(end["lower"]),
            forecast_upper=None if end is None else float(end["upper"]),
            days_until_full=f.days_until,
            method=f.method,
            history_points=f.history_points,
        )
        rows.append(row)
    cols = (["datname"] + (["schemaname", "relname"] if key == "table" else [])) + [
        "size_bytes",
        "growth_bytes_per_day",
        "share_of_growth_pct",
        "forecast_bytes",
        "forecast_lower",
        "forecast_upper",
        "days_until_full",
        "free_bytes",
        "method",
        "history_points",
    ]
    out = pd.DataFrame(rows).reindex(columns=cols)  # share and free space filled below
    grow = pd.to_numeric(out["growth_bytes_per_day"], errors="coerce").clip(lower=0)
    total = float(grow.sum()) if len(out) else 0.0
    out["share_of_growth_pct"] = (grow / total * 100).round(1) if total > 0 else None
    out["free_bytes"] = free
    if key == "table":
        out = out.sort_values("growth_bytes_per_day", ascending=False, na_position="last")
    out = out.reset_index(drop=True)
    out.attrs["free_bytes"] = free
    out.attrs["note"] = None if free is not None else NO_DISK
    out.attrs["empty_note"] = NO_SIZE_HISTORY if out.empty else None
    return out


def _table_series(
    df: pd.DataFrame, sized: pd.DataFrame, limit: int
) -> dict[tuple[str, str, str], pd.Series]:
    """Per table (datname, schema, name): its size at every sized snapshot since it was
    first stored, the last stored size carried forward over the snapshots where it did not
    change (stored only when its counters moved). The ``limit`` tables whose size grew most
    per day (first to last stored size) are returned, fastest first; forecasting every table
    of a large schema would take longer than the report is worth."""
    if df.empty:
        return {}
    at = pd.DatetimeIndex(pd.to_datetime(sized["captured_at"], utc=True)).unique()
    df = df.assign(captured_at=pd.to_datetime(df["captured_at"], utc=True))
    names = df.groupby(["datname", "relid"])[["schemaname", "relname"]].last()
    wide = df.pivot_table(
        index="captured_at", columns=["datname", "relid"], values="total_bytes", aggfunc="last"
    )
    wide = wide.reindex(wide.index.union(at)).ffill()
    span = (wide.index[-1] - wide.index[0]) / pd.Timedelta(days=1) if len(wide) > 1 else 0.0
    first = wide.bfill().iloc[0]  # each table's first stored size
    rate = (wide.iloc[-1] - first) / span if span > 0 else wide.iloc[-1] * 0
    out: dict[tuple[str, str, str], pd.Series] = {}
    for col in rate.sort_values(ascending=False, na_position="last").index[:limit]:
        schema, rel = names.loc[col]
        out[(str(col[0]), str(schema), str(rel))] = wide[col].dropna()
    return out


def response_time_forecasts(
    target: str | None = None, *, horizon_days: float = 7, top: int = 5
) -> list[cap.Forecast]:
    """Mean time per call of the top statements (by statement time) forecast over the
    horizon with a prediction interval (the method chosen by held-out error, as for every
    capacity forecast); metric ``response_time:<queryid>``, unit ms, no limit."""
    horizon = _horizon(horizon_days)
    if not 1 <= top <= 50:
        raise InvalidInput(f"top={top} is out of range.", "Give 1 to 50 statements.")
    t = resolve_target(target)
    with repository.session() as repo:
        iv = repo_ml.statement_intervals(repo, t.target_id, opscore_shown(None))
    if iv.empty:
        return []
    busiest = iv.groupby("queryid")["exec_ms"].sum().sort_values(ascending=False).head(top)
    out = []
    for qid in busiest.index:
        g = iv[iv["queryid"] == qid]
        s = pd.Series(
            (g["exec_ms"] / g["calls"]).to_numpy(dtype="float64"),
            index=pd.to_datetime(g["captured_at"], utc=True),
        )
        f = cap.forecast(s, metric=f"response_time:{int(qid)}", unit="ms", horizon=horizon)
        text = g["query"].dropna()
        if len(text):
            f.notes.append(f"statement: {str(text.iloc[0])[:120]}")
        out.append(f)
    return out
