"""One ASH sampler per target: a lease in the repository.

Two samplers on one target would both write its sessions, doubling its DB time. A sampler holds
a session advisory lock ``pg_advisory_lock(16723, target_id)`` on a repository connection of its
own for as long as it runs, and records who it is in ``opscore.ash_sampler_lease``. The lock goes
with the connection, so a sampler that dies (kill -9, lost host) frees the target at once; a
second sampler is refused with the holder's description.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from datetime import datetime
from pathlib import Path

import psycopg

from ..errors import OpsCoreError

LOCK_CLASS = 16723  # "AS"


class SamplerBusy(OpsCoreError):
    """Another ASH sampler already samples this target."""


def describe_process(purpose: str | None = None) -> str:
    """Who this sampler is: host, pid and what runs it (command words only, never values)."""
    if purpose is None:
        prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
        if prog in ("__main__.py", "opscore"):
            prog = "opscore"
        words = []
        for w in sys.argv[1:3]:
            if not re.fullmatch(r"[a-z][a-z-]{0,30}", w):
                break
            words.append(w)
        purpose = " ".join([prog, *words])
    return f"`{purpose}` on {socket.gethostname()} (pid {os.getpid()})"


class AshLease:
    """The lease of one target's ASH sampling (see the module docstring)."""

    def __init__(self, target_id: int, target_name: str, holder: str | None = None):
        self.target_id = target_id
        self.target_name = target_name
        self.holder = holder or describe_process()
        self.conn: psycopg.Connection | None = None
        self.lost_to: SamplerBusy | None = None  # set by keep() when another sampler took it

    @property
    def held(self) -> bool:
        return self.conn is not None and not self.conn.closed

    def _busy(self, conn: psycopg.Connection) -> SamplerBusy:
        row = conn.execute(
            "SELECT l.holder, l.acquired_at, k.pid FROM pg_locks k "
            "LEFT JOIN opscore.ash_sampler_lease l ON l.target_id = %(t)s "
            "AND l.backend_pid = k.pid "
            "WHERE k.locktype = 'advisory' AND k.classid = %(c)s AND k.objid = %(t)s "
            "AND k.objsubid = 2 AND k.granted AND k.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            {"t": self.target_id, "c": LOCK_CLASS},
        ).fetchone()
        if row and row[0]:
            since: datetime = row[1]
            who = f"{row[0]}, since {since:%Y-%m-%d %H:%M:%S %Z}".rstrip()
        elif row:
            who = f"repository session pid {row[2]}"
        else:
            who = "another sampler (it stopped just now)"
        return SamplerBusy(
            f"Target {self.target_name!r} is already sampled by {who}. One ASH sampler per "
            "target: a second one would count every session twice.",
            "Use the running sampler (its samples are in the repository), or stop it first "
            "(Ctrl-C on `opscore ash run`, or stop `opscore serve`).",
        )

    def acquire(self, wait_s: float = 0.0) -> None:
        """Take the lease, waiting up to ``wait_s``; raise :class:`SamplerBusy` if held."""
        from . import check_schema, connect

        if self.held:
            return
        conn = connect()
        try:
            check_schema(conn)
            deadline = time.monotonic() + wait_s
            while True:
                got = conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, self.target_id)
                ).fetchone()
                if got and got[0]:
                    break
                if time.monotonic() >= deadline:
                    raise self._busy(conn)
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            conn.execute(
                "INSERT INTO opscore.ash_sampler_lease AS l (target_id, holder, backend_pid) "
                "VALUES (%s, %s, pg_backend_pid()) ON CONFLICT (target_id) DO UPDATE SET "
                "holder = excluded.holder, backend_pid = excluded.backend_pid, "
                "acquired_at = now()",
                (self.target_id, self.holder),
            )
        except BaseException:
            conn.close()
            raise
        self.conn = conn

    def keep(self) -> bool:
        """Check the lease is still ours (its connection alive); after a repository outage,
        take it again. False when another sampler took it meanwhile (this one must stop)."""
        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            try:
                self.conn.execute("SELECT 1")
                return True
            except psycopg.Error:
                pass
        self.release()
        try:
            self.acquire()
        except SamplerBusy as exc:
            self.lost_to = exc
            return False
        except (OpsCoreError, psycopg.Error):
            return True  # repository still down: keep sampling into the buffer, retry later
        return True

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            if not conn.closed and not conn.broken:
                conn.execute(
                    "DELETE FROM opscore.ash_sampler_lease WHERE target_id = %s "
                    "AND backend_pid = pg_backend_pid()",
                    (self.target_id,),
                )
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, self.target_id))
        except psycopg.Error:
            pass
        finally:
            conn.close()
