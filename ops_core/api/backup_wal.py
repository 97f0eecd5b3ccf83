"""The WAL archive and restore points of the backup area: receiving and streaming WAL into a
target's store (pg_receivewal on a replication slot), the archive's status and proof, the
slots (created and dropped through the actions module), ``archive_command`` on a server opscore
owns, and restore points (a WAL record written through the actions module)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import repository
from ..backup import catalog, wal, walcheck, walstream
from ..backup.binaries import major_of, pg_bin
from ..backup.catalog import RestorePoint
from ..backup.walcheck import ArchiveCheck
from ..collectors import backup_reads
from ..errors import InvalidInput, OpsCoreError
from ..targets import actions, connection
from .backup_context import store_for, target_context
from .targets import Target, get_target, target_dsn, target_session

__all__ = [
    "WalStatus",
    "ArchiveCheck",
    "receive_wal",
    "wal_status",
    "create_wal_slot",
    "drop_wal_slot",
    "create_restore_point",
    "list_restore_points",
    "verify_wal_archive",
    "archive_with_command",
    "stream_wal",
    "guard_wal_slot",
    "wal_archiving_warning",
]


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
        ctx = target_context(conn, target)
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
        ctx = target_context(conn, target)
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
        store = store_for(conn, t)
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
        store = store_for(conn, t).ensure()
    restarted = srv.enable_archiving(store.wal_dir) if enable else srv.disable_archiving()
    return {"target": t.name, "enabled": enable, "wal_dir": str(store.wal_dir),
            "restarted": restarted}  # fmt: skip


def wal_archiving_warning(target: str, lsn: str) -> str | None:
    """A warning when ``lsn`` (a new restore point) cannot be reached because the target's
    WAL is not being archived and the archive does not hold it; None when it is fine."""
    t = get_target(target)
    with repository.session() as conn:
        store = store_for(conn, t)
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
        store = store_for(conn, t)
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
        store = store_for(conn, t)
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
        store = store_for(conn, t)
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
