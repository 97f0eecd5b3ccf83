"""The WAL archive of a store: WAL file names, receiving WAL, gaps, what a restore needs.

Three ways fill it: the continuous stream (``walstream.py``: ``pg_receivewal`` on an opscore
replication slot, restarted when it exits: what production targets use, since it needs only a
replication connection and changes nothing on the server but the slot), ``archive_command``
for the embedded server opscore owns (``targets/embedded.py``), and a bounded run
(``receive_wal(until_lsn=...)``: up to a position, then exit; backups, ``wal receive``, tests).

Each base backup streams its own WAL (``-X stream``); after a backup its complete segments are
also copied into the archive, so the archive starts at a backup even if nothing archived then.
``pg_receivewal`` keeps the segment it is writing as ``<name>.partial``; a restore uses a
``.partial`` segment when the complete one is not there (yet). Every complete segment gets a
SHA-256 in ``checksums/`` when archived; ``walcheck.py`` proves what the archive holds.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import commands
from ..errors import CommandFailed, InvalidInput

SEGMENT_RE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$")
HISTORY_RE = re.compile(r"^([0-9A-F]{8})\.history$")
DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
STATE_FILE = "opscore-wal-state.json"
STREAM_FILE = "opscore-wal-stream.json"
CHECKSUM_DIR = "checksums"


# ---------------------------------------------------------------- LSNs and names
def parse_lsn(lsn: str) -> int:
    m = re.fullmatch(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})", (lsn or "").strip())
    if not m:
        raise InvalidInput(
            f"{lsn!r} is not an LSN.", "An LSN looks like 0/3000060 (see pg_current_wal_lsn())."
        )
    return (int(m.group(1), 16) << 32) | int(m.group(2), 16)


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def segments_per_xlogid(seg_size: int) -> int:
    return 0x100000000 // seg_size


def segment_name(timeline: int, segno: int, seg_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    per = segments_per_xlogid(seg_size)
    return f"{timeline:08X}{segno // per:08X}{segno % per:08X}"


def segno_of(lsn: str | int, seg_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    value = parse_lsn(lsn) if isinstance(lsn, str) else lsn
    return value // seg_size


def parse_segment(name: str, seg_size: int = DEFAULT_SEGMENT_SIZE) -> tuple[int, int, bool]:
    """``(timeline, segment number, partial)`` of a WAL file name."""
    m = SEGMENT_RE.match(name)
    if not m:
        raise InvalidInput(f"{name!r} is not a WAL segment file name.")
    per = segments_per_xlogid(seg_size)
    return int(m.group(1), 16), int(m.group(2), 16) * per + int(m.group(3), 16), bool(m.group(4))


# ---------------------------------------------------------------- the archive's content
@dataclass
class Gap:
    timeline: int
    first_missing: str
    last_missing: str
    count: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ArchiveContents:
    seg_size: int
    complete: dict[int, set[int]] = field(default_factory=dict)
    partial: dict[int, set[int]] = field(default_factory=dict)
    histories: set[int] = field(default_factory=set)
    other: list[str] = field(default_factory=list)

    def has(self, tli: int, segno: int) -> bool:
        return segno in self.complete.get(tli, set()) or segno in self.partial.get(tli, set())

    def timelines(self) -> list[int]:
        return sorted(set(self.complete) | set(self.partial))

    def segments(self, tli: int) -> list[int]:
        return sorted(self.complete.get(tli, set()) | self.partial.get(tli, set()))

    def gaps(self) -> list[Gap]:
        """Missing segments between the first and the last segment of each timeline."""
        out = []
        for tli in self.timelines():
            segs = self.segments(tli)
            for a, b in zip(segs, segs[1:], strict=False):
                if b - a > 1:
                    out.append(
                        Gap(
                            tli,
                            segment_name(tli, a + 1, self.seg_size),
                            segment_name(tli, b - 1, self.seg_size),
                            b - a - 1,
                        )
                    )
        return out

    def continuous_from(self, tli: int, segno: int) -> int | None:
        """Last segment number reachable from ``segno`` without a gap on timelines >= tli
        (None when ``segno`` itself is missing)."""
        last = None
        cur = segno
        while any(self.has(t, cur) for t in self.timelines() if t >= tli):
            last = cur
            cur += 1
        return last

    def file_for(self, tli_min: int, segno: int, wal_dir: Path) -> Path | None:
        """The best file for ``segno`` on the highest timeline >= tli_min: complete first."""
        for tli in sorted((t for t in self.timelines() if t >= tli_min), reverse=True):
            name = segment_name(tli, segno, self.seg_size)
            if segno in self.complete.get(tli, set()):
                return wal_dir / name
            if segno in self.partial.get(tli, set()):
                return wal_dir / (name + ".partial")
        return None

    def size_summary(self) -> dict[str, Any]:
        n = sum(len(v) for v in self.complete.values())
        p = sum(len(v) for v in self.partial.values())
        return {"complete_segments": n, "partial_segments": p, "timelines": self.timelines()}


def scan(wal_dir: Path, seg_size: int = DEFAULT_SEGMENT_SIZE) -> ArchiveContents:
    out = ArchiveContents(seg_size)
    if not wal_dir.is_dir():
        return out
    for entry in wal_dir.iterdir():
        name = entry.name
        m = SEGMENT_RE.match(name)
        if m:
            tli, segno, partial = parse_segment(name, seg_size)
            (out.partial if partial else out.complete).setdefault(tli, set()).add(segno)
            continue
        h = HISTORY_RE.match(name)
        if h:
            out.histories.add(int(h.group(1), 16))
        elif name not in (STATE_FILE, STREAM_FILE, CHECKSUM_DIR) and not name.endswith(".tmp"):
            out.other.append(name)
    # a complete segment supersedes its .partial
    for tli, segs in out.partial.items():
        segs -= out.complete.get(tli, set())
    return out


# ---------------------------------------------------------------- filling the archive
def seed_from_backup(
    backup_pg_wal: Path, wal_dir: Path, stop_lsn: str, seg_size: int = DEFAULT_SEGMENT_SIZE
) -> list[str]:
    """Copy the WAL a base backup streamed into the archive (never overwriting).

    Segments before the one holding the stop LSN are complete; that last one is copied as
    ``.partial`` (it is valid only up to the stop LSN) unless the archive has it already.
    """
    wal_dir.mkdir(parents=True, exist_ok=True)
    stop_seg = segno_of(stop_lsn, seg_size)
    copied = []
    for f in sorted(backup_pg_wal.iterdir()) if backup_pg_wal.is_dir() else []:
        m = SEGMENT_RE.match(f.name)
        if m and not m.group(4):
            tli, segno, _ = parse_segment(f.name, seg_size)
            dest_name = f.name if segno < stop_seg else f.name + ".partial"
            if (wal_dir / f.name).exists() or (wal_dir / dest_name).exists():
                continue
            _copy_atomic(f, wal_dir / dest_name)
            if dest_name == f.name:
                (wal_dir / (f.name + ".partial")).unlink(missing_ok=True)
                record_checksum(wal_dir, f.name)
            copied.append(dest_name)
        elif HISTORY_RE.match(f.name) and not (wal_dir / f.name).exists():
            _copy_atomic(f, wal_dir / f.name)
            copied.append(f.name)
    return copied


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checksum_path(wal_dir: Path, name: str) -> Path:
    return wal_dir / CHECKSUM_DIR / f"{name}.sha256"


def record_checksum(wal_dir: Path, name: str) -> str:
    """Checksum an archived complete segment (never overwrites an existing checksum)."""
    target = checksum_path(wal_dir, name)
    if target.exists():
        return target.read_text().split()[0]
    target.parent.mkdir(exist_ok=True)
    digest = sha256_file(wal_dir / name)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(f"{digest}  {name}\n")
    tmp.replace(target)
    return digest


def checksum_complete(wal_dir: Path, contents: ArchiveContents) -> list[str]:
    """Checksum every complete segment of ``contents`` that has none yet."""
    done = []
    for tli, segs in contents.complete.items():
        for segno in sorted(segs):
            name = segment_name(tli, segno, contents.seg_size)
            if not checksum_path(wal_dir, name).exists():
                record_checksum(wal_dir, name)
                done.append(name)
    return done


def checksum_archived(wal_dir: Path, seg_size: int) -> list[str]:
    """Checksum the complete segments that have none yet (right after they were archived)."""
    return checksum_complete(wal_dir, scan(wal_dir, seg_size))


def _copy_atomic(src: Path, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dest)


def receive_wal(
    pg_receivewal: Path,
    dsn: str,
    wal_dir: Path,
    *,
    until_lsn: str | None,
    env: dict[str, str] | None = None,
    slot: str | None = None,
    timeout: float | None = 600,
    on_line: Callable[[str], None] | None = None,
    seg_size: int = DEFAULT_SEGMENT_SIZE,
) -> dict[str, Any]:
    """Run ``pg_receivewal`` into ``wal_dir``; with ``until_lsn`` it stops there and exits.

    It resumes where the archive ends (the newest segment or .partial in the directory), or
    at the server's current position when the archive is empty.
    """
    wal_dir.mkdir(parents=True, exist_ok=True)
    args: list[str | Path] = [pg_receivewal, "-d", dsn, "-D", wal_dir, "--no-loop", "-v"]
    if until_lsn:
        # pg_receivewal stops at the first message that reaches --endpos; a message ending
        # exactly at it is not enough, so on an idle server it would wait for the next WAL
        # record (up to 15 s). One byte earlier makes the message ending at until_lsn the last.
        endpos = format_lsn(max(parse_lsn(until_lsn) - 1, 0))
        args += ["--endpos", endpos, "--status-interval", "1"]
    if slot:
        args += ["--slot", slot]
    started = datetime.now(UTC)
    try:
        commands.run(args, env=env, timeout=timeout, on_line=on_line)
    except CommandFailed as exc:
        checksum_archived(wal_dir, seg_size)
        if "has already been removed" in exc.stderr:
            raise CommandFailed(
                "pg_receivewal cannot continue the archive: the server has already removed "
                "the WAL segment that follows the archive's newest one (a gap).",
                "Take a new full backup (`opscore backup full`), which restarts the archive; "
                "run the WAL receiver continuously (or with a replication slot) to avoid gaps.",
                returncode=exc.returncode,
                stderr=exc.stderr,
            ) from exc
        raise
    checksum_archived(wal_dir, seg_size)
    state = {"received_until": until_lsn, "at": datetime.now(UTC).isoformat()}
    state["started_at"] = started.isoformat()
    (wal_dir / STATE_FILE).write_text(json.dumps(state))
    return state


def catch_up(
    pg_receivewal: Path,
    dsn: str,
    wal_dir: Path,
    backup_pg_wal: Path,
    stop_lsn: str,
    seg_size: int,
    env: dict[str, str] | None = None,
) -> str:
    """After a base backup: bring the archive up to the backup's stop LSN.

    An empty archive starts with the WAL the backup streamed. Otherwise ``pg_receivewal``
    continues from the archive's newest segment to the stop LSN, so the archive stays
    continuous across backups; if the server no longer has that WAL (a gap), the archive
    restarts at this backup (the gap is reported by :meth:`ArchiveContents.gaps`).
    """
    contents = scan(wal_dir, seg_size)
    newest = max((s for t in contents.timelines() for s in contents.segments(t)), default=None)
    if newest is None:
        seed_from_backup(backup_pg_wal, wal_dir, stop_lsn, seg_size)
        return "seeded"
    if newest >= segno_of(stop_lsn, seg_size):
        return "covered"
    try:
        receive_wal(
            pg_receivewal, dsn, wal_dir, until_lsn=stop_lsn, env=env, timeout=300, seg_size=seg_size
        )
        return "received"
    except CommandFailed:
        seed_from_backup(backup_pg_wal, wal_dir, stop_lsn, seg_size)
        return "seeded after a gap"


def read_stream_state(wal_dir: Path) -> dict[str, Any]:
    """What the continuous receiver (``stream``) last wrote: pid, slot, heartbeat, events."""
    try:
        return json.loads((wal_dir / STREAM_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def read_state(wal_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((wal_dir / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


# ---------------------------------------------------------------- what a restore needs
def collect_for_restore(
    contents: ArchiveContents,
    wal_dir: Path,
    timeline: int,
    start_lsn: str,
    dest: Path,
    last_seg: int,
) -> list[str]:
    """Copy WAL needed to recover from ``start_lsn`` into ``dest`` (a restored ``pg_wal``):
    segments from the backup's start to ``last_seg`` (proven present and readable by the
    caller); a ``.partial`` segment is copied under its complete name.
    """
    seg = contents.seg_size
    first = segno_of(start_lsn, seg)
    last = last_seg
    copied = []
    for segno in range(first, last + 1):
        src = contents.file_for(timeline, segno, wal_dir)
        assert src is not None
        name = src.name.removesuffix(".partial")
        _copy_atomic(src, dest / name)
        copied.append(name)
    for tli in contents.histories:
        name = f"{tli:08X}.history"
        _copy_atomic(wal_dir / name, dest / name)
    return copied


def removable_segments(contents: ArchiveContents, keep_from: tuple[int, int] | None) -> list[str]:
    """WAL file names older than ``keep_from`` = (timeline, segno) of the oldest backup kept.

    Segments of any timeline below that segment number go; with nothing to keep (no physical
    backup kept), nothing is removed: WAL without a backup is useless but removing it is left
    to an explicit delete of the store.
    """
    if keep_from is None:
        return []
    _tli, first = keep_from
    out = []
    for tli in contents.timelines():
        for segno in sorted(contents.complete.get(tli, set())):
            if segno < first:
                out.append(segment_name(tli, segno, contents.seg_size))
        for segno in sorted(contents.partial.get(tli, set())):
            if segno < first:
                out.append(segment_name(tli, segno, contents.seg_size) + ".partial")
    return sorted(out)


SLOT_RE = re.compile(r"^[a-z0-9_]{1,63}$")


def check_slot_name(slot: str) -> str:
    """A slot name PostgreSQL accepts (1-63 lower-case letters, digits, underscores)."""
    if not SLOT_RE.match(slot or ""):
        raise InvalidInput(
            f"{slot!r} is not a valid replication slot name.",
            "Use 1-63 lower-case letters, digits and underscores.",
        )
    return slot
