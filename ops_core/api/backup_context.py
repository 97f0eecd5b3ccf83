"""What the backup area's modules share (``backup``, ``backup_wal``, ``backup_remote``): a
target's backup store and its backup context (DSN, server facts, store). Helpers, not
operations: nothing here is exported from ``ops_core.api``."""

from __future__ import annotations

from typing import Any

from ..backup import catalog, wal
from ..backup.context import TargetContext, split_dsn
from ..backup.store import BackupStore
from ..collectors import backup_reads
from .targets import Target, get_target, target_dsn, target_session

__all__ = []  # helpers of the backup area, no operations


def store_for(conn: Any, target: Target) -> BackupStore:
    """The backup store of ``target`` (configured path or ``$OPSCORE_HOME/backups/<name>``)."""
    return catalog.store_for(conn, target.target_id, target.name)


def target_context(conn: Any, target_name: str) -> TargetContext:
    """What backing up ``target_name`` needs: its DSN and environment, server version, WAL
    segment size and summarize_wal (read from the target), and its store."""
    target = get_target(target_name)
    dsn, env = split_dsn(target_dsn(target))
    with target_session(target) as tconn:
        facts = backup_reads.server_facts(tconn)
    return TargetContext(
        target_id=target.target_id,
        name=target.name,
        dsn=dsn,
        version_num=facts.version_num,
        store=store_for(conn, target),
        env=env,
        summarize_wal=facts.summarize_wal,
        wal_segment_size=facts.wal_segment_size or wal.DEFAULT_SEGMENT_SIZE,
    )
