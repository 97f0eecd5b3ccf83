"""Live locks and deadlocks on a real server: a blocking chain shows as a tree rooted at the
blocker; a real deadlock is counted from pg_stat_database and, when the server log is
readable (the embedded server), found in the log with its detail; the server log is read,
filtered and paged, or the reason it cannot be read is given."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ops_core import api
from ops_core.collectors.serverlog import parse_stderr, prefix_regex
from ops_core.errors import InvalidInput


def _wait(cond, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def locked(repo, target_db):
    api.add_target("lk", target_db)
    with psycopg.connect(target_db, autocommit=True) as c:
        c.execute("CREATE TABLE lk_t (id int PRIMARY KEY, v int)")
        c.execute("INSERT INTO lk_t VALUES (1, 0), (2, 0)")
    return target_db


def _blocked_update(dsn: str, name: str, errors: list) -> threading.Thread:
    def run():
        try:
            with psycopg.connect(dsn, autocommit=True, application_name=name) as c:
                c.execute("SET lock_timeout = '60s'")
                c.execute("UPDATE lk_t SET v = v + 1 WHERE id = 1")
        except psycopg.Error as exc:  # the blocker was terminated or the timeout hit
            errors.append(exc)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def test_blocking_tree_and_locks(locked):
    dsn = locked
    errors: list = []
    with psycopg.connect(dsn, application_name="lk-holder") as holder:
        holder.execute("UPDATE lk_t SET v = 1 WHERE id = 1")  # open transaction holds the row
        hpid = holder.info.backend_pid
        waiters = [_blocked_update(dsn, f"lk-waiter-{i}", errors) for i in range(2)]
        live = _wait(
            lambda: (x := api.live_locks("lk")).blocked_sessions >= 2 and x,
            "two sessions blocked",
        )
        assert live.root_blockers == [hpid]
        tree = live.tree
        root = tree[tree["depth"] == 0].iloc[0]
        assert root["pid"] == hpid and root["total_waiters"] == 2
        assert set(tree["application_name"]) >= {"lk-holder", "lk-waiter-0", "lk-waiter-1"}
        assert live.waiting >= 1 and not live.locks["granted"].all()
        assert hpid in set(live.locks[live.locks["granted"]]["pid"])
        everything = api.live_locks("lk", all_locks=True)
        assert len(everything.locks) >= len(live.locks)
        holder.rollback()
    for th in waiters:
        th.join(60)
    assert not errors
    assert api.live_locks("lk").blocked_sessions == 0


def _deadlock(dsn: str) -> None:
    a = psycopg.connect(dsn)
    b = psycopg.connect(dsn)
    try:
        a.execute("UPDATE lk_t SET v = v + 1 WHERE id = 1")
        b.execute("UPDATE lk_t SET v = v + 1 WHERE id = 2")
        errs: list = []

        def second():
            try:
                b.execute("UPDATE lk_t SET v = v + 1 WHERE id = 1")
            except psycopg.errors.DeadlockDetected as exc:
                errs.append(exc)

        th = threading.Thread(target=second, daemon=True)
        th.start()
        _wait(lambda: api.live_locks("lk").blocked_sessions >= 1, "the second session to wait")
        try:
            a.execute("UPDATE lk_t SET v = v + 1 WHERE id = 2")
        except psycopg.errors.DeadlockDetected as exc:
            errs.append(exc)
        th.join(60)
        assert len(errs) == 1, errs  # the detector broke the cycle once
    finally:
        a.close()
        b.close()


def test_deadlock_counted_and_found_in_the_log(pg, locked):
    start = datetime.now(UTC) - timedelta(seconds=5)
    before = api.deadlocks("lk")
    _deadlock(locked)
    dbname = psycopg.conninfo.conninfo_to_dict(locked)["dbname"]

    def counted():
        d = api.deadlocks("lk", since=start)
        row = d.by_database[d.by_database["database"] == dbname]
        return len(row) and int(row.iloc[0]["deadlocks"]) >= 1 and d

    d = _wait(counted, "pg_stat_database to count the deadlock")
    assert d.total >= before.total + 1
    if pg.embedded is not None:  # opscore's own server: its log is readable
        assert d.log_readable
        d = _wait(lambda: (x := api.deadlocks("lk", since=start)).events.shape[0] and x, "log")
        ev = d.events.iloc[-1]
        assert "Process" in (ev["detail"] or "") and "lk_t" in (ev["statement"] or "")
        page = api.server_log("lk", since=start, severity="ERROR", text="deadlock")
        assert page.readable and page.matched >= 1
        assert set(page.entries["severity"]) == {"ERROR"}
        newest = api.server_log("lk", limit=2)
        older = api.server_log("lk", limit=2, offset=2)
        assert newest.entries["time"].iloc[0] >= older.entries["time"].iloc[0]
    else:  # a server whose log is not reachable: said so, nothing made up
        page = api.server_log("lk")
        if not page.readable:
            assert page.reason and d.log_reason == page.reason and d.events.empty


def test_log_prefix_parsing_and_bad_input(locked):
    rx = prefix_regex("%m [%p] %q%u@%d ")
    m = rx.match("2026-12-05 21:05:16.988 UTC [26070] app@shop ERROR:  boom")
    assert m and m["user"] == "app" and m["database"] == "shop" and m["severity"] == "ERROR"
    text = (
        "2026-12-05 21:05:16.988 UTC [7] u@d ERROR:  deadlock detected\n"
        "2026-12-05 21:05:16.988 UTC [7] u@d DETAIL:  Process 7 waits for ShareLock\n"
        "\tProcess 8 waits for ShareLock\n"
        "2026-12-05 21:05:16.988 UTC [7] u@d STATEMENT:  UPDATE t SET v = 1\n"
        "2026-12-05 21:05:17.000 UTC [9] LOG:  checkpoint starting: time\n"
    )
    e = parse_stderr(text, "%m [%p] %q%u@%d ")
    assert [x["severity"] for x in e] == ["ERROR", "LOG"]
    assert e[0]["statement"] == "UPDATE t SET v = 1" and e[0]["user"] == "u"
    assert e[0]["detail"].endswith("Process 8 waits for ShareLock")
    assert e[1]["time"] == datetime(2026, 12, 5, 21, 5, 17, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="severity"):
        api.server_log("lk", severity="LOUD")
    with pytest.raises(InvalidInput, match="limit"):
        api.server_log("lk", limit=0)
