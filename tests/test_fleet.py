"""A fleet from one process: many targets' ASH multiplexed (one COPY per flush, a target down
isolated and retried), snapshots of many targets in parallel, stable shards."""

from __future__ import annotations

import threading

import psycopg
import pytest

from ops_core import api, repository
from ops_core.errors import InvalidInput

from .helpers import cancel_backends, wait_until


class _Sleeper(threading.Thread):
    """An active session on the target (what the samples see), cancelled at the end."""

    def __init__(self, dsn: str, app: str):
        super().__init__(daemon=True)
        self.conn = psycopg.connect(dsn, autocommit=True, application_name=app)
        self.pid = self.conn.info.backend_pid

    def run(self) -> None:
        try:
            self.conn.execute("SELECT pg_sleep(600)")
        except psycopg.Error:
            pass
        finally:
            self.conn.close()


@pytest.fixture
def fleet(repo, target_db):
    """Three names for the test database (a fleet of one server under many names) and one
    target that is down (nothing listens on its port)."""
    for name in ("fa", "fb", "fc"):
        api.add_target(name, target_db)
    with psycopg.connect(target_db) as c:
        port = c.info.port
    api.add_target("fdown", f"host=127.0.0.1 port={port + 7} dbname=nope", verify=False)
    sleeper = _Sleeper(target_db, "fleet-test-sleeper")
    sleeper.start()
    # sampled only once it runs: on a loaded machine the thread's query can start seconds late
    # (a run beside CPU burners saw it in 1 of 4 samples)
    with psycopg.connect(target_db, autocommit=True) as c:
        wait_until(
            lambda: c.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
                (sleeper.pid,),
            ).fetchone(),
            what="the sleeper's pg_sleep to be running",
        )
    yield target_db
    cancel_backends(target_db, [sleeper.pid])
    sleeper.join(30)


def _run(mode: str, **kw) -> api.FleetStats:
    return api.run_ash_fleet(
        ["fa", "fb", "fc", "fdown"],
        duration_s=4,
        interval_s=1.0,
        flush_interval_s=1.0,
        mode=mode,
        **kw,
    )


def _check(stats: api.FleetStats, conn: psycopg.Connection) -> None:
    rows = dict(
        conn.execute(
            "SELECT t.name, count(*) FROM opscore.ash_samples s JOIN opscore.targets t "
            "USING (target_id) WHERE s.application_name = 'fleet-test-sleeper' GROUP BY 1"
        ).fetchall()
    )
    # every reachable target sampled, the sleeper seen in each of them
    for name in ("fa", "fb", "fc"):
        st = stats.targets[name]
        assert st.samples >= 2 and st.errors == 0, st
        assert rows.get(name, 0) >= 2, rows
        assert st.rows_written == st.rows_sampled
    # the target that is down: its error recorded, retried with backoff, nothing written
    down = stats.targets["fdown"]
    assert down.samples == 0 and down.errors >= 1 and down.state == "backoff", down
    status = dict(
        conn.execute(
            "SELECT t.name, s.last_error FROM opscore.ash_sampler_status s "
            "JOIN opscore.targets t USING (target_id)"
        ).fetchall()
    )
    assert status["fdown"] and "127.0.0.1" in status["fdown"], status
    assert status["fa"] is None
    # all targets' rows went in one COPY per flush, never one per target
    assert 1 <= stats.copies <= stats.flushes
    assert stats.rows_written == sum(t.rows_written for t in stats.targets.values())
    # sample times on the second: the target's now() falls just after its tick
    p50 = stats.skew(0.5)
    assert p50 is not None and -50 <= p50 < 1000, p50
    # the leases are released at the end
    assert conn.execute("SELECT count(*) FROM opscore.ash_sampler_lease").fetchone()[0] == 0


def test_fleet_samples_every_target_isolates_the_down_one(fleet):
    stats = _run("burst")
    with repository.session() as conn:
        _check(stats, conn)
    # a down target costs the others nothing: they got a sample at (almost) every tick
    assert min(stats.targets[n].samples for n in ("fa", "fb", "fc")) >= stats.ticks - 1


@pytest.mark.slow
def test_thread_pool_fleet_does_the_same(fleet):
    with repository.session() as conn:
        _check(_run("threads"), conn)


def test_event_loop_fleet_does_the_same(fleet):
    stats = _run("async")
    with repository.session() as conn:
        _check(stats, conn)


def test_burst_fleet_reconnects_a_target_whose_session_was_ended(fleet):
    """The burst mode (every query sent before any answer is read): a monitoring session
    ended under it is an error for its target, which connects again and samples on."""
    got: dict[str, api.FleetStats] = {}
    stop = threading.Event()
    run = threading.Thread(
        target=lambda: got.setdefault(
            "stats",
            api.run_ash_fleet(
                ["fa", "fb"],
                interval_s=1.0,
                flush_interval_s=1.0,
                mode="burst",
                stop=stop,
                on_flush=lambda st: got.setdefault("live", st),
            ),
        ),
        daemon=True,
    )
    run.start()
    try:
        live = wait_until(lambda: got.get("live"), what="a first flush")
        wait_until(lambda: min(live.targets[n].samples for n in ("fa", "fb")) >= 1)
        with psycopg.connect(fleet, autocommit=True) as c:
            ended = c.execute(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'opscore' AND datname = current_database() "
                "AND pid <> pg_backend_pid()) x"
            ).fetchone()[0]
        assert ended == 2  # one monitoring session per target
        before = {n: live.targets[n].samples for n in ("fa", "fb")}
        wait_until(
            lambda: all(
                live.targets[n].errors >= 1 and live.targets[n].samples >= before[n] + 2
                for n in ("fa", "fb")
            ),
            what="both targets failing once, then sampling again",
        )
    finally:
        stop.set()
        run.join(60)
    stats = got["stats"]
    assert all(stats.targets[n].state == "sampling" for n in ("fa", "fb")), stats.targets
    assert stats.rows_written == sum(t.rows_sampled for t in stats.targets.values())


def test_fleet_leaves_out_a_target_another_sampler_holds(fleet):
    from ops_core.repository.ash_lease import AshLease

    held = AshLease(api.get_target("fb").target_id, "fb", "a test holder")
    held.acquire()
    try:
        stats = api.run_ash_fleet(["fa", "fb"], duration_s=2, flush_interval_s=1.0)
    finally:
        held.release()
    assert stats.targets["fb"].state == "busy" and stats.targets["fb"].samples == 0
    assert "a test holder" in (stats.targets["fb"].last_error or "")
    assert stats.targets["fa"].samples >= 1


def test_fleet_refuses_bad_input(fleet):
    with pytest.raises(InvalidInput):
        api.run_ash_fleet(["fa", "fa"], duration_s=1)
    with pytest.raises(InvalidInput):
        api.run_ash_fleet(["fa"], duration_s=1, mode="fork")
    with pytest.raises(InvalidInput):
        api.snapshot_fleet(["fa"], concurrency=0)


def test_snapshots_in_parallel_one_down_recorded(fleet):
    out = api.snapshot_fleet(["fa", "fb", "fdown"], concurrency=3)
    by = {r.target: r for r in out}
    assert [r.target for r in out] == ["fa", "fb", "fdown"]
    assert by["fa"].status in ("ok", "partial") and by["fa"].snapshot_id
    assert by["fb"].status in ("ok", "partial") and by["fb"].snapshot_id
    assert by["fdown"].status == "failed" and by["fdown"].error
    listed = {s.snapshot_id: s.status for s in api.list_snapshots("fdown")}
    assert listed.get(by["fdown"].snapshot_id) == "failed"


def test_shards_are_stable_and_cover_every_target(fleet):
    names = [f"db{i:03d}" for i in range(200)]
    three = {n: api.shard_of(n, 3) for n in names}
    assert three == {n: api.shard_of(n, 3) for n in names}  # stable
    sizes = [list(three.values()).count(i) for i in range(3)]
    assert min(sizes) > 40, sizes  # roughly even
    split = api.shard_targets(2)
    assert sorted(sum(split.values(), [])) == ["fa", "fb", "fc", "fdown"]
    assert set(split) == {"shard-0", "shard-1"}


def test_shard_deployments_one_queue_per_shard(fleet):
    from flows.serve import build_deployments, shard_deployments
    from ops_core.config import Settings

    planned = shard_deployments("pool-x", 2, None, Settings(ash_window_minutes=5))
    assert [info.shard for info, _ in planned] == [
        s for s, names in api.shard_targets(2).items() if names
    ]
    for info, deps in planned:
        assert {d.work_queue_name for d in deps} == {info.shard}
        assert {d.work_pool_name for d in deps} == {"pool-x"}
        ash, snap = deps
        assert ash.entrypoint == "flows.ash.ash_fleet_flow"
        assert ash.parameters == {"targets": info.targets, "duration_s": 295}
        assert snap.parameters == {"targets": info.targets}
    with pytest.raises(InvalidInput):
        shard_deployments(" ", 2)
    served = {d.name: d for d in build_deployments(Settings(), fleet=True)}
    assert "ash-fleet" in served and not any(
        n.startswith("ash-f") and n != "ash-fleet" for n in served
    )
    assert served["ash-fleet"].parameters["targets"] is None  # every target, at run time


@pytest.mark.slow
def test_cli_ash_run_all_samples_every_target(fleet):
    from .helpers import run_cli

    res = run_cli("ash", "run", "--all", "--duration", "3", "--json")
    assert res.returncode == 0, res.stderr
    import json

    out = json.loads(res.stdout)
    assert set(out["targets"]) == {"fa", "fb", "fc", "fdown"}
    assert all(out["targets"][n]["samples"] >= 1 for n in ("fa", "fb", "fc"))
    assert out["targets"]["fdown"]["errors"] >= 1
    both = run_cli("ash", "run", "--all", "--target", "fa", "--duration", "1")
    assert both.returncode != 0 and "not both" in both.stderr


def test_ash_fleet_flow_samples_every_target(prefect_harness, fleet):
    from flows.ash import ash_fleet_flow

    out = ash_fleet_flow(["fa", "fb", "fdown"], duration_s=3.0, interval_s=1.0)
    assert out["targets"]["fa"]["samples"] >= 1 and out["targets"]["fb"]["samples"] >= 1
    assert out["targets"]["fdown"]["state"] == "backoff" and out["rows_written"] > 0
    assert api.last_ash_sample("fa") is not None
