"""ASH against a real PostgreSQL: blocked sessions, query ids, exclusions, retention, flushing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ops_core import api, repository
from ops_core.collectors.ash import AshCollector
from ops_core.errors import InvalidInput, UnknownTarget
from ops_core.repository import ash as repo_ash
from ops_core.repository.ash import AshRow

from .helpers import WAIT_S, cancel_backends, invoke_cli, run_cli, running_statement, wait_until
from .workload_helpers import pgss


@pytest.fixture
def ash_target(repo, target_db):
    api.add_target("ashdb", target_db)
    with psycopg.connect(target_db, autocommit=True, application_name="ash-test-setup") as c:
        c.execute("CREATE TABLE ash_t (id int PRIMARY KEY, v int)")
        c.execute("INSERT INTO ash_t VALUES (1, 0)")
    return target_db


def _wait_for(dsn: str, sql: str, params: tuple, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True, application_name="ash-test-poll") as c:
        while time.monotonic() < deadline:
            if c.execute(sql, params).fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {sql} {params}")


class _Session(threading.Thread):
    """A session running one statement in a thread (its pid known before it starts waiting)."""

    def __init__(self, dsn: str, app: str, statement: str):
        super().__init__(daemon=True)
        self.conn = psycopg.connect(dsn, autocommit=True, application_name=app)
        self.conn.execute("SET lock_timeout = '30s'")
        self.pid = self.conn.info.backend_pid
        self.statement = statement
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.conn.execute(self.statement)
        except Exception as exc:  # recorded, asserted by the test if it matters
            self.error = exc
        finally:
            self.conn.close()


def _query_id(dsn: str, statement: str) -> int:
    """The query identifier the server computes for a statement (EXPLAIN VERBOSE shows it)."""
    with psycopg.connect(dsn, autocommit=True, application_name="ash-test-poll") as c:
        plan = [r[0] for r in c.execute("EXPLAIN (VERBOSE) " + statement).fetchall()]
    found = [ln.split(":")[1] for ln in plan if ln.strip().startswith("Query Identifier:")]
    assert found, plan
    return int(found[0])


def test_sampler_sees_blocking_sleep_and_skips_opscore(ash_target):
    dsn = ash_target
    blocker = psycopg.connect(dsn, application_name="ash-blocker")
    blocker.execute("UPDATE ash_t SET v = v + 1 WHERE id = 1")  # row lock, transaction open
    blocker_pid = blocker.info.backend_pid
    waiter = _Session(dsn, "ash-waiter", "UPDATE ash_t SET v = v + 10 WHERE id = 1")
    # long sleeps, cancelled once sampled: still asleep however slow the machine is
    sleeper = _Session(dsn, "ash-sleeper", "SELECT pg_sleep(600) AS ash_probe_sleep")
    own = _Session(dsn, "opscore-probe", "SELECT pg_sleep(600) AS ash_probe_own")
    for s in (waiter, sleeper, own):
        s.start()
    _wait_for(
        dsn,
        "SELECT count(*) = 3 FROM pg_stat_activity WHERE pid = ANY(%s) "
        "AND wait_event IN ('transactionid', 'tuple', 'PgSleep')",
        ([waiter.pid, sleeper.pid, own.pid],),
    )
    begin = datetime.now(UTC) - timedelta(seconds=1)
    sampler = api.ash_sampler("ashdb", interval_s=0.5)
    try:
        for _ in range(3):
            assert sampler.sample_once() >= 3
            time.sleep(0.5)
        written = sampler.flush(final=True)
        # on request opscore's own sessions are visible
        with_own = AshCollector(dsn, include_opscore=True)
        _, rows_own = with_own.sample()
        with_own.close()
    finally:
        sampler.close()
        cancel_backends(dsn, [sleeper.pid, own.pid])
        blocker.rollback()
        blocker.close()
    for s in (waiter, sleeper, own):
        s.join(WAIT_S)
    assert waiter.error is None
    assert written == sampler.stats.rows_sampled >= 9
    assert own.pid in {r.pid for r in rows_own}
    end = datetime.now(UTC)

    df = api.query_ash("ashdb", begin, end)
    assert df["sample_time"].nunique() == 3
    assert not df["application_name"].fillna("").str.startswith("opscore").any()
    assert own.pid not in set(df["pid"])

    w = df[df["pid"] == waiter.pid]
    assert len(w) == 3
    assert set(w["wait_event_type"]) == {"Lock"} and set(w["wait_class"]) == {"Lock"}
    assert set(w["wait_event"]) <= {"transactionid", "tuple"}
    assert all(list(bp) == [blocker_pid] for bp in w["blocking_pids"])
    assert w["db_time"].all()

    b = df[df["pid"] == blocker_pid]
    assert set(b["state"]) == {"idle in transaction"}
    assert set(b["wait_class"]) == {"Client"} and not b["db_time"].any()
    assert b["blocking_pids"].isna().all()
    assert (b["xid_age"] >= 0).all()

    s = df[df["pid"] == sleeper.pid]
    assert len(s) == 3 and set(s["event"]) == {"PgSleep"} and set(s["wait_class"]) == {"Timeout"}
    assert set(s["query_id"]) == {_query_id(dsn, sleeper.statement)}
    assert "ash_probe_sleep" in s["query"].iloc[0]

    # filters and DB time: the idle-in-transaction blocker is kept but is not DB time
    locks = api.query_ash("ashdb", begin, end, wait_class="lock")
    assert set(locks["pid"]) == {waiter.pid}
    by_event = api.ash_db_time("ashdb", begin, end, by=["event"]).set_index("event")
    assert by_event.loc["ClientRead", "db_time_s"] == 0
    assert by_event.loc["ClientRead", "time_s"] == pytest.approx(1.5)
    assert by_event.loc["PgSleep", "db_time_s"] == pytest.approx(1.5)
    assert by_event["db_time_s"].sum() == pytest.approx(by_event.attrs["db_time_s"])
    summary = api.ash_db_time("ashdb", begin, end, by=["sql"], source="summary")
    samples = api.ash_db_time("ashdb", begin, end, by=["sql"], source="samples")
    assert summary["db_time_s"].sum() == pytest.approx(samples["db_time_s"].sum())

    chains = api.blocking_chains("ashdb", begin, end)
    assert len(chains) == 1
    root = chains.iloc[0]
    assert root["root_pid"] == blocker_pid and root["waiters"] == [waiter.pid]
    assert root["root_state"] == "idle in transaction"
    assert root["duration_s"] == pytest.approx(1.5)
    assert api.last_ash_sample("ashdb") >= df["sample_time"].max()


def _rows(base: datetime, n_times: int, pids: list[int], step_s: float = 1.0) -> list[AshRow]:
    rows = []
    for i in range(n_times):
        ts = base + timedelta(seconds=i * step_s)
        for pid in pids:
            rows.append(
                AshRow(
                    ts, pid, None, "client backend", "app", "appdb", "web", None, base,
                    "active", None, None, 42, f"SELECT {pid}", ts, ts, ts, None, 3, None,
                )
            )  # fmt: skip
    return rows


def test_partitions_created_and_dropped_by_retention(ash_target):
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    target = api.get_target("ashdb")
    writer = repo_ash.AshWriter(target.target_id)
    days = {"old": now - timedelta(days=40), "mid": now - timedelta(days=10)}
    days["recent"] = now - timedelta(days=1)
    with repository.session() as conn:
        for base in days.values():
            assert writer.write(conn, _rows(base, 20, [101, 102]), 1.0) == 40
        # a retried batch is not duplicated
        assert writer.write(conn, _rows(days["recent"], 20, [101, 102]), 1.0) == 40
    name = {k: repo_ash.partition_name("ash_samples", v.date()) for k, v in days.items()}
    chunks = {k: repo_ash.partition_name("ash_chunks", v.date()) for k, v in days.items()}
    hist = {k: repo_ash.partition_name("ash_history_chunks", v.date()) for k, v in days.items()}
    assert set(name.values()) <= set(api.ash_partitions()["raw"])
    mid = (days["mid"] - timedelta(minutes=1), days["mid"] + timedelta(minutes=1))
    assert api.ash_db_time("ashdb", *mid, by=[])["db_time_s"].iloc[0] == pytest.approx(40)
    assert len(api.query_ash("ashdb", days["recent"], now)) == 40

    res = api.purge_ash(now=now)
    parts = api.ash_partitions()
    # purge compacted the hot rows of complete buckets into chunks and dropped the emptied hot
    # partitions of past days: a raw day lives on in its chunk partition
    assert chunks["recent"] in parts["raw"]
    assert not {name["mid"], name["old"], chunks["mid"], chunks["old"]} & set(parts["raw"])
    assert hist["mid"] in parts["history"] and hist["old"] not in parts["history"]
    assert set(res["raw_dropped"]) >= {name["mid"], name["old"]}
    assert res["history_added"] == 4

    h = api.query_ash("ashdb", *mid)
    assert set(h["tier"]) == {"history"}
    assert sorted(set(h["sample_time"])) == [days["mid"], days["mid"] + timedelta(seconds=10)]
    assert set(h["weight_s"]) == {10.0} and len(h) == 4
    # DB time over the downsampled day is still 40 s (4 rows x 10 s)
    assert api.ash_db_time("ashdb", *mid, by=[])["db_time_s"].iloc[0] == pytest.approx(40)
    assert api.ash_db_time("ashdb", *mid, by=[], include_history=False)["samples"].iloc[0] == 0

    # history leaves after the history window; purging again changes nothing more
    res2 = api.purge_ash(now=now + timedelta(days=25))
    assert hist["mid"] in res2["history_dropped"]
    assert api.purge_ash(now=now + timedelta(days=25))["history_dropped"] == []


def test_summary_matches_samples(ash_target):
    target = api.get_target("ashdb")
    now = datetime.now(UTC)
    base = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    base -= timedelta(hours=2)
    with repository.session() as conn:
        repo_ash.AshWriter(target.target_id).write(conn, _rows(base, 150, [7, 8, 9]), 1.0)
    # one 5-minute bucket: 1 event + 1 sql + 3 sessions
    assert api.summarize_ash("ashdb", base, base + timedelta(seconds=150)) == 5
    assert api.summarize_ash("ashdb", base, base + timedelta(seconds=150)) == 5  # idempotent
    rng = (base, base + timedelta(minutes=3))
    s1 = api.ash_db_time("ashdb", *rng, by=["session"], source="summary")
    s2 = api.ash_db_time("ashdb", *rng, by=["session"], source="samples")
    assert s1.attrs["source"] == "summary" and s2.attrs["source"] == "samples"
    assert sorted(s1["db_time_s"]) == sorted(s2["db_time_s"]) == [150.0] * 3
    e1 = api.ash_db_time("ashdb", *rng, by=["event", "hour"], source="summary")
    assert list(e1["db_time_s"]) == [450.0] and list(e1["event"]) == ["CPU"]
    with pytest.raises(InvalidInput, match="summary cannot answer"):
        api.ash_db_time("ashdb", *rng, by=["sql", "session"], source="summary")
    both = api.ash_db_time("ashdb", base, base + timedelta(hours=7), by=["sql", "user"])
    assert both.attrs["source"] == "samples" and both["db_time_s"].sum() == 450
    long = api.ash_db_time("ashdb", base, base + timedelta(hours=7), by=["sql"])
    assert long.attrs["source"] == "summary" and long["db_time_s"].sum() == 450
    # the ASH chart: 3 sessions on CPU for 150 s -> AAS 3 per full minute, 1.5 in the half one
    act = api.ash_activity("ashdb", *rng, by="wait_class", bucket_s=60)
    assert act.attrs == {"source": "samples", "bucket_s": 60}
    assert list(act["bucket_start"]) == [base + timedelta(minutes=i) for i in range(3)]
    assert list(act["aas"]) == [3.0, 3.0, 1.5] and set(act["wait_class"]) == {"CPU"}
    day = api.ash_activity("ashdb", base - timedelta(hours=12), base + timedelta(hours=12))
    assert day.attrs["source"] == "summary" and day.attrs["bucket_s"] == 900
    assert day["db_time_s"].sum() == 450


def test_stop_and_run_flush_buffered_samples(ash_target):
    dsn = ash_target
    begin = datetime.now(UTC) - timedelta(seconds=1)
    with running_statement(dsn, "SELECT pg_sleep(600)", application_name="ash-sleeper"):
        # class-based sampler (Prefect flows): nothing flushed until stop()
        sampler = api.ash_sampler("ashdb", interval_s=0.2, flush_interval_s=3600)
        sampler.start()
        wait_until(lambda: sampler.stats.samples >= 5, what="5 samples")
        assert sampler.stats.rows_written == 0 and sampler.stats.rows_buffered > 0
        st = sampler.stop()
        assert st.rows_written == st.rows_sampled > 0 and st.rows_buffered == 0
        # foreground loop stopped by an event (here: once it has taken 5 samples)
        stop = threading.Event()

        def on_sample(s: api.AshRunStats) -> None:
            if s.samples >= 5:
                stop.set()

        st2 = api.run_ash(
            "ashdb", interval_s=0.2, stop=stop, flush_interval_s=3600, on_sample=on_sample
        )
        assert st2.rows_written == st2.rows_sampled > 0 and st2.errors == 0
    # the sampler sees the whole cluster (autovacuum may show up too): count every row
    df = api.query_ash("ashdb", begin, datetime.now(UTC))
    assert len(df) == st.rows_written + st2.rows_written
    assert (df["application_name"] == "ash-sleeper").sum() >= 5
    # the sampler kept the 5-minute summary up to its last sample
    rng = (begin, datetime.now(UTC))
    summary = api.ash_db_time("ashdb", *rng, by=["session"], source="summary")
    samples = api.ash_db_time("ashdb", *rng, by=["session"], source="samples")
    assert summary["time_s"].sum() == pytest.approx(samples["time_s"].sum())
    assert summary["time_s"].sum() == pytest.approx(df["weight_s"].sum())


def test_cli_ctrl_c_flushes_and_exits_cleanly(ash_target, opscore_env):
    begin = datetime.now(UTC) - timedelta(seconds=1)
    # the module's earlier samplers ran the same sample query in this database: count from
    # here, or the wait ends at once and Ctrl-C lands while the CLI is still starting
    before = pgss(ash_target, "%sample_time%")
    with running_statement(ash_target, "SELECT pg_sleep(600)", application_name="ash-sleeper"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "ops_core", "ash", "run", "--target", "ashdb"]
            + ["--interval", "0.2"],
            env={**os.environ, **opscore_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # 5 samples taken (each one a call of the sample query, counted by the target),
            # fewer than the 10 s flush interval holds: Ctrl-C must flush them
            wait_until(
                lambda: proc.poll() is not None or pgss(ash_target, "%sample_time%") >= before + 5,
                timeout=300,  # the CLI imports pandas and more: a minute when busy
                what="the sampler's first samples",
            )
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=WAIT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert "interrupted" in out and "Traceback" not in err
    df = api.query_ash("ashdb", begin, datetime.now(UTC), application="ash-sleeper")
    assert len(df) >= 3


def test_bad_input_gives_clear_errors(ash_target):
    now = datetime.now(UTC)
    with pytest.raises(UnknownTarget):
        api.query_ash("nope", now - timedelta(minutes=1), now)
    with pytest.raises(UnknownTarget):
        api.run_ash("nope", duration_s=1)
    with pytest.raises(InvalidInput, match="reversed"):
        api.query_ash("ashdb", now, now - timedelta(minutes=1))
    with pytest.raises(InvalidInput, match="not a wait class") as err:
        api.query_ash("ashdb", now - timedelta(minutes=1), now, wait_class="Bogus")
    assert "LWLock" in err.value.hint
    with pytest.raises(InvalidInput, match="not an ASH dimension"):
        api.ash_db_time("ashdb", now - timedelta(minutes=1), now, by=["colour"])
    with pytest.raises(InvalidInput):
        api.ash_time_range(since="banana")
    for i, args in enumerate(
        (
            ["ash", "query", "--target", "ashdb", "--wait-class", "Bogus"],
            ["ash", "query", "--target", "nope"],
            ["ash", "top", "--target", "ashdb", "--begin", "2026-01-02", "--end", "2026-01-01"],
            ["ash", "top", "--target", "ashdb", "--by", "colour"],
        )
    ):
        # the first in a real `opscore` process, the others in this process
        res = run_cli(*args) if i == 0 else invoke_cli(*args)
        assert res.returncode != 0, args
        assert "Error:" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_purge_waits_boundedly_for_a_busy_partition_and_target_removal_forgets(ash_target):
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    target = api.get_target("ashdb")
    old = now - timedelta(days=5)
    with repository.session() as conn:
        repo_ash.AshWriter(target.target_id).write(conn, _rows(old, 10, [5]), 1.0)
    part = repo_ash.partition_name("ash_samples", old.date())
    with repository.connect() as reader:  # a long report holding the table
        reader.autocommit = False
        reader.execute("SELECT count(*) FROM opscore.ash_samples")
        res = api.purge_ash(now=now)
        reader.rollback()
    assert part not in res["raw_dropped"] and part in " ".join(res["skipped"])
    assert part in api.ash_partitions()["raw"]
    assert part in api.purge_ash(now=now)["raw_dropped"]  # the next purge does it

    with repository.session() as conn:
        repo_ash.AshWriter(target.target_id).write(conn, _rows(now, 3, [5]), 1.0)
    api.remove_target("ashdb")
    with repository.session() as conn:
        left = conn.execute(
            "SELECT (SELECT count(*) FROM opscore.ash_samples WHERE target_id = %(t)s)"
            " + (SELECT count(*) FROM opscore.ash_chunks WHERE target_id = %(t)s)"
            " + (SELECT count(*) FROM opscore.ash_history_chunks WHERE target_id = %(t)s)"
            " + (SELECT count(*) FROM opscore.ash_sessions WHERE target_id = %(t)s)"
            " + (SELECT count(*) FROM opscore.ash_events WHERE target_id = %(t)s)"
            " + (SELECT count(*) FROM opscore.ash_queries WHERE target_id = %(t)s)"
            " + (SELECT count(*) FROM opscore.ash_query_texts WHERE target_id = %(t)s)",
            {"t": target.target_id},
        ).fetchone()[0]
    assert left == 0


def test_sampler_survives_a_killed_connection(ash_target, pg):
    sampler = api.ash_sampler("ashdb", interval_s=0.2)
    try:
        assert sampler.sample_once() >= 0
        pid = sampler.collector.conn.info.backend_pid
        with pg.admin() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            wait_until(
                lambda: (
                    not admin.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)
                    ).fetchone()
                ),
                what=f"session {pid} to end",
            )
        results = [sampler.sample_once() for _ in range(3)]
    finally:
        sampler.stop()
    assert results[0] == -1 and min(results[1:]) >= 0  # one failed sample, then reconnected
    assert sampler.stats.errors == 1 and "sample:" in sampler.stats.last_error
    assert sampler.stats.samples == 3


def test_final_flush_summarizes_the_last_partial_bucket(ash_target):
    begin = datetime.now(UTC) - timedelta(seconds=1)
    with running_statement(ash_target, "SELECT pg_sleep(600)", application_name="ash-sleeper"):
        sampler = api.ash_sampler("ashdb", interval_s=0.2)
        for _ in range(3):
            sampler.sample_once()
            time.sleep(0.2)
        written = sampler.flush()  # a routine flush: only complete buckets are summarized
        st = sampler.stop()  # nothing left to write, but the partial bucket gets summarized
    assert written == st.rows_written > 0
    total = api.ash_db_time("ashdb", begin, datetime.now(UTC), by=[], source="summary")
    assert total["time_s"].iloc[0] == pytest.approx(0.2 * written)


def test_sampler_compacts_what_a_crashed_run_left_behind(ash_target):
    target = api.get_target("ashdb")
    now = datetime.now(UTC)
    left = now.replace(second=0, microsecond=0) - timedelta(hours=1)
    with repository.session() as conn:  # a run that died before compacting or summarizing
        repo_ash.AshWriter(target.target_id).write(conn, _rows(left, 30, [5, 6]), 1.0)
    sampler = api.ash_sampler("ashdb", interval_s=0.2)
    try:
        sampler.sample_once()
        sampler.flush()
    finally:
        sampler.stop()
    assert sampler.stats.errors == 0, sampler.stats.last_error
    rng = (left, left + timedelta(minutes=1))
    with repository.session() as conn:
        hot = conn.execute(
            "SELECT count(*) FROM opscore.ash_samples WHERE target_id = %s AND sample_time < %s",
            (target.target_id, left + timedelta(minutes=1)),
        ).fetchone()[0]
    assert hot == 0
    df = api.query_ash("ashdb", *rng)
    assert len(df) == 60 and set(df["tier"]) == {"raw"}
    summary = api.ash_db_time("ashdb", *rng, by=["session"], source="summary")
    assert summary["db_time_s"].sum() == pytest.approx(60)
