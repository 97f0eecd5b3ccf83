"""Who runs a backup, and cleaning up after a run whose opscore process was killed.

A ``running`` backup row carries ``runner``: the host, pid and start time of the opscore
process that took it, and the process group of the program it runs (``pg_basebackup``,
``pg_dump``). Programs die with opscore (see :mod:`ops_core.commands`); if opscore itself was
killed (``kill -9``, a crashed worker), the next backup command on that host finds the row,
sees the process is gone (or the pid reused: the start time differs), kills whatever is left
of the program's process group, removes the partial files and marks the backup ``failed``.
A row run on another host is left alone: its process cannot be checked from here.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from .. import commands
from . import catalog
from .store import BackupStore

log = logging.getLogger("opscore.backup")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    return stat.rsplit(")", 1)[1].split()[19]


def me() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _start_time(pid)}


def alive(runner: dict[str, Any] | None) -> bool | None:
    """True/False for a runner on this host; None when it cannot be known (other host, none)."""
    if not runner or runner.get("host") != socket.gethostname() or not runner.get("pid"):
        return None
    start = _start_time(int(runner["pid"]))
    return start is not None and start == runner.get("start")


def reap_stale(conn: psycopg.Connection, target_id: int | None = None) -> list[str]:
    """Mark ``running`` backups whose opscore process is gone as failed, kill the rest of
    their program and remove their partial files. Returns the backup ids cleaned up."""
    rows = conn.execute(
        "SELECT backup_id, path, runner FROM opscore.backups "
        "WHERE status = 'running' AND runner IS NOT NULL "
        "AND (%(t)s::int IS NULL OR target_id = %(t)s::int)",
        {"t": target_id},
    ).fetchall()
    cleaned = []
    for backup_id, path, runner in rows:
        if alive(runner) is not False:
            continue
        if runner.get("pgid"):
            commands.kill_group(int(runner["pgid"]))
        p = Path(path)
        if p.exists():
            BackupStore(p.parent.parent).remove(p)
        catalog.update(
            conn,
            backup_id,
            status="failed",
            error=(
                f"interrupted: the opscore process (pid {runner.get('pid')}) that ran it is "
                "gone; its program was stopped and the partial files removed"
            ),
            finished_at=datetime.now(UTC),
            size_bytes=0,
            runner=None,
        )
        log.warning("backup %s: its opscore process is gone; marked failed", backup_id)
        cleaned.append(backup_id)
    return cleaned
