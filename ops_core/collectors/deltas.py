"""Counters into per-interval deltas: pure functions, no database.

Rules (DESIGN: "counters become deltas once"):
- no previous snapshot of the target: the capture is a baseline, nothing is stored as delta;
- a row whose counters went down, or whose ``since`` (reset) timestamp changed, or every row
  of a source reset as a whole: counted from zero (delta = the current value, i.e. the activity
  since the reset), and the reset is reported; never a negative delta;
- a row not seen in the previous capture: counted since its creation (``new_rows="delta"``,
  e.g. a new pg_stat_statements entry) or kept as the new baseline (``"baseline"``, e.g. a table
  that re-enters the top-N);
- rows whose counters did not move are dropped when the source says ``only_changed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .catalog import Source

Row = tuple[Any, ...]


@dataclass
class DeltaResult:
    rows: list[dict[str, Any]]  # key + gauge + counter deltas (0 -> None in counters)
    reset_rows: int = 0  # rows counted from zero because of a decrease or a since change
    new_rows: int = 0
    last: dict[str, Any] = field(default_factory=dict)  # cumulative state for the next delta


def key_of(source: Source, row: dict[str, Any]) -> str:
    return "|".join([str(row[k]) for k in source.of_kind("key")])


def state(source: Source, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What to remember of a capture for the next delta: key -> [since, counters...]."""
    keys = source.of_kind("key")
    counters = source.of_kind("counter")
    since = source.of_kind("since")
    decimals = [i for i, c in enumerate(counters) if _is_numeric(source, c)]
    out: dict[str, Any] = {}
    for r in rows:
        s = r[since[0]] if since else None
        vals = [s.isoformat() if s is not None else None] + [r[c] for c in counters]
        for i in decimals:
            v = vals[i + 1]
            vals[i + 1] = float(v) if isinstance(v, Decimal) else v
        out["|".join([str(r[k]) for k in keys])] = vals
    return out


def _is_numeric(source: Source, name: str) -> bool:
    return any(c.name == name and c.pgtype == "numeric" for c in source.columns)


def compute(
    source: Source,
    rows: list[dict[str, Any]],
    last: dict[str, Any] | None,
    *,
    source_reset: bool = False,
) -> DeltaResult:
    """Deltas of ``rows`` (this capture) against ``last`` (previous state; None = baseline)."""
    counters = source.of_kind("counter")
    since = source.of_kind("since")
    new_state = state(source, rows)
    result = DeltaResult(rows=[], last=new_state)
    if last is None:
        return result
    for r in rows:
        k = key_of(source, r)
        cur = new_state[k]
        prev = last.get(k)
        if prev is None:
            result.new_rows += 1
            if source.new_rows == "baseline" and not source_reset:
                continue
            deltas = cur[1:]
        elif source_reset or (since and cur[0] is not None and cur[0] != prev[0]):
            result.reset_rows += 1
            deltas = cur[1:]
        elif any(
            c is not None and p is not None and c < p
            for c, p in zip(cur[1:], prev[1:], strict=True)
        ):
            result.reset_rows += 1
            deltas = cur[1:]
        else:
            deltas = [
                None if c is None or p is None else c - p
                for c, p in zip(cur[1:], prev[1:], strict=True)
            ]
        if source.only_changed and not any(deltas):
            continue
        out = {c: r[c] for c in source.names if c not in counters}
        for c, d in zip(counters, deltas, strict=True):
            # zero stored as NULL: free in a PostgreSQL row; readers COALESCE
            out[c] = d if d else None
        result.rows.append(out)
    return result
