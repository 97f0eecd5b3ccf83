"""Each statement judged against its own history, as a DBA does: did it get worse, or is it
new? ``history`` holds the pg_stat_statements sums of the target's earlier snapshots (the
lookback before the range); a statement's mean time per call, blocks per call and calls per
second are compared with those sums.

A statement that got slower only as much as every other statement did (a busy host, a CPU
neighbour) has not regressed: its slowdown is measured against the range's median slowdown
of the statements that ran in both. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .model import AddmInput

#: calls a statement needs in the history and in the range for its means to be compared
MIN_CALLS = 3
#: mean time per call at least this many times the history's (beyond the server-wide slowdown)
SLOWER = 2.0
#: blocks (shared hit + read) per call at least this many times the history's: more work per call
MORE_WORK = 2.0
COUNTERS = ("calls", "total_exec_time", "shared_blks_hit", "shared_blks_read", "rows")
#: ``intervals``: in how many of the history's intervals the statement ran (snapshots keep
#: only the statements whose counters moved)


@dataclass
class History:
    """The statements' sums over the history (by queryid) and what the history covers."""

    sums: pd.DataFrame  # index queryid; COUNTERS
    intervals: int = 0
    elapsed_s: float = 0.0
    span: dict[str, Any] = field(default_factory=dict)
    slowdown: float | None = None  # median mean-time ratio (range / history) of common statements

    @property
    def known(self) -> bool:
        """The target has earlier intervals with statements to compare with."""
        return self.intervals > 0 and not self.sums.empty


def history(inp: AddmInput, prof: pd.DataFrame) -> History:
    h = inp.history
    meta = inp.history_meta or {}
    if h is None or h.empty or "queryid" not in h.columns:
        sums = pd.DataFrame(columns=[*COUNTERS, "intervals"])
    else:
        h = h[h["queryid"].notna()].copy()
        for c in (*COUNTERS, "intervals"):
            h[c] = pd.to_numeric(h[c]).fillna(0.0) if c in h.columns else 0.0
        h["queryid"] = h["queryid"].astype("int64")
        agg = {c: "sum" for c in COUNTERS} | {"intervals": "max"}  # per database row
        sums = h.groupby("queryid").agg(agg)
    out = History(
        sums,
        int(meta.get("intervals") or 0),
        float(meta.get("elapsed_s") or 0.0),
        {k: meta.get(k) for k in ("from", "to", "snapshots")},
    )
    ratios = []
    for r in prof.itertuples(index=False):
        b = _row(out, r.queryid)
        if b is None or b["calls"] < MIN_CALLS or r.calls < MIN_CALLS:
            continue
        base = b["total_exec_time"] / b["calls"]
        if base > 0:
            ratios.append((float(r.total_exec_time) / float(r.calls)) / base)
    out.slowdown = float(pd.Series(ratios).median()) if len(ratios) >= 3 else None
    return out


def _row(h: History, queryid: Any) -> dict[str, float] | None:
    try:
        qid = int(queryid)
    except (TypeError, ValueError):
        return None
    if qid not in h.sums.index:
        return None
    return {c: float(h.sums.at[qid, c]) for c in (*COUNTERS, "intervals")}


def judge(h: History, r: Any, elapsed_s: float) -> dict[str, Any]:
    """The statement of profile row ``r`` against its history: ``status`` is ``no_history``
    (the target has no earlier interval), ``new`` (not seen in the history), ``regressed``
    (slower per call beyond the server-wide slowdown, or more blocks per call) or ``as_usual``;
    with the figures behind it and a sentence (``summary``)."""
    calls = float(r.calls)
    mean = float(r.total_exec_time) / calls if calls > 0 else None
    blocks = float(r.shared_blks_hit + r.shared_blks_read)
    bpc = blocks / calls if calls > 0 else None
    cps = calls / elapsed_s if elapsed_s > 0 else None
    ev: dict[str, Any] = {
        "mean_ms": None if mean is None else round(mean, 3),
        "blocks_per_call": None if bpc is None else round(bpc, 1),
        "calls_per_s": None if cps is None else round(cps, 2),
    }
    if not h.known:
        ev["status"] = "no_history"
        ev["summary"] = (
            "no earlier snapshots of this target to compare with: judged on this range alone, "
            "with a higher bar"
        )
        return ev
    ev["history"] = {**h.span, "intervals": h.intervals, "elapsed_s": round(h.elapsed_s, 1)}
    b = _row(h, r.queryid)
    if b is None or b["calls"] <= 0:
        ev["status"] = "new"
        ev["summary"] = (
            f"new: not run in the {h.intervals} earlier interval(s) of the history "
            f"({h.span.get('from')} .. {h.span.get('to')})"
        )
        return ev
    seen = int(b.get("intervals") or 0)
    if h.intervals >= 2 and 0 < seen <= 1:
        # seen in one interval only: it started just before the range (the range caught it
        # starting), or it is rare; either way it has no usual behaviour to compare with
        ev["status"] = "new"
        ev["history_calls"] = int(b["calls"])
        ev["summary"] = (
            f"new: ran in only {seen} of the {h.intervals} earlier intervals of the history "
            f"({int(b['calls'])} calls)"
        )
        return ev
    bmean = b["total_exec_time"] / b["calls"]
    bbpc = (b["shared_blks_hit"] + b["shared_blks_read"]) / b["calls"]
    bcps = b["calls"] / h.elapsed_s if h.elapsed_s > 0 else None
    slow = h.slowdown or 1.0
    ev["baseline"] = {
        "calls": int(b["calls"]),
        "mean_ms": round(bmean, 3),
        "blocks_per_call": round(bbpc, 1),
        "calls_per_s": None if bcps is None else round(bcps, 2),
    }
    ev["server_slowdown"] = None if h.slowdown is None else round(h.slowdown, 2)
    mean_x = mean / bmean if mean is not None and bmean > 0 else None
    work_x = bpc / bbpc if bpc is not None and bbpc > 0 else None
    ev["mean_ratio"] = None if mean_x is None else round(mean_x, 2)
    ev["blocks_ratio"] = None if work_x is None else round(work_x, 2)
    ev["calls_ratio"] = None if cps is None or not bcps else round(cps / bcps, 2)
    enough = b["calls"] >= MIN_CALLS and calls >= MIN_CALLS
    slower = enough and mean_x is not None and mean_x >= SLOWER and mean_x / slow >= SLOWER
    more_work = enough and work_x is not None and work_x >= MORE_WORK and (bpc or 0) >= 10
    if slower or more_work:
        ev["status"] = "regressed"
        parts = []
        if slower:
            parts.append(
                f"{mean:.2f} ms per call against {bmean:.2f} ms in its history ({mean_x:.1f}x"
                + (f"; the server's statements {slow:.1f}x)" if h.slowdown else ")")
            )
        if more_work:
            parts.append(f"{bpc:,.0f} blocks per call against {bbpc:,.0f} ({work_x:.1f}x)")
        ev["summary"] = "regressed: " + ", ".join(parts)
    else:
        ev["status"] = "as_usual"
        ev["summary"] = (
            f"as usual: {mean or 0:.2f} ms and {bpc or 0:,.0f} blocks per call against "
            f"{bmean:.2f} ms and {bbpc:,.0f} in its history"
            + (f" (the server's statements {slow:.1f}x slower)" if h.slowdown else "")
            + (f", {cps / bcps:.1f}x the calls per second" if cps and bcps else "")
        )
    return ev
