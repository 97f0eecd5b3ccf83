"""Logical backups of one database with ``pg_dump -Fc`` (custom format: compressed, selective
restore with ``pg_restore``), verified by reading their table of contents (``pg_restore -l``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from .. import commands
from ..errors import CommandFailed, InvalidInput
from . import catalog
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
        target=ctx.name,
    )
    catalog.insert(conn, b)
    t0 = time.monotonic()
    try:
        bdir.mkdir(parents=True)
        dump = bdir / "database.dump"
        commands.run(
            [ctx.bin("pg_dump"), "-d", ctx.db_dsn(database), "-Fc", "-f", dump, "--verbose"],
            env=ctx.env,
            on_line=on_line,
        )
        b.status = "done"
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
    )
    return b


def list_contents(ctx_bin_pg_restore: str, dump_path: str) -> list[str]:
    """The dump's table of contents (raises CommandFailed when the file is damaged)."""
    res = commands.run([ctx_bin_pg_restore, "-l", dump_path])
    return [ln for ln in res.stdout.splitlines() if ln and not ln.startswith(";")]
