"""A throw-away PostgreSQL server on a restored data directory (test restores, PITR checks).

It runs with the binaries of the backup's major (a PostgreSQL 15 data directory only starts with
PostgreSQL 15's ``postgres``), on a free port bound to no TCP address, with its unix socket, log
and a trust-only ``pg_hba.conf`` in a private directory under /tmp, and ``archive_mode=off`` so a
restored copy never archives into anyone's WAL archive. Run as root, it runs as the embedded
server's OS user, who must own the data directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg

from .. import commands
from ..errors import CommandFailed, OpsCoreError
from ..targets.embedded import SERVER_OS_USER
from .binaries import pg_bin


def server_os_user() -> str | None:
    """The OS user restored servers run as: the embedded server's user when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        commands.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_OS_USER,
            ]
        )
    return SERVER_OS_USER


def chown_tree(path: Path, user: str | None) -> None:
    """Give ``path`` (recursively) to ``user`` and make its parents traversable (o+x)."""
    if not user:
        return
    entry = pwd.getpwnam(user)
    for dirpath, _dirs, files in os.walk(path):
        os.chown(dirpath, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.lchown(os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid)
    for parent in Path(path).absolute().parents:
        try:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)
        except PermissionError:
            pass


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayServer:
    """``with ThrowawayServer(pgdata, major) as srv: psycopg.connect(srv.conninfo())``."""

    def __init__(
        self,
        pgdata: Path,
        major: int,
        os_user: str | None = None,
        *,
        port: int | None = None,
        rundir: Path | None = None,
    ):
        self.pgdata = Path(pgdata)
        self.major = major
        self.os_user = os_user
        self.port = port or _free_port()
        self.rundir = rundir or Path(tempfile.mkdtemp(prefix="opscore-tr-", dir="/tmp"))
        self.log_file = self.rundir / "postgresql.log"
        self.started = False

    def _pg_ctl(self, *args: str, timeout: float = 120) -> None:
        commands.run(
            [pg_bin(self.major, "pg_ctl"), "-D", self.pgdata, *args],
            user=self.os_user,
            timeout=timeout + 30,
        )

    def start(self, timeout: float = 120) -> ThrowawayServer:
        hba = self.rundir / "pg_hba.conf"
        hba.write_text("local all all trust\n")
        (self.rundir / "pg_ident.conf").write_text("")
        chown_tree(self.rundir, self.os_user)
        self.rundir.chmod(0o700)
        # values here are ours (an int and a mkdtemp path), not user input
        opts = (
            f"-p {self.port} -k {self.rundir} -h '' -c archive_mode=off "
            f"-c hba_file={hba} -c ident_file={self.rundir / 'pg_ident.conf'} "
            "-c shared_buffers=32MB"
        )
        try:
            self._pg_ctl(
                "-l",
                str(self.log_file),
                "-o",
                opts,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
                timeout=timeout,
            )
        except CommandFailed as exc:
            tail = self.log_tail()
            self.started = True  # stop whatever may have come up, then clean up
            self.stop()
            raise OpsCoreError(
                f"The restored data directory {self.pgdata} did not start: {exc.message}",
                f"Server log:\n{tail}",
            ) from exc
        self.started = True
        return self

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def conninfo(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"host={self.rundir} port={self.port} user={user} dbname={dbname}"

    def connect(self, dbname: str = "postgres", user: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            self.conninfo(dbname, user), autocommit=True, application_name="opscore-restore"
        )

    def wait_promoted(self, timeout: float = 120) -> None:
        """Wait until recovery is over (a PITR server accepts reads before it promotes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with self.connect() as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    if row and not row[0]:
                        return
            except psycopg.OperationalError:
                pass
            time.sleep(0.2)
        raise OpsCoreError(
            f"The restored server on {self.pgdata} did not finish recovery within {timeout} s.",
            f"Server log:\n{self.log_tail()}",
        )

    def stop(self, keep_rundir: bool = False) -> None:
        if self.started and (self.pgdata / "postmaster.pid").exists():
            try:
                self._pg_ctl("-m", "fast", "-w", "-t", "60", "stop", timeout=60)
            except CommandFailed:
                try:
                    self._pg_ctl("-m", "immediate", "-w", "-t", "60", "stop", timeout=60)
                except CommandFailed:
                    pass
        self.started = False
        if not keep_rundir:
            shutil.rmtree(self.rundir, ignore_errors=True)

    def __enter__(self) -> ThrowawayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
