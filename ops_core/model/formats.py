"""How a value is written for a reader, defined once: the HTML and terminal reports
(``reports.display``, ``reports.text``) and the app (``app.tables``) format through these.

``fmt(v, kind)`` writes one table cell by the display formats of the report spec
(``reports.spec.Column.kind``); the ``fmt_*`` helpers write a value with its unit (metric
cards, captions) and an empty mark for a missing value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

#: PostgreSQL's block size, for block counts shown as sizes
BLOCK = 8192


def isnull(v: Any) -> bool:
    """None, NaN, NaT or pandas' NA (never raises on lists and other values)."""
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def fmt(v: Any, kind: str) -> str:
    """One cell as text. kinds: int, num, num1, ms, s, pct, bytes, mb, blocks_mb, time, clock,
    text."""
    if isnull(v):
        return ""
    if kind == "int":
        return f"{float(v):,.0f}"
    if kind == "num":  # integral values without decimals (counts), others with two
        x = float(v)
        if x.is_integer():
            return f"{x:,.0f}"
        if abs(x) < 0.1:  # three significant digits, never in exponent notation
            return np.format_float_positional(x, precision=3, unique=False, fractional=False)
        return f"{x:,.2f}"
    if kind == "num1":
        return f"{float(v):,.1f}"
    if kind == "ms":
        x = float(v)
        return f"{x:,.2f}" if abs(x) < 10 else f"{x:,.0f}"
    if kind == "s":
        return f"{float(v):,.2f}"
    if kind == "pct":
        return f"{float(v):.1f}"
    if kind == "mb":
        return f"{float(v) / 1048576:,.2f}"
    if kind == "blocks_mb":
        return f"{float(v) * BLOCK / 1048576:,.2f}"
    if kind == "bytes":
        return human_bytes(float(v))
    if kind == "time":
        return v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else str(v)
    if kind == "clock":
        return v.strftime("%H:%M:%S") if isinstance(v, datetime) else str(v)
    if isinstance(v, list | tuple):
        return ", ".join(map(str, v))
    return str(v)


def human_bytes(n: float) -> str:
    """A size with the largest unit under which it is at least 1 (1,024-based)."""
    for unit, size in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,.0f} B"


def dur(s: Any) -> str:
    """A duration in seconds in the unit a reader takes in: s, min, h or days."""
    if isnull(s):
        return ""
    s = float(s)
    if s < 120:
        return f"{s:,.1f} s"
    if s < 7200:
        return f"{s / 60:,.1f} min"
    if s < 172800:
        return f"{s / 3600:,.1f} h"
    return f"{s / 86400:,.1f} days"


def short(text: Any, n: int = 90) -> str:
    """Text on one line (white space folded), cut to ``n`` characters with an ellipsis; a
    missing text (None, NaN) is empty."""
    t = " ".join(text.split()) if isinstance(text, str) else ""
    return t if len(t) <= n else t[: n - 1] + "…"


def fmt_ms(v: float | None) -> str:
    return "" if isnull(v) else f"{v:,.1f} ms"


def fmt_s(v: float | None) -> str:
    return "—" if isnull(v) else f"{v:,.1f} s"


def fmt_aas(v: float | None) -> str:
    """Average active sessions: three decimals when small, so a light load is not '0.00'."""
    if isnull(v):
        return "—"
    return f"{v:.3f}" if abs(v) < 0.1 else f"{v:.2f}"


def fmt_bytes(v: float | None) -> str:
    return "" if isnull(v) else human_bytes(float(v))


def fmt_pct(v: float | None) -> str:
    return "" if isnull(v) else f"{v:.1f} %"


#: a value with its unit, by the unit suffix of its name (db_time_s, mean_ms, hit_pct)
WITH_UNIT = {"s": fmt_s, "ms": fmt_ms, "pct": fmt_pct}


def fmt_age(value: Any, now: datetime | None = None) -> str:
    """How long ago a UTC time was: '12.0 s ago', '5.0 min ago', '3.5 h ago', '2.0 days ago'."""
    if value is None:
        return "never"
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    secs = ((now or datetime.now(UTC)) - ts.to_pydatetime()).total_seconds()
    return f"{dur(max(secs, 0.0))} ago"


__all__ = [
    "BLOCK",
    "isnull",
    "fmt",
    "human_bytes",
    "dur",
    "short",
    "fmt_ms",
    "fmt_s",
    "fmt_aas",
    "fmt_bytes",
    "fmt_pct",
    "WITH_UNIT",
    "fmt_age",
]
