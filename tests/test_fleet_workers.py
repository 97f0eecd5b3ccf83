"""Sharding on Prefect's own machinery, for real: a Prefect server, a process work pool made by
``opscore deploy --pool NAME --shards 2`` (through ``flows.serve.deploy``), and two
``prefect worker start`` processes, one per shard queue. Both shards' targets get ASH samples
from their scheduled runs; a stopped worker's shard is collected again once it restarts, and
the one-sampler lease keeps the samples free of duplicates.

Slow: a Prefect server takes 20-130 s to start on this machine, and each flow run is a new
Python process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from ops_core import api, repository
from ops_core.config import Settings

from .helpers import wait_until

ROOT = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path, url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "PREFECT_LOGGING_LEVEL": "INFO",
            # the flow runs import this checkout's flows/ and ops_core/
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


@pytest.fixture
def prefect_server(tmp_path):
    home = tmp_path / "prefect-server"
    home.mkdir()
    port = _port()
    url = f"http://127.0.0.1:{port}/api"
    env = _env(home, url)
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{home}/prefect.db"
    log = open(home / "server.log", "w")
    proc = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def healthy():
        assert proc.poll() is None, (home / "server.log").read_text()[-3000:]
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, timeout=300, step=1, what="the Prefect server")
        yield url, tmp_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        log.close()


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

    def stop(self) -> None:
        """SIGTERM to the worker and its flow runs (one session): the ASH run stops and
        flushes, as on a machine shut down cleanly."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(90)
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


def test_two_workers_collect_their_shards_and_a_restarted_one_resumes(
    prefect_server, repo, target_db
):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.serve import deploy

    url, tmp = prefect_server
    # names that fall in both shards (the split is a stable hash of the name)
    names: list[str] = []
    i = 0
    while {api.shard_of(n, 2) for n in names} != {0, 1} or len(names) < 4:
        names.append(f"w{i}")
        i += 1
    for n in names:
        api.add_target(n, target_db)
    sleeper = psycopg.connect(target_db, autocommit=True, application_name="fleet-worker-test")
    sleeper.execute("SET statement_timeout = 0")
    sleeping = threading.Thread(target=_sleep, args=(sleeper,), daemon=True)
    sleeping.start()  # an active session for every sample to see
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    settings = Settings(ash_window_minutes=1, snapshot_interval_minutes=1)
    with temporary_settings({PREFECT_API_URL: url}):
        shards = deploy(pool, 2, names, settings)
    assert [s.shard for s in shards] == ["shard-0", "shard-1"]
    by_shard = {s.shard: s.targets for s in shards}
    assert sorted(by_shard["shard-0"] + by_shard["shard-1"]) == sorted(names)
    workers = {q: Worker(pool, q, url, tmp) for q in by_shard}
    for w in workers.values():
        w.start()
    try:
        # both shards collect: every target gets samples from its shard's worker
        def everyone_sampled():
            last = _last_samples(names)
            return all(last.values()) and last

        wait_until(everyone_sampled, timeout=420, step=2, what="samples of both shards")
        # stop the worker of shard-0, restart it, and its targets are sampled again
        w0 = workers["shard-0"]
        w0.stop()
        restarted = datetime.now(UTC)
        w0.start()

        def resumed():
            last = _last_samples(by_shard["shard-0"])
            return all(t and t > restarted for t in last.values())

        try:
            wait_until(resumed, timeout=420, step=2, what="shard-0 sampled after the restart")
        except AssertionError:
            print(_runs(url))
            raise
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
            # a run whose worker stopped ends its window on its own and releases its leases
            return not conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 16723 "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchone()[0]

        wait_until(samplers_ended, timeout=300, step=2, what="the samplers to end")
    # the workers ran the runs: the flow runs of both shards completed on the server
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    completed = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))
    )
    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=completed, limit=200)
        done = {r.work_queue_name for r in runs}
    assert {"shard-0", "shard-1"} <= done, [(r.name, r.work_queue_name, r.state_name) for r in runs]
