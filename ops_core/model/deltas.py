"""Counters into per-interval deltas: pure functions, no database.

The one definition of a delta (as ``model.waits`` is the one definition of DB time): the
repository applies it inside the transaction that reads the previous state and writes the
snapshot, so it sits below both collectors and repository.

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

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .delta_columns import BlockRows, ColumnState, block_deltas, capture_state
from .delta_columns import DeltaBlock as DeltaBlock  # the deltas' public name, kept here
from .delta_columns import getter as _getter
from .delta_columns import shape_of as _shape
from .delta_columns import str_keys as _keys
from .sources import HOST_SOURCE, SOURCES, Source

if TYPE_CHECKING:
    from .capture import Capture

Row = tuple[Any, ...]


@dataclass
class DeltaResult:
    rows: Sequence[dict[str, Any]]  # key + gauge + counter deltas (0 -> None in counters)
    reset_rows: int = 0  # rows counted from zero because of a decrease or a since change
    new_rows: int = 0
    last: Any = field(default_factory=dict)  # cumulative state for the next delta
    block: DeltaBlock | None = None  # the same deltas as columns (compute(..., columns=True))
    #: tables and indexes: each database's own result (rows above: all of them, with datname)
    groups: dict[str, DeltaResult] | None = None


class GroupedRows(Sequence[dict[str, Any]]):
    """The rows of several databases' results, each row with its ``datname``, made on first
    use (the repository writes each database's block itself)."""

    def __init__(self, groups: dict[str, DeltaResult]) -> None:
        self.groups = groups
        self._rows: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return sum(len(g.rows) for g in self.groups.values())

    def __getitem__(self, i):  # type: ignore[override]
        return self._materialize()[i]

    def __iter__(self):
        return iter(self._materialize())

    def __eq__(self, other: object) -> bool:
        return list(self) == (list(other) if isinstance(other, Sequence) else other)

    __hash__ = None  # type: ignore[assignment]

    def _materialize(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = []
            for datname, g in self.groups.items():
                for r in g.rows:
                    r["datname"] = datname
                    self._rows.append(r)
        return self._rows


@dataclass(frozen=True)
class Previous:
    """The target's previous usable snapshot, with the cumulative state of each source (key:
    source name, or ``tables@<datname>``/``indexes@<datname>``) it left for the next delta."""

    snapshot_id: int
    captured_at: datetime
    postmaster_start: datetime | None
    states: dict[str, Any]


@dataclass(frozen=True)
class Reset:
    source: str  # "server", a source name, or a per-database key
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "reason": self.reason}


@dataclass
class SnapshotDeltas:
    """Everything a snapshot stores besides the raw capture: per-source deltas, the resets
    seen, the new cumulative state per source, and the interval."""

    previous: Previous | None
    results: dict[str, DeltaResult]  # tables/indexes: all databases, rows carry ``datname``
    resets: list[Reset]
    states: dict[str, Any]
    interval_s: float | None


#: small cluster-wide sources whose deltas are kept as JSON (snap_cluster)
JSON_SOURCES = [
    "pg_stat_wal",
    "checkpointer",
    "pg_stat_archiver",
    "replication",
    "replication_slots",
    "settings",
    "host",
]


def snapshot_deltas(previous: Previous | None, cap: Capture) -> SnapshotDeltas:
    """Reset detection and per-interval deltas of a whole capture against the previous
    snapshot's state: pure (no database), the one place counters become deltas."""
    resets: list[Reset] = []
    changed = _changed_shapes(previous.states) if previous else []
    if previous and changed:
        # counters added (or removed) by an opscore upgrade since the state was kept: deltas
        # against it would pair the wrong values, so this capture is a new baseline
        resets.append(
            Reset(
                "delta state",
                f"the counters of {', '.join(changed)} changed with an opscore upgrade since "
                f"snapshot {previous.snapshot_id}: this capture is a new baseline, the next "
                "one has deltas again",
            )
        )
        previous = dataclasses.replace(previous, states={})
    states = previous.states if previous else {}
    if (
        previous
        and previous.postmaster_start
        and cap.postmaster_start
        and previous.postmaster_start != cap.postmaster_start
    ):
        resets.append(Reset("server", f"restarted at {cap.postmaster_start.isoformat()}"))
    if previous and not previous.states and not changed:
        # snapshot_state is unlogged: a repository crash empties it (or the snapshot the state
        # was kept for was deleted): every source starts a new baseline, said so
        resets.append(
            Reset(
                "delta state",
                f"no counters kept from snapshot {previous.snapshot_id} (the repository "
                "restarted after a crash, or the snapshot they were kept for was deleted): "
                "this capture is a new baseline, the next one has deltas again",
            )
        )
    new_states: dict[str, Any] = {}
    results: dict[str, DeltaResult] = {}

    def run(
        src: Source,
        rows: list[dict[str, Any]],
        key: str,
        source_reset: bool = False,
        columns: bool = False,
    ) -> DeltaResult:
        last = states.get(key) if previous else None
        res = compute(src, rows, last, source_reset=source_reset, columns=columns)
        new_states[key] = res.last
        if res.reset_rows:
            resets.append(
                Reset(
                    key,
                    f"{res.reset_rows} row(s) counted from zero (counters went down or were reset)",
                )
            )
        return res

    pgss_reset = _pgss_info(cap, states if previous else {}, new_states, resets)
    if "pg_stat_statements" in cap.rows:
        stmt_res = run(
            SOURCES["pg_stat_statements"],
            cap.rows["pg_stat_statements"],
            "pg_stat_statements",
            source_reset=pgss_reset,
            columns=True,  # thousands of rows: matrices, written as a block
        )
        if pgss_reset and stmt_res.reset_rows:
            resets.pop()  # already reported as the reset itself
        results["pg_stat_statements"] = stmt_res
    for name in ["pg_stat_database", "pg_stat_io", *JSON_SOURCES]:
        if name in cap.rows:
            src = HOST_SOURCE if name == "host" else SOURCES[name]
            results[name] = run(src, cap.rows[name], name)
    for name in ("tables", "indexes"):
        by_db: dict[str, list[dict[str, Any]]] = {}
        for r in cap.rows.get(name, []):
            by_db.setdefault(r["datname"], []).append(r)
        groups = {
            # as columns: a thousand tables of 21 counters were a third of the delta time
            datname: run(SOURCES[name], rows, f"{name}@{datname}", columns=True)
            for datname, rows in by_db.items()
        }
        results[name] = DeltaResult(rows=GroupedRows(groups), groups=groups)
    interval = (
        (cap.captured_at - previous.captured_at).total_seconds()
        if previous and previous.states and cap.captured_at
        else None  # a baseline: nothing to take deltas against
    )
    return SnapshotDeltas(previous, results, resets, new_states, interval)


def _changed_shapes(states: dict[str, Any]) -> list[str]:
    """The states that do not hold the counters of their source as defined now ([since,
    counters...] per row, or a ColumnState's columns)."""
    out = []
    for key, st in states.items():
        name = key.split("@", 1)[0]
        src = HOST_SOURCE if name == "host" else SOURCES.get(name)
        if src is None:
            continue
        if isinstance(st, ColumnState):
            shape = _shape(src)
            if (st.int_cols, st.float_cols) != (shape.int_cols, shape.float_cols):
                out.append(key)
            continue
        if key == "pg_stat_statements_info" or (isinstance(st, dict) and not st):
            continue  # its own small state (dealloc, stats_reset); or no rows
        row = next(iter(st.values())) if isinstance(st, dict) else None
        if not isinstance(row, list) or len(row) != len(_shape(src).counters) + 1:
            out.append(key)  # not rows of [since, counters...]: a form this opscore cannot use
    return out


def _pgss_info(
    cap: Capture, states: dict[str, Any], new_states: dict[str, Any], resets: list[Reset]
) -> bool:
    """pg_stat_statements_info: a full reset (new stats_reset) or evictions (dealloc grew).
    Returns whether the statements were reset as a whole."""
    info = (cap.rows.get("pg_stat_statements_info") or [None])[0]
    if info is None:
        return False
    old = states.get("pg_stat_statements_info")
    now_reset = info["stats_reset"].isoformat() if info["stats_reset"] else None
    new_states["pg_stat_statements_info"] = {"dealloc": info["dealloc"], "stats_reset": now_reset}
    if not old:
        return False
    if now_reset != old.get("stats_reset"):
        resets.append(Reset("pg_stat_statements", f"pg_stat_statements_reset() at {now_reset}"))
        return True
    if (info["dealloc"] or 0) > (old.get("dealloc") or 0):
        n = info["dealloc"] - (old.get("dealloc") or 0)
        resets.append(
            Reset(
                "pg_stat_statements",
                f"{n} eviction(s) (pg_stat_statements.max reached): "
                "statements seen again are counted from their re-creation",
            )
        )
    return False


def key_of(source: Source, row: dict[str, Any]) -> str:
    return "|".join([str(row[k]) for k in _shape(source).keys])


def _all_values(shape: Any, rows: list[dict[str, Any]]) -> list[list[Any]]:
    """[since, counters...] of every row (numeric counters as floats)."""
    get = _getter(shape.counters)
    since = shape.since
    out = []
    for r in rows:
        s = r[since] if since else None
        vals = [s.isoformat() if s is not None else None, *get(r)]
        for i in shape.decimals:
            v = vals[i + 1]
            if isinstance(v, Decimal):
                vals[i + 1] = float(v)
        out.append(vals)
    return out


def state(source: Source, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What to remember of a capture for the next delta: key -> [since, counters...]."""
    shape = _shape(source)
    return dict(zip(_keys(shape, rows), _all_values(shape, rows), strict=True))


def compute(
    source: Source,
    rows: list[dict[str, Any]],
    last: dict[str, Any] | ColumnState | None,
    *,
    source_reset: bool = False,
    columns: bool = False,
) -> DeltaResult:
    """Deltas of ``rows`` (this capture) against ``last`` (previous state; None = baseline).

    With ``columns`` the deltas are computed over matrices (numpy) and kept as a DeltaBlock
    (the rows made from it on first use), the new state as a ColumnState: for
    pg_stat_statements, thousands of rows of 27 counters, where the loop below over every
    counter of every row was a quarter of a snapshot's CPU. The same rules and results (tests
    compare both ways); either form of ``last`` is read by both."""
    shape = _shape(source)
    if columns:
        try:
            cur = capture_state(source, rows)
        except OverflowError:  # beyond int64 (never a PostgreSQL int8): the loop below
            pass
        else:
            result = DeltaResult(rows=[], last=cur)
            if last is not None:
                d = block_deltas(source, rows, cur, last, source_reset)
                result.new_rows, result.reset_rows = d.new_rows, d.reset_rows
                result.block, result.rows = d.block, BlockRows(d.block)
            return result
    if isinstance(last, ColumnState):
        last = last.to_row_state(shape)
    keys = _keys(shape, rows)
    values = _all_values(shape, rows)
    new_state = dict(zip(keys, values, strict=True))
    result = DeltaResult(rows=[], last=new_state)
    if last is None:
        return result
    counters, others, has_since = shape.counters, shape.others, shape.since is not None
    baseline_new = source.new_rows == "baseline" and not source_reset
    only_changed = source.only_changed
    out_rows = result.rows
    kept = _getter(others)
    skip_same = only_changed and not source_reset
    for r, k, cur in zip(rows, keys, values, strict=True):
        prev = last.get(k)
        if skip_same and cur == prev:
            continue  # nothing moved (most statements of a real interval): one C comparison
        now = cur[1:]
        if prev is None:
            result.new_rows += 1
            if baseline_new:
                continue
            deltas = now
        elif source_reset or (has_since and cur[0] is not None and cur[0] != prev[0]):
            result.reset_rows += 1
            deltas = now
        else:
            deltas = []
            went_down = False
            for c, p in zip(now, prev[1:], strict=True):
                if c is None or p is None:
                    deltas.append(None)
                elif c < p:
                    went_down = True
                    break
                else:
                    deltas.append(c - p)
            if went_down:
                result.reset_rows += 1
                deltas = now
        if only_changed and not any(deltas):
            continue
        out = dict(zip(others, kept(r), strict=True))
        # zero stored as NULL: free in a PostgreSQL row; readers COALESCE
        out.update(zip(counters, [d if d else None for d in deltas], strict=True))
        out_rows.append(out)
    return result
