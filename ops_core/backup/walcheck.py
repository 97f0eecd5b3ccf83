"""What the WAL archive can really recover: checksums, readability, continuous runs, commit times.

Each complete segment gets a SHA-256 when it is archived (``checksums/<segment>.sha256``
beside the archive). :func:`check_archive` then proves what the archive holds:

1. every complete segment's checksum is compared (a mismatch makes it *damaged*; a segment
   archived before checksums existed is *unchecksummed* and relies on step 2);
2. the segments are split into runs without a missing or damaged segment;
3. ``pg_waldump`` (of the archive's major) reads each run from its first segment: every WAL
   record's CRC is checked, so a flipped byte that the checksum did not cover still shows as a
   read error inside a complete segment, which damages that segment and splits the run. The
   same pass collects the commit/abort timestamps (what ``recovery_target_time`` stops at) and
   the restore points, so a time can be mapped to the LSN where recovery will stop.

A run ends at what bounds it: a gap, a damaged segment, or the end of the archive. The
recoverable windows of a target are built from runs (:func:`windows`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import commands
from . import wal

CHECKSUM_DIR = wal.CHECKSUM_DIR
ERROR_AT_RE = re.compile(r"error in WAL record at ([0-9A-F]+/[0-9A-F]+): (.*)")
NO_FILE_RE = re.compile(r'could not find file "([0-9A-F]{24})"')
LSN_RE = re.compile(r"lsn: ([0-9A-F]+/[0-9A-F]+)")
XACT_RE = re.compile(
    r"desc: (?:COMMIT|ABORT)(?:_PREPARED)?(?: \d+:)? "
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC"
)
RESTORE_POINT_RE = re.compile(r"desc: RESTORE_POINT (.*)$")


# ---------------------------------------------------------------- checksums
# written by wal.py as segments are archived (wal.py owns them: walcheck reads wal, not back)
_sha256 = wal.sha256_file
checksum_path = wal.checksum_path
record_checksum = wal.record_checksum


def checksum_new(wal_dir: Path, contents: wal.ArchiveContents) -> list[str]:
    """Checksum every complete segment that has none yet (run right after archiving)."""
    return wal.checksum_complete(wal_dir, contents)


def compare_checksum(wal_dir: Path, name: str) -> bool | None:
    """True (matches), False (damaged), None (no checksum recorded)."""
    target = checksum_path(wal_dir, name)
    if not target.exists():
        return None
    return target.read_text().split()[0] == _sha256(wal_dir / name)


# ---------------------------------------------------------------- the proof
@dataclass
class Damaged:
    segment: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"segment": self.segment, "reason": self.reason}


@dataclass
class Run:
    """Continuous, readable WAL: from ``start_lsn`` (its first segment) to ``end_lsn``."""

    timeline: int
    first_seg: int
    last_seg: int
    start_lsn: int
    end_lsn: int
    ended_by: str  # "gap", "damaged", "end of archive"
    end_detail: str
    xacts: list[tuple[int, datetime]] = field(default_factory=list)  # commit/abort records
    restore_points: list[tuple[int, str]] = field(default_factory=list)

    def covers(self, timeline: int, segno: int) -> bool:
        return self.timeline == timeline and self.first_seg <= segno <= self.last_seg

    def last_xact_time(self, upto_lsn: int | None = None) -> datetime | None:
        """Time of the newest commit/abort at or before ``upto_lsn`` (default: the run's end)."""
        if not self.xacts:
            return None
        if upto_lsn is None:
            return self.xacts[-1][1]
        i = bisect_right([x[0] for x in self.xacts], upto_lsn)
        return self.xacts[i - 1][1] if i else None

    def first_xact_after(self, when: datetime, from_lsn: int = 0) -> tuple[int, datetime] | None:
        for lsn, ts in self.xacts:
            if lsn >= from_lsn and ts > when:
                return lsn, ts
        return None

    def as_dict(self, seg_size: int) -> dict[str, Any]:
        return {
            "timeline": self.timeline,
            "first_segment": wal.segment_name(self.timeline, self.first_seg, seg_size),
            "last_segment": wal.segment_name(self.timeline, self.last_seg, seg_size),
            "start_lsn": wal.format_lsn(self.start_lsn),
            "end_lsn": wal.format_lsn(self.end_lsn),
            "ended_by": self.ended_by,
            "end_detail": self.end_detail,
            "first_xact_time": self.xacts[0][1].isoformat() if self.xacts else None,
            "last_xact_time": self.xacts[-1][1].isoformat() if self.xacts else None,
        }


@dataclass
class ArchiveCheck:
    seg_size: int
    runs: list[Run]
    damaged: list[Damaged]
    gaps: list[wal.Gap]
    unchecksummed: list[str]
    checked_segments: int

    @property
    def ok(self) -> bool:
        return not self.damaged

    def run_for(self, timeline: int, segno: int) -> Run | None:
        return next((r for r in self.runs if r.covers(timeline, segno)), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked_segments": self.checked_segments,
            "runs": [r.as_dict(self.seg_size) for r in self.runs],
            "damaged": [d.as_dict() for d in self.damaged],
            "gaps": [g.as_dict() for g in self.gaps],
            "unchecksummed": self.unchecksummed,
        }


def _waldump(
    pg_waldump: Path, wal_dir: Path, contents: wal.ArchiveContents, tli: int, first: int, last: int,
    major: int, records: bool,
) -> tuple[list[str], str]:  # fmt: skip
    """pg_waldump over segments first..last of ``tli`` (links in a private directory: a
    .partial is read under its complete name); returns (stdout lines, stderr)."""
    tmp = Path(tempfile.mkdtemp(prefix="opscore-waldump-"))
    try:
        for segno in range(first, last + 1):
            src = contents.file_for(tli, segno, wal_dir)
            assert src is not None
            os.symlink(src.absolute(), tmp / wal.segment_name(tli, segno, contents.seg_size))
        args: list[str | Path] = [pg_waldump, "-p", tmp, "-t", str(tli)]
        if records:
            args += ["-r", "Transaction"] + (["-r", "XLOG"] if major >= 15 else [])
        else:
            args.append("--stats")
        args.append(wal.segment_name(tli, first, contents.seg_size))
        args.append(wal.segment_name(tli, last, contents.seg_size))
        res = commands.run(args, env={"TZ": "UTC"}, check=False, timeout=3600)
        return res.stdout.splitlines(), res.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _parse(out: list[str]) -> tuple[list[tuple[int, datetime]], list[tuple[int, str]]]:
    xacts, rps = [], []
    for line in out:
        m = LSN_RE.search(line)
        if not m:
            continue
        lsn = wal.parse_lsn(m.group(1))
        x = XACT_RE.search(line)
        if x:
            xacts.append((lsn, _parse_ts(x.group(1))))
            continue
        r = RESTORE_POINT_RE.search(line)
        if r:
            rps.append((lsn, r.group(1).strip()))
    return xacts, rps


def _last_xact(
    pg_waldump: Path, wal_dir: Path, contents: wal.ArchiveContents, tli: int, first: int,
    last: int, major: int, end: int,
) -> list[tuple[int, datetime]]:  # fmt: skip
    """The newest commit/abort before ``end`` in segments first..last: read backwards from the
    last segment, doubling the span until one is found."""
    span = 1
    while True:
        start = max(first, last - span + 1)
        out, _err = _waldump(pg_waldump, wal_dir, contents, tli, start, last, major, True)
        xacts = [x for x in _parse(out)[0] if x[0] < end]
        if xacts or start == first:
            return xacts[-1:]
        span *= 4


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def check_archive(
    wal_dir: Path, seg_size: int, pg_waldump: Path, major: int, *, full: bool = False
) -> ArchiveCheck:
    """Prove what the archive in ``wal_dir`` holds (see the module docstring).

    Every record of every run is read either way. ``full`` also collects every commit time and
    restore point (what mapping a recovery target time needs); otherwise ``pg_waldump --stats``
    keeps the output small and only the newest commit of each run is looked up (what the
    windows and a restore to the end need) — a busy archive has millions of commits."""
    contents = wal.scan(wal_dir, seg_size)
    damaged: dict[tuple[int, int], str] = {}
    unchecksummed = []
    checked = 0
    for tli in contents.timelines():
        for segno in sorted(contents.complete.get(tli, set())):
            name = wal.segment_name(tli, segno, seg_size)
            same = compare_checksum(wal_dir, name)
            checked += 1
            if same is False:
                damaged[(tli, segno)] = "checksum mismatch (the file changed after archiving)"
            elif same is None:
                unchecksummed.append(name)
    runs: list[Run] = []
    for tli in contents.timelines():
        segs = [s for s in contents.segments(tli) if (tli, s) not in damaged]
        # split into pieces without a missing or damaged segment
        pieces: list[list[int]] = []
        for s in segs:
            if pieces and s == pieces[-1][-1] + 1:
                pieces[-1].append(s)
            else:
                pieces.append([s])
        while pieces:
            piece = pieces.pop(0)
            first, last = piece[0], piece[-1]
            out, err = _waldump(pg_waldump, wal_dir, contents, tli, first, last, major, full)
            xacts, rps = _parse(out)
            end = (last + 1) * seg_size
            bad_at = ERROR_AT_RE.search(err)
            if bad_at:
                # "error in WAL record at <last good record>: <what> at <where it broke>"
                where = re.findall(r"([0-9A-F]+/[0-9A-F]+)", bad_at.group(2))
                end = wal.parse_lsn(where[-1] if where else bad_at.group(1))
                bad_seg = wal.segno_of(end, seg_size)
                last_is_partial = last in contents.partial.get(tli, set())
                if bad_seg < last or not last_is_partial:
                    # a record that cannot be read inside a complete segment: damage
                    damaged[(tli, bad_seg)] = (
                        f"unreadable WAL at {wal.format_lsn(end)}: {bad_at.group(2).strip()[:200]}"
                    )
                    rest = [s for s in piece if s > bad_seg]
                    if rest:
                        pieces.insert(0, rest)
                    if bad_seg == first:
                        continue
                    end = min(end, bad_seg * seg_size)
                    last = bad_seg - 1
                    xacts = [x for x in xacts if x[0] < end]
                    rps = [r for r in rps if r[0] < end]
            if not full:
                xacts = _last_xact(pg_waldump, wal_dir, contents, tli, first, last, major, end)
            ended_by, detail = _what_ends(contents, damaged, tli, last, seg_size)
            runs.append(Run(tli, first, last, first * seg_size, end, ended_by, detail, xacts, rps))
    damaged_list = [
        Damaged(wal.segment_name(t, s, seg_size), why) for (t, s), why in sorted(damaged.items())
    ]
    runs.sort(key=lambda r: (r.timeline, r.first_seg))
    return ArchiveCheck(seg_size, runs, damaged_list, contents.gaps(), unchecksummed, checked)


def _what_ends(
    contents: wal.ArchiveContents,
    damaged: dict[tuple[int, int], str],
    tli: int,
    last: int,
    seg_size: int,
) -> tuple[str, str]:
    nxt = last + 1
    name = wal.segment_name(tli, nxt, seg_size)
    if (tli, nxt) in damaged:
        return "damaged", f"damaged segment {name}: {damaged[(tli, nxt)]}"
    later = [s for s in contents.segments(tli) if s > last]
    if later:
        end_missing = wal.segment_name(tli, later[0] - 1, seg_size)
        return "gap", f"WAL gap: segments {name} to {end_missing} are missing"
    return "end of archive", "end of the archived WAL"
