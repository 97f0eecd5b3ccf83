"""Pure parts of the backup area: WAL names and gaps, the binaries rule, recovery settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ops_core.backup import binaries, wal
from ops_core.backup.restore import RecoveryTarget, recovery_settings
from ops_core.backup.store import BackupStore, check_backup_id
from ops_core.config import reset_settings_cache
from ops_core.errors import InvalidInput, NotSupported
from ops_core.targets.embedded import bin_dir


def test_wal_names_lsns_and_gaps(tmp_path: Path):
    assert wal.parse_lsn("0/3000060") == 0x3000060
    assert wal.format_lsn(0x1_0300_0060) == "1/3000060"
    assert wal.segment_name(1, 0x1FF) == "000000010000000100000000"[:16] + "000000FF"
    assert wal.segno_of("1/2000000") == 256 + 2
    assert wal.parse_segment("000000020000000100000003.partial") == (2, 256 + 3, True)
    with pytest.raises(InvalidInput):
        wal.parse_lsn("3000060")
    for name in [
        "000000010000000000000002",
        "000000010000000000000003",
        "000000010000000000000006",
        "000000010000000000000007.partial",
        "00000002.history",
        "opscore-wal-state.json",
    ]:
        (tmp_path / name).write_text("")
    c = wal.scan(tmp_path)
    assert c.histories == {2}
    gaps = c.gaps()
    assert [(g.first_missing, g.last_missing, g.count) for g in gaps] == [
        ("000000010000000000000004", "000000010000000000000005", 2)
    ]
    assert c.continuous_from(1, 2) == 3 and c.continuous_from(1, 6) == 7
    assert c.continuous_from(1, 4) is None
    assert wal.removable_segments(c, (1, 6)) == [
        "000000010000000000000002",
        "000000010000000000000003",
    ]


def test_binaries_rule_and_missing_majors(monkeypatch):
    assert binaries.pg_bin(18, "pg_basebackup") == bin_dir() / "pg_basebackup"
    if Path("/usr/lib/postgresql/15/bin/pg_basebackup").exists():
        assert binaries.pg_bin(15, "pg_basebackup") == Path(
            "/usr/lib/postgresql/15/bin/pg_basebackup"
        )
    if not Path("/usr/lib/postgresql/14/bin").exists():
        with pytest.raises(NotSupported) as err:
            binaries.pg_bin(14, "pg_basebackup")
        assert "PostgreSQL 14" in err.value.message and "postgresql-14" in err.value.hint
    with pytest.raises(NotSupported):
        binaries.pg_bin(12, "pg_basebackup")
    monkeypatch.setenv("OPSCORE_PG_BIN_DIRS", f'{{"14": "{bin_dir()}"}}')
    reset_settings_cache()
    try:
        assert binaries.pg_bin(14, "pg_dump") == bin_dir() / "pg_dump"
    finally:
        monkeypatch.delenv("OPSCORE_PG_BIN_DIRS")
        reset_settings_cache()


def test_recovery_settings_and_unsafe_store_paths():
    store = BackupStore("/srv/backups/prod")
    s = recovery_settings(store, RecoveryTarget(time=datetime(2026, 11, 25, 17, 30, tzinfo=UTC)))
    # WAL is copied into pg_wal after it is proven; recovery never reads the store itself
    assert s["restore_command"] == "false"
    assert s["recovery_target_time"] == "2026-11-25 17:30:00+00:00"
    assert s["recovery_target_action"] == "promote"
    assert "recovery_target_action" not in recovery_settings(store, RecoveryTarget(latest=True))
    with pytest.raises(InvalidInput):
        recovery_settings(BackupStore('/srv/x"; rm -rf /'), RecoveryTarget(lsn="0/1"))
    with pytest.raises(InvalidInput):
        check_backup_id("../../etc")


def test_remote_wal_round_trip_on_a_local_path_rejects_a_changed_segment(tmp_path):
    """fsspec on a plain directory (the same code as S3): upload verifies, a second upload
    sends nothing new, a segment changed in the object store is left out on download."""
    import os

    from ops_core.backup import remote, wal, walcheck

    seg = 1024 * 1024
    wal_dir = tmp_path / "wal"
    wal_dir.mkdir()
    names = [wal.segment_name(1, n, seg) for n in (3, 4)]
    for name in names:
        (wal_dir / name).write_bytes(os.urandom(seg))
        walcheck.record_checksum(wal_dir, name)
    (wal_dir / (wal.segment_name(1, 5, seg) + ".partial")).write_bytes(b"\0" * 100)
    rem = remote.Remote(str(tmp_path / "bucket"))
    rep = remote.upload_wal(rem, wal_dir, seg)
    assert rep.names == names and rep.verified == 2  # the .partial stays local
    assert remote.upload_wal(rem, wal_dir, seg).files == 0

    victim = tmp_path / "bucket" / "wal" / names[0]
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0xFF
    victim.write_bytes(bytes(data))
    back = tmp_path / "restore-wal"
    got = remote.download_wal(rem, back)
    assert got == {"segments": 1, "rejected": [names[0]]}
    assert not (back / names[0]).exists() and (back / names[1]).is_file()
    assert walcheck.compare_checksum(back, names[1]) is True
    with pytest.raises(InvalidInput):
        remote.Remote(str(tmp_path / "bucket"), {"aws_secret_access_key": "x"})
