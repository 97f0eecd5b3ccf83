"""Backup and recovery: physical (full/incremental) and logical backups, the WAL archive,
restore and point-in-time recovery, restore points, verification, retention, schedules, report.

Every function takes target names / backup ids and returns dataclasses with ``as_dict()``.
Writes to a target are explicit: ``create_restore_point`` (a WAL record, through an admin
session) and ``restore_logical_backup`` (a NEW database, never an existing one); backups and WAL
archiving use replication connections and read.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import repository
from ..backup import catalog, clones, logical, physical, runner, wal, walcheck, walstream
from ..backup.binaries import major_of, pg_bin
from ..backup.catalog import Backup, Check, RestorePoint
from ..backup.context import TargetContext, split_dsn
from ..backup.logical import LogicalRestore
from ..backup.restore import (
    RecoveryTarget,
    RestoreResult,
    remove_restored,
    restore,
    start_and_check,
)
from ..backup.server import server_os_user
from ..backup.store import MANIFEST, BackupStore, check_backup_id
from ..backup.verify import VerifyReport, verify
from ..backup.walcheck import ArchiveCheck
from ..collectors import backup_reads
from ..errors import InvalidInput, NotFound, OpsCoreError
from ..targets import actions, connection
from .targets import Target, get_target, target_dsn, target_session

__all__ = [
    "Backup",
    "BackupDetail",
    "LogicalRestore",
    "RestorePoint",
    "RestoreResult",
    "VerifyReport",
    "WalStatus",
    "backup_store",
    "set_backup_store",
    "take_full_backup",
    "take_incremental_backup",
    "take_logical_backup",
    "list_backups",
    "get_backup",
    "delete_backup",
    "verify_backup",
    "restore_backup",
    "restore_logical_backup",
    "receive_wal",
    "wal_status",
    "create_wal_slot",
    "drop_wal_slot",
    "create_restore_point",
    "list_restore_points",
    "recatalog",
    "ArchiveCheck",
    "verify_wal_archive",
    "archive_with_command",
    "stream_wal",
    "guard_wal_slot",
    "wal_archiving_warning",
]

ProgressFn = Callable[[int, int], None]


# ---------------------------------------------------------------- context
def _store_for(conn: Any, target: Target) -> BackupStore:
    return catalog.store_for(conn, target.target_id, target.name)


def _context(conn: Any, target_name: str) -> TargetContext:
    target = get_target(target_name)
    dsn, env = split_dsn(target_dsn(target))
    with target_session(target) as tconn:
        facts = backup_reads.server_facts(tconn)
    return TargetContext(
        target_id=target.target_id,
        name=target.name,
        dsn=dsn,
        version_num=facts.version_num,
        store=_store_for(conn, target),
        env=env,
        summarize_wal=facts.summarize_wal,
        wal_segment_size=facts.wal_segment_size or wal.DEFAULT_SEGMENT_SIZE,
    )


def backup_store(target: str) -> BackupStore:
    """The store of ``target`` (configured path or ``$OPSCORE_HOME/backups/<target>``)."""
    t = get_target(target)
    with repository.session() as conn:
        return _store_for(conn, t)


def set_backup_store(target: str, path: str | Path) -> BackupStore:
    """Configure where ``target``'s backups go (existing backups stay where they are)."""
    t = get_target(target)
    store = BackupStore(path)
    store.check_safe_path()
    with repository.session() as conn:
        cfg = catalog.get_config(conn, t.target_id)
        cfg.store_path = str(store.root)
        catalog.set_config(conn, cfg)
    return store


# ---------------------------------------------------------------- taking backups
def take_full_backup(
    target: str, *, on_progress: ProgressFn | None = None, max_rate: str | None = None
) -> Backup:
    """A full physical backup (pg_basebackup, plain, manifest with checksums, WAL streamed)."""
    with repository.session() as conn:
        ctx = _context(conn, target)
        runner.reap_stale(conn, ctx.target_id)
        return physical.take_backup(conn, ctx, "full", on_progress=on_progress, max_rate=max_rate)


def take_incremental_backup(
    target: str, *, on_progress: ProgressFn | None = None, max_rate: str | None = None
) -> Backup:
    """An incremental backup against the newest usable backup (PostgreSQL 17+)."""
    with repository.session() as conn:
        ctx = _context(conn, target)
        runner.reap_stale(conn, ctx.target_id)
        return physical.take_backup(
            conn, ctx, "incremental", on_progress=on_progress, max_rate=max_rate
        )


def take_logical_backup(target: str, database: str | None = None) -> Backup:
    """``pg_dump -Fc`` of one database (default: the target DSN's database)."""
    with repository.session() as conn:
        ctx = _context(conn, target)
        runner.reap_stale(conn, ctx.target_id)
        db = database or connection.parse_dsn(ctx.dsn).get("dbname") or "postgres"
        return logical.take_logical(conn, ctx, db)


def restore_logical_backup(
    backup_id: str,
    database: str,
    *,
    target: str | None = None,
    jobs: int = 2,
    no_owner: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> LogicalRestore:
    """Restore a logical backup (``pg_dump -Fc``) into a NEW database ``database`` on
    ``target`` (default: the target the dump was taken from), with ``jobs`` parallel
    pg_restore workers. An existing database is refused; a failed restore drops what it
    created."""
    check_backup_id(backup_id)
    with repository.session() as conn:
        b = catalog.get(conn, backup_id)
        ctx = _context(conn, target or b.target or "")
    return logical.restore_logical(ctx, b, database, jobs=jobs, no_owner=no_owner, on_line=on_line)


# ---------------------------------------------------------------- catalog reads
@dataclass
class BackupDetail:
    backup: Backup
    chain: list[str]
    children: list[str]
    checks: list[Check] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.backup.as_dict(),
            "chain": self.chain,
            "children": self.children,
            "checks": [c.as_dict() for c in self.checks],
        }


def list_backups(target: str) -> list[Backup]:
    """Backups of ``target``, oldest first (a backup whose opscore process was killed is
    marked failed first, see :func:`ops_core.backup.runner.reap_stale`)."""
    t = get_target(target)
    with repository.session() as conn:
        runner.reap_stale(conn, t.target_id)
        return catalog.list_backups(conn, t.target_id)


def get_backup(backup_id: str) -> BackupDetail:
    check_backup_id(backup_id)
    with repository.session() as conn:
        b = catalog.get(conn, backup_id)
        chain = [b.backup_id]
        cur = b
        while cur.parent_id:
            cur = catalog.get(conn, cur.parent_id)
            chain.insert(0, cur.backup_id)
        children = [
            x.backup_id
            for x in catalog.list_backups(conn, b.target_id)
            if x.parent_id == b.backup_id
        ]
        return BackupDetail(b, chain, children, catalog.checks(conn, backup_id))


def delete_backup(backup_id: str, *, cascade: bool = False) -> list[str]:
    """Delete a backup's files and catalog row. A backup that incrementals depend on is only
    deleted with ``cascade`` (which deletes them too). Returns the ids deleted."""
    check_backup_id(backup_id)
    with repository.session() as conn:
        runner.reap_stale(conn)
        b = catalog.get(conn, backup_id)
        all_b = catalog.list_backups(conn, b.target_id)
        doomed = [b]
        while True:
            ids = {x.backup_id for x in doomed}
            more = [x for x in all_b if x.parent_id in ids and x.backup_id not in ids]
            if not more:
                break
            doomed += more
        if len(doomed) > 1 and not cascade:
            raise InvalidInput(
                f"Backup {backup_id} is the base of incremental backups "
                f"{', '.join(x.backup_id for x in doomed[1:])}; deleting it would break them.",
                "Delete those first, or pass --cascade to delete the whole chain from here.",
            )
        if b.status == "running":
            raise InvalidInput(f"Backup {backup_id} is still running.")
        for x in reversed(doomed):
            path = Path(x.path)
            # the backup's own store (it may predate a change of the target's store path)
            if (path / MANIFEST).is_file() or path.is_dir():
                BackupStore(path.parent.parent).remove(path)
        catalog.delete(conn, [x.backup_id for x in reversed(doomed)])
        return [x.backup_id for x in doomed]


# ---------------------------------------------------------------- verification and restore
def verify_backup(backup_id: str, *, test_restore: bool = False) -> VerifyReport:
    """pg_verifybackup (or pg_restore -l for a dump); with ``test_restore`` also restore it into
    a temp dir, start it, run amcheck. The result is recorded and sets the status."""
    check_backup_id(backup_id)
    with repository.session() as conn:
        runner.reap_stale(conn)
        b = catalog.get(conn, backup_id)
        store = _store_for(conn, get_target(b.target or ""))
        report = verify(conn, store, b, test_restore_too=test_restore, os_user=server_os_user())
        # the manifest beside the backup follows its status, so recatalog keeps it
        after = catalog.get(conn, backup_id)
        if Path(after.path).is_dir():
            store.write_manifest(Path(after.path), after.as_dict())
        return report


def restore_backup(
    target: str,
    destination: str | Path,
    *,
    backup_id: str | None = None,
    target_time: datetime | str | None = None,
    target_lsn: str | None = None,
    target_name: str | None = None,
    latest: bool = False,
    os_user: str | None = None,
    start: bool = False,
    clone: str | None = None,
    port: int | None = None,
    from_remote: bool = False,
) -> RestoreResult:
    """Restore into a new (or empty) directory; with one of ``target_time`` / ``target_lsn`` /
    ``target_name`` / ``latest``, point-in-time recovery from the WAL archive.

    Every recovery target is first proven against the archive (WAL checksums and pg_waldump
    readability from the backup's start to the target; a time is mapped to the commit where
    recovery stops) or refused with the reason. The restore is successful only once the
    restored server has been started on a free port, reached its target and (unless ``start``)
    been stopped again; otherwise the destination is removed and the error says why.

    With ``from_remote`` the backup (chain) and the WAL are read from the target's object
    store into a private staging directory, every file checked against its upload checksum.
    With ``start`` the server stays up as a clone owned by opscore (``clone`` names it,
    ``port`` picks its port): see :func:`list_clones`, :func:`stop_clone`, :func:`drop_clone`.
    Without ``backup_id`` the newest backup that ends before the target is used. The restored
    directory is owned by ``os_user`` (default: the embedded server's user when root).
    """
    if clone is not None or port is not None:
        if not start:
            raise InvalidInput("--clone and --port need --start (they name and place a clone).")
    if start:
        clone = clones.check_new(clone or clones.default_name(target), port)
    given = [x for x in (target_time, target_lsn, target_name) if x] + ([1] if latest else [])
    if len(given) > 1:
        raise InvalidInput(
            "Give at most one recovery target (time, LSN, restore point name or latest)."
        )
    if isinstance(target_time, str):
        try:
            target_time = datetime.fromisoformat(target_time)
        except ValueError:
            raise InvalidInput(
                f"{target_time!r} is not a time.", "Use ISO 8601, e.g. 2026-11-25T17:30:00+00:00"
            ) from None
    if target_time is not None and target_time.tzinfo is None:
        target_time = target_time.replace(tzinfo=UTC)
    if target_lsn:
        wal.parse_lsn(target_lsn)
    rt = RecoveryTarget(time=target_time, lsn=target_lsn, name=target_name, latest=latest)
    t = get_target(target)
    with repository.session() as conn:
        store = _store_for(conn, t)
        if backup_id:
            check_backup_id(backup_id)
            b = catalog.get(conn, backup_id)
            if b.target_id != t.target_id:
                raise InvalidInput(f"Backup {backup_id} belongs to target {b.target!r}.")
        else:
            lsn = target_lsn
            if target_name:
                rp = catalog.get_restore_point(conn, t.target_id, target_name)
                if rp is None:
                    raise NotFound(
                        f"There is no restore point named {target_name!r} for {target!r}.",
                        f"List them with `opscore restore-point list --target {target}`.",
                    )
                lsn = rp.lsn
            from ..backup.restore import choose_backup

            b = choose_backup(catalog.list_backups(conn, t.target_id), rt, lsn)
        user = os_user if os_user is not None else server_os_user()
        staging = None
        relocate = None
        try:
            if from_remote:
                from .backup_remote import stage_from_remote

                staging, relocate = stage_from_remote(conn, t, b)
                store = staging
            res = restore(conn, store, b, Path(destination), rt, os_user=user, relocate=relocate)
        finally:
            if staging is not None:
                shutil.rmtree(staging.root, ignore_errors=True)
        try:
            srv = start_and_check(res, rt, keep_running=start, port=port)
        except BaseException:
            remove_restored(Path(res.destination))
            raise
        if srv is not None and clone is not None:
            res.clone = clones.register(conn, clone, t.target_id, b.backup_id, res, srv)
        return res


# ---------------------------------------------------------------- WAL archive
@dataclass
class WalStatus:
    target: str
    wal_dir: str
    complete_segments: int
    partial_segments: int
    timelines: list[int]
    first_segment: str | None
    last_segment: str | None
    gaps: list[wal.Gap]
    last_received: dict[str, Any]
    # physical replication slots on the target and the WAL each holds back (a slot whose
    # receiver stopped fills the server's disk); empty when the target is unreachable
    slots: list[dict[str, Any]] = field(default_factory=list)
    # the continuous stream (walstream): its last state and whether it is alive now
    stream: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gaps"] = [g.as_dict() for g in self.gaps]
        return d


def receive_wal(target: str, *, until_lsn: str | None = None, slot: str | None = None) -> WalStatus:
    """Stream WAL into the store with pg_receivewal up to ``until_lsn`` (default: the server's
    current WAL position), then stop. Run it on a schedule or in a flow for continuous archive."""
    with repository.session() as conn:
        ctx = _context(conn, target)
    if until_lsn is None:
        with target_session(target) as tconn:
            until_lsn = backup_reads.current_wal_lsn(tconn)
    else:
        wal.parse_lsn(until_lsn)
    wal.receive_wal(
        ctx.bin("pg_receivewal"),
        ctx.dsn,
        ctx.store.ensure().wal_dir,
        until_lsn=until_lsn,
        env=ctx.env,
        slot=slot,
        seg_size=ctx.wal_segment_size,
    )
    return wal_status(target)


def _slot_info(t: Target, slot: str) -> dict[str, Any] | None:
    return next((s for s in _slots(t) if s["slot"] == slot), None)


def stream_wal(
    target: str,
    *,
    slot: str | None = None,
    duration: float | None = None,
    interval: float = 5.0,
    max_retained_bytes: int = walstream.DEFAULT_MAX_RETAINED,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    stop: Any = None,
) -> dict[str, Any]:
    """Archive WAL continuously (pg_receivewal on a replication slot that opscore creates if
    missing, restarted when it exits; completed segments uploaded when the target has an object
    store) until stopped (SIGTERM/SIGINT, ``stop`` event) or
    ``duration`` seconds. Returns the stream's final state (events, restarts, retained WAL)."""
    t = get_target(target)
    slot = slot or walstream.default_slot(t.name)
    with repository.session() as conn:
        ctx = _context(conn, target)
        remote_cfg = catalog.get_config(conn, t.target_id).remote
    upload = None
    if remote_cfg:
        from ..backup import remote

        rem = remote.Remote(remote_cfg["url"], remote_cfg.get("options") or {})
        wal_dir, seg = ctx.store.ensure().wal_dir, ctx.wal_segment_size

        def upload() -> Any:
            return remote.upload_wal(rem, wal_dir, seg)

    _slot_action(t, slot, create=True, why="continuous WAL archiving (backup wal stream)")
    state = walstream.stream(
        target=t.name,
        pg_receivewal=ctx.bin("pg_receivewal"),
        dsn=ctx.dsn,
        env=ctx.env,
        wal_dir=ctx.store.ensure().wal_dir,
        seg_size=ctx.wal_segment_size,
        slot=slot,
        slot_info=lambda: _slot_info(t, slot),
        duration=duration,
        interval=interval,
        max_retained_bytes=max_retained_bytes,
        stop=stop,
        on_event=on_event,
        upload=upload,
    )
    return state.__dict__


def guard_wal_slot(
    target: str, *, max_retained_bytes: int = walstream.DEFAULT_MAX_RETAINED
) -> dict[str, Any]:
    """Protect the target's disk from a stopped stream: when no stream is alive and opscore's
    slot holds more WAL than ``max_retained_bytes``, drop the slot (a gap in the archive
    follows, recorded in the stream state). Returns what was found and done."""
    t = get_target(target)
    with repository.session() as conn:
        store = _store_for(conn, t)
    state = wal.read_stream_state(store.wal_dir)
    slot = state.get("slot") or walstream.default_slot(t.name)
    info = _slot_info(t, slot)
    out: dict[str, Any] = {
        "slot": slot,
        "stream_alive": walstream.stream_alive(state),
        "retained_bytes": info["retained_bytes"] if info else None,
        "dropped": False,
    }
    if info and not out["stream_alive"] and (info["retained_bytes"] or 0) > max_retained_bytes:
        _slot_action(
            t,
            slot,
            create=False,
            why="no WAL stream is running and the slot holds more WAL than allowed",
            evidence={"retained_bytes": info["retained_bytes"], "limit": max_retained_bytes},
        )
        out["dropped"] = True
        if state:
            events = state.get("events", [])
            seq = events[-1]["seq"] + 1 if events else 1
            events.append(
                {
                    "seq": seq,
                    "at": datetime.now(UTC).isoformat(),
                    "kind": "slot_dropped",
                    "message": f"slot {slot} held {info['retained_bytes']} bytes with no stream "
                    "running; dropped to protect the target's disk (the archive will have a gap)",
                }
            )
            state["events"] = events
            (store.wal_dir / wal.STREAM_FILE).write_text(json.dumps(state, default=str))
    return out


def archive_with_command(target: str, *, enable: bool = True, server: Any = None) -> dict[str, Any]:
    """For a server opscore owns (the embedded one, or ``server``): archive its WAL with
    ``archive_command`` into ``target``'s store, each segment checksummed as it is archived
    (``enable=False`` turns it off). Turning archive_mode on or off restarts that server.
    Any other target is refused: opscore does not change a production server's archiving."""
    from ..targets.embedded import default_server

    srv = server or default_server()
    t = get_target(target)
    params = connection.parse_dsn(target_dsn(t))
    host, port = params.get("host", ""), str(params.get("port") or "")
    owned = (
        srv.initialized
        and str(srv.configured_port()) == port
        and host
        in (
            str(srv.socket_dir),
            "127.0.0.1",
            "localhost",
        )
    )
    if not owned:
        raise InvalidInput(
            f"Target {target!r} is not the embedded server opscore owns ({srv.pgdata}); opscore "
            "sets archive_command only there.",
            f"Archive its WAL with `opscore backup wal stream --target {target}` (a replication "
            "connection; nothing changes on the server).",
        )
    with repository.session() as conn:
        store = _store_for(conn, t).ensure()
    restarted = srv.enable_archiving(store.wal_dir) if enable else srv.disable_archiving()
    return {"target": t.name, "enabled": enable, "wal_dir": str(store.wal_dir),
            "restarted": restarted}  # fmt: skip


def wal_archiving_warning(target: str, lsn: str) -> str | None:
    """A warning when ``lsn`` (a new restore point) cannot be reached because the target's
    WAL is not being archived and the archive does not hold it; None when it is fine."""
    t = get_target(target)
    with repository.session() as conn:
        store = _store_for(conn, t)
        backups = catalog.list_backups(conn, t.target_id)
    seg = next((b.wal_segment_size for b in reversed(backups) if b.wal_segment_size), None)
    return walstream.archiving_warning(store.wal_dir, t.name, lsn, seg or wal.DEFAULT_SEGMENT_SIZE)


def _slot_action(
    t: Target, slot: str, *, create: bool, why: str, evidence: dict[str, Any] | None = None
) -> None:
    """Create or drop a physical replication slot through the actions module (a write to the
    target: policy check and journal)."""
    wal.check_slot_name(slot)
    action = (
        actions.create_replication_slot(slot, why=why)
        if create
        else actions.drop_replication_slot(slot, why=why, evidence=evidence)
    )
    with repository.session() as conn:
        done = actions.perform(conn, t.target_id, target_dsn(t), action)
    if not done.done:
        raise OpsCoreError(
            f"Replication slot {slot!r} was not {'created' if create else 'dropped'}: the "
            f"replication_slot policy of target {t.name!r} is report_only (journaled as "
            f"action {done.action_id}).",
            "Set the replication_slot policy to implement (opscore actions policy).",
        )


def create_wal_slot(target: str, slot: str) -> None:
    """Create a physical replication slot for the WAL receiver (a write to the target: the
    server then keeps WAL until it is received; drop it when archiving stops)."""
    _slot_action(get_target(target), slot, create=True, why="requested by the user")


def drop_wal_slot(target: str, slot: str) -> None:
    """Drop a physical replication slot (the server stops keeping WAL for it)."""
    _slot_action(get_target(target), slot, create=False, why="requested by the user")


def verify_wal_archive(target: str) -> ArchiveCheck:
    """Prove the WAL archive: every segment's checksum, pg_waldump readability, the runs of
    continuous readable WAL and what ends each (gap, damaged segment, end of archive)."""
    t = get_target(target)
    with repository.session() as conn:
        store = _store_for(conn, t)
        backups = [b for b in catalog.list_backups(conn, t.target_id) if b.physical]
        if not backups:
            with target_session(t) as tconn:
                version = backup_reads.server_version_num(tconn)
        else:
            version = backups[-1].server_version_num or 0
    seg = next((b.wal_segment_size for b in reversed(backups) if b.wal_segment_size), None)
    major = major_of(version)
    return walcheck.check_archive(
        store.wal_dir, seg or wal.DEFAULT_SEGMENT_SIZE, pg_bin(major, "pg_waldump"), major
    )


def wal_status(target: str) -> WalStatus:
    """What the WAL archive holds and where it has gaps."""
    t = get_target(target)
    with repository.session() as conn:
        store = _store_for(conn, t)
        sizes = [b.wal_segment_size for b in catalog.list_backups(conn, t.target_id)]
    seg = next((s for s in reversed(sizes) if s), wal.DEFAULT_SEGMENT_SIZE)
    c = wal.scan(store.wal_dir, seg)
    names = [wal.segment_name(tli, s, seg) for tli in c.timelines() for s in c.segments(tli)]
    summary = c.size_summary()
    return WalStatus(
        target=t.name,
        wal_dir=str(store.wal_dir),
        complete_segments=summary["complete_segments"],
        partial_segments=summary["partial_segments"],
        timelines=summary["timelines"],
        first_segment=min(names) if names else None,
        last_segment=max(names) if names else None,
        gaps=c.gaps(),
        last_received=wal.read_state(store.wal_dir),
        slots=_slots(t),
        stream={
            **wal.read_stream_state(store.wal_dir),
            "alive": walstream.stream_alive(wal.read_stream_state(store.wal_dir)),
        },
    )


def _slots(t: Target) -> list[dict[str, Any]]:
    try:
        with target_session(t) as tconn:
            return backup_reads.physical_slots(tconn)
    except OpsCoreError:
        return []


# ---------------------------------------------------------------- restore points
def create_restore_point(target: str, name: str) -> RestorePoint:
    """``pg_create_restore_point(name)`` on the target: a write (a WAL record), made through an
    explicit admin session and recorded in the catalog and in the store."""
    if not name or len(name) > 63 or not name.isprintable():
        raise InvalidInput(
            f"{name!r} is not a valid restore point name.", "Use 1-63 printable characters."
        )
    t = get_target(target)
    with repository.session() as conn:
        if catalog.get_restore_point(conn, t.target_id, name):
            raise InvalidInput(
                f"Target {target!r} already has a restore point named {name!r}.",
                "Restore point names must be unique per target; pick another.",
            )
        store = _store_for(conn, t)
        # the write goes through the actions module: policy check and journal
        done = actions.perform(
            conn,
            t.target_id,
            target_dsn(t),
            actions.restore_point(name, why="requested by the user", requested_by="user"),
        )
        if not done.done:
            raise OpsCoreError(
                f"Restore point {name!r} was not created: the action policy of target "
                f"{target!r} is report_only (journaled as action {done.action_id}).",
                "Set the restore_point policy to implement (set_action_policy).",
            )
        row = done.rows[0]
        catalog.add_restore_point(conn, t.target_id, name, row[0], row[1], row[2])
        store.add_restore_point(
            {"name": name, "lsn": row[0], "timeline": row[1], "created_at": row[2].isoformat()}
        )
        rp = catalog.get_restore_point(conn, t.target_id, name)
        assert rp is not None
        return rp


def list_restore_points(target: str) -> list[RestorePoint]:
    t = get_target(target)
    with repository.session() as conn:
        return catalog.restore_points(conn, t.target_id)


# ---------------------------------------------------------------- recatalog
def recatalog(target: str) -> list[str]:
    """Re-read the store's manifests (and restore-points.json) into the catalog: what a lost
    repository needs. Returns the backup ids that were added."""
    t = get_target(target)
    added = []
    with repository.session() as conn:
        store = _store_for(conn, t)
        manifests = sorted(store.manifests(), key=lambda m: m.get("started_at", ""))
        for m in manifests:
            b = Backup.from_dict({**m, "target_id": t.target_id})
            if b.status == "running":
                continue
            if catalog.upsert(conn, b):
                added.append(b.backup_id)
        for p in store.restore_points():
            catalog.add_restore_point(
                conn,
                t.target_id,
                p["name"],
                p["lsn"],
                p.get("timeline"),
                datetime.fromisoformat(p["created_at"]) if p.get("created_at") else None,
            )
    return added
