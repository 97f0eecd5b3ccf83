"""The result cache of the expensive reads (ops_core.model.cache, ops_core.api.cache): an
answer is reused only for the same operation, target and arguments at the same data version;
a new snapshot, a deleted one or new ASH samples make the next read compute again (and its
answer is the new one); concurrent identical reads compute once; the cache stays bounded."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest

from ops_core import api
from ops_core.model.cache import RESULTS, ResultCache

from .app_workload import fresh_repository
from .helpers import running_statement, wait_until

# ------------------------------------------------------------------ the cache itself


def test_same_version_is_a_hit_another_version_computes_again():
    cache = ResultCache()
    calls = []

    def compute(v):
        calls.append(v)
        return {"answer": v}

    assert cache.get("k", 1, lambda: compute(1)) == {"answer": 1}
    assert cache.get("k", 1, lambda: compute(99)) == {"answer": 1}  # a hit: not computed
    assert cache.get("k", 2, lambda: compute(2)) == {"answer": 2}  # new version: computed
    assert cache.get("other", 2, lambda: compute(3)) == {"answer": 3}  # another key
    assert calls == [1, 2, 3]
    s = cache.stats()
    assert (s.hits, s.misses, s.entries) == (1, 3, 2)


def test_answers_are_copies_a_caller_cannot_change_the_next_answer():
    cache = ResultCache()
    first = cache.get("k", 1, lambda: pd.DataFrame({"x": [1, 2]}))
    first.loc[0, "x"] = 100
    first.attrs["changed"] = True
    again = cache.get("k", 1, lambda: pd.DataFrame({"x": [5]}))
    assert list(again["x"]) == [1, 2] and "changed" not in again.attrs
    again["y"] = 0
    assert list(cache.get("k", 1, lambda: None).columns) == ["x"]


def test_bounded_by_entries_bytes_and_time():
    now = [0.0]
    cache = ResultCache(max_entries=3, max_bytes=10_000_000, ttl_s=60, clock=lambda: now[0])
    for i in range(5):
        cache.get(i, 0, lambda i=i: i)
    s = cache.stats()
    assert s.entries == 3 and s.evictions == 2
    assert cache.get(0, 0, lambda: "recomputed") == "recomputed"  # the oldest went first
    assert cache.get(4, 0, lambda: "recomputed") == 4
    now[0] = 61.0  # past the time to live: computed again
    assert cache.get(4, 0, lambda: "fresh") == "fresh"
    small = ResultCache(max_bytes=40_000)
    for i in range(10):  # ~8 kB each: the byte bound holds
        small.get(i, 0, lambda: b"x" * 8000)
        assert small.stats().bytes <= 40_000
    assert small.stats().evictions > 0
    off = ResultCache(max_bytes=0)
    assert off.get("k", 0, lambda: 1) == 1 and off.get("k", 0, lambda: 2) == 2


def test_errors_are_not_cached():
    cache = ResultCache()
    with pytest.raises(ValueError):
        cache.get("k", 1, lambda: (_ for _ in ()).throw(ValueError("boom")))
    assert cache.get("k", 1, lambda: "ok") == "ok"


def test_concurrent_identical_reads_compute_once():
    cache = ResultCache()
    n = 12
    started = threading.Event()
    release = threading.Event()
    calls = []

    def compute():
        calls.append(1)
        started.set()
        release.wait(30)
        return [1, 2, 3]

    out: list = [None] * n

    def read(i: int) -> None:
        out[i] = cache.get("same", 7, compute)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(n)]
    threads[0].start()
    started.wait(30)
    for t in threads[1:]:
        t.start()
    wait_until(lambda: cache.stats().shared == n - 1, what="the others waiting on the first")
    release.set()
    for t in threads:
        t.join(30)
    assert calls == [1] and out == [[1, 2, 3]] * n
    assert len({id(o) for o in out}) == n  # each caller its own copy


# ------------------------------------------------------------------ on a real repository


def _executions(lp: pd.DataFrame) -> float:
    return float(lp.set_index("metric").loc["executions", "total"])


def _statements(dsn: str, n: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for i in range(n):
            c.execute("SELECT %s::int + 1", (i,))


@pytest.fixture
def two_targets(pg, opscore_env):
    fresh_repository()
    api.clear_result_cache()
    dsns = [pg.create_database("rcache"), pg.create_database("rcache")]
    try:
        for name, dsn in zip(("rc-a", "rc-b"), dsns, strict=True):
            api.add_target(name, dsn)
        yield dsns
    finally:
        for dsn in dsns:
            pg.drop_database(dsn)


def test_a_new_or_deleted_snapshot_invalidates(two_targets):
    dsn = two_targets[0]
    s1 = api.take_snapshot("rc-a").snapshot_id
    _statements(dsn, 30)
    s2 = api.take_snapshot("rc-a").snapshot_id
    first = api.load_profile("rc-a", s1, s2)
    before = api.result_cache_stats()
    again = api.load_profile("rc-a", s1, s2)
    after = api.result_cache_stats()
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"]
    pd.testing.assert_frame_equal(first, again)
    _statements(dsn, 50)
    s3 = api.take_snapshot("rc-a").snapshot_id
    # the new snapshot changed the version: the same read computes again
    api.load_profile("rc-a", s1, s2)
    assert api.result_cache_stats()["misses"] == after["misses"] + 1
    whole = api.load_profile("rc-a", s1, s3)
    assert _executions(whole) >= 80
    # deleting the middle snapshot drops its interval's deltas: the same read, another answer
    assert api.delete_snapshots("rc-a", s2, s2) == 1
    shorter = api.load_profile("rc-a", s1, s3)
    assert _executions(shorter) < _executions(whole)
    top = api.top_statements("rc-a", s1, s3, limit=50)
    api.clear_result_cache()
    pd.testing.assert_frame_equal(top, api.top_statements("rc-a", s1, s3, limit=50))


def test_targets_and_ranges_never_share_an_entry(two_targets):
    a, b = two_targets
    ids: dict[str, list[int]] = {"rc-a": [], "rc-b": []}
    for n_a, n_b in ((10, 40), (25, 5)):
        for name in ids:
            ids[name].append(api.take_snapshot(name).snapshot_id)
        _statements(a, n_a)
        _statements(b, n_b)
    for name in ids:
        ids[name].append(api.take_snapshot(name).snapshot_id)
    reads = [
        (name, lo, hi, limit)
        for name, s in ids.items()
        for lo, hi in ((s[0], s[1]), (s[1], s[2]), (s[0], s[2]))
        for limit in (1, 50)
    ]
    cached = {}
    for _ in range(2):  # the second pass reads the cache
        for name, lo, hi, limit in reads:
            cached[(name, lo, hi, limit, "lp")] = api.load_profile(name, lo, hi)
            cached[(name, lo, hi, limit, "top")] = api.top_statements(name, lo, hi, limit=limit)
    assert api.result_cache_stats()["hits"] >= len(reads) * 2
    assert api.result_cache_stats()["entries"] == 6 + 12
    RESULTS.max_bytes, saved = 0, RESULTS.max_bytes  # off: every answer computed afresh
    try:
        for name, lo, hi, limit in reads:
            pd.testing.assert_frame_equal(
                cached[(name, lo, hi, limit, "lp")], api.load_profile(name, lo, hi)
            )
            pd.testing.assert_frame_equal(
                cached[(name, lo, hi, limit, "top")],
                api.top_statements(name, lo, hi, limit=limit),
            )
    finally:
        RESULTS.max_bytes = saved
    # one entry per (operation, target, range, arguments): 6 load profiles, 12 top SQL
    assert api.result_cache_stats()["entries"] == 6 + 12


def test_new_ash_samples_invalidate_a_time_range(two_targets):
    dsn = two_targets[0]
    begin = datetime.now(UTC) - timedelta(minutes=5)
    end = begin + timedelta(hours=2)  # a range still being filled

    def db_time(target: str) -> float:
        return float(api.ash_db_time(target, begin, end, by=[])["db_time_s"].sum())

    sampler = api.ash_sampler("rc-a", interval_s=0.1, flush_interval_s=0.3)
    sampler.start()
    try:
        with running_statement(dsn, "SELECT pg_sleep(600)", application_name="rcache-sleep"):
            first = wait_until(lambda: db_time("rc-a"), what="ASH DB time of rc-a")
            # the same read, later: more samples landed, so a larger answer (never the cached)
            wait_until(lambda: db_time("rc-a") > first, what="a larger DB time")
    finally:
        sampler.stop()
        sampler.close()
    assert db_time("rc-b") == 0.0  # same range, other target: its own (empty) answer


# ------------------------------------------------------------------ the repository pool


def test_repository_pool_reuses_connections_and_resets_them(opscore_env):
    from ops_core import repository
    from ops_core.repository import pool

    fresh_repository()
    api.use_repository_pool(min_size=1, max_size=2)
    try:
        pids = set()
        for i in range(6):
            with repository.session() as c:
                pids.add(c.info.backend_pid)
                c.execute("SET work_mem = '77MB'")
                c.execute(f"CREATE TEMP TABLE leftover_{i} (x int)")
                c.autocommit = False  # a borrower that changed its connection's mode
        assert 1 <= len(pids) <= 2
        with repository.session() as c:
            assert c.autocommit and c.execute("SHOW work_mem").fetchone()[0] != "77MB"
            assert c.execute("SELECT to_regclass('pg_temp.leftover_5')").fetchone()[0] is None
        # threads at once: never more connections than the bound, each read right
        answers: list = []

        def read() -> None:
            with repository.session() as c:
                answers.append((c.info.backend_pid, c.execute("SELECT 41 + 1").fetchone()[0]))

        threads = [threading.Thread(target=read) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert [a for _, a in answers] == [42] * 12 and len({p for p, _ in answers}) <= 2
        assert api.list_alert_rules() is not None  # the service layer over the pool
    finally:
        pool.disable()
    with repository.session() as c:  # off again: a connection of its own
        assert c.info.backend_pid not in pids
