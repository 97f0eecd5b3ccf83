"""Health: liveness (the process answers), startup (repository reachable, migrations
applied), readiness (startup + every target reachable) and full (each component: repository,
each target, each collector's freshness against its schedule, last backup, WAL archiving),
each with a healthy / degraded / failing verdict and the reason per component."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from .. import __version__, repository
from ..alerts.metrics import Context, Observation, is_local_target, observe
from ..collectors import health_reads
from ..config import get_settings
from ..errors import OpsCoreError
from ..model.target import Target
from ..repository import targets as repo_targets
from .targets import target_session

__all__ = [
    "HealthComponent",
    "HealthReport",
    "health_liveness",
    "health_startup",
    "health_readiness",
    "health_full",
]

HEALTHY, DEGRADED, FAILING, NA = "healthy", "degraded", "failing", "not available"
_RANK = {HEALTHY: 0, NA: 0, DEGRADED: 1, FAILING: 2}


@dataclass
class HealthComponent:
    name: str  # e.g. repository, target prod, prod: snapshots
    status: str  # healthy, degraded, failing, not available
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HealthReport:
    check: str  # liveness, startup, readiness, full
    verdict: str  # healthy, degraded, failing
    checked_at: datetime
    version: str
    components: list[HealthComponent]

    @property
    def ok(self) -> bool:
        return self.verdict != FAILING

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def _report(check: str, comps: list[HealthComponent]) -> HealthReport:
    worst = max((c.status for c in comps), key=lambda s: _RANK[s], default=HEALTHY)
    verdict = HEALTHY if worst == NA else worst
    return HealthReport(check, verdict, datetime.now(UTC), __version__, comps)


def health_liveness() -> HealthReport:
    """The process answers (no dependency is contacted)."""
    return _report("liveness", [HealthComponent("process", HEALTHY, "opscore answers")])


def _repository() -> tuple[HealthComponent, psycopg.Connection | None]:
    try:
        conn = repository.connect(start=False)  # observe, never start the embedded server
    except OpsCoreError as exc:
        return HealthComponent("repository", FAILING, exc.message), None
    except psycopg.Error as exc:
        return HealthComponent("repository", FAILING, f"unreachable: {exc}".strip()), None
    known = {m.version for m in repository.migrations()}
    applied = repository.applied_versions(conn)
    detail = {"schema_version": max(applied) if applied else 0, "known": max(known)}
    if applied - known:
        reason = f"schema is newer than this opscore (migrations {sorted(applied - known)})"
        return HealthComponent("repository", FAILING, reason, detail), conn
    if known - applied:
        reason = f"migrations not applied: {sorted(known - applied)} (run `opscore init`)"
        return HealthComponent("repository", FAILING, reason, detail), conn
    return HealthComponent("repository", HEALTHY, "reachable, migrations applied", detail), conn


def health_startup() -> HealthReport:
    """The repository is reachable and its migrations are applied (nothing is migrated)."""
    comp, conn = _repository()
    if conn is not None:
        conn.close()
    return _report("startup", [comp])


def _read(t: Target) -> tuple[dict[str, Any] | None, str | None]:
    try:
        with target_session(t) as conn:
            return health_reads.server_reading(conn), None
    except (OpsCoreError, psycopg.Error) as exc:
        return None, getattr(exc, "message", None) or str(exc).strip()


def _target_comp(t: Target, reading: dict[str, Any] | None, err: str | None) -> HealthComponent:
    if reading is None:
        return HealthComponent(f"target {t.name}", FAILING, f"unreachable: {err}")
    v = str(reading["version_num"])
    return HealthComponent(
        f"target {t.name}",
        HEALTHY,
        "reachable" + (" (standby)" if reading["in_recovery"] else ""),
        {"version_num": int(v), "client_connections": reading["client_connections"]},
    )


def health_readiness() -> HealthReport:
    """Startup plus every registered target reachable."""
    comp, conn = _repository()
    comps = [comp]
    if conn is not None:
        try:
            if comp.status == HEALTHY:
                for t in repo_targets.all_targets(conn):
                    comps.append(_target_comp(t, *_read(t)))
        finally:
            conn.close()
    return _report("readiness", comps)


def _freshness(name: str, obs: Observation, grace_s: float, fail_after: float | None):
    if obs.unavailable:
        return HealthComponent(name, NA, obs.unavailable, obs.detail)
    assert obs.value is not None and obs.limit is not None
    age, limit = obs.value, obs.limit + grace_s
    detail = {"age_s": round(age, 1), "allowed_s": round(limit, 1), **obs.detail}
    if age <= limit:
        return HealthComponent(name, HEALTHY, f"fresh: {age:.0f} s old", detail)
    status = FAILING if fail_after is not None and age > fail_after else DEGRADED
    return HealthComponent(
        name, status, f"behind its schedule: {age:.0f} s old, {limit:.0f} s allowed", detail
    )


def _target_full(conn: psycopg.Connection, t: Target) -> list[HealthComponent]:
    s = get_settings()
    reading, err = _read(t)
    comps = [_target_comp(t, reading, err)]
    ctx = Context(t, conn, s, local=is_local_target(t), reading=reading, reading_error=err)
    if reading is not None:
        ctx.now = reading["now"]
        pct = observe("connections_pct", ctx)
        if pct.value is not None and pct.value > 90:
            comps[0].status, comps[0].reason = DEGRADED, f"connections at {pct.value:.0f} %"
        wrap = observe("wraparound_pct", ctx)
        if wrap.value is not None and wrap.value > 50:
            comps[0].status = DEGRADED
            comps[0].reason = f"transaction ID wraparound at {wrap.value:.0f} % of the horizon"
    snap_period = observe("snapshot", ctx)
    period = snap_period.limit or 900.0
    comps.append(
        _freshness(f"{t.name}: snapshots", snap_period, max(60.0, period / 2), 3 * period + 60)
    )
    ash = observe("ash_sampler", ctx)
    comps.append(_freshness(f"{t.name}: ASH sampler", ash, 30.0, None))
    bk = observe("backup", ctx, 3600.0)
    if bk.unavailable:
        comps.append(HealthComponent(f"{t.name}: backups", NA, bk.unavailable))
    elif bk.value is not None and bk.limit is not None and bk.value > bk.limit + 3600.0:
        comps.append(
            HealthComponent(
                f"{t.name}: backups",
                DEGRADED,
                f"overdue: no usable backup since the run due at {bk.detail['due_at']:%F %R}",
                bk.detail,
            )
        )
    else:
        status = HEALTHY if bk.detail.get("last_status") != "failed" else DEGRADED
        reason = "on schedule" + ("; the newest attempt failed" if status == DEGRADED else "")
        comps.append(HealthComponent(f"{t.name}: backups", status, reason, bk.detail))
    wal = observe("wal_archive_stalled_s", ctx)
    if wal.unavailable:
        comps.append(HealthComponent(f"{t.name}: WAL archiving", NA, wal.unavailable))
    elif wal.detail.get("failing"):
        comps.append(
            HealthComponent(
                f"{t.name}: WAL archiving", FAILING, "archive_command fails", wal.detail
            )
        )
    elif (wal.value or 0) > 900:
        comps.append(
            HealthComponent(
                f"{t.name}: WAL archiving",
                FAILING,
                f"no WAL archived for {wal.value:.0f} s while segments wait",
                wal.detail,
            )
        )
    else:
        comps.append(HealthComponent(f"{t.name}: WAL archiving", HEALTHY, "keeping up", wal.detail))
    return comps


def health_full(target: str | None = None) -> HealthReport:
    """Every component with its status and reason: the repository, each target (reachable,
    connections, wraparound), each collector's freshness against its schedule (snapshots,
    ASH sampler's last flush), the last backup against its schedule and WAL archiving."""
    comp, conn = _repository()
    comps = [comp]
    if conn is not None:
        try:
            if comp.status == HEALTHY:
                targets = (
                    [repo_targets.get(conn, target)] if target else repo_targets.all_targets(conn)
                )
                for t in targets:
                    comps.extend(_target_full(conn, t))
        finally:
            conn.close()
    return _report("full", comps)
