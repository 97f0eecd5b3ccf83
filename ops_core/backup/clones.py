"""Clones: restored servers that opscore started and owns (``backup restore --start``).

A clone is a restored data directory running on its own port, its unix socket, log and a
trust-only ``pg_hba.conf`` in a private directory (no TCP address: only local processes that
can reach that directory connect), with ``archive_mode=off``. It is where experiments that
need writes run (what-if indexes, tuning trials), never on the production target. The
catalog (``opscore.clones``) records where it is; ``stop`` stops it, ``drop`` stops it and
deletes its data directory.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..errors import InvalidInput, NotFound
from .server import ThrowawayServer, port_free

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass
class Clone:
    clone: str
    target_id: int | None
    backup_id: str | None
    recovery_target: str | None
    data_dir: str
    socket_dir: str
    port: int
    major: int
    os_user: str | None
    status: str
    created_at: datetime
    running: bool = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.socket_dir}&port={self.port}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        d["url"] = self.url
        return d


def default_name(target: str) -> str:
    base = re.sub(r"[^a-z0-9_]", "_", target.lower()) or "t"
    if not base[0].isalpha():
        base = "c_" + base
    return f"{base[:40]}_{datetime.now(UTC):%Y%m%d%H%M%S}"


def check_new(name: str, port: int | None) -> str:
    """Validate a new clone's name and port before anything is restored."""
    if not NAME_RE.match(name or ""):
        raise InvalidInput(
            f"{name!r} is not a valid clone name.",
            "Use a lower-case letter, then up to 62 lower-case letters, digits or underscores.",
        )
    if port is not None and not (1024 <= port <= 65535 and port_free(port)):
        raise InvalidInput(
            f"Port {port} is not free (or not between 1024 and 65535).",
            "Pick another --port, or leave it out to get a free one. Nothing was changed.",
        )
    from .. import repository

    with repository.session() as conn:
        if _get(conn, name) is not None:
            raise InvalidInput(
                f"A clone named {name!r} exists already.",
                "Pick another --clone name, or `opscore clone drop` the old one.",
            )
    return name


def register(
    conn: psycopg.Connection,
    name: str,
    target_id: int,
    backup_id: str,
    result: Any,
    srv: ThrowawayServer,
) -> dict[str, Any]:
    with conn.transaction():
        conn.execute(
            "INSERT INTO opscore.clones (clone, target_id, backup_id, recovery_target, data_dir, "
            "socket_dir, port, major, os_user, status) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'running')",
            (
                name,
                target_id,
                backup_id,
                result.recovery_target,
                str(srv.pgdata),
                str(srv.rundir),
                srv.port,
                srv.major,
                srv.os_user,
            ),
        )
    c = _get(conn, name)
    assert c is not None
    return {"clone": name, "url": c.url, "port": c.port, "data_dir": c.data_dir}


def _running(c: Clone) -> bool:
    pid_file = Path(c.data_dir) / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return False
    return Path(f"/proc/{pid}").exists()


def _get(conn: psycopg.Connection, name: str) -> Clone | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM opscore.clones WHERE clone = %s", (name,))
        row = cur.fetchone()
    if row is None:
        return None
    c = Clone(**row)
    c.running = _running(c)
    return c


def get(conn: psycopg.Connection, name: str) -> Clone:
    c = _get(conn, name)
    if c is None:
        raise NotFound(f"There is no clone named {name!r}.", "List them with `opscore clone list`.")
    return c


def list_all(conn: psycopg.Connection) -> list[Clone]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM opscore.clones ORDER BY created_at, clone")
        out = [Clone(**r) for r in cur.fetchall()]
    for c in out:
        c.running = _running(c)
    return out


def _server(c: Clone) -> ThrowawayServer:
    srv = ThrowawayServer(
        Path(c.data_dir), c.major, c.os_user, port=c.port, rundir=Path(c.socket_dir)
    )
    srv.started = c.running
    return srv


def stop(conn: psycopg.Connection, name: str) -> Clone:
    c = get(conn, name)
    _server(c).stop(keep_rundir=True)
    with conn.transaction():
        conn.execute("UPDATE opscore.clones SET status = 'stopped' WHERE clone = %s", (name,))
    return get(conn, name)


def drop(conn: psycopg.Connection, name: str) -> Clone:
    """Stop the clone and delete its data directory, socket directory and record."""
    c = get(conn, name)
    _server(c).stop()
    shutil.rmtree(c.data_dir, ignore_errors=True)
    shutil.rmtree(c.socket_dir, ignore_errors=True)
    with conn.transaction():
        conn.execute("DELETE FROM opscore.clones WHERE clone = %s", (name,))
    c.running = False
    c.status = "dropped"
    return c
