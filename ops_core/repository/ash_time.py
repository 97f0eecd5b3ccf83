"""Time in the ASH storage, in one place: UTC days (every ASH table is partitioned by day) and
fixed-length buckets aligned on one epoch (the 5-minute chunks and summary buckets, the day
rows, and the time buckets of DB-time reads).

Python and SQL bucket alike: :func:`bucket_floor` here is ``date_bin(interval, ts, EPOCH)``
in the repository's SQL (pass :data:`EPOCH` as the origin).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

__all__ = [
    "BUCKET_S",
    "DAY_S",
    "EPOCH",
    "bucket_floor",
    "bucket_range",
    "day_of",
    "day_start",
    "day_starts",
]

#: the origin every bucket is aligned on (``date_bin``'s origin in the repository's SQL)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
#: the 5-minute bucket: one raw chunk and one summary bucket (the sampler compacts and
#: summarizes a bucket once it is complete)
BUCKET_S = 300
DAY_S = 86_400


def bucket_floor(ts: datetime, bucket_s: int) -> datetime:
    """Start of the ``bucket_s`` bucket holding ``ts``."""
    return EPOCH + timedelta(seconds=((ts - EPOCH).total_seconds() // bucket_s) * bucket_s)


def bucket_range(begin: datetime, end: datetime, bucket_s: int) -> tuple[datetime, datetime]:
    """[lo, hi): the buckets overlapping [begin, end)."""
    hi_n = -((end - EPOCH).total_seconds() // -bucket_s)  # ceil
    return bucket_floor(begin, bucket_s), EPOCH + timedelta(seconds=hi_n * bucket_s)


def day_of(ts: datetime) -> date:
    """The UTC day of ``ts`` (the partition it belongs to)."""
    return ts.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    """Midnight UTC starting ``day``."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def day_starts(lo: datetime, hi: datetime) -> list[datetime]:
    """The UTC day starts of the days that [lo, hi) touches."""
    day = bucket_floor(lo, DAY_S)
    out = []
    while day < hi:
        out.append(day)
        day += timedelta(days=1)
    return out
