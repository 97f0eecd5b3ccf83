"""Key per-target figures now (one cheap read of each target plus the repository's freshness),
and their Prometheus exposition for Grafana and Alertmanager users."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from .. import repository
from ..alerts import prometheus
from ..alerts.metrics import Context, is_local_target, observe
from ..collectors import health_reads
from ..config import get_settings
from ..errors import OpsCoreError
from ..model.target import Target
from ..repository import alerts as repo
from .targets import get_target, list_targets, target_session

__all__ = ["TargetMetrics", "target_metrics", "prometheus_metrics", "prometheus_registry"]


@dataclass
class TargetMetrics:
    target: str
    up: bool
    error: str | None
    scraped_at: datetime
    values: dict[str, float | None] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    open_alerts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ts(v: datetime | None) -> float | None:
    return v.timestamp() if v else None


def _one(conn: psycopg.Connection, t: Target) -> TargetMetrics:
    s = get_settings()
    out = TargetMetrics(t.name, False, None, datetime.now(UTC))
    v = out.values
    began = time.perf_counter()
    ctx = Context(t, conn, s, local=is_local_target(t))
    try:
        with target_session(t) as tconn:
            r = health_reads.server_reading(tconn)
        ctx.reading, ctx.now = r, r["now"]
        out.up = True
    except (OpsCoreError, psycopg.Error) as exc:
        out.error = getattr(exc, "message", None) or str(exc).strip()
        r = None
    v["up"] = 1.0 if out.up else 0.0
    v["scrape_s"] = time.perf_counter() - began
    if r is not None:
        for col in (
            "client_connections", "active_sessions", "idle_in_transaction", "max_connections",
            "blocked_sessions", "max_xid_age", "standbys", "archived_count", "failed_count",
            "wal_bytes", "xact_commit", "xact_rollback", "deadlocks", "temp_bytes", "blks_read",
            "blks_hit",
        ):  # fmt: skip
            v[col] = None if r.get(col) is None else float(r[col])
        v["idle_in_transaction_max_s"] = float(r.get("idle_in_transaction_max_s") or 0.0)
        v["longest_transaction_s"] = float(r.get("longest_transaction_s") or 0.0)
        v["prepared_transactions"] = float(r.get("prepared_transactions") or 0)
        v["prepared_transaction_max_s"] = float(r.get("prepared_transaction_max_s") or 0.0)
        v["started_at"] = _ts(r["started_at"])
        v["last_archived_time"] = _ts(r.get("last_archived_time"))
        for name, key, scale in (
            ("connections_pct", "connections_ratio", 0.01),
            ("wraparound_pct", "wraparound_ratio", 0.01),
            ("replication_lag_s", "replication_lag_s", 1.0),
            ("replication_lag_bytes", "replication_lag_bytes", 1.0),
            ("disk_used_pct", None, 1.0),
        ):
            obs = observe(name, ctx)
            if obs.unavailable:
                out.unavailable[name] = obs.unavailable
            elif key:
                v[key] = (obs.value or 0.0) * scale
            if name == "disk_used_pct" and not obs.unavailable:
                v["disk_total_bytes"] = float(obs.detail["total_bytes"])
                v["disk_used_bytes"] = float(obs.detail["used_bytes"])
    snap = repo.last_snapshot(conn, t.target_id)
    v["last_snapshot"] = _ts(snap["last_ok_at"]) if snap else None
    ash = repo.ash_status(conn, t.target_id)
    v["ash_last_flush"] = _ts(ash["last_flush_at"]) if ash else None
    v["ash_errors"] = float(ash["errors"]) if ash else None
    bk = repo.newest_backup(conn, t.target_id)
    v["last_backup"] = _ts(bk["last_ok_started_at"]) if bk else None
    for a in repo.list_alerts(conn, ("firing", "acknowledged"), t.target_id):
        out.open_alerts[a.severity] = out.open_alerts.get(a.severity, 0) + 1
    return out


def target_metrics(target: str | None = None) -> list[TargetMetrics]:
    """Per target (or one): connections, idle in transaction, blocked sessions, wraparound,
    replication lag, WAL archiving, transaction and I/O counters, data disk (local), and the
    freshness of snapshots, ASH and backups. A target that cannot be read has ``up`` false and
    its error; a figure the server cannot give is listed in ``unavailable`` with why."""
    targets = [get_target(target)] if target else list_targets()
    with repository.session() as conn:
        return [_one(conn, t) for t in targets]


def prometheus_metrics(target: str | None = None) -> str:
    """The Prometheus text exposition of :func:`target_metrics`."""
    return prometheus.exposition(lambda: target_metrics(target))


def prometheus_registry(target: str | None = None):  # -> prometheus_client CollectorRegistry
    """A prometheus-client registry that reads fresh figures on every scrape (the exporter
    of `opscore metrics serve`)."""
    if target:
        get_target(target)  # an unknown target fails now, not on the first scrape
    return prometheus.registry_for(lambda: target_metrics(target))
