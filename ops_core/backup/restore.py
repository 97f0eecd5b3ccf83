"""Restore a backup into a new data directory, optionally to a point in time, and prove it.

- A chain (full + incrementals) is combined with ``pg_combinebackup``; a full backup is copied.
- Point-in-time recovery (a time, an LSN, a named restore point, or the end of the archive)
  is first proven against the archive (:func:`prove_coverage`, over ``walcheck``): readable
  WAL from the backup's start to the target, a time mapped to the commit recovery stops
  before; otherwise it is refused with the reason (a gap, a damaged segment, the end of the
  archive) before anything is written.
- The WAL the recovery needs is copied into the restored ``pg_wal`` (a ``.partial`` segment
  under its complete name) and ``restore_command = 'false'``: the directory recovers on its
  own and never reads WAL that was not proven. Recovery settings go into
  ``postgresql.auto.conf`` with ``recovery.signal`` and ``archive_mode = 'off'``.
- :func:`start_and_check` then starts the restored server on a free port, checks from its log
  that it reached the target, and stops it (or keeps it running as a clone).
- The destination must be new or empty and is removed again if the restore fails.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from .. import commands
from ..config import get_settings
from ..errors import InvalidInput, NotFound, OpsCoreError
from . import catalog, wal, walcheck
from .binaries import major_of, pg_bin
from .catalog import Backup
from .server import ThrowawayServer, chown_tree
from .store import BackupStore, dir_size


@dataclass
class RecoveryTarget:
    time: datetime | None = None
    lsn: str | None = None
    name: str | None = None
    latest: bool = False  # replay all archived WAL (no target)

    @property
    def pitr(self) -> bool:
        return bool(self.time or self.lsn or self.name or self.latest)

    def describe(self) -> str:
        if self.time:
            return f"time {self.time.isoformat()}"
        if self.lsn:
            return f"LSN {self.lsn}"
        if self.name:
            return f"restore point {self.name!r}"
        return "end of the WAL archive" if self.latest else "end of the backup"


@dataclass
class RestoreResult:
    backup_id: str
    chain: list[str]
    destination: str
    recovery_target: str
    wal_segments: int
    settings: dict[str, str]
    duration_s: float
    size_bytes: int
    server_major: int
    os_user: str | None
    notes: list[str] = field(default_factory=list)
    # what the archive proved (PITR), and what starting the restored server showed
    coverage: dict[str, Any] | None = None
    proof: dict[str, Any] | None = None
    clone: dict[str, Any] | None = None  # with --start: {"clone", "url", "port"}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- checks (nothing written)
def check_destination(dest: Path) -> bool:
    """Raise unless ``dest`` is absent or an empty directory; return whether it exists."""
    if dest.exists():
        if not dest.is_dir():
            raise InvalidInput(
                f"The restore destination {dest} exists and is not a directory.",
                "Give a new directory path; nothing was changed.",
            )
        if any(dest.iterdir()):
            raise InvalidInput(
                f"The restore destination {dest} is not empty; opscore restores only into a "
                "new or empty directory.",
                "Give a new directory path (the existing one was not touched).",
            )
        return True
    return False


def chain_of(conn: psycopg.Connection, backup: Backup) -> list[Backup]:
    chain = [backup]
    while chain[0].parent_id:
        chain.insert(0, catalog.get(conn, chain[0].parent_id))
    return chain


def resolve_chain(
    conn: psycopg.Connection, backup: Backup, relocate: dict[str, Path] | None = None
) -> list[Backup]:
    """The backups to combine, full first; each must be usable and present in the store
    (``relocate`` maps backup ids to where their files are instead, e.g. downloaded)."""
    chain = chain_of(conn, backup)
    for b in chain:
        if relocate and b.backup_id in relocate:
            b.path = str(relocate[b.backup_id])
    for b in chain:
        if not b.usable:
            raise InvalidInput(
                f"Backup {b.backup_id} (in the chain of {backup.backup_id}) is {b.status}; it "
                "cannot be restored.",
                "Restore another backup (`opscore backup list --target T`).",
            )
        if not (Path(b.path) / "data" / "backup_manifest").is_file():
            raise NotFound(
                f"The files of backup {b.backup_id} are missing from the store ({b.path}).",
                "Restore another backup; `opscore backup recatalog` re-reads the store.",
            )
    return chain


def choose_backup(
    candidates: list[Backup], target: RecoveryTarget, target_lsn: str | None
) -> Backup:
    """The newest usable physical backup that ends before the recovery target."""
    usable = [b for b in candidates if b.physical and b.usable and b.stop_lsn]
    if target.time:
        usable = [b for b in usable if b.finished_at and b.finished_at <= target.time]
    elif target_lsn:
        usable = [b for b in usable if wal.parse_lsn(b.stop_lsn) <= wal.parse_lsn(target_lsn)]
    if not usable:
        raise InvalidInput(
            f"No usable backup ends before the recovery target ({target.describe()}).",
            "Pick a later target, or check `opscore backup list` for a backup taken earlier.",
        )
    return usable[-1]


def check_target_after_backup(backup: Backup, target: RecoveryTarget, lsn: str | None) -> None:
    if target.time and backup.finished_at and target.time < backup.finished_at:
        raise InvalidInput(
            f"The recovery target time {target.time.isoformat()} is before backup "
            f"{backup.backup_id} finished ({backup.finished_at.isoformat()}); a backup can only "
            "be rolled forward.",
            "Choose a later time, or restore an older backup (omit --backup to let opscore "
            "pick the newest backup before the target). Nothing was changed.",
        )
    if lsn and backup.stop_lsn and wal.parse_lsn(lsn) < wal.parse_lsn(backup.stop_lsn):
        raise InvalidInput(
            f"The recovery target ({target.describe()}, LSN {lsn}) is before the end of backup "
            f"{backup.backup_id} (LSN {backup.stop_lsn}).",
            "Choose a later target or an older backup. Nothing was changed.",
        )


@dataclass
class Coverage:
    """What the archive proves about a point-in-time restore of one backup."""

    run: walcheck.Run
    upto_seg: int  # last segment the recovery needs
    target_lsn: str | None  # where recovery stops (time: the first commit after it)
    detail: str

    def as_dict(self, seg_size: int) -> dict[str, Any]:
        return {
            "wal": self.run.as_dict(seg_size),
            "target_lsn": self.target_lsn,
            "detail": self.detail,
        }


def prove_coverage(
    check: walcheck.ArchiveCheck, backup: Backup, lsn: str | None, target: RecoveryTarget
) -> Coverage:
    """The archive's readable WAL covers backup start -> recovery target, or a refusal that
    says why (a gap, a damaged segment, the end of the archive) and what to do."""
    assert backup.timeline is not None and backup.start_lsn and backup.stop_lsn
    seg = check.seg_size
    start_seg = wal.segno_of(backup.start_lsn, seg)
    start_name = wal.segment_name(backup.timeline, start_seg, seg)
    run = check.run_for(backup.timeline, start_seg)
    if run is None:
        bad = next((d for d in check.damaged if d.segment == start_name), None)
        raise NotFound(
            f"The WAL archive has no readable WAL from the start of backup {backup.backup_id} "
            f"(segment {start_name} is " + (f"damaged: {bad.reason})." if bad else "missing)."),
            "Point-in-time recovery needs archived WAL from the backup's start: restore another "
            "backup, or restore this one without a recovery target. Nothing was changed.",
        )
    stop = wal.parse_lsn(backup.stop_lsn)
    end = wal.format_lsn(run.end_lsn)
    last_t = run.last_xact_time()
    readable = (
        f"WAL from backup {backup.backup_id} is readable up to LSN {end}"
        + (f" (last commit {last_t.isoformat()})" if last_t else "")
        + f"; it ends at the {run.end_detail}"
    )
    if run.end_lsn < stop:
        raise NotFound(
            f"The archive does not reach the end of backup {backup.backup_id} (LSN "
            f"{backup.stop_lsn}): {readable}.",
            "Restore without a recovery target (the backup carries its own WAL), or another "
            "backup. Nothing was changed.",
        )
    if target.time:
        hit = run.first_xact_after(target.time, wal.parse_lsn(backup.start_lsn))
        if hit is None:
            if run.ended_by == "end of archive":
                raise NotFound(
                    f"No transaction that committed after {target.time.isoformat()} is in the "
                    f"archive yet, so recovery could not tell it has reached that time: "
                    f"{readable}.",
                    "Restore with --latest (everything archived), pick an earlier time, or "
                    "archive more WAL first. Nothing was changed.",
                )
            raise NotFound(
                f"The recovery target time {target.time.isoformat()} cannot be reached from "
                f"backup {backup.backup_id}: it falls after the last readable commit, before "
                f"the {run.end_detail}. {readable}.",
                "Pick a time before that commit, or a backup taken after the gap. Nothing was "
                "changed.",
            )
        if hit[0] < stop:
            raise InvalidInput(
                f"A transaction committed after {target.time.isoformat()} (at "
                f"{hit[1].isoformat()}) while backup {backup.backup_id} was running; recovery "
                "cannot stop before the backup is consistent.",
                "Choose a later time or an older backup. Nothing was changed.",
            )
        return Coverage(
            run,
            min(run.last_seg, wal.segno_of(hit[0], seg) + 1),
            wal.format_lsn(hit[0]),
            f"time {target.time.isoformat()}: recovery stops before the commit at LSN "
            f"{wal.format_lsn(hit[0])} ({hit[1].isoformat()})",
        )
    if lsn:
        value = wal.parse_lsn(lsn)
        if value >= run.end_lsn:
            raise NotFound(
                f"The recovery target ({target.describe()}, LSN {lsn}) is beyond the readable "
                f"WAL: {readable}.",
                "Choose an earlier target, or receive more WAL first "
                "(`opscore backup wal receive --target T`). Nothing was changed.",
            )
        if (
            target.name
            and run.restore_points
            and target.name not in {n for _l, n in run.restore_points}
        ):
            raise NotFound(
                f"The restore point {target.name!r} is not in the archived WAL of backup "
                f"{backup.backup_id}.",
                "Choose another restore point or backup. Nothing was changed.",
            )
        return Coverage(
            run, min(run.last_seg, wal.segno_of(value, seg) + 1), lsn, target.describe()
        )
    # latest: the whole archive must be reachable
    if run.ended_by != "end of archive":
        raise NotFound(
            f"Recovery to the end of the archive is not possible: {readable}; the WAL after it "
            "cannot be replayed.",
            f"Restore to --lsn {end} (or a time before the last readable commit) to recover "
            "what is reachable. Nothing was changed.",
        )
    return Coverage(run, run.last_seg, end, f"end of the archive, LSN {end}")


# ---------------------------------------------------------------- writing
def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def recovery_settings(store: BackupStore, target: RecoveryTarget) -> dict[str, str]:
    store.check_safe_path()
    settings = {
        # the WAL recovery needs is copied into pg_wal (proven readable first); a failing
        # restore_command keeps recovery from reading past that into unproven WAL
        "restore_command": "false",
        "recovery_target_timeline": "latest",
    }
    if target.time:
        settings["recovery_target_time"] = target.time.astimezone(UTC).isoformat(sep=" ")
    elif target.lsn:
        settings["recovery_target_lsn"] = target.lsn
    elif target.name:
        settings["recovery_target_name"] = target.name
    if not target.latest:
        settings["recovery_target_action"] = "promote"
    return settings


# settings a server in recovery must have at least as high as the primary had (pg_controldata)
CONTROL_SETTINGS = {
    "max_connections setting": "max_connections",
    "max_worker_processes setting": "max_worker_processes",
    "max_wal_senders setting": "max_wal_senders",
    "max_prepared_xacts setting": "max_prepared_transactions",
    "max_locks_per_xact setting": "max_locks_per_transaction",
}


def _control_settings(major: int, dest: Path) -> dict[str, str]:
    res = commands.run([pg_bin(major, "pg_controldata"), dest])
    out = {}
    for line in res.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in CONTROL_SETTINGS and value.strip().isdigit():
            out[CONTROL_SETTINGS[key.strip()]] = value.strip()
    return out


def _ensure_config_files(dest: Path, major: int, notes: list[str]) -> None:
    # servers packaged like Debian's keep postgresql.conf/pg_hba.conf outside the data directory
    if not (dest / "postgresql.conf").exists():
        lines = [
            "# written by opscore restore: the backed-up server kept its configuration outside",
            "# its data directory; copy your settings here before using this server.",
            "# Values the primary had (from pg_controldata), needed to recover:",
        ]
        lines += [f"{k} = {v}" for k, v in _control_settings(major, dest).items()]
        (dest / "postgresql.conf").write_text("\n".join(lines) + "\n")
        notes.append("postgresql.conf was not in the backup; a minimal one was written.")
    if not (dest / "pg_hba.conf").exists():
        (dest / "pg_hba.conf").write_text("# written by opscore restore\nlocal all all peer\n")
        notes.append(
            "pg_hba.conf was not in the backup; one allowing local peer login was written."
        )
    if not (dest / "pg_ident.conf").exists():
        (dest / "pg_ident.conf").write_text("")


def restore(
    conn: psycopg.Connection,
    store: BackupStore,
    backup: Backup,
    dest: Path,
    target: RecoveryTarget,
    *,
    os_user: str | None,
    on_line: Any = None,
    relocate: dict[str, Path] | None = None,
) -> RestoreResult:
    """Restore ``backup`` (and its chain) into ``dest``; see the module docstring."""
    dest = Path(dest).absolute()
    existed = check_destination(dest)
    if not backup.physical:
        raise InvalidInput(
            f"Backup {backup.backup_id} is a logical dump; restore it with pg_restore.",
            f"pg_restore -d DBNAME {backup.path}/database.dump",
        )
    chain = resolve_chain(conn, backup, relocate)
    lsn = target.lsn
    if target.name:
        rp = catalog.get_restore_point(conn, backup.target_id, target.name)
        if rp is None:
            raise NotFound(
                f"There is no restore point named {target.name!r} for this target.",
                "List them with `opscore restore-point list --target T`.",
            )
        lsn = rp.lsn
    if lsn:
        wal.parse_lsn(lsn)
    check_target_after_backup(backup, target, lsn)
    seg_size = backup.wal_segment_size or wal.DEFAULT_SEGMENT_SIZE
    major = major_of(backup.server_version_num or 0)
    coverage = None
    if target.pitr:
        check = walcheck.check_archive(
            store.wal_dir,
            seg_size,
            pg_bin(major, "pg_waldump"),
            major,
            full=bool(target.time or target.name),
        )
        coverage = prove_coverage(check, backup, lsn, target)
    settings = recovery_settings(store, target) if target.pitr else {}
    combine = pg_bin(major, "pg_combinebackup") if len(chain) > 1 else None

    t0 = time.monotonic()
    notes: list[str] = []
    try:
        if combine is not None:
            commands.run(
                [combine, *[Path(b.path) / "data" for b in chain], "-o", dest]
                + ([] if get_settings().backup_sync else ["--no-sync"]),
                on_line=on_line,
            )
        else:
            shutil.copytree(Path(chain[0].path) / "data", dest, dirs_exist_ok=True, symlinks=True)
        (dest / "backup_manifest").unlink(missing_ok=True)
        _ensure_config_files(dest, major, notes)
        copied: list[str] = []
        if coverage is not None:
            assert backup.timeline is not None and backup.start_lsn is not None
            copied = wal.collect_for_restore(
                wal.scan(store.wal_dir, seg_size),
                store.wal_dir,
                backup.timeline,
                backup.start_lsn,
                dest / "pg_wal",
                last_seg=coverage.upto_seg,
            )
            with open(dest / "postgresql.auto.conf", "a") as fh:
                fh.write(
                    f"\n# recovery settings written by opscore restore of "
                    f"{backup.backup_id} ({target.describe()})\n"
                )
                for k, v in settings.items():
                    fh.write(f"{k} = {_quote(v)}\n")
                # a restored copy must never archive into the production store
                fh.write("archive_mode = 'off'\n")
            (dest / "recovery.signal").write_text("")
        dest.chmod(0o700)
        chown_tree(dest, os_user)
    except BaseException:
        if existed:
            for child in dest.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        else:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    return RestoreResult(
        backup_id=backup.backup_id,
        chain=[b.backup_id for b in chain],
        destination=str(dest),
        recovery_target=target.describe(),
        wal_segments=len(copied),
        settings=settings,
        duration_s=round(time.monotonic() - t0, 3),
        size_bytes=dir_size(dest),
        server_major=major,
        os_user=os_user,
        notes=notes,
        coverage=coverage.as_dict(seg_size) if coverage else None,
    )


# ---------------------------------------------------------------- proof: start it
STOP_RE = re.compile(r"LOG:\s+(recovery stopping .*)$")
LAST_XACT_RE = re.compile(r"LOG:\s+last completed transaction was at log time (.+)$")
REDO_DONE_RE = re.compile(r"LOG:\s+(redo done at \S+)")


def _log_time(text: str) -> datetime | None:
    text = text.strip()
    if re.search(r"[+-]\d\d$", text):
        text += ":00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def remove_restored(dest: Path) -> None:
    """Remove a restored directory whose restore failed (its contents if it pre-existed empty)."""
    shutil.rmtree(dest, ignore_errors=True)


def start_and_check(
    result: RestoreResult,
    target: RecoveryTarget,
    *,
    keep_running: bool = False,
    port: int | None = None,
) -> ThrowawayServer | None:
    """Start the restored directory on a free port, wait until recovery ended, check from the
    server's log that it reached its target, then stop it (unless ``keep_running``).

    Sets ``result.proof``. A server that does not start or stops short raises, with its log.
    PostgreSQL itself refuses to end recovery short of a configured target (FATAL: recovery
    ended before configured recovery target was reached); the log lines are the evidence.
    """
    srv = ThrowawayServer(Path(result.destination), result.server_major, result.os_user, port=port)
    try:
        srv.start()
        srv.wait_promoted()
        with srv.connect() as c:
            row = c.execute(
                "SELECT pg_current_wal_lsn()::text, "
                "(SELECT timeline_id FROM pg_control_checkpoint())"
            ).fetchone()
        assert row is not None
        log = srv.log_text()
    except BaseException:
        srv.stop()
        raise
    stops = [m.group(1) for m in map(STOP_RE.search, log.splitlines()) if m]
    last = [m.group(1) for m in map(LAST_XACT_RE.search, log.splitlines()) if m]
    redo = [m.group(1) for m in map(REDO_DONE_RE.search, log.splitlines()) if m]
    proof: dict[str, Any] = {
        "started": True,
        "port": srv.port,
        "promoted": True,
        "timeline": row[1],
        "wal_lsn": row[0],
        "recovery_stopping": stops[-1] if stops else None,
        "last_completed_transaction": last[-1] if last else None,
        "redo_done": redo[-1] if redo else None,
    }
    problem = None
    if target.pitr and not target.latest and not stops:
        problem = "its log shows no 'recovery stopping' line for the recovery target"
    elif target.latest and result.coverage:
        want = (result.coverage.get("wal") or {}).get("last_xact_time")
        got = _log_time(last[-1]) if last else None
        if want and (got is None or got != datetime.fromisoformat(want)):
            problem = (
                f"its last replayed transaction ({last[-1] if last else 'none'}) is not the "
                f"archive's last one ({want})"
            )
    proof["reached_target"] = problem is None
    result.proof = proof
    if problem:
        tail = srv.log_tail(20)
        srv.stop()
        raise OpsCoreError(
            f"The restored server in {result.destination} started but did not reach "
            f"{result.recovery_target}: {problem}.",
            f"Server log:\n{tail}",
        )
    if keep_running:
        return srv
    srv.stop()
    return None
