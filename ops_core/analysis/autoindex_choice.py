"""Auto-indexing, the pure part, choice: a candidate's size and the write overhead one more
index costs the table's writes, and the choice of a set under a storage budget.

The choice (:func:`choose`) is greedy by net benefit per byte: each round takes the
candidate whose *marginal* net saving (DB time its statements would save over the indexes
already chosen, minus its write overhead) per estimated byte is highest, while it fits the
budget and saves at least ``min_gain_pct`` of its statements' time. A statement is assumed
served by its best index (one index per table access), so benefits do not add up across
indexes of the same statement; that makes the objective submodular and greedy-by-ratio is the
usual knapsack approximation. :func:`choose_exact` enumerates every subset (small cases) so the
benchmark measures the greedy's optimality gap instead of assuming it.
"""

from __future__ import annotations

import itertools
from typing import Any

from .autoindex import IndexCandidate

__all__ = ["estimate_bytes", "write_overhead", "net_of", "choose", "choose_exact"]


def estimate_bytes(rows: float, widths: list[float]) -> float:
    """A B-tree's size: per entry an 8-byte tuple header, the keys aligned to 8 bytes and a
    4-byte line pointer, leaves 90 % full, plus about 1 % inner pages."""
    entry = 8 + 8 * -(-sum(max(w, 1.0) for w in widths) // 8) + 4
    return rows * entry / 0.9 * 1.01 + 8192


def write_overhead(
    candidate_columns: list[str],
    writes: list[dict[str, Any]],
    table: dict[str, Any],
) -> tuple[float, list[dict[str, Any]]]:
    """DB time (ms over the range) the table's write statements would lose maintaining one
    more index, and how it was estimated per statement.

    A write's time is split evenly between the heap and the table's valid indexes (each
    B-tree insertion is a descent, a leaf write and its WAL, about what the heap insertion
    costs); one more index adds one share: INSERT: total / (indexes + 1); UPDATE: the same
    share when it sets an indexed column, else only for its non-HOT fraction (a HOT update
    touches no index; the table's n_tup_hot_upd / n_tup_upd); DELETE: nothing now (VACUUM
    removes the entries later, not counted)."""
    n = int(table.get("n_indexes") or 0)
    upd = float(table.get("n_tup_upd") or 0)
    hot = float(table.get("n_tup_hot_upd") or 0)
    non_hot = (1 - hot / upd) if upd > 0 else 1.0
    share = 1.0 / (n + 1)
    total = 0.0
    detail = []
    for w in writes:
        ms = float(w["total_ms"] or 0)
        if w["kind"] == "insert":
            f = share
        elif w["kind"] == "update":
            f = (
                share
                if set(w.get("set_columns") or []) & set(candidate_columns)
                else (share * non_hot)
            )
        else:
            f = 0.0
        total += ms * f
        detail.append({"queryid": w["queryid"], "kind": w["kind"], "calls": w["calls"],
                       "total_ms": round(ms, 3), "overhead_ms": round(ms * f, 3)})  # fmt: skip
    return total, detail


def net_of(
    chosen: list[IndexCandidate], *, per_statement: bool = False
) -> float | dict[int, float]:
    """Net DB time a set saves: per statement the best saving of any index in the set (one
    index per access), minus every index's write overhead."""
    best: dict[int, float] = {}
    for c in chosen:
        for s in c.statements:
            q = int(s["queryid"])
            best[q] = max(best.get(q, 0.0), float(s.get("saved_ms") or 0.0))
    if per_statement:
        return best
    return sum(best.values()) - sum(c.write_ms for c in chosen)


def choose(
    candidates: list[IndexCandidate], budget_bytes: float, min_gain_pct: float = 10.0
) -> list[IndexCandidate]:
    """The greedy choice (see the module): sets ``chosen`` and ``verdict`` on every candidate
    and returns the chosen ones in the order taken."""
    taken: list[IndexCandidate] = []
    left = budget_bytes
    pool = _one_per_family([c for c in candidates if c.method is not None])
    for c in candidates:
        if c.method is None:
            c.verdict = c.verdict or "not costed"
    while pool:
        best_now = net_of(taken, per_statement=True)
        assert isinstance(best_now, dict)
        scored = []
        for c in pool:
            gain = sum(
                max(0.0, float(s.get("saved_ms") or 0) - best_now.get(int(s["queryid"]), 0.0))
                for s in c.statements
            )
            scored.append((gain - c.write_ms, gain, c))
        fitting = [x for x in scored if x[2].est_bytes <= left]
        for net, gain, c in scored:
            base = sum(float(s.get("total_ms") or 0) for s in c.statements) or 1.0
            if gain <= 0:
                whys = [s["why"] for s in c.statements if s.get("why")]
                c.verdict = (
                    "saves nothing over the indexes already chosen"
                    if any(s.get("used") for s in c.statements)
                    else f"not costed: {whys[0]}"
                    if whys and len(whys) == len(c.statements)
                    else "the planner would not use it"
                )
            elif net <= 0:
                c.verdict = f"write overhead {c.write_ms:.1f} ms exceeds the {gain:.1f} ms it saves"
            elif 100 * net / base < min_gain_pct:
                c.verdict = f"saves {100 * net / base:.1f} % of its statements' time " \
                            f"(< {min_gain_pct:g} %)"  # fmt: skip
            elif c.est_bytes > left:
                c.verdict = f"over the storage budget ({c.est_bytes / 2**20:.1f} MB, " \
                            f"{left / 2**20:.1f} MB left)"  # fmt: skip
        ok = [
            x for x in fitting
            if x[0] > 0 and 100 * x[0] / (sum(float(s.get("total_ms") or 0)
                                              for s in x[2].statements) or 1.0) >= min_gain_pct
        ]  # fmt: skip
        if not ok:
            break
        net, gain, pick = max(ok, key=lambda x: x[0] / max(x[2].est_bytes, 1.0))
        pick.chosen = True
        pick.verdict = f"chosen: saves {gain:.1f} ms, costs {pick.write_ms:.1f} ms of writes"
        taken.append(pick)
        left -= pick.est_bytes
        pool.remove(pick)
    return taken


def _one_per_family(pool: list[IndexCandidate]) -> list[IndexCandidate]:
    """Alternatives on the same key columns of a table (plain, INCLUDE, partial) serve the same
    statements: only one competes, the one with the most net saving, or the smallest of those
    within 5 % of it; the others are told which one. The rest of the pool as it was."""
    fam: dict[tuple, list[IndexCandidate]] = {}
    for c in pool:
        fam.setdefault((c.schema_name, c.table_name, tuple(c.columns)), []).append(c)
    keep: set[int] = set()
    for group in fam.values():
        best = max(c.net_ms for c in group)
        near = [c for c in group if c.net_ms >= best - 0.05 * abs(best)]
        pick = min(near, key=lambda c: c.est_bytes)
        keep.add(id(pick))
        for c in group:
            if c is not pick:
                c.verdict = f"{pick.label} does the same for more net saving or less space"
    return [c for c in pool if id(c) in keep]


def choose_exact(
    candidates: list[IndexCandidate], budget_bytes: float, limit: int = 14
) -> tuple[list[IndexCandidate], float]:
    """The best subset by :func:`net_of` under the budget, by enumeration (at most ``limit``
    costed candidates): for measuring the greedy's optimality gap on small cases."""
    pool = [c for c in candidates if c.method is not None]
    if len(pool) > limit:
        raise ValueError(f"{len(pool)} candidates: enumeration is for {limit} or fewer")
    best: list[IndexCandidate] = []
    best_net = 0.0
    for r in range(1, len(pool) + 1):
        for combo in itertools.combinations(pool, r):
            if sum(c.est_bytes for c in combo) > budget_bytes:
                continue
            n = net_of(list(combo))
            assert isinstance(n, float)
            if n > best_net:
                best, best_net = list(combo), n
    return best, best_net
