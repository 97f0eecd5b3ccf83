"""The fleet overview: every target's collector state, freshness, DB time and open alerts from
the repository in one query, worst first (the app's Fleet page, `opscore fleet`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from .. import repository
from ..config import get_settings
from ..errors import InvalidInput
from ..repository import fleet as repo_fleet

__all__ = ["FleetTargetState", "fleet_overview"]

#: collector states, worst first (the order of the overview)
STATES = ("failing", "stale", "not sampled", "sampling")


@dataclass
class FleetTargetState:
    """One target in the fleet overview."""

    target: str
    collector: str  # failing | stale | not sampled | sampling
    last_sample_age_s: float | None  # the ASH sampler's newest sample
    last_snapshot_age_s: float | None
    last_snapshot_status: str | None  # ok | partial | failed
    sampler_errors: int  # errors the sampler recorded for this target (all time)
    last_error: str | None  # the sampler's newest error, or the newest snapshot's
    db_time_rate: float  # average active sessions over the window (DB time s per s)
    top_wait_class: str | None
    top_wait_class_pct: float | None  # its share of the window's DB time
    open_alerts: int
    critical_alerts: int
    tags: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _age(now: datetime, t: datetime | None) -> float | None:
    return None if t is None else max(0.0, (now - t).total_seconds())


def _state(row: dict, sample_age: float | None, stale_s: float) -> str:
    if sample_age is None:
        return "failing" if row["sampler_last_error"] else "not sampled"
    if sample_age <= stale_s:
        return "sampling"
    return "failing" if row["sampler_last_error"] else "stale"


def _worst_first(s: FleetTargetState) -> tuple:
    snap_failed = s.last_snapshot_status == "failed"
    return (
        STATES.index(s.collector),
        -s.critical_alerts,
        -s.open_alerts,
        not snap_failed,
        -s.db_time_rate,
        s.target,
    )


def fleet_overview(window_minutes: float = 5.0) -> list[FleetTargetState]:
    """Every registered target with its ASH collector state (sampling, stale: no sample for
    longer than a flush interval and a minute, failing: stale with an error recorded, not
    sampled), the age of its newest sample and snapshot, the sampler's errors, its DB time
    rate and top wait class over the last ``window_minutes``, and its open alerts; sorted
    worst first. One repository query for the whole fleet."""
    if not 0 < window_minutes <= 24 * 60:
        raise InvalidInput(
            f"The window must be from 0 to 1440 minutes, not {window_minutes}.",
            "5 minutes is the usual 'now'.",
        )
    s = get_settings()
    stale_s = s.ash_flush_interval_s + max(60.0, 3 * s.ash_interval_s)
    window_s = window_minutes * 60.0
    with repository.session() as conn:
        now, rows = repo_fleet.overview(conn, window_s)
    out = []
    for r in rows:
        sample_age = _age(now, r["last_sample_time"])
        db_time = float(r["db_time_s"] or 0.0)
        out.append(
            FleetTargetState(
                target=r["name"],
                collector=_state(r, sample_age, stale_s),
                last_sample_age_s=sample_age,
                last_snapshot_age_s=_age(now, r["last_snapshot_at"]),
                last_snapshot_status=r["last_snapshot_status"],
                sampler_errors=int(r["sampler_errors"] or 0),
                last_error=r["sampler_last_error"] or r["last_snapshot_error"],
                db_time_rate=db_time / window_s,
                top_wait_class=r["top_wait_class"],
                top_wait_class_pct=(
                    100.0 * float(r["top_wait_class_s"]) / db_time if db_time > 0 else None
                ),
                open_alerts=int(r["open_alerts"]),
                critical_alerts=int(r["critical_alerts"]),
                tags=dict(r["tags"] or {}),
            )
        )
    return sorted(out, key=_worst_first)
