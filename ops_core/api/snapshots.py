"""AWR snapshots: capture, list, show, delete, purge, baselines, range aggregates, compare."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import psycopg

from .. import repository
from ..analysis import compare as compare_model
from ..collectors import host
from ..collectors.capture import CaptureOptions, capture
from ..config import get_settings
from ..errors import InvalidInput, OpsCoreError
from ..model.serialize import frame_records
from ..repository import snapshot_columnar as columnar
from ..repository import snapshot_ranges as ranges
from ..repository import snapshot_reads as reads
from ..repository import snapshots as writes
from ..repository import targets as repo_targets
from ..repository.snapshot_columnar import RangePlan
from ..repository.snapshot_ranges import Baseline, RangeAggregate
from ..repository.snapshot_reads import SnapshotInfo
from ..targets.connection import parse_dsn
from .common import opscore_shown
from .targets import target_dsn

__all__ = [
    "SnapshotInfo",
    "SnapshotDetail",
    "SnapshotFailed",
    "RangeAggregate",
    "Baseline",
    "take_snapshot",
    "list_snapshots",
    "get_snapshot",
    "delete_snapshots",
    "purge_snapshots",
    "snapshot_range",
    "create_baseline",
    "list_baselines",
    "delete_baseline",
    "compare_periods",
]


class SnapshotFailed(OpsCoreError):
    """A capture failed (target down, timeout, ...); it is recorded as a failed snapshot."""

    def __init__(self, message: str, hint: str | None = None, *, info: SnapshotInfo):
        super().__init__(message, hint)
        self.info = info


@dataclass
class SnapshotDetail:
    """One snapshot: its info and its deltas (the interval since the previous snapshot)."""

    info: SnapshotInfo
    statements: pd.DataFrame  # per statement: calls, total/mean time, rows, blocks, temp, WAL
    databases: pd.DataFrame  # per database: counter deltas, numbackends, size
    tables: pd.DataFrame
    indexes: pd.DataFrame
    io: pd.DataFrame | None
    cluster: dict[str, Any]  # pg_stat_wal, checkpointer, archiver, replication, slots, host

    def as_dict(self) -> dict[str, Any]:
        return {
            "info": self.info.as_dict(),
            "statements": frame_records(self.statements),
            "databases": frame_records(self.databases),
            "tables": frame_records(self.tables),
            "indexes": frame_records(self.indexes),
            "io": frame_records(self.io),
            "cluster": self.cluster,
        }


def take_snapshot(target: str, *, include_opscore: bool | None = None) -> SnapshotInfo:
    """Capture a snapshot of ``target`` and store its deltas.

    Raises :class:`SnapshotFailed` (after recording the failed capture with its reason) when
    the target is down or times out. Object statistics of opscore's own repository database
    are skipped unless ``include_opscore`` (default: setting ``include_opscore_activity``).
    """
    started = time.perf_counter()
    settings = get_settings()
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        identity, repo_db = writes.repository_identity(repo)
        known = writes.known_statements(repo, t.target_id)
        with_sizes = writes.sizes_due(repo, t.target_id, settings.snapshot_sizes_interval_minutes)
        try:
            dsn = target_dsn(t)
            local = host.is_local(parse_dsn(dsn), t.embedded)
        except OpsCoreError as exc:
            sid = writes.record_failure(repo, t.target_id, exc.message)
            raise SnapshotFailed(
                f"Snapshot of {target} failed: {exc.message}",
                exc.hint,
                info=reads.get_info(repo, sid),
            ) from None
        opts = CaptureOptions.from_settings(
            settings,
            with_sizes=with_sizes,
            repository_identity=identity,
            repository_database=repo_db,
            local_host=local,
        )
        if include_opscore is not None:
            opts.include_opscore = include_opscore
        cap = capture(t.target_id, dsn, opts, set(known))
        cap.stmt_ids = known
        sid, created = writes.store(repo, cap, started)
        info = reads.get_info(repo, sid)
        info.created = created
        if created and info.status != "failed":
            columnar.roll_previous_day(repo, t.target_id)  # no-op but once a day
    if info.status == "failed":
        raise SnapshotFailed(
            f"Snapshot of {target} failed: {info.error}",
            "The failed capture is recorded (snapshot "
            f"{info.snapshot_id}); check the target with `opscore target check {target}`.",
            info=info,
        )
    return info


def list_snapshots(target: str | None = None, limit: int = 100) -> list[SnapshotInfo]:
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1 (got {limit}).")
    with repository.session() as repo:
        tid = repo_targets.get(repo, target).target_id if target else None
        return reads.list_snapshots(repo, tid, limit)


def get_snapshot(snapshot_id: int, *, include_opscore: bool | None = None) -> SnapshotDetail:
    """One snapshot with its deltas: per statement, per database, tables, indexes, I/O."""
    own = opscore_shown(include_opscore)
    with repository.session() as repo:
        info = reads.get_info(repo, snapshot_id)
        ids = [snapshot_id] if info.status != "failed" else []
        plan = RangePlan(info.target_id, ids, ids)
        cluster = reads.cluster_data(repo, snapshot_id)
        io = reads.io_frame(repo, ids) if info.sources.get("pg_stat_io") == "ok" else None
        return SnapshotDetail(
            info=info,
            statements=reads.statements_frame(repo, plan, own),
            databases=reads.databases_frame(repo, ids, own),
            tables=reads.tables_frame(repo, plan),
            indexes=reads.indexes_frame(repo, plan),
            io=io,
            cluster=cluster,
        )


def snapshot_range(
    target: str, begin_id: int, end_id: int, *, include_opscore: bool | None = None
) -> RangeAggregate:
    """Sum of the deltas between two snapshots of one target (per statement, database,
    table, index, I/O; WAL/checkpointer/archiver/host). Resets and failed captures inside
    the range are reported in ``.resets`` / ``.failed``."""
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        return ranges.range_aggregate(
            repo, t.target_id, t.name, begin_id, end_id, opscore_shown(include_opscore)
        )


def delete_snapshots(target: str, begin_id: int, end_id: int) -> int:
    """Delete the snapshots of ``target`` with ids in [begin_id, end_id]; refuses to cut
    into a baseline. Returns how many were deleted."""
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        return ranges.delete_range(repo, t.target_id, t.name, begin_id, end_id)


def purge_snapshots(retention_days: int | None = None) -> int:
    """Delete snapshots older than the retention (default setting snapshot_retention_days),
    keeping baselines' snapshots and each target's latest one."""
    days = get_settings().snapshot_retention_days if retention_days is None else retention_days
    with repository.session() as repo:
        return ranges.purge(repo, days)


def create_baseline(name: str, target: str, begin_id: int, end_id: int) -> Baseline:
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        return ranges.create_baseline(repo, name, t.target_id, t.name, begin_id, end_id)


def list_baselines(target: str | None = None) -> list[Baseline]:
    with repository.session() as repo:
        tid = repo_targets.get(repo, target).target_id if target else None
        return ranges.list_baselines(repo, tid)


def delete_baseline(name: str) -> Baseline:
    with repository.session() as repo:
        return ranges.delete_baseline(repo, name)


def _wait_events(repo: psycopg.Connection, agg: RangeAggregate) -> pd.DataFrame | None:
    """DB time by wait event over the range from ASH; None (compare then says "not
    available") when ASH has no samples for it. Repository errors propagate: a broken read
    must not pass for "no ASH"."""
    from ..repository import ash_read

    df = ash_read.db_time(
        repo,
        agg.begin.target_id,
        agg.begin.captured_at,
        agg.end.captured_at,
        ["wait_event_type", "event"],
    )
    if df is None or df.empty or float(df["db_time_s"].sum()) == 0.0:
        return None
    return df.rename(columns={"event": "wait_event"})[
        ["wait_event_type", "wait_event", "db_time_s"]
    ]


def compare_periods(
    target: str,
    begin1: int,
    end1: int,
    begin2: int | None = None,
    end2: int | None = None,
    baseline: str | None = None,
    *,
    top: int = 10,
    include_opscore: bool | None = None,
) -> compare_model.Comparison:
    """Compare two snapshot ranges of ``target`` (or a range against a baseline)."""
    if baseline is not None and (begin2 is not None or end2 is not None):
        raise InvalidInput(
            "Give either a second range (begin2/end2) or a baseline, not both.",
            "Use --baseline NAME alone, or --begin2 A --end2 B.",
        )
    own = opscore_shown(include_opscore)
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        if baseline is not None:
            b = ranges.get_baseline(repo, baseline)
            if b.target != t.name:
                raise InvalidInput(
                    f"Baseline {baseline!r} is of target {b.target!r}, not {target!r}.",
                    f"List baselines of {target} with `opscore baseline list --target {target}`.",
                )
            begin2, end2 = b.begin_snapshot_id, b.end_snapshot_id
        if begin2 is None or end2 is None:
            raise InvalidInput(
                "A second period is needed: begin2 and end2, or a baseline.",
                "Use --begin2 A --end2 B, or --baseline NAME.",
            )
        a1 = ranges.range_aggregate(repo, t.target_id, t.name, begin1, end1, own)
        a2 = ranges.range_aggregate(repo, t.target_id, t.name, begin2, end2, own)
        w1, w2 = _wait_events(repo, a1), _wait_events(repo, a2)
    return compare_model.compare(a1, a2, top=top, waits1=w1, waits2=w2, label2=baseline)
