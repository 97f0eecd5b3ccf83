"""Capacity planning: forecasts with prediction intervals and ``days_until`` each limit,
exhaustion alerts, storage growth, from the target's snapshot history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import repository
from ..analysis import capacity as cap
from ..analysis.ml.series import load_rates
from ..errors import InvalidInput
from ..repository import ml as repo_ml
from .common import opscore_shown
from .targets import resolve_target

__all__ = ["CapacityReport", "capacity_forecasts", "capacity_alerts", "storage_growth"]

#: limits the snapshots do not capture yet (said in every report, nothing made up)
NOT_CAPTURED = [
    "transaction-ID and multixact age vs wraparound: age(datfrozenxid) / mxid_age are not in "
    "the snapshots yet",
    "sequences vs their max: sequence values are not in the snapshots yet",
]


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
    superuser reserve, when the settings capture holds them), WAL generation and DB time; each
    with its method (chosen by held-out error), prediction interval and ``days_until``."""
    horizon = _horizon(horizon_days)
    t = resolve_target(target)
    own = opscore_shown(None)
    with repository.session() as repo:
        c = repo_ml.capacity_series(repo, t.target_id, own)
        trends = repo_ml.snapshot_series(repo, t.target_id, own)
    out: list[cap.Forecast] = []
    # database size vs the filesystem
    size = _series(c, "db_size_bytes") if not c.empty else pd.Series(dtype="float64")
    limit = source = None
    disk_note = None
    if not c.empty and c["disk_total_bytes"].notna().any():
        last = c.dropna(subset=["disk_total_bytes", "disk_used_bytes"]).iloc[-1]
        free = float(last["disk_total_bytes"]) - float(last["disk_used_bytes"])
        if len(size):
            limit = float(size.iloc[-1]) + free
            source = "database size now + free space of the data directory's filesystem"
    else:
        disk_note = (
            "filesystem free space unknown: host figures are captured only for a target on "
            "opscore's host; days_until is null"
        )
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
    limit = source = None
    if not c.empty and c["max_connections"].notna().any():
        row = c.dropna(subset=["max_connections"]).iloc[-1]
        reserved = float(row["reserved"]) if pd.notna(row["reserved"]) else 3.0
        limit = float(row["max_connections"]) - reserved
        source = "max_connections - superuser_reserved_connections"
    f = cap.forecast(
        conns,
        metric="connections",
        unit="sessions",
        horizon=horizon,
        limit=limit,
        limit_source=source,
    )
    if limit is None:
        f.notes.append(
            "max_connections not in the captured settings (it is at its default "
            "or settings were not captured): days_until is null"
        )
    out.append(f)
    if not trends.empty:
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
            cap.forecast(rates["db_time_s_per_s"], metric="db_time", unit="AAS", horizon=horizon)
        )
    return CapacityReport(t.name, horizon.total_seconds() / 86400, out, list(NOT_CAPTURED))


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


def storage_growth(target: str | None = None, *, horizon_days: float = 30) -> pd.DataFrame:
    """Per database: size now, growth per day (recent trend), forecast size at the horizon
    with its interval, and the method."""
    horizon = _horizon(horizon_days)
    t = resolve_target(target)
    with repository.session() as repo:
        df = repo_ml.database_sizes(repo, t.target_id, opscore_shown(None))
    rows = []
    for datname, g in df.groupby("datname", sort=True):
        s = pd.Series(g["size_bytes"].to_numpy(), index=pd.to_datetime(g["captured_at"], utc=True))
        f = cap.forecast(s, metric=f"database_size:{datname}", unit="bytes", horizon=horizon)
        end = f.frame.iloc[-1] if not f.frame.empty else None
        rows.append(
            {
                "datname": datname,
                "size_bytes": f.last_value,
                "growth_bytes_per_day": f.slope_per_day,
                "forecast_bytes": None if end is None else float(end["mean"]),
                "forecast_lower": None if end is None else float(end["lower"]),
                "forecast_upper": None if end is None else float(end["upper"]),
                "method": f.method,
                "history_points": f.history_points,
            }
        )
    cols = [
        "datname",
        "size_bytes",
        "growth_bytes_per_day",
        "forecast_bytes",
        "forecast_lower",
        "forecast_upper",
        "method",
        "history_points",
    ]
    return pd.DataFrame(rows, columns=cols)
