"""Small helpers shared by tests (no fixtures here).

On a busy machine (load average 5-9 on 2 cores) anything timed goes wrong: a 4 s statement
has finished before the page looks, a 30 s timeout passes while Python imports. So tests wait
for conditions with generous deadlines (:func:`wait_until`) and hold their load until the
check is done (:func:`running_statement`), never a fixed sleep that hopes it is long enough.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

#: deadline for conditions that take a second on a quiet machine
WAIT_S = 120.0


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 300):
    """Run the real `opscore` CLI in a subprocess with the test environment."""
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ops_core", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


_CLI_COMMAND: Any = None


def invoke_cli(*args: str) -> CliResult:
    """The `opscore` CLI run in this process (click's CliRunner over the same command tree):
    what :func:`run_cli` checks (exit code, stdout, stderr) without a Python start and the
    imports per call, which cost seconds each on a busy machine. Uses this process's
    environment and settings. An exception that escapes the command is raised here (the real
    CLI would print a traceback). Keep at least one :func:`run_cli` per test for the real
    entry point."""
    global _CLI_COMMAND
    import typer
    from click.testing import CliRunner

    from ops_core.cli import app

    if _CLI_COMMAND is None:
        _CLI_COMMAND = typer.main.get_command(app)
    res = CliRunner().invoke(_CLI_COMMAND, list(args), prog_name="opscore")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return CliResult(res.exit_code, res.stdout, res.stderr)


def wait_until(
    check: Callable[[], Any], *, timeout: float = WAIT_S, step: float = 0.2, what: str = ""
) -> Any:
    """Poll ``check()`` until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}")
        time.sleep(step)


def only_evictions(resets: list[dict[str, Any]]) -> bool:
    """True when the resets of a snapshot or report are only what a busy shared server causes.

    Other work on the server may fill pg_stat_statements: its evictions are reported, and a
    statement evicted and seen again is then counted from zero (a reported row, not a reset).
    """
    evicted = any("eviction" in r["reason"] for r in resets)
    return all(
        "eviction" in r["reason"] or (evicted and "counted from zero" in r["reason"])
        for r in resets
    )


def cancel_backends(dsn: str, pids: list[int]) -> None:
    """Cancel the statements the given sessions are running (a no-op for idle ones)."""
    with psycopg.connect(dsn, autocommit=True, application_name="opscore-tests") as conn:
        conn.execute("SELECT pg_cancel_backend(pid) FROM unnest(%s::int[]) pid", (pids,))


@contextmanager
def running_statement(
    dsn: str,
    statement: str,
    params: Any = None,
    *,
    application_name: str,
    timeout: float = WAIT_S,
) -> Iterator[int]:
    """A session running ``statement`` (give it a long one, e.g. ``pg_sleep(600)``) from
    before the block (it is seen active in pg_stat_activity) until the block ends, when it is
    cancelled: however slow the machine, the statement is still running while it is looked at.
    Yields the session's pid."""
    conn = psycopg.connect(dsn, autocommit=True, application_name=application_name)
    pid = conn.info.backend_pid
    errors: list[Exception] = []

    def run() -> None:
        try:
            conn.execute(statement, params)
        except psycopg.errors.QueryCanceled:
            pass  # how the block ends it
        except Exception as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True, name=f"running-{application_name}")
    thread.start()
    try:
        with psycopg.connect(dsn, autocommit=True, application_name="opscore-tests") as mon:
            wait_until(
                lambda: (
                    errors
                    or mon.execute(
                        "SELECT state = 'active' FROM pg_stat_activity WHERE pid = %s", (pid,)
                    ).fetchone()
                    == (True,)
                ),
                timeout=timeout,
                what=f"session {pid} ({application_name}) to run its statement",
            )
        if errors:
            raise errors[0]
        yield pid
    finally:
        try:
            cancel_backends(dsn, [pid])
        finally:
            thread.join(timeout)
            conn.close()
    if errors:
        raise errors[0]


@dataclass(frozen=True)
class RepositoryTemplate:
    """The session's repository database and the migrated template it is cloned from."""

    admin_dsn: str
    database: str
    template: str

    def clone(self) -> None:
        """Replace the repository database by a fresh clone of the template (WITH (FORCE)
        ends sessions a previous test left connected to it)."""
        with psycopg.connect(
            self.admin_dsn, autocommit=True, application_name="opscore-tests"
        ) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(self.database)
            )
            create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(self.database), sql.Identifier(self.template)
            )
            for attempt in range(3):
                conn.execute(drop)
                try:
                    conn.execute(create)
                    return
                except psycopg.errors.DuplicateDatabase:
                    if attempt == 2:  # something kept re-creating it between the two
                        raise


_template: RepositoryTemplate | None = None


def set_repository_template(template: RepositoryTemplate | None) -> None:
    global _template
    _template = template


def reset_repository() -> None:
    """An empty, current repository: a clone of the session's template (set by the
    ``opscore_env`` fixture), or every migration on an emptied schema without one."""
    if _template is not None:
        _template.clone()
        return
    from ops_core import repository

    conn = repository.connect()
    try:
        conn.execute("DROP SCHEMA IF EXISTS opscore CASCADE")
        repository.migrate(conn)
    finally:
        conn.close()
