"""Blocking chains from ASH samples: who blocked whom, for how long. Pure (frames in, frame out).

Input: every sampled session at sample times where some session was blocked, with columns
``sample_time, weight_s, pid, backend_start, usename, application_name, state, wait_event_type,
wait_event, query, xact_start, blocking_pids`` (what
:func:`ops_core.repository.ash_read.blocking_samples` returns).

At each sample time the waits form a graph waiter -> blocker (``pg_blocking_pids``). The root
blockers of a waiter are the blockers reachable from it that are not blocked themselves (in a
deadlock cycle, the lowest pid of the cycle). Consecutive sample times where the same root blocks
form one episode; an episode ends when the root is not seen blocking for more than
``gap_factor`` sampling intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

COLUMNS = [
    "root_pid",
    "root_state",
    "root_user",
    "root_application",
    "root_query",
    "root_xact_start",
    "first_seen",
    "last_seen",
    "duration_s",
    "waiters",
    "max_waiters",
    "blocked_time_s",
    "waiter_events",
]


def _roots(pid: int, blocked: dict[int, list[int]]) -> set[int]:
    """Root blockers reachable from ``pid`` (which is blocked)."""
    roots: set[int] = set()
    seen: set[int] = {pid}
    stack = list(blocked.get(pid, []))
    while stack:
        b = stack.pop()
        if b in seen:
            continue
        seen.add(b)
        if b in blocked and blocked[b]:
            stack.extend(blocked[b])
        else:
            roots.add(b)
    if not roots:  # every blocker is itself blocked: a deadlock cycle
        roots.add(min(seen))
    return roots


@dataclass
class _Episode:
    root_pid: int
    first_seen: datetime
    last_seen: datetime
    duration_s: float = 0.0
    blocked_time_s: float = 0.0
    max_waiters: int = 0
    waiters: set[int] = field(default_factory=set)
    events: set[str] = field(default_factory=set)
    root: dict = field(default_factory=dict)


def blocking_chains(samples: pd.DataFrame, gap_factor: float = 3.0) -> pd.DataFrame:
    """One row per blocking episode of a root blocker, longest first (see module doc)."""
    if samples is None or samples.empty:
        return pd.DataFrame(columns=COLUMNS)
    open_eps: dict[int, _Episode] = {}
    done: list[_Episode] = []
    for ts, group in samples.sort_values(["sample_time", "pid"]).groupby("sample_time", sort=True):
        weight = float(group["weight_s"].max())
        by_pid = {int(r.pid): r for r in group.itertuples(index=False)}
        blocked: dict[int, list[int]] = {}
        for r in group.itertuples(index=False):
            bp = r.blocking_pids
            if bp is not None and len(bp) > 0:
                blocked[int(r.pid)] = [int(x) for x in bp]
        per_root: dict[int, list[int]] = {}
        for waiter in blocked:
            for root in _roots(waiter, blocked):
                per_root.setdefault(root, []).append(waiter)
        for root, waiters in per_root.items():
            ep = open_eps.get(root)
            if ep is not None and (ts - ep.last_seen).total_seconds() > gap_factor * weight:
                done.append(ep)
                ep = None
            if ep is None:
                ep = _Episode(root, ts, ts)
                open_eps[root] = ep
            ep.last_seen = ts
            ep.duration_s += weight
            ep.max_waiters = max(ep.max_waiters, len(waiters))
            ep.waiters.update(waiters)
            for w in waiters:
                wr = by_pid[w]
                ep.blocked_time_s += float(wr.weight_s)
                ep.events.add(f"{wr.wait_event_type}:{wr.wait_event}")
            rr = by_pid.get(root)
            if rr is not None:
                ep.root = {
                    "root_state": rr.state,
                    "root_user": rr.usename,
                    "root_application": rr.application_name,
                    "root_query": rr.query,
                    "root_xact_start": rr.xact_start,
                }
    done.extend(open_eps.values())
    rows = []
    for ep in done:
        root = ep.root or {
            "root_state": "not sampled (idle, or excluded)",
            "root_user": None,
            "root_application": None,
            "root_query": None,
            "root_xact_start": None,
        }
        rows.append(
            {
                "root_pid": ep.root_pid,
                **root,
                "first_seen": ep.first_seen,
                "last_seen": ep.last_seen,
                "duration_s": ep.duration_s,
                "waiters": sorted(ep.waiters),
                "max_waiters": ep.max_waiters,
                "blocked_time_s": ep.blocked_time_s,
                "waiter_events": sorted(ep.events),
            }
        )
    out = pd.DataFrame(rows, columns=COLUMNS)
    return out.sort_values(["duration_s", "blocked_time_s"], ascending=False, ignore_index=True)


__all__ = ["blocking_chains"]
