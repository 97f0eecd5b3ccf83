"""Backup schedules per target: when to take full and incremental backups, verify, apply
retention and receive WAL. Each job is a cron expression (``0 2 * * 0``) or an interval
(``every 6h``, ``every 30m``, ``every 1d``), or absent (not scheduled). Pure validation here;
storage in ``backup_config``; Prefect deployments built from it in ``flows/backup.py``."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import InvalidInput

# "stream" is the continuous WAL stream: an interval only, each run streams for that long
JOBS = ("full", "incremental", "verify", "retention", "wal", "stream")
INTERVAL_RE = re.compile(r"^every\s+(\d+)\s*([smhd])$")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_SCHEDULE = {
    "full": "0 1 * * 0",  # weekly, Sunday 01:00 UTC
    "incremental": "0 1 * * 1-6",  # daily on the other days
    "verify": "0 4 * * *",
    "retention": "0 5 * * *",
    "wal": "every 5m",
}


def parse_when(job: str, when: str) -> dict[str, Any]:
    """``{"cron": ...}`` or ``{"interval_s": ...}``; InvalidInput with the reason otherwise."""
    text = (when or "").strip()
    m = INTERVAL_RE.match(text)
    if m:
        seconds = int(m.group(1)) * UNIT_S[m.group(2)]
        if seconds < 60:
            raise InvalidInput(
                f"The {job} schedule {when!r} is too frequent (minimum every 60 s).",
                "Use e.g. 'every 5m' or a cron expression.",
            )
        return {"interval_s": seconds}
    fields_ = text.split()
    if len(fields_) != 5:
        raise InvalidInput(
            f"The {job} schedule {when!r} is neither a 5-field cron expression nor an interval.",
            "Use cron ('0 2 * * 0' = Sundays 02:00 UTC) or an interval ('every 6h').",
        )
    from cronsim import CronSim, CronSimError

    try:
        next(iter(CronSim(text, datetime.now(UTC))))
    except (CronSimError, StopIteration) as exc:
        raise InvalidInput(
            f"The {job} schedule {when!r} is not a valid cron expression: {exc}.",
            "Fields: minute hour day-of-month month day-of-week, e.g. '30 1 * * 1-5'.",
        ) from None
    return {"cron": text}


@dataclass
class BackupSchedule:
    target: str
    jobs: dict[str, str] = field(default_factory=dict)  # job -> cron or interval
    retention: dict[str, Any] = field(default_factory=dict)

    def next_runs(self, now: datetime | None = None) -> dict[str, str]:
        now = now or datetime.now(UTC)
        out = {}
        for job, when in self.jobs.items():
            spec = parse_when(job, when)
            if "cron" in spec:
                from cronsim import CronSim

                out[job] = next(iter(CronSim(spec["cron"], now))).isoformat()
            else:
                out[job] = (now + timedelta(seconds=spec["interval_s"])).isoformat()
        return out

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["next_runs"] = self.next_runs()
        return d


def validate(jobs: dict[str, str | None]) -> dict[str, str]:
    """Check every job; ``None`` or ``""`` removes a job. Returns the jobs to store."""
    out = {}
    for job, when in jobs.items():
        if job not in JOBS:
            raise InvalidInput(
                f"Unknown backup job {job!r}.", f"Schedulable jobs: {', '.join(JOBS)}."
            )
        if when:
            spec = parse_when(job, when)
            if job == "stream" and "interval_s" not in spec:
                raise InvalidInput(
                    f"The stream schedule {when!r} must be an interval: each run streams WAL "
                    "for that long and the next one follows.",
                    "Use e.g. 'every 1h'.",
                )
            out[job] = when.strip()
    return out
