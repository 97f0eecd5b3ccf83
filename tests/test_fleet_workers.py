"""Sharding on Prefect's own machinery, for real: the session's Prefect API server, a process
work pool made by ``opscore deploy --pool NAME --shards 2`` (through ``flows.serve.deploy``),
and two ``prefect worker start`` processes, one per shard queue. Each shard's ASH run is picked
up by its own worker and samples its own targets; a stopped worker's shard is collected again
once it restarts (the run due while it was down waits on its queue), and the one-sampler lease
keeps the samples free of duplicates.

Kept cheap (it was 370 s, the slowest test of the suite): it reuses the session's Prefect
server (``prefect_harness``, already up when other flow tests ran) instead of starting its own
(20-130 s here), two targets (one per shard), both workers started at once, and the runs are
created on the shards' deployments at once rather than waited for on their interval schedules
(the test server runs no scheduler; that deploy() gives each deployment its schedule is
asserted). Each flow run is a new Python process, hence still slow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from ops_core import api, repository
from ops_core.config import Settings

from .helpers import wait_until

ROOT = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _env(home: Path, url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "PREFECT_LOGGING_LEVEL": "INFO",
            # the flow runs import this checkout's flows/ and ops_core/
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


class Worker:
    def __init__(self, pool: str, queue: str, url: str, home: Path):
        self.args = [PREFECT, "worker", "start", "-p", pool, "-q", queue, "--type", "process"]
        self.env = _env(home, url)
        self.log_path = home / f"worker-{queue}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, grace_s: float = 90) -> None:
        """SIGTERM to the worker, then SIGKILL after ``grace_s``: a Prefect process worker
        stops taking runs and waits for the ones it started (in sessions of their own: the
        signal does not reach them), so a worker with an ASH run ends killed, like a second
        Ctrl-C. Its orphaned run sees its parent gone, stops at its next tick, flushes and
        releases its leases (ops_core.signals, watch_parent)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self.log.close()


def _last_samples(names: list[str]) -> dict[str, datetime | None]:
    with repository.session() as conn:
        rows = dict(
            conn.execute(
                "SELECT t.name, max(s.sample_time) FROM opscore.targets t "
                "LEFT JOIN opscore.ash_samples s USING (target_id) WHERE t.name = ANY(%s) "
                "GROUP BY 1",
                (names,),
            ).fetchall()
        )
    return {n: rows.get(n) for n in names}


def _leased(target_id: int) -> bool:
    """Whether a sampler holds the target's lease (its session advisory lock)."""
    with repository.session() as conn:
        return bool(
            conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 16723 "
                "AND objid = %s AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())",
                (target_id,),
            ).fetchone()[0]
        )


def _sleep(conn: psycopg.Connection) -> None:
    try:
        conn.execute("SELECT pg_sleep(900)")
    except psycopg.Error:
        pass  # cancelled at the end


def _runs(url: str) -> str:
    """The server's flow runs, for a failure message."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=60, sort=FlowRunSort.START_TIME_DESC)
        return "\n".join(
            f"{r.name} {r.work_queue_name} {r.state_name} {r.start_time} {r.state.message}"
            for r in runs
            if r.state_name != "Scheduled"
        )


def _run_now(url: str, deployment: str, targets: list[str]) -> None:
    """A run of a shard's ASH deployment, due now (what its schedule creates every window)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(deployment)
        # a long window: the workers' SIGTERM ends the runs (they flush and release)
        client.create_flow_run_from_deployment(
            dep.id, parameters={"targets": targets, "duration_s": 600}
        )


def test_two_workers_collect_their_shards_and_a_restarted_one_resumes(
    prefect_harness, repo, target_db, tmp_path
):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from flows.serve import deploy

    url = PREFECT_API_URL.value()
    tag = uuid.uuid4().hex[:6]
    # one target in each shard (the split is a stable hash of the name)
    names: dict[int, str] = {}
    i = 0
    while len(names) < 2:
        names.setdefault(api.shard_of(f"w{tag}{i}", 2), f"w{tag}{i}")
        i += 1
    names_list = [names[0], names[1]]
    for n in names_list:
        api.add_target(n, target_db)
    sleeper = psycopg.connect(target_db, autocommit=True, application_name="fleet-worker-test")
    sleeper.execute("SET statement_timeout = 0")
    sleeping = threading.Thread(target=_sleep, args=(sleeper,), daemon=True)
    sleeping.start()  # an active session for every sample to see
    pool = f"pool-{tag}"
    prefix = f"t{tag}-"
    settings = Settings(ash_window_minutes=1, snapshot_interval_minutes=1)
    shards = deploy(pool, 2, names_list, settings, prefix=prefix)
    assert [s.shard for s in shards] == ["shard-0", "shard-1"]
    by_shard = {s.shard: s.targets for s in shards}
    assert by_shard == {"shard-0": [names[0]], "shard-1": [names[1]]}
    deployment_ids = set()
    with get_client(sync_client=True) as client:
        for s in shards:
            for d in s.deployments:
                dep = client.read_deployment_by_name(d)
                deployment_ids.add(dep.id)
                # each deployment is on the pool, its shard's queue, and runs on a schedule
                assert (dep.work_pool_name, dep.work_queue_name) == (pool, s.work_queue)
                assert [x.schedule.interval.total_seconds() for x in dep.schedules] == [60.0]
    workers = {q: Worker(pool, q, url, tmp_path) for q in by_shard}
    for w in workers.values():
        w.start()
    ash = {q: f"ash-fleet/{prefix}ash-{q}" for q in by_shard}
    for q, targets in by_shard.items():
        _run_now(url, ash[q], targets)
    try:
        # both shards collect: each target gets samples from its shard's worker
        def everyone_sampled():
            last = _last_samples(names_list)
            return all(last.values()) and last

        wait_until(everyone_sampled, timeout=300, step=1, what="samples of both shards")
        # stop the worker of shard-0; a run due while it is down waits on its queue, and the
        # restarted worker collects the shard again
        w0 = workers["shard-0"]
        w0.stop(grace_s=15)
        # its run is gone with it (flushed, lease released): no sampler holds the target now
        tid0 = api.get_target(names[0]).target_id
        try:
            # generous for a machine beside two CPU burners (the run stops at its next tick)
            wait_until(lambda: not _leased(tid0), timeout=300, step=1, what="shard-0's lease")
        except AssertionError:
            print(_runs(url))
            print(w0.log_path.read_text()[-4000:])
            raise
        restarted = datetime.now(UTC)
        _run_now(url, ash["shard-0"], by_shard["shard-0"])
        w0.start()

        def resumed():
            last = _last_samples(by_shard["shard-0"])
            return all(t and t > restarted for t in last.values())

        try:
            wait_until(resumed, timeout=300, step=1, what="shard-0 sampled after the restart")
        except AssertionError:
            print(_runs(url))
            raise
        # shard-1 went on sampling meanwhile
        assert _last_samples(by_shard["shard-1"])[names[1]] > restarted
    finally:
        for w in workers.values():
            w.stop()
        sleeper.cancel()
        sleeping.join(30)
        sleeper.close()
    with repository.session() as conn:
        dup = conn.execute(
            "SELECT count(*) FROM (SELECT target_id, sample_time, pid FROM opscore.ash_samples "
            "GROUP BY 1, 2, 3 HAVING count(*) > 1) d"
        ).fetchone()[0]
        assert dup == 0

        def samplers_ended():
            # the stopped runs flushed and released their leases
            return not conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 16723 "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchone()[0]

        wait_until(samplers_ended, timeout=120, step=1, what="the samplers to end")
    # the runs were the workers': each shard's queue had runs that started
    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_flow_runs(limit=200) if r.deployment_id in deployment_ids]
        started = {r.work_queue_name for r in runs if r.start_time}
    assert {"shard-0", "shard-1"} <= started, [(r.name, r.work_queue_name) for r in runs]
