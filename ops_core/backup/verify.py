"""Verification: ``pg_verifybackup`` on a backup, and a test restore that proves it starts.

A test restore restores into a temporary directory, starts a throw-away server on it with the
binaries of the backup's major, runs ``bt_index_check`` (amcheck) on every valid b-tree index of
every database plus a sanity query, then stops and removes it. Results are recorded in
``backup_checks`` and set the backup's status to ``verified`` or ``corrupt``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from .. import commands
from ..errors import CommandFailed, OpsCoreError
from . import catalog, logical, wal, walcheck
from .binaries import major_of, pg_bin
from .catalog import Backup, Check
from .restore import RecoveryTarget, restore
from .server import ThrowawayServer
from .store import BackupStore

FILE_RE = re.compile(r'"([^"]+)"')

INDEXES_SQL = """
SELECT c.oid::regclass::text
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am am ON am.oid = c.relam
WHERE am.amname = 'btree' AND c.relkind = 'i' AND i.indisvalid AND i.indisready
  AND c.relpersistence <> 't'
ORDER BY c.oid
"""


@dataclass
class VerifyReport:
    backup_id: str
    ok: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def bad_files(self) -> list[str]:
        out: list[str] = []
        for c in self.checks:
            out += c.detail.get("files", [])
        return out

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checks"] = [c.as_dict() for c in self.checks]
        d["bad_files"] = self.bad_files
        return d


def run_verifybackup(major: int, data_dir: Path) -> tuple[bool, dict[str, Any]]:
    """``pg_verifybackup`` on one backup directory: (ok, detail with the damaged files)."""
    label_file = data_dir / "backup_label"
    label = label_file.read_text() if label_file.is_file() else ""
    # every damaged file is reported (no --exit-on-error); the WAL of an incremental backup is
    # checked when its chain is combined and restored
    args: list[str | Path] = [pg_bin(major, "pg_verifybackup")]
    if "INCREMENTAL FROM" in label:
        args.append("--no-parse-wal")
    args.append(data_dir)
    res = commands.run(args, check=False)
    errors = [ln.strip() for ln in res.stderr.splitlines() if "error:" in ln]
    files = sorted({m for ln in errors for m in FILE_RE.findall(ln)})
    files = [f for f in files if not f.startswith("/")]
    detail: dict[str, Any] = {"errors": errors[:50], "files": files}
    if res.returncode == 0:
        detail["summary"] = res.stdout.strip().splitlines()[-1:] or ["ok"]
    return res.returncode == 0, detail


def verify_wal_for(store: BackupStore, backup: Backup, major: int) -> tuple[bool, dict[str, Any]]:
    """The archived WAL a point-in-time restore of ``backup`` would replay: checksums and
    pg_waldump readability (see walcheck). Damage at or after the backup's start fails it."""
    seg = backup.wal_segment_size or wal.DEFAULT_SEGMENT_SIZE
    check = walcheck.check_archive(store.wal_dir, seg, pg_bin(major, "pg_waldump"), major)
    assert backup.start_lsn is not None and backup.timeline is not None
    start = wal.segno_of(backup.start_lsn, seg)
    relevant = [
        d
        for d in check.damaged
        if wal.parse_segment(d.segment, seg)[1] >= start
        and wal.parse_segment(d.segment, seg)[0] >= backup.timeline
    ]
    run = check.run_for(backup.timeline, start)
    detail: dict[str, Any] = {
        "checked_segments": check.checked_segments,
        "unchecksummed": check.unchecksummed[:50],
        "damaged": [d.as_dict() for d in relevant],
        "gaps": [g.as_dict() for g in check.gaps],
        "errors": [f"damaged WAL segment {d.segment}: {d.reason}" for d in relevant],
        "files": [f"wal/{d.segment}" for d in relevant],
        "pitr_reaches": run.as_dict(seg) if run else None,
    }
    if run is None and check.checked_segments:
        detail["errors"].append(
            f"no readable archived WAL from the backup's start ({backup.start_wal})"
        )
    return not relevant, detail


def test_restore(
    conn: psycopg.Connection,
    store: BackupStore,
    backup: Backup,
    *,
    os_user: str | None,
    superuser: str = "postgres",
    workdir: Path | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Restore into a temp dir, start it, amcheck every b-tree index, stop, remove."""
    major = major_of(backup.server_version_num or 0)
    tmp = Path(tempfile.mkdtemp(prefix="opscore-test-restore-", dir=workdir))
    dest = tmp / "data"
    detail: dict[str, Any] = {"major": major}
    try:
        res = restore(conn, store, backup, dest, RecoveryTarget(), os_user=os_user)
        detail["restored_bytes"] = res.size_bytes
        srv = ThrowawayServer(dest, major, os_user)
        with srv:
            srv.wait_promoted()
            checked, errors, dbs, relations = 0, [], [], {}
            with srv.connect(user=superuser) as c:
                dbs = [
                    r[0]
                    for r in c.execute(
                        "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname"
                    )
                ]
            for db in dbs:
                with srv.connect(db, user=superuser) as c:
                    c.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
                    for (idx,) in c.execute(INDEXES_SQL).fetchall():
                        try:
                            c.execute("SELECT bt_index_check(%s::regclass)", (idx,))
                            checked += 1
                        except psycopg.Error as exc:
                            errors.append(f"{db}: {idx}: {str(exc).strip()}")
                    # sanity query: the catalog of every database reads back
                    row = c.execute("SELECT count(*) FROM pg_class").fetchone()
                    relations[db] = row[0] if row else 0
            detail.update(
                databases=dbs, relations=relations, indexes_checked=checked, errors=errors[:50]
            )
        return not errors, detail
    except OpsCoreError as exc:
        detail["errors"] = [exc.message] + ([exc.hint] if exc.hint else [])
        return False, detail
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def verify(
    conn: psycopg.Connection,
    store: BackupStore,
    backup: Backup,
    *,
    test_restore_too: bool = False,
    os_user: str | None = None,
) -> VerifyReport:
    if backup.status in ("running", "failed"):
        raise OpsCoreError(
            f"Backup {backup.backup_id} is {backup.status}; there is nothing to verify.",
            "Verify a finished backup (`opscore backup list --target T`).",
        )
    report = VerifyReport(backup.backup_id, True)
    major = major_of(backup.server_version_num or 0)
    t0 = time.monotonic()
    if backup.kind == "logical":
        dump = Path(backup.path) / "database.dump"
        try:
            toc = logical.list_contents(str(pg_bin(major, "pg_restore")), str(dump))
            ok, detail = True, {"entries": len(toc)}
        except CommandFailed as exc:
            ok, detail = False, {"errors": [exc.message], "files": [dump.name]}
        report.checks.append(
            catalog.add_check(
                conn,
                backup.backup_id,
                "pg_restore_list",
                ok,
                detail,
                round(time.monotonic() - t0, 3),
            )
        )
        report.ok = ok
        return report
    data = Path(backup.path) / "data"
    if not data.is_dir():
        ok, detail = False, {"errors": [f"backup directory {data} is missing"], "files": []}
    else:
        ok, detail = run_verifybackup(major, data)
    report.checks.append(
        catalog.add_check(
            conn, backup.backup_id, "verifybackup", ok, detail, round(time.monotonic() - t0, 3)
        )
    )
    report.ok = ok
    if backup.timeline is not None and backup.start_lsn:
        t2 = time.monotonic()
        ok3, detail3 = verify_wal_for(store, backup, major)
        report.checks.append(
            catalog.add_check(
                conn,
                backup.backup_id,
                "wal_archive",
                ok3,
                detail3,
                round(time.monotonic() - t2, 3),
                sets_status=False,
            )
        )
        report.ok = report.ok and ok3
    if ok and test_restore_too:
        t1 = time.monotonic()
        ok2, detail2 = test_restore(conn, store, backup, os_user=os_user)
        report.checks.append(
            catalog.add_check(
                conn,
                backup.backup_id,
                "test_restore",
                ok2,
                detail2,
                round(time.monotonic() - t1, 3),
            )
        )
        report.ok = report.ok and ok2
    return report
