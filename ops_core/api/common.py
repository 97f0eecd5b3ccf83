"""Small input rules shared by every area of the service layer (public, so no area imports
another area's private helpers)."""

from __future__ import annotations

from datetime import UTC, datetime

from ..config import get_settings
from ..errors import InvalidInput

__all__ = ["utc_time", "time_range", "opscore_shown"]


def utc_time(value: datetime | str, what: str) -> datetime:
    """A timestamp given as a datetime or ISO 8601 text, in UTC (naive means UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(
                f"{what} {value!r} is not a timestamp.",
                "Use ISO 8601, e.g. 2026-11-25T14:00:00Z or '2026-11-25 14:00'.",
            ) from None
    if not isinstance(value, datetime):
        raise InvalidInput(f"{what} must be a datetime, not {type(value).__name__}.")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def time_range(begin: datetime | str, end: datetime | str) -> tuple[datetime, datetime]:
    """(begin, end) in UTC; an empty or reversed range is bad input."""
    b, e = utc_time(begin, "begin"), utc_time(end, "end")
    if b >= e:
        raise InvalidInput(
            f"The time range is empty or reversed: begin {b.isoformat()} is not before "
            f"end {e.isoformat()}.",
            "Give a begin earlier than the end (or use --since 10m).",
        )
    return b, e


def opscore_shown(include: bool | None) -> bool:
    """Whether opscore's own sessions and statements are shown: the argument, else the
    setting ``include_opscore_activity``."""
    return get_settings().include_opscore_activity if include is None else include
