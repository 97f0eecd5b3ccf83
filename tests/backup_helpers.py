"""Helpers for the backup tests: a registered target with its own store, row counts on a
restored directory (started with the binaries of its major), corruption of a backup file."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ops_core import api
from ops_core.backup.server import ThrowawayServer
from ops_core.config import reset_settings_cache


@dataclass
class BackupTarget:
    name: str
    dsn: str
    dbname: str
    store: Path
    major: int

    def write(self, first: int, last: int, tag: str = "x") -> None:
        with psycopg.connect(self.dsn, autocommit=True) as c:
            c.execute(
                "INSERT INTO items SELECT g, %s, repeat('p', 200) "
                "FROM generate_series(%s::int, %s::int) g",
                (tag, first, last),
            )

    def server_lsn(self) -> str:
        with psycopg.connect(self.dsn, autocommit=True) as c:
            return c.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]


@pytest.fixture
def fast_backups(monkeypatch):
    """Skip fsync of backups (durability is not what these tests check; the machine is shared
    and fsync under load costs seconds per backup). The chain test keeps the default."""
    monkeypatch.setenv("OPSCORE_BACKUP_SYNC", "false")
    reset_settings_cache()
    yield
    monkeypatch.delenv("OPSCORE_BACKUP_SYNC")
    reset_settings_cache()


def make_target(pg, name: str = "bk") -> BackupTarget:
    dsn = pg.create_database("bk", pgss=False)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE items (id int PRIMARY KEY, tag text, pad text)")
        c.execute("CREATE INDEX items_tag ON items (tag)")
    store = Path(tempfile.mkdtemp(prefix="ops-store-", dir=tempfile.gettempdir()))
    api.add_target(name, dsn)
    api.set_backup_store(name, store)
    return BackupTarget(name, dsn, conninfo_to_dict(dsn)["dbname"], store, pg.major)


def drop_slot(pg, slot: str) -> None:
    """Drop a test's replication slot straight on the server (not through the repository,
    which may be what failed): a leaked slot makes the shared server keep WAL forever."""
    with pg.admin() as c:
        c.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s AND NOT active",
            (slot,),
        )


def drop_target(pg, t: BackupTarget) -> None:
    shutil.rmtree(t.store, ignore_errors=True)
    pg.drop_database(t.dsn)


def restored_ids(data_dir: Path, major: int, dbname: str, os_user: str | None) -> list[int]:
    """Start a throw-away server on a restored directory, return the ids in ``items``."""
    with ThrowawayServer(data_dir, major, os_user) as srv:
        srv.wait_promoted()
        with srv.connect(dbname) as c:
            return [r[0] for r in c.execute("SELECT id FROM items ORDER BY id")]


def new_dir() -> Path:
    """A path that does not exist yet, under a fresh temp dir."""
    return Path(tempfile.mkdtemp(prefix="ops-restore-", dir=tempfile.gettempdir())) / "data"
