"""Continuous WAL archiving: a long-running ``pg_receivewal`` on a replication slot.

``stream()`` keeps one ``pg_receivewal --slot S`` running into the store's WAL directory:

- the slot (created by opscore if missing, named ``opscore_<target>``) makes the target keep
  WAL until it is received, so a receiver that was down (target restart, network, a killed
  ``pg_receivewal``, a killed opscore) resumes where the archive ends: no gap;
- when ``pg_receivewal`` exits, it is started again after a short back-off (1 s doubling to
  30 s), as long as the stream runs; every exit is an event with its reason;
- ``--synchronous``: WAL is flushed to the archive as it arrives and only then confirmed to the
  slot, so the slot's position is what the archive safely holds;
- with an object store configured for the target, the completed segments are uploaded (and
  read back and checked) at each check;
- every ``interval`` seconds the stream checksums the segments completed since, reads the
  slot's retained WAL and writes its heartbeat into ``opscore-wal-stream.json`` beside the
  archive (``opscore backup wal status`` and the report show it). Retained WAL above
  ``max_retained_bytes`` is an event (warning): the receiver is not keeping up;
- a stream that is not running cannot watch its slot: ``api.guard_wal_slot`` (``backup wal
  guard``, and the streaming flow before each run) drops an opscore slot that holds more
  than the limit while no stream is alive, and records that a gap will follow — the
  target's disk matters more than the archive's continuity.

The child dies with the stream (see :mod:`ops_core.commands`); SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import commands
from ..errors import CommandFailed
from . import runner, wal

log = logging.getLogger("opscore.backup.stream")
DEFAULT_MAX_RETAINED = 1024**3  # 1 GiB


def default_slot(target: str) -> str:
    return ("opscore_" + re.sub(r"[^a-z0-9_]", "_", target.lower()))[:63]


@dataclass
class StreamState:
    target: str
    slot: str
    wal_dir: str
    runner: dict[str, Any]
    started_at: str
    heartbeat: str | None = None
    receiver_pid: int | None = None
    receiver_running: bool = False
    restarts: int = 0
    retained_bytes: int | None = None
    last_segment: str | None = None
    stopped_at: str | None = None
    uploaded: int | None = None  # segments copied to the object store by this stream
    events: list[dict[str, Any]] = field(default_factory=list)

    def event(self, kind: str, message: str) -> None:
        log.log(logging.WARNING if kind != "info" else logging.INFO, "%s: %s", kind, message)
        seq = self.events[-1]["seq"] + 1 if self.events else 1
        entry = {"seq": seq, "at": _now(), "kind": kind, "message": message}
        self.events = (self.events + [entry])[-50:]

    def write(self) -> None:
        path = Path(self.wal_dir) / wal.STREAM_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.__dict__, default=str))
        tmp.replace(path)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def stream_alive(state: dict[str, Any]) -> bool:
    """Is the stream that wrote ``state`` (read_stream_state) still running on this host?"""
    return bool(state) and not state.get("stopped_at") and runner.alive(state.get("runner")) is True


def stream(
    *,
    target: str,
    pg_receivewal: Path,
    dsn: str,
    env: dict[str, str],
    wal_dir: Path,
    seg_size: int,
    slot: str,
    slot_info: Callable[[], dict[str, Any] | None],
    duration: float | None = None,
    interval: float = 5.0,
    max_retained_bytes: int = DEFAULT_MAX_RETAINED,
    stop: threading.Event | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    upload: Callable[[], Any] | None = None,
) -> StreamState:
    """Run the continuous receiver until ``stop`` is set, SIGTERM/SIGINT, or ``duration``."""
    wal_dir.mkdir(parents=True, exist_ok=True)
    existing = wal.read_stream_state(wal_dir)
    if stream_alive(existing):
        from ..errors import InvalidInput

        raise InvalidInput(
            f"A WAL stream for {target!r} already runs (pid {existing['runner']['pid']}).",
            "Run one stream per target; stop the other one first.",
        )
    stop = stop or threading.Event()
    state = StreamState(target, slot, str(wal_dir), runner.me(), _now())
    emitted = 0

    def emit() -> None:
        nonlocal emitted
        for e in state.events:
            if e["seq"] > emitted and on_event:
                on_event(e)
        emitted = state.events[-1]["seq"] if state.events else 0

    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old_handlers[sig] = signal.signal(sig, lambda *_: stop.set())
    child: dict[str, Any] = {"pgid": None, "thread": None, "error": None}

    def run_receiver() -> None:
        try:
            commands.run(
                [pg_receivewal, "-d", dsn, "-D", wal_dir, "--slot", slot, "--no-loop", "-v",
                 "--synchronous", "--status-interval", "1"],
                env=env,
                on_spawn=lambda pid: child.__setitem__("pgid", pid),
            )  # fmt: skip
            child["error"] = "pg_receivewal exited"
        except CommandFailed as exc:
            child["error"] = exc.message
        except Exception as exc:  # noqa: BLE001 - reported as an event, the loop restarts it
            child["error"] = f"{type(exc).__name__}: {exc}"

    deadline = time.monotonic() + duration if duration else None
    backoff = 1.0
    next_start = 0.0
    next_check = 0.0
    state.event("info", f"streaming WAL of {target} on slot {slot} into {wal_dir}")
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            now = time.monotonic()
            th = child["thread"]
            if th is not None and not th.is_alive():
                state.receiver_running = False
                state.event("receiver_exit", child["error"] or "pg_receivewal exited")
                if "has already been removed" in (child["error"] or ""):
                    state.event(
                        "gap",
                        "the target no longer has the WAL after the archive's end: the archive "
                        "has a gap from here (see `opscore backup wal status`)",
                    )
                child["thread"] = None
                next_start = now + backoff
                backoff = min(backoff * 2, 30.0)
            if child["thread"] is None and now >= next_start:
                child["pgid"] = None
                t = threading.Thread(target=run_receiver, name="pg_receivewal", daemon=True)
                t.start()
                child["thread"] = t
                state.restarts += 1 if state.heartbeat else 0
                state.receiver_running = True
            if now >= next_check:
                _check(state, wal_dir, seg_size, slot_info, max_retained_bytes)
                _upload(state, upload)
                state.receiver_pid = child["pgid"]
                if state.receiver_running and child["pgid"]:
                    backoff = 1.0 if now - next_start > 10 else backoff
                state.write()
                emit()
                next_check = now + interval
            stop.wait(0.2)
    finally:
        if child["pgid"]:
            commands.kill_group(child["pgid"], signal.SIGINT)  # pg_receivewal: flush, exit
        th = child["thread"]
        if th is not None:
            th.join(timeout=30)
            if th.is_alive() and child["pgid"]:
                commands.kill_group(child["pgid"])
                th.join(timeout=10)
        state.receiver_running = False
        _check(state, wal_dir, seg_size, slot_info, max_retained_bytes)
        _upload(state, upload)
        state.stopped_at = _now()
        state.event("info", "stream stopped")
        state.write()
        emit()
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
    return state


def _upload(state: StreamState, upload: Callable[[], Any] | None) -> None:
    """Copy newly completed segments to the object store (each verified by checksum)."""
    if upload is None:
        return
    try:
        rep = upload()
        if rep.files:
            state.uploaded = (state.uploaded or 0) + rep.files
    except Exception as exc:  # noqa: BLE001 - the next check retries; the local archive is fine
        state.event("upload_failed", f"WAL upload to the object store failed: {exc}")


def _check(
    state: StreamState,
    wal_dir: Path,
    seg_size: int,
    slot_info: Callable[[], dict[str, Any] | None],
    max_retained: int,
) -> None:
    wal.checksum_archived(wal_dir, seg_size)
    contents = wal.scan(wal_dir, seg_size)
    names = [
        wal.segment_name(t, s, seg_size) for t in contents.timelines() for s in contents.segments(t)
    ]
    state.last_segment = max(names) if names else None
    state.heartbeat = _now()
    try:
        info = slot_info()
    except Exception as exc:  # noqa: BLE001 - the target may be restarting
        info = None
        log.debug("slot check failed: %s", exc)
    if info is None:
        return
    was_over = (state.retained_bytes or 0) > max_retained
    state.retained_bytes = info.get("retained_bytes")
    if state.retained_bytes is not None and state.retained_bytes > max_retained and not was_over:
        state.event(
            "retained",
            f"slot {state.slot} holds {state.retained_bytes // 1024**2} MB of WAL on the target "
            f"(limit {max_retained // 1024**2} MB): the receiver is not keeping up",
        )


def archiving_warning(
    wal_dir: Path, target: str, lsn: str, seg_size: int, by_command: bool = False
) -> str | None:
    """Why a restore point at ``lsn`` may not be reachable: no stream archives the target's
    WAL, and the archive does not hold that LSN yet. None when it is archived (or will be)."""
    if stream_alive(wal.read_stream_state(wal_dir)):
        return None
    if by_command:  # the server's archive_command fills this archive
        return None
    contents = wal.scan(wal_dir, seg_size)
    seg = wal.segno_of(lsn, seg_size)
    if any(s > seg for t in contents.timelines() for s in contents.complete.get(t, set())):
        return None  # the archive already holds WAL past the point
    return (
        f"WAL of {target!r} is not being archived (no `opscore backup wal stream` running), so "
        f"this restore point (LSN {lsn}) cannot be reached by a restore until the WAL up to it "
        f"is archived: run `opscore backup wal stream --target {target}` (continuous) or "
        f"`opscore backup wal receive --target {target}` now."
    )
