"""The machinery every fault injector shares: sessions, background loops, settings, cleanup.

A fault is a context manager. ``__enter__`` sets the problem up and starts its sessions (and
undoes whatever it already did if that fails); ``__exit__`` always stops the sessions
(terminating its own backends), restores settings, drops what it created, and checks that its
sessions are gone. What it did is in :attr:`Fault.info` so a test can check that a diagnosis
names the right object, statement and session.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import psycopg
from psycopg import sql

from ..errors import InvalidInput, OpsCoreError, PrivilegeMissing
from .schema import create_schema
from .sessions import (
    DEFAULT_APPLICATION_NAME,
    admin_connect,
    check_application_name,
    workload_connect,
)

log = logging.getLogger("opscore.workload.faults")


class ServerChangesNotAllowed(InvalidInput):
    """A fault would change server-wide settings (ALTER SYSTEM, restart) without permission."""


class CleanupFailed(OpsCoreError):
    """A fault could not undo everything it did (the message says what is left)."""


@dataclass
class FaultInfo:
    """What a fault did, for a test or a diagnosis to check against.

    ``roles`` maps a role (``holder``, ``waiter``, ``worker``, ...) to backend pids;
    ``settings`` maps a setting to ``{"scope": "session"|"server", "value", "previous"}``;
    ``counts`` holds how many times each role's loop ran (and errors per role).
    """

    name: str
    description: str
    database: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    objects: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    roles: dict[str, list[int]] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cleanup: list[str] = field(default_factory=list)
    cleanup_errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("started_at", "ended_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


class Fault:
    """Base class of the injectors (see :mod:`.faults`)."""

    name: ClassVar[str] = "fault"
    description: ClassVar[str] = ""
    server_wide: ClassVar[bool] = False  # always needs allow_server_changes=True
    # when it needs allow_server_changes if not always (e.g. "when filling the server")
    server_wide_when: ClassVar[str] = ""

    def __init__(
        self,
        dsn: str,
        *,
        application_name: str = DEFAULT_APPLICATION_NAME,
        allow_server_changes: bool = False,
        max_hold_s: float = 600,
    ):
        self.dsn = dsn
        self.application_name = check_application_name(application_name)
        self.allow_server_changes = allow_server_changes
        self.max_hold_s = max_hold_s
        self.info = FaultInfo(self.name, self.description)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[psycopg.Connection] = []
        self._undo: list[tuple[str, Callable[[], None]]] = []
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.admin: psycopg.Connection | None = None

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> Self:
        self.require_server_changes_if_needed()
        self.admin = admin_connect(self.dsn)
        self.info.database = str(self.admin.info.dbname)
        self.info.started_at = datetime.now(UTC)
        try:
            self.start()
        except BaseException:
            self._cleanup(raise_errors=False)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._cleanup(raise_errors=exc_type is None)

    def start(self) -> None:  # pragma: no cover - every injector overrides it
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers for injectors
    def require_server_changes_if_needed(self) -> None:
        if self.server_wide and not self.allow_server_changes:
            raise ServerChangesNotAllowed(
                f"The {self.name} fault changes server-wide settings, which affects every "
                "database and user of that server.",
                "Run it only on a server you own (a throw-away or embedded server) and pass "
                "allow_server_changes=True (CLI: --allow-server-changes).",
            )

    @property
    def sql_admin(self) -> psycopg.Connection:
        assert self.admin is not None, "the fault is not started"
        return self.admin

    def undo(self, what: str, action: Callable[[], None]) -> None:
        """Register a cleanup step (run last-registered first at exit)."""
        self._undo.append((what, action))

    def own_table(self, name: str, ddl: str | sql.Composed) -> None:
        """Create a table this fault owns (dropped at exit)."""
        admin = self.sql_admin
        schema, _, table = name.rpartition(".")
        ident = sql.Identifier(schema or "public", table)
        drop = sql.SQL("DROP TABLE IF EXISTS {}").format(ident)
        create_schema(admin, schema or "public")  # safe beside a workload creating it too
        admin.execute(drop)
        admin.execute(ddl)
        self.info.created.append(name)
        self.info.objects.append(name)
        self.undo(f"dropped {name}", lambda: self.sql_admin.execute(drop))

    def session(
        self, role: str, *, settings: dict[str, str] | None = None, autocommit: bool = True
    ) -> psycopg.Connection:
        """Open one of the fault's own sessions (named like the application) under ``role``."""
        conn = workload_connect(
            self.dsn,
            application_name=self.application_name,
            autocommit=autocommit,
            statement_timeout_s=self.max_hold_s,
            idle_in_transaction_timeout_s=self.max_hold_s,
            settings=settings,
        )
        with self._lock:
            self._conns.append(conn)
            pid = conn.info.backend_pid
            self.info.pids.append(pid)
            self.info.roles.setdefault(role, []).append(pid)
        return conn

    def loop(
        self, role: str, conn: psycopg.Connection, body: Callable[[psycopg.Connection], Any]
    ) -> None:
        """Run ``body(conn)`` over and over in a thread until the fault ends."""

        def run() -> None:
            while not self._stop.is_set():
                try:
                    body(conn)
                    with self._lock:
                        self._counts[role] += 1
                except psycopg.Error as exc:
                    if self._stop.is_set() or conn.closed or conn.broken:
                        return
                    with self._lock:
                        self._counts[f"{role}_errors"] += 1
                    log.debug("%s %s: %s", self.name, role, exc)
                    time.sleep(0.05)

        t = threading.Thread(target=run, name=f"{self.name}-{role}", daemon=True)
        self._threads.append(t)
        t.start()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def counts(self) -> dict[str, int]:
        """How many times each role's loop has run so far (and ``<role>_errors``)."""
        with self._lock:
            return dict(self._counts)

    def setting(self, name: str) -> str:
        row = self.sql_admin.execute("SELECT current_setting(%s)", (name,)).fetchone()
        assert row is not None
        return str(row[0])

    def alter_system(self, name: str, value: str) -> None:
        """ALTER SYSTEM SET + reload, undone at exit (back to the previous auto.conf entry, or
        RESET when there was none). Only with ``allow_server_changes``."""
        if not self.allow_server_changes:
            raise ServerChangesNotAllowed(
                f"Changing {name} server-wide needs allow_server_changes=True.",
                "Use a server you own for this fault.",
            )
        admin = self.sql_admin
        previous_value = self.setting(name)
        previous_auto = self._auto_conf_value(name)
        try:
            admin.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
            )
        except psycopg.errors.InsufficientPrivilege as exc:
            raise PrivilegeMissing(
                f"The role cannot change {name} with ALTER SYSTEM: {str(exc).strip()}",
                "Use a superuser DSN, or GRANT ALTER SYSTEM ON PARAMETER (PostgreSQL 15+).",
            ) from None
        self.info.settings[name] = {"scope": "server", "value": value, "previous": previous_value}

        def restore() -> None:
            admin = self.sql_admin  # the current one: a restart replaces it
            if previous_auto is None:
                admin.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
            else:
                admin.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(previous_auto)
                    )
                )
            admin.execute("SELECT pg_reload_conf()")

        self.undo(f"restore {name} = {previous_value}", restore)
        admin.execute("SELECT pg_reload_conf()")

    def _auto_conf_value(self, name: str) -> str | None:
        try:
            row = self.sql_admin.execute(
                "SELECT setting FROM pg_file_settings WHERE name = %s "
                "AND sourcefile LIKE '%%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1",
                (name,),
            ).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            return None
        return str(row[0]) if row else None

    def wait_for(self, what: str, check: Callable[[], bool], timeout_s: float = 15) -> None:
        """Wait until the problem is observable (e.g. waiters really wait)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        raise OpsCoreError(
            f"The {self.name} fault did not take effect: {what} was not seen within "
            f"{timeout_s:.0f} s.",
            "The server may be too busy or the role lacks privileges; see the server log.",
        )

    def activity(self) -> list[dict[str, Any]]:
        """pg_stat_activity rows of this fault's sessions (state, wait, blockers, query)."""
        cur = self.sql_admin.execute(
            "SELECT pid, state, wait_event_type, wait_event, pg_blocking_pids(pid) AS blockers,"
            " backend_xmin::text AS backend_xmin, query FROM pg_stat_activity"
            " WHERE pid = ANY(%s) ORDER BY pid",
            (list(self.info.pids),),
        )
        cols = [d.name for d in cur.description or []]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    # ------------------------------------------------------------------ cleanup
    def _cleanup(self, *, raise_errors: bool) -> None:
        self._stop.set()
        admin = self.admin
        pids = list(self.info.pids)
        if admin is not None and pids and not admin.closed:
            try:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)",
                    (pids,),
                )
                self.info.cleanup.append(f"terminated sessions {pids}")
            except psycopg.Error as exc:
                self.info.cleanup_errors.append(f"terminate {pids}: {exc}")
        for t in self._threads:
            t.join(timeout=30)
        for conn in self._conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a terminated session
                pass
        for what, action in reversed(self._undo):
            try:
                action()
                self.info.cleanup.append(what)
            except Exception as exc:  # noqa: BLE001 - every step is tried
                self.info.cleanup_errors.append(f"{what}: {str(exc).strip()}")
        self._undo.clear()
        admin = self.admin  # an undo step may have reconnected (server restart)
        if admin is not None and not admin.closed and pids:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    row = admin.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
                    ).fetchone()
                except psycopg.Error:
                    break
                if row and row[0] == 0:
                    break
                time.sleep(0.05)
            else:
                self.info.cleanup_errors.append(f"sessions still present: {pids}")
        with self._lock:
            self.info.counts = dict(self._counts)
        if admin is not None:
            admin.close()
        self.info.ended_at = datetime.now(UTC)
        if self.info.cleanup_errors and raise_errors:
            raise CleanupFailed(
                f"The {self.name} fault could not undo everything: "
                + "; ".join(self.info.cleanup_errors),
                "Undo the rest by hand (the message names it).",
            )
