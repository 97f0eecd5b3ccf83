"""Logical backups of one database with ``pg_dump -Fc`` (custom format: compressed, selective
restore with ``pg_restore``), verified by reading their table of contents (``pg_restore -l``),
restored into a new database of a target (:func:`restore_logical`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from .. import commands
from ..errors import CommandFailed, InvalidInput, NotFound
from ..targets import connection
from . import catalog, runner
from .binaries import major_of, pg_bin
from .catalog import Backup
from .context import StoreFull, TargetContext, is_store_full

DB_NAME_MAX = 63


def take_logical(
    conn: psycopg.Connection,
    ctx: TargetContext,
    database: str,
    *,
    on_line: Callable[[str], None] | None = None,
) -> Backup:
    if not database or len(database) > DB_NAME_MAX or "\x00" in database:
        raise InvalidInput(f"{database!r} is not a database name.")
    store = ctx.store.ensure()
    backup_id = store.new_backup_id("logical")
    bdir = store.backup_dir(backup_id, "logical")
    b = Backup(
        backup_id=backup_id,
        target_id=ctx.target_id,
        kind="logical",
        status="running",
        path=str(bdir),
        started_at=datetime.now(UTC),
        database=database,
        server_version_num=ctx.version_num,
        runner=runner.me(),
        target=ctx.name,
    )
    catalog.insert(conn, b)
    me = b.runner or {}
    t0 = time.monotonic()
    try:
        bdir.mkdir(parents=True)
        dump = bdir / "database.dump"
        commands.run(
            [ctx.bin("pg_dump"), "-d", ctx.db_dsn(database), "-Fc", "-f", dump, "--verbose"],
            env=ctx.env,
            on_line=on_line,
            on_spawn=lambda pgid: catalog.update(conn, backup_id, runner={**me, "pgid": pgid}),
        )
        b.status = "done"
        b.runner = None
        b.finished_at = datetime.now(UTC)
        b.duration_s = round(time.monotonic() - t0, 3)
        b.size_bytes = dump.stat().st_size
        store.write_manifest(bdir, b.as_dict())
    except BaseException as exc:
        store.remove(bdir)
        reason = (
            "backup store full (No space left on device)"
            if is_store_full(exc)
            else (exc.message if isinstance(exc, CommandFailed) else f"{type(exc).__name__}: {exc}")
        )
        catalog.update(
            conn,
            backup_id,
            status="failed",
            error=reason[:500],
            finished_at=datetime.now(UTC),
            duration_s=round(time.monotonic() - t0, 3),
            size_bytes=0,
            runner=None,
        )
        if is_store_full(exc):
            raise StoreFull(
                f"Logical backup {backup_id} failed: the backup store {store.root} is full.",
                "Free space or move the store to a larger disk.",
            ) from exc
        if isinstance(exc, CommandFailed):
            raise CommandFailed(
                f"Logical backup {backup_id} of database {database!r} failed: {reason}",
                "Check the database name and that the target's user may read it.",
                returncode=exc.returncode,
                stderr=exc.stderr,
            ) from exc
        raise
    catalog.update(
        conn,
        backup_id,
        status="done",
        finished_at=b.finished_at,
        duration_s=b.duration_s,
        size_bytes=b.size_bytes,
        runner=None,
    )
    return b


def list_contents(ctx_bin_pg_restore: str, dump_path: str) -> list[str]:
    """The dump's table of contents (raises CommandFailed when the file is damaged)."""
    res = commands.run([ctx_bin_pg_restore, "-l", dump_path])
    return [ln for ln in res.stdout.splitlines() if ln and not ln.startswith(";")]


@dataclass
class LogicalRestore:
    """A dump restored into a new database of a target."""

    backup_id: str
    target: str
    database: str
    tables_in_dump: int
    tables_restored: int
    size_bytes: int
    duration_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _toc_tables(toc: list[str]) -> int:
    """Tables in a dump's table of contents. A TOC line is "215; 1259 16390 TABLE public items
    owner": the 4th field is the entry type ("COMMENT public TABLE items" is a comment, and
    "TABLE DATA ..." / "TABLE ATTACH ..." are other entries)."""
    n = 0
    for ln in toc:
        f = ln.split()
        n += f[3:4] == ["TABLE"] and f[4:5] not in (["DATA"], ["ATTACH"])
    return n


def restore_logical(
    ctx: TargetContext,
    backup: Backup,
    database: str,
    *,
    jobs: int = 2,
    no_owner: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> LogicalRestore:
    """Restore a ``pg_dump -Fc`` backup into a NEW database ``database`` of the target ``ctx``.

    A logical restore never overwrites: an existing database is refused before anything runs,
    and a restore that fails drops the database it created, so the server is left as it was.
    pg_restore stops at the first error (``--exit-on-error``) and its message is the failure.
    """
    if backup.kind != "logical":
        raise InvalidInput(
            f"Backup {backup.backup_id} is a physical backup, not a dump.",
            "Restore it into a new data directory: opscore backup restore --target T --to DIR.",
        )
    if backup.status not in ("done", "verified"):
        raise InvalidInput(
            f"Backup {backup.backup_id} is {backup.status}; only a complete dump can be restored."
        )
    if not database or len(database) > DB_NAME_MAX or "\x00" in database:
        raise InvalidInput(f"{database!r} is not a database name (1 to 63 characters).")
    dump = Path(backup.path) / "database.dump"
    if not dump.is_file():
        raise NotFound(
            f"The dump of backup {backup.backup_id} is missing ({dump}).",
            "Check the backup store, or rebuild the catalog with `opscore backup recatalog`.",
        )
    dump_major = major_of(backup.server_version_num or ctx.version_num)
    pg_restore = pg_bin(max(dump_major, ctx.major), "pg_restore")
    toc = list_contents(str(pg_restore), str(dump))
    t0 = time.monotonic()
    password = ctx.env.get("PGPASSWORD")
    extra = {"password": password} if password else {}
    # the target's own connection rules (named, timeouts, errors classified), writable, and
    # with room for CREATE DATABASE's checkpoint on a busy server
    base = connection.SessionLimits.from_settings()
    limits = replace(base, statement_timeout_ms=max(base.statement_timeout_ms, 600_000))

    def connect(dsn: str) -> psycopg.Connection:
        return connection.connect(
            dsn, read_only=False, limits=limits, application_name="opscore-restore", **extra
        )

    with connect(ctx.dsn) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            raise InvalidInput(
                f"Database {database!r} already exists on target {ctx.name!r}; a logical restore "
                "never overwrites a database.",
                "Give a new name with --database (rename or drop the old one yourself first if "
                "you mean to replace it).",
            )
        try:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(database))
            )
        except psycopg.Error as exc:
            raise CommandFailed(
                f"Cannot create database {database!r} on target {ctx.name!r}: "
                f"{str(exc).strip().splitlines()[0]}",
                "The target's role needs CREATEDB (or restore as a role that has it).",
            ) from None
        args: list[str | Path] = [pg_restore, "-d", ctx.db_dsn(database), "--exit-on-error"]
        args += ["--verbose", "-j", str(max(1, jobs))]
        if no_owner:
            args += ["--no-owner", "--no-privileges"]
        try:
            commands.run([*args, dump], env=ctx.env, on_line=on_line)
            with connect(ctx.db_dsn(database)) as conn:
                restored, size = conn.execute(
                    "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
                    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                    "AND n.nspname NOT LIKE 'pg\\_toast%%'), pg_database_size(current_database())"
                ).fetchone()  # type: ignore[misc]
        except BaseException as exc:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            if isinstance(exc, CommandFailed):
                raise CommandFailed(
                    f"Restoring backup {backup.backup_id} into {database!r} failed (the database "
                    f"was dropped again): {exc.message}",
                    "Use --no-owner when the roles of the dump do not exist on this server.",
                    returncode=exc.returncode,
                    stderr=exc.stderr,
                ) from exc
            raise
    return LogicalRestore(
        backup_id=backup.backup_id,
        target=ctx.name,
        database=database,
        tables_in_dump=_toc_tables(toc),
        tables_restored=int(restored),
        size_bytes=int(size),
        duration_s=round(time.monotonic() - t0, 3),
    )
