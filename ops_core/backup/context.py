"""What every backup operation needs to know about one target, gathered once.

The DSN handed to the PostgreSQL programs never carries a password on the command line (where
``ps`` would show it): a password goes into the child's ``PGPASSWORD`` instead.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CommandFailed, OpsCoreError
from ..targets.connection import strip_password
from .binaries import major_of, pg_bin
from .store import BackupStore


@dataclass
class TargetContext:
    target_id: int
    name: str
    dsn: str  # without password
    version_num: int
    store: BackupStore
    env: dict[str, str] = field(default_factory=dict)
    summarize_wal: bool | None = None
    wal_segment_size: int = 16 * 1024 * 1024

    @property
    def major(self) -> int:
        return major_of(self.version_num)

    def bin(self, program: str) -> Path:
        return pg_bin(self.major, program)

    def db_dsn(self, dbname: str) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(self.dsn, dbname=dbname)


def split_dsn(dsn: str) -> tuple[str, dict[str, str]]:
    """(DSN without password, environment carrying it)."""
    stripped, password = strip_password(dsn)
    return stripped, ({"PGPASSWORD": password} if password else {})


class StoreFull(OpsCoreError):
    """The backup store ran out of space."""


def is_store_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    if isinstance(exc, CommandFailed):
        return "No space left on device" in (exc.stderr or "") + exc.message
    return False
