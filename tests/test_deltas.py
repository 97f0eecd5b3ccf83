"""Reset detection and deltas of a whole capture as one pure step (collectors.deltas), tested
without a server: captures built with the columns of the real catalog sources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ops_core.collectors.capture import Capture
from ops_core.collectors.catalog import SOURCES
from ops_core.collectors.deltas import Previous, snapshot_deltas

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _row(source: str, **values):
    row = {c: None for c in SOURCES[source].names}
    row.update(values)
    return row


def _db(commits: int, reads: int, reset: datetime | None = None):
    return _row(
        "pg_stat_database",
        datid=5,
        datname="app",
        numbackends=3,
        xact_commit=commits,
        blks_read=reads,
        stats_reset=reset,
    )


def _stmt(queryid: int, calls: int, exec_ms: float, since: datetime = START):
    return _row(
        "pg_stat_statements",
        userid=10,
        dbid=5,
        toplevel=True,
        queryid=queryid,
        calls=calls,
        total_exec_time=exec_ms,
        stats_since=since,
    )


def _capture(at: datetime, start: datetime = START, **rows) -> Capture:
    return Capture(target_id=1, captured_at=at, postmaster_start=start, rows=rows)


def _info(reset: datetime | None, dealloc: int = 0):
    return [_row("pg_stat_statements_info", dealloc=dealloc, stats_reset=reset)]


def _after(cap: Capture, sid: int = 1) -> Previous:
    d = snapshot_deltas(None, cap)
    return Previous(sid, cap.captured_at, cap.postmaster_start, d.states)


def test_first_capture_is_a_baseline():
    cap = _capture(T0, pg_stat_database=[_db(100, 50)], pg_stat_statements=[_stmt(1, 10, 5.0)])
    d = snapshot_deltas(None, cap)
    assert d.interval_s is None and d.resets == []
    assert all(r.rows == [] for r in d.results.values())
    assert set(d.states) == {"pg_stat_database", "pg_stat_statements"}


def test_counters_become_interval_deltas():
    first = _capture(T0, pg_stat_database=[_db(100, 50)], pg_stat_statements=[_stmt(1, 10, 5.0)])
    second = _capture(
        T0 + timedelta(minutes=15),
        pg_stat_database=[_db(160, 50)],
        pg_stat_statements=[_stmt(1, 14, 9.5), _stmt(2, 3, 1.0)],
    )
    d = snapshot_deltas(_after(first), second)
    assert d.interval_s == 900.0 and d.resets == []
    db = d.results["pg_stat_database"].rows[0]
    assert db["xact_commit"] == 60 and db["blks_read"] is None  # zero stored as NULL
    assert db["numbackends"] == 3  # a gauge is kept as is
    stmts = {r["queryid"]: r for r in d.results["pg_stat_statements"].rows}
    assert stmts[1]["calls"] == 4 and stmts[1]["total_exec_time"] == 4.5
    assert stmts[2]["calls"] == 3  # a new statement counts since its creation
    assert d.results["pg_stat_statements"].new_rows == 1


def test_a_counter_that_went_down_is_a_reset_never_a_negative_delta():
    first = _capture(T0, pg_stat_database=[_db(100, 50)])
    second = _capture(T0 + timedelta(minutes=15), pg_stat_database=[_db(7, 2)])
    d = snapshot_deltas(_after(first), second)
    db = d.results["pg_stat_database"].rows[0]
    assert db["xact_commit"] == 7 and db["blks_read"] == 2
    assert [r.source for r in d.resets] == ["pg_stat_database"]
    assert "counted from zero" in d.resets[0].reason


def test_a_restart_is_reported():
    first = _capture(T0, pg_stat_database=[_db(100, 50)])
    restarted = START + timedelta(hours=3)
    second = _capture(T0 + timedelta(minutes=15), restarted, pg_stat_database=[_db(5, 1)])
    d = snapshot_deltas(_after(first), second)
    assert d.resets[0].source == "server" and restarted.isoformat() in d.resets[0].reason


def test_pg_stat_statements_reset_reported_once():
    first = _capture(
        T0, pg_stat_statements=[_stmt(1, 10, 5.0)], pg_stat_statements_info=_info(START)
    )
    later = START + timedelta(hours=4)
    second = _capture(
        T0 + timedelta(minutes=15),
        pg_stat_statements=[_stmt(1, 20, 8.0, since=later)],
        pg_stat_statements_info=_info(later),
    )
    d = snapshot_deltas(_after(first), second)
    assert [r.source for r in d.resets] == ["pg_stat_statements"]
    assert "pg_stat_statements_reset()" in d.resets[0].reason
    # counted from the reset: the whole current value, not 20 - 10
    assert d.results["pg_stat_statements"].rows[0]["calls"] == 20


def test_evictions_are_reported():
    first = _capture(T0, pg_stat_statements=[], pg_stat_statements_info=_info(START, 0))
    second = _capture(
        T0 + timedelta(minutes=15),
        pg_stat_statements=[],
        pg_stat_statements_info=_info(START, 12),
    )
    d = snapshot_deltas(_after(first), second)
    assert len(d.resets) == 1 and d.resets[0].reason.startswith("12 eviction(s)")


def test_tables_are_per_database():
    def tab(db: str, scans: int):
        return _row("tables", datname=db, relid=1, schemaname="s", relname="t", seq_scan=scans)

    first = _capture(T0, tables=[tab("a", 10), tab("b", 100)])
    second = _capture(T0 + timedelta(minutes=15), tables=[tab("a", 15), tab("b", 90)])
    d = snapshot_deltas(_after(first), second)
    rows = {r["datname"]: r for r in d.results["tables"].rows}
    assert rows["a"]["seq_scan"] == 5
    assert rows["b"]["seq_scan"] == 90  # went down in b: counted from zero there only
    assert [r.source for r in d.resets] == ["tables@b"]


def test_previous_without_state_is_a_reported_baseline():
    """The previous snapshot's state is gone (the unlogged table after a repository crash):
    every source is a baseline, no interval, and the reset says why."""
    first = _capture(T0, pg_stat_database=[_db(100, 50)], pg_stat_statements=[_stmt(1, 10, 5.0)])
    second = _capture(
        T0 + timedelta(minutes=15),
        pg_stat_database=[_db(160, 50)],
        pg_stat_statements=[_stmt(1, 14, 9.5)],
    )
    prev = Previous(7, first.captured_at, first.postmaster_start, {})
    d = snapshot_deltas(prev, second)
    assert d.interval_s is None and all(r.rows == [] for r in d.results.values())
    assert [r.source for r in d.resets] == ["delta state"]
    assert "snapshot 7" in d.resets[0].reason and "new baseline" in d.resets[0].reason
    assert set(d.states) == {"pg_stat_database", "pg_stat_statements"}  # the next one has deltas


def test_a_state_kept_before_counters_were_added_is_a_reported_baseline():
    """An upgrade added counters to a source (pg_stat_statements' JIT columns): the state kept
    by the previous snapshot holds one value per old counter, so pairing it with the new ones
    would subtract the wrong columns; the capture is a baseline that says why."""
    first = _capture(T0, pg_stat_database=[_db(100, 50)], pg_stat_statements=[_stmt(1, 10, 5.0)])
    prev = _after(first)
    kept = prev.states["pg_stat_statements"]
    old = {k: v[:-2] for k, v in kept.to_row_state(_shape(kept)).items()}  # 2 fewer counters
    prev = Previous(7, prev.captured_at, prev.postmaster_start, {**prev.states,
                    "pg_stat_statements": old})  # fmt: skip
    second = _capture(
        T0 + timedelta(minutes=15),
        pg_stat_database=[_db(160, 50)],
        pg_stat_statements=[_stmt(1, 14, 9.5)],
    )
    d = snapshot_deltas(prev, second)
    assert d.interval_s is None and all(r.rows == [] for r in d.results.values())
    assert [r.source for r in d.resets] == ["delta state"]
    assert "pg_stat_statements" in d.resets[0].reason and "upgrade" in d.resets[0].reason
    third = _capture(
        T0 + timedelta(minutes=30),
        pg_stat_database=[_db(170, 50)],
        pg_stat_statements=[_stmt(1, 20, 12.5)],
    )
    d3 = snapshot_deltas(Previous(8, second.captured_at, START, d.states), third)
    assert d3.resets == [] and d3.results["pg_stat_statements"].rows[0]["calls"] == 6
    # states of the current shape are not a change
    assert snapshot_deltas(_after(first), second).resets == []


def test_statements_that_did_not_move_are_not_stored_unless_reset():
    first = _capture(
        T0,
        pg_stat_statements=[_stmt(1, 10, 5.0), _stmt(2, 7, 1.0)],
        pg_stat_statements_info=_info(START),
    )
    second = _capture(
        T0 + timedelta(minutes=15),
        pg_stat_statements=[_stmt(1, 10, 5.0), _stmt(2, 9, 1.5)],
        pg_stat_statements_info=_info(START),
    )
    d = snapshot_deltas(_after(first), second)
    assert [r["queryid"] for r in d.results["pg_stat_statements"].rows] == [2]
    assert d.states["pg_stat_statements"].keys == [(10, 5, True, 1), (10, 5, True, 2)]
    # the same values after a pg_stat_statements_reset(): counted from the reset, stored
    later = START + timedelta(hours=1)
    third = _capture(
        T0 + timedelta(minutes=30),
        pg_stat_statements=[_stmt(1, 10, 5.0), _stmt(2, 9, 1.5)],
        pg_stat_statements_info=_info(later),
    )
    d3 = snapshot_deltas(Previous(2, second.captured_at, START, d.states), third)
    assert sorted(r["calls"] for r in d3.results["pg_stat_statements"].rows) == [9, 10]


def test_only_a_whole_reset_or_a_restart_breaks_an_addm_range():
    """A full pg_stat_statements is evicting all the time: a statement evicted and seen again
    is a row counted from zero, not a reason to refuse the range (it was refused)."""
    from ops_core.api.addm import _breaks_range

    def reset(source: str, reason: str) -> dict:
        return {"source": source, "reason": reason}

    assert _breaks_range(reset("server", "restarted at 2026-12-06T10:00:00+00:00"))
    assert _breaks_range(reset("pg_stat_statements", "pg_stat_statements_reset() at 2026-12-06"))
    assert not _breaks_range(reset("pg_stat_statements", "3 eviction(s) (pg_stat_statements..."))
    assert not _breaks_range(
        reset("pg_stat_statements", "1 row(s) counted from zero (counters went down or were reset)")
    )
    assert not _breaks_range(reset("tables@shop", "2 row(s) counted from zero"))


def _random_rows(rng, source, n: int, nulls: set[str]) -> list[dict]:
    """Rows of a catalog source with random keys, gauges and counters (numeric as Decimal)."""
    from decimal import Decimal

    rows = []
    for i in range(n):
        row = {}
        for c in source.columns:
            if c.kind == "key":
                row[c.name] = {"text": f"k{i}", "bool": i % 2 == 0}.get(c.pgtype, i)
            elif c.kind == "since":
                row[c.name] = START
            elif c.kind == "gauge":
                row[c.name] = rng.choice([None, 7, "g"])
            elif c.name in nulls:
                row[c.name] = None
            elif c.pgtype == "int8":
                row[c.name] = rng.choice([0, 0, rng.randrange(1, 10**12)])
            elif c.pgtype == "numeric":
                row[c.name] = Decimal(rng.randrange(0, 10**9))
            else:
                row[c.name] = rng.choice([0.0, rng.uniform(0, 1e6)])
        rows.append(row)
    return rows


def _next_capture(rng, source, rows: list[dict]) -> list[dict]:
    """The next capture: most rows moved, some unchanged, some counted down (a reset), a since
    changed, a counter turned NULL, rows dropped and new rows added."""
    from decimal import Decimal

    counters = [c for c in source.columns if c.kind == "counter"]
    since = [c.name for c in source.columns if c.kind == "since"]
    out = []
    for r in rows:
        fate = rng.random()
        if fate < 0.05:
            continue  # gone (evicted, or out of the top-N)
        r = dict(r)
        if fate < 0.25:
            out.append(r)  # nothing moved
            continue
        for c in counters:
            v = r[c.name]
            if v is None or rng.random() < 0.3:
                continue
            if fate < 0.3:
                r[c.name] = type(v)(0) if not isinstance(v, Decimal) else Decimal(0)
            elif c.pgtype == "float8":
                r[c.name] = v + rng.choice([0.0, rng.uniform(0, 1e3)])
            else:
                r[c.name] = v + type(v)(rng.randrange(0, 1000))
        if 0.3 <= fate < 0.33 and since:
            r[since[0]] = START + timedelta(hours=1)
        if 0.33 <= fate < 0.36 and counters:
            r[rng.choice(counters).name] = None
        out.append(r)
    extra = _random_rows(rng, source, len(rows) + 5, set())[len(rows) :]
    return out + extra


def test_columnar_deltas_equal_the_row_loop_on_random_captures():
    """compute(columns=True) - matrices, for thousands of statements - gives what the row loop
    gives, on every catalog source: moved, unchanged, reset, since-changed, NULL, new and gone
    rows, numeric counters, a source reset."""
    import random

    from ops_core.model.deltas import HOST_SOURCE, ColumnState, compute
    from ops_core.repository.snapshots import _state_json, _state_value

    rng = random.Random(7)
    sources = [s for s in SOURCES.values() if s.of_kind("counter")] + [HOST_SOURCE]
    checked = 0
    for source in sources:
        for trial in range(6):
            counters = [c.name for c in source.columns if c.kind == "counter"]
            nulls = {counters[0]} if trial % 3 == 2 and counters else set()
            first = _random_rows(rng, source, 60, nulls)
            last = compute(source, first, {}).last
            second = _next_capture(rng, source, first)
            # the state as columns: in memory, and as stored (JSON) and read back
            col = compute(source, first, {}, columns=True).last
            assert isinstance(col, ColumnState) and col.to_row_state(_shape(col)) == last
            stored = _state_value(_state_json(col))
            assert stored == col and stored.to_row_state(_shape(col)) == last
            for reset in (False, True):
                a = compute(source, second, last, source_reset=reset)
                # against the row loop's state (an older opscore's), the columns, the stored
                for prev in (last, col, stored):
                    b = compute(source, second, prev, source_reset=reset, columns=True)
                    assert b.block is not None
                    assert (b.reset_rows, b.new_rows) == (a.reset_rows, a.new_rows), source.name
                    assert list(b.rows) == list(a.rows), source.name
                    assert b.last.to_row_state(_shape(b.last)) == a.last
                # and the row loop against a ColumnState
                assert compute(source, second, col, source_reset=reset).rows == a.rows
                checked += len(a.rows)
    assert checked > 1000


def _shape(state):
    """The source a ColumnState is of, by its columns (test helper)."""
    from ops_core.model.delta_columns import shape_of
    from ops_core.model.deltas import HOST_SOURCE

    for source in [*SOURCES.values(), HOST_SOURCE]:
        sh = shape_of(source)
        if (sh.int_cols, sh.float_cols) == (state.int_cols, state.float_cols):
            return sh
    raise AssertionError("no source has these columns")


def test_a_state_in_a_form_this_opscore_cannot_read_is_a_reported_baseline():
    """A stored state that is neither rows of [since, counters...] nor columns (written by
    another opscore version, or damaged) makes the capture a new baseline that says why,
    never a crash of the snapshot; the capture after it has deltas again."""
    first = _capture(T0, pg_stat_database=[_db(100, 50)], pg_stat_statements=[_stmt(1, 10, 5.0)])
    prev = _after(first)
    for odd in ({"__columns__": 1, "n": 1, "keys": [[10]]}, [1, 2, 3], {"k": 7}):
        states = {**prev.states, "pg_stat_statements": odd}
        second = _capture(
            T0 + timedelta(minutes=15),
            pg_stat_database=[_db(160, 50)],
            pg_stat_statements=[_stmt(1, 14, 9.5)],
        )
        d = snapshot_deltas(Previous(7, T0, START, states), second)
        assert d.interval_s is None and [r.source for r in d.resets] == ["delta state"]
        assert "pg_stat_statements" in d.resets[0].reason
        third = _capture(
            T0 + timedelta(minutes=30),
            pg_stat_database=[_db(170, 50)],
            pg_stat_statements=[_stmt(1, 20, 12.5)],
        )
        d3 = snapshot_deltas(Previous(8, second.captured_at, START, d.states), third)
        assert d3.results["pg_stat_statements"].rows[0]["calls"] == 6
