"""Physical backups with ``pg_basebackup``: full, and incremental on PostgreSQL 17+.

Options and why:

- ``-Fp`` plain format (see store.py: pg_combinebackup needs it);
- ``-X stream``: each backup carries the WAL it needs to be consistent, so a full backup
  restores on its own even without the WAL archive;
- ``--manifest-checksums=CRC32C``: a manifest with per-file checksums that ``pg_verifybackup``
  checks; CRC32C catches corruption and costs little (SHA256 protects against forgery, which
  is not the threat for a backup store);
- ``-c fast``: an immediate checkpoint, so the backup starts now and not after the next
  scheduled checkpoint;
- ``--incremental=<previous backup>/backup_manifest`` for incrementals, which needs
  ``summarize_wal=on`` on the server.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from .. import commands
from ..config import get_settings
from ..errors import CommandFailed, InvalidInput, NotSupported
from . import catalog, runner, wal
from .catalog import Backup
from .context import StoreFull, TargetContext, is_store_full
from .store import dir_size

log = logging.getLogger("opscore.backup")
ProgressFn = Callable[[int, int], None]  # (done kB, total kB)
PROGRESS_RE = re.compile(r"(\d+)/(\d+) kB \((\d+)%\)")


@dataclass
class BasebackupInfo:
    start_lsn: str
    stop_lsn: str
    timeline: int
    start_wal: str
    stop_wal: str
    system_identifier: str | None


def read_backup_info(data_dir: Path, seg_size: int) -> BasebackupInfo:
    """Start/stop LSN, timeline and WAL range from a backup's backup_label and manifest."""
    label = (data_dir / "backup_label").read_text()
    start = re.search(r"START WAL LOCATION: (\S+) \(file (\w+)\)", label)
    tli = re.search(r"START TIMELINE: (\d+)", label)
    manifest = json.loads((data_dir / "backup_manifest").read_text())
    ranges = manifest.get("WAL-Ranges") or []
    if not start or not tli or not ranges:
        raise CommandFailed(f"The backup in {data_dir} has no readable backup_label/manifest.")
    stop_lsn = ranges[-1]["End-LSN"]
    timeline = int(tli.group(1))
    return BasebackupInfo(
        start_lsn=start.group(1),
        stop_lsn=stop_lsn,
        timeline=timeline,
        start_wal=start.group(2),
        stop_wal=wal.segment_name(timeline, wal.segno_of(stop_lsn, seg_size), seg_size),
        system_identifier=(
            str(manifest["System-Identifier"]) if "System-Identifier" in manifest else None
        ),
    )


def run_basebackup(
    ctx: TargetContext,
    dest: Path,
    *,
    incremental_manifest: Path | None = None,
    on_progress: ProgressFn | None = None,
    max_rate: str | None = None,
    timeout: float | None = None,
    on_spawn: Callable[[int], None] | None = None,
) -> None:
    args: list[str | Path] = [
        ctx.bin("pg_basebackup"),
        "-d",
        ctx.dsn,
        "-D",
        dest,
        "-Fp",
        "-X",
        "stream",
        "-c",
        "fast",
        "--progress",
        "--verbose",
        "--manifest-checksums=CRC32C",
    ]
    if incremental_manifest is not None:
        args.append(f"--incremental={incremental_manifest}")
    if max_rate:
        args += ["--max-rate", max_rate]
    if not get_settings().backup_sync:
        args.append("--no-sync")

    def on_line(line: str) -> None:
        m = PROGRESS_RE.search(line)
        if m and on_progress:
            on_progress(int(m.group(1)), int(m.group(2)))

    commands.run(args, env=ctx.env, on_line=on_line, timeout=timeout, on_spawn=on_spawn)


def latest_usable_physical(conn: psycopg.Connection, ctx: TargetContext) -> Backup | None:
    backups = [
        b
        for b in catalog.list_backups(conn, ctx.target_id, ("full", "incremental"))
        if b.usable and (Path(b.path) / "data" / "backup_manifest").is_file()
    ]
    return backups[-1] if backups else None


def take_backup(
    conn: psycopg.Connection,
    ctx: TargetContext,
    kind: str,
    *,
    on_progress: ProgressFn | None = None,
    max_rate: str | None = None,
    on_started: Callable[[Backup], None] | None = None,
) -> Backup:
    """Take a full or incremental backup into the store and catalog it.

    The row is inserted as ``running`` first; on any failure (server stopped, store full,
    interrupted) the partial files are removed and the row is marked ``failed`` with the reason,
    so the catalog and the store always agree.
    """
    if kind not in ("full", "incremental"):
        raise InvalidInput(f"Unknown physical backup kind {kind!r} (full or incremental).")
    parent: Backup | None = None
    if kind == "incremental":
        if ctx.major < 17:
            raise NotSupported(
                f"Incremental backups need PostgreSQL 17 or later; target {ctx.name!r} runs "
                f"PostgreSQL {ctx.major}.",
                "Take full backups (`opscore backup full`); WAL archiving gives point-in-time "
                "recovery between them.",
            )
        if ctx.summarize_wal is False:
            raise NotSupported(
                f"Incremental backups need summarize_wal=on; it is off on target {ctx.name!r}.",
                "Turn it on (ALTER SYSTEM SET summarize_wal = on; SELECT pg_reload_conf();), "
                "then take a new full backup to base incrementals on.",
            )
        parent = latest_usable_physical(conn, ctx)
        if parent is None:
            raise InvalidInput(
                f"Target {ctx.name!r} has no full backup to base an incremental backup on.",
                f"Take a full backup first: `opscore backup full --target {ctx.name}`.",
            )
    store = ctx.store.ensure()
    backup_id = store.new_backup_id(kind)
    bdir = store.backup_dir(backup_id, kind)
    b = Backup(
        backup_id=backup_id,
        target_id=ctx.target_id,
        kind=kind,
        status="running",
        path=str(bdir),
        started_at=datetime.now(UTC),
        parent_id=parent.backup_id if parent else None,
        server_version_num=ctx.version_num,
        wal_segment_size=ctx.wal_segment_size,
        runner=runner.me(),
        target=ctx.name,
    )
    catalog.insert(conn, b)
    me = b.runner or {}
    if on_started:
        on_started(b)
    t0 = time.monotonic()
    try:
        bdir.mkdir(parents=True)
        data = bdir / "data"
        manifest = Path(parent.path) / "data" / "backup_manifest" if parent else None
        run_basebackup(
            ctx,
            data,
            incremental_manifest=manifest,
            on_progress=on_progress,
            max_rate=max_rate,
            on_spawn=lambda pgid: catalog.update(conn, backup_id, runner={**me, "pgid": pgid}),
        )
        info = read_backup_info(data, ctx.wal_segment_size)
        b.status = "done"
        b.finished_at = datetime.now(UTC)
        b.duration_s = round(time.monotonic() - t0, 3)
        b.size_bytes = dir_size(data)
        b.start_lsn, b.stop_lsn = info.start_lsn, info.stop_lsn
        b.timeline, b.start_wal, b.stop_wal = info.timeline, info.start_wal, info.stop_wal
        b.system_identifier = info.system_identifier
        b.runner = None
        store.write_manifest(bdir, b.as_dict())
    except BaseException as exc:
        store.remove(bdir)
        reason = _failure_reason(exc, ctx)
        catalog.update(
            conn,
            backup_id,
            status="failed",
            error=reason,
            finished_at=datetime.now(UTC),
            duration_s=round(time.monotonic() - t0, 3),
            size_bytes=0,
            runner=None,
        )
        if is_store_full(exc):
            raise StoreFull(
                f"Backup {backup_id} of {ctx.name!r} failed: the backup store {store.root} is "
                f"full ({store.free_bytes() // 1024 // 1024} MB free). Partial files were "
                "removed; the backup is recorded as failed.",
                "Free space (`opscore backup delete`, retention) or move the store to a larger "
                "disk (`opscore backup store --target T PATH`).",
            ) from exc
        if isinstance(exc, CommandFailed):
            raise CommandFailed(
                f"Backup {backup_id} of {ctx.name!r} failed: {reason}. Partial files were "
                "removed; the backup is recorded as failed.",
                exc.hint
                or "Check that the target is running and accepts replication "
                "connections (pg_hba.conf 'replication' entry, max_wal_senders).",
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
        start_lsn=b.start_lsn,
        stop_lsn=b.stop_lsn,
        timeline=b.timeline,
        start_wal=b.start_wal,
        stop_wal=b.stop_wal,
        system_identifier=b.system_identifier,
        runner=None,
    )
    b.runner = None
    # the backup is complete and self-contained (-X stream); keeping the archive continuous is
    # best effort and never fails it (gaps show in `opscore backup wal status`)
    try:
        from .walstream import stream_alive

        if stream_alive(wal.read_stream_state(store.wal_dir)):
            log.info("WAL archive after backup %s: the running stream archives it", backup_id)
            return b
        how = wal.catch_up(
            ctx.bin("pg_receivewal"),
            ctx.dsn,
            store.wal_dir,
            bdir / "data" / "pg_wal",
            b.stop_lsn or "0/0",
            ctx.wal_segment_size,
            env=ctx.env,
        )
        log.info("WAL archive after backup %s: %s", backup_id, how)
    except Exception as exc:  # noqa: BLE001
        log.warning("WAL archive not updated after backup %s: %s", backup_id, exc)
    return b


def _failure_reason(exc: BaseException, ctx: TargetContext) -> str:
    if is_store_full(exc):
        return f"backup store full (No space left on device) in {ctx.store.root}"
    if isinstance(exc, CommandFailed):
        lines = [ln for ln in (exc.stderr or "").splitlines() if "error" in ln.lower()]
        return (lines[-1].strip() if lines else exc.message)[:500]
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"[:500]
