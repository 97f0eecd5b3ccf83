"""Time in the app: UTC in, the browser's time zone out; the time-range picker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import streamlit as st

RANGES: dict[str, timedelta] = {
    "Last 15 minutes": timedelta(minutes=15),
    "Last hour": timedelta(hours=1),
    "Last 6 hours": timedelta(hours=6),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
}


def local_tz() -> ZoneInfo:
    """The browser's time zone (UTC when the browser did not say, e.g. in tests)."""
    name = None
    try:
        name = st.context.timezone
    except Exception:  # noqa: BLE001 - no browser context
        name = None
    try:
        return ZoneInfo(name or "UTC")
    except ZoneInfoNotFoundError:
        return ZoneInfo("UTC")


def to_local(value: Any) -> Any:
    """A UTC timestamp (or a column of them) in the browser's time zone, without tz suffix."""
    tz = local_tz()
    if isinstance(value, pd.Series):
        s = pd.to_datetime(value, utc=True)
        return s.dt.tz_convert(tz).dt.tz_localize(None)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    return ts.tz_convert(tz).tz_localize(None)


def now_step(step_s: int) -> datetime:
    """The current UTC time rounded up to ``step_s`` seconds: a range ending there holds
    everything up to now and keeps the same cache key for ``step_s`` seconds."""
    now = datetime.now(UTC).replace(microsecond=0)
    rest = now.timestamp() % step_s
    return now + timedelta(seconds=step_s - rest) if rest else now


def fmt_time(value: Any) -> str:
    ts = to_local(value)
    return "" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S")


def tz_caption() -> None:
    st.caption(f"Times in {local_tz().key} (your browser's time zone).")


def range_picker(key: str, default: str = "Last hour") -> tuple[datetime, datetime]:
    """A time range (UTC) picked as 'last N' or custom dates in the browser's time zone."""
    options = [*RANGES, "Custom"]
    cols = st.columns([2, 3])
    choice = cols[0].selectbox("Time range", options, index=options.index(default), key=key)
    # a range ending "now" moves on in steps, so cached reads are reused between reruns
    step = 10 if choice != "Custom" and RANGES[choice] <= timedelta(hours=1) else 60
    now = now_step(step)
    if choice != "Custom":
        return now - RANGES[choice], now
    tz = local_tz()
    today = datetime.now(tz).date()
    picked = cols[1].date_input(
        "From / to (inclusive)", (today - timedelta(days=1), today), key=f"{key}_dates"
    )
    if not isinstance(picked, tuple | list) or len(picked) != 2:
        st.caption("Pick an end date too.")
        return now - timedelta(days=1), now
    b = datetime.combine(picked[0], datetime.min.time(), tzinfo=tz).astimezone(UTC)
    e = datetime.combine(picked[1] + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return b, min(e.astimezone(UTC), now)
