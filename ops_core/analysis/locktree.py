"""Who blocks whom now: the blocking tree of live sessions (pure, over the rows of
``collectors.locks.blocking_sessions``)."""

from __future__ import annotations

from typing import Any


def blocking_tree(sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in tree order (each root blocker, then the sessions waiting on it, depth first):
    ``root`` (the pid at the top), ``depth`` (0 = a root: blocks others, waits for nobody),
    ``blocked_by``, ``waiters`` (sessions directly waiting on it) and ``total_waiters`` (all
    below it). A wait cycle (a deadlock the detector has not broken yet) has no root: its
    sessions are shown as roots marked ``in_cycle``."""
    by_pid = {s["pid"]: s for s in sessions}
    children: dict[int, list[int]] = {}
    for s in sessions:
        for b in s["blocked_by"] or []:
            children.setdefault(b, []).append(s["pid"])
    roots = [s["pid"] for s in sessions if not (s["blocked_by"] or []) and s["pid"] in children]
    out: list[dict[str, Any]] = []
    seen: set[int] = set()

    def below(pid: int, path: frozenset[int]) -> int:
        return sum(1 + below(c, path | {c}) for c in children.get(pid, []) if c not in path)

    def walk(pid: int, root: int, depth: int, path: frozenset[int], cycle: bool) -> None:
        if pid in path:
            return
        seen.add(pid)
        s = by_pid.get(pid, {"pid": pid, "blocked_by": []})
        out.append(
            {
                **s,
                "root": root,
                "depth": depth,
                "waiters": len(children.get(pid, [])),
                "total_waiters": below(pid, path | {pid}),
                "in_cycle": cycle,
            }
        )
        for c in sorted(children.get(pid, [])):
            walk(c, root, depth + 1, path | {pid}, cycle)

    for r in sorted(roots, key=lambda p: -below(p, frozenset({p}))):
        walk(r, r, 0, frozenset(), False)
    for s in sessions:  # waiting in a cycle: nobody at the top
        if s["pid"] not in seen and (s["blocked_by"] or []):
            walk(s["pid"], s["pid"], 0, frozenset(), True)
    return out
