"""A `kill -9` of `opscore backup full` leaves no program behind, and the next command marks
the backup failed and removes its partial files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from ops_core import api

from .backup_helpers import drop_target, fast_backups, make_target  # noqa: F401


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _wait(cond, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.usefixtures("fast_backups")
def test_killed_backup_full_leaves_no_process_and_a_failed_record(repo, pg):
    bk = make_target(pg)
    try:
        bk.write(1, 20000)  # ~5 MB of rows: at 32 kB/s the backup runs for minutes
        proc = subprocess.Popen(
            [sys.executable, "-m", "ops_core", "backup", "full", "--target", bk.name,
             "--max-rate", "32k", "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip

        def running_with_child():
            row = repo.execute(
                "SELECT backup_id, path, runner FROM opscore.backups "
                "WHERE status = 'running' AND runner ? 'pgid'"
            ).fetchone()
            return row

        backup_id, path, runner = _wait(running_with_child, "pg_basebackup to start")
        pgid = runner["pgid"]
        assert runner["pid"] == proc.pid and _group_alive(pgid)
        _wait(lambda: Path(path, "data").is_dir(), "partial files")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)

        # the program (pg_basebackup and the WAL streamer it forked) dies with its parent
        _wait(lambda: not _group_alive(pgid), "pg_basebackup to die with opscore", 60)

        def no_replication_sessions():
            with psycopg.connect(pg.admin_dsn, autocommit=True) as c:
                n = c.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender' "
                    "AND application_name = 'pg_basebackup'"
                ).fetchone()[0]
            return n == 0

        _wait(no_replication_sessions, "the target's walsenders of the killed backup to go", 60)

        # the next command finds the stale row: failed, partial files gone
        (b,) = [x for x in api.list_backups(bk.name) if x.backup_id == backup_id]
        assert b.status == "failed" and "interrupted" in (b.error or "")
        assert b.runner is None and not Path(path).exists()
        # and it is cleanable like any failed backup
        assert api.delete_backup(backup_id) == [backup_id]
    finally:
        drop_target(pg, bk)
