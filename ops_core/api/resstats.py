"""Resource statistics of a target: CPU and memory of the host (psutil, only when the server
runs on this host: otherwise said), DB time on CPU from ASH, memory settings and the buffer
pool (pg_buffercache when installed), I/O (pg_stat_io from PostgreSQL 16, pg_stat_database
always), connections by state/user/application against the limits, and the limits each role
carries (allocations). PostgreSQL has no resource manager: nothing here is throttled."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psutil

from ..alerts.metrics import is_local_target
from ..alerts.rules import parse_duration
from ..collectors import host
from ..collectors import pools as pool_reads
from ..collectors import resstats as reads
from ..collectors.resources import settings_dict
from ..errors import OpsCoreError
from ..model.target import Target
from .ash import ash_db_time
from .targets import resolve_target, target_session

__all__ = [
    "CpuStats",
    "MemoryStats",
    "BufferPool",
    "IoStats",
    "ConnectionStats",
    "ResourceStats",
    "cpu_stats",
    "memory_stats",
    "buffer_pool",
    "io_stats",
    "connection_stats",
    "resource_allocations",
    "resource_stats",
]

_NOT_LOCAL = "the server does not run on this host: host CPU and memory are not readable here"


@dataclass
class CpuStats:
    target: str
    host_local: bool
    host_cpu_pct: float | None
    cpu_count: int | None
    load: list[float] | None  # 1, 5, 15 minutes
    db_cpu_s: float | None  # ASH: sampled seconds on CPU over the window
    db_time_s: float | None
    window_s: int
    notes: list[str] = field(default_factory=list)


@dataclass
class BufferPool:
    target: str
    available: bool
    reason: str | None
    buffers: int | None
    used: int | None
    dirty: int | None
    avg_usagecount: float | None
    top_relations: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class MemoryStats:
    target: str
    settings: pd.DataFrame  # name, value, bytes
    host_local: bool
    host_total_bytes: int | None
    host_available_bytes: int | None
    buffer_pool: BufferPool
    notes: list[str] = field(default_factory=list)


@dataclass
class IoStats:
    target: str
    by_database: pd.DataFrame  # blks read/hit, hit %, times, temp
    pg_stat_io: pd.DataFrame  # per backend type/object/context (16+)
    notes: list[str] = field(default_factory=list)


@dataclass
class ConnectionStats:
    target: str
    client_connections: int
    max_connections: int
    superuser_reserved: int
    used_pct: float
    by_state: dict[str, int]
    by_user: dict[str, int]
    by_application: dict[str, int]
    groups: pd.DataFrame


@dataclass
class ResourceStats:
    target: str
    at: datetime
    cpu: CpuStats
    memory: MemoryStats
    io: IoStats
    connections: ConnectionStats


def _host(t: Target) -> tuple[bool, dict[str, Any] | None]:
    local = is_local_target(t)
    return local, (host.sample() if local else None)


def cpu_stats(target: str | None = None, since: str = "1h") -> CpuStats:
    """Host CPU now (when local) and DB time on CPU over ``since`` from ASH."""
    t = resolve_target(target)
    secs = max(1, parse_duration(since, "since"))
    local, _ = _host(t)
    notes = [] if local else [_NOT_LOCAL]
    cpu_pct = psutil.cpu_percent(interval=0.3) if local else None
    end = datetime.now(UTC)
    db_cpu = db_time = None
    try:
        df = ash_db_time(t.name, end - timedelta(seconds=secs), end, ["wait_class"])
        db_time = float(df["db_time_s"].sum()) if len(df) else 0.0
        db_cpu = float(df.loc[df["wait_class"] == "CPU", "db_time_s"].sum()) if len(df) else 0.0
        if not len(df):
            notes.append("no ASH samples in the window (is the sampler running?)")
    except OpsCoreError as exc:
        notes.append(f"DB time not available: {exc.message}")
    return CpuStats(
        t.name,
        local,
        cpu_pct,
        psutil.cpu_count() if local else None,
        list(psutil.getloadavg()) if local else None,
        db_cpu,
        db_time,
        secs,
        notes,
    )


def buffer_pool(target: str | None = None, top: int = 10) -> BufferPool:
    """The shared buffer pool from pg_buffercache (used, dirty, usage, the relations holding
    most of it in the target's database); not available without the extension."""
    t = resolve_target(target)
    with target_session(t) as conn:
        if not reads.has_extension(conn, "pg_buffercache"):
            return BufferPool(
                t.name, False,
                "pg_buffercache is not installed in the target's database "
                "(CREATE EXTENSION pg_buffercache)",
                None, None, None, None,
            )  # fmt: skip
        summary, rel = reads.buffercache(conn, top)
    return BufferPool(
        t.name, True, None, int(summary["buffers"]), int(summary["used"]), int(summary["dirty"]),
        float(summary["avg_usagecount"]), rel,
    )  # fmt: skip


def memory_stats(target: str | None = None) -> MemoryStats:
    """Memory settings (bytes), host memory (when local) and the buffer pool."""
    t = resolve_target(target)
    with target_session(t) as conn:
        settings = reads.memory_settings(conn)
    local, h = _host(t)
    return MemoryStats(
        t.name,
        settings,
        local,
        h["mem_total"] if h else None,
        h["mem_available"] if h else None,
        buffer_pool(t.name),
        [] if local else [_NOT_LOCAL],
    )


def io_stats(target: str | None = None) -> IoStats:
    """I/O counters (cumulative since reset): per database, and pg_stat_io from 16."""
    t = resolve_target(target)
    with target_session(t) as conn:
        by_db, pio = reads.io(conn)
        version = conn.info.server_version
    notes = []
    if pio is None:
        notes.append(f"pg_stat_io needs PostgreSQL 16; this server is {version // 10000}")
    return IoStats(t.name, by_db, pio if pio is not None else pd.DataFrame(), notes)


def connection_stats(target: str | None = None) -> ConnectionStats:
    """Client connections by state, user and application against max_connections."""
    t = resolve_target(target)
    with target_session(t) as conn:
        groups, limits = pool_reads.activity(conn)
    usable = max(1, limits["max_connections"] - limits["superuser_reserved"])

    def by(col: str) -> dict[str, int]:
        if not len(groups):
            return {}
        s = groups.groupby(groups[col].fillna(""))["connections"].sum()
        return {str(k): int(v) for k, v in s.sort_values(ascending=False).items()}

    return ConnectionStats(
        t.name,
        limits["client_connections"],
        limits["max_connections"],
        limits["superuser_reserved"],
        round(100.0 * limits["client_connections"] / usable, 2),
        by("state"),
        by("user"),
        by("application_name"),
        groups,
    )


def resource_allocations(target: str | None = None) -> pd.DataFrame:
    """What each role is allowed: connection limit, role-wide settings (statement_timeout,
    work_mem, ...), the groups it belongs to, and its sessions now."""
    t = resolve_target(target)
    with target_session(t) as conn:
        df = reads.allocations(conn)
    df["settings"] = [settings_dict(s) for s in df["settings"]]
    return df


def resource_stats(target: str | None = None) -> ResourceStats:
    """CPU, memory, I/O and connections of a target in one answer."""
    t = resolve_target(target)
    return ResourceStats(
        t.name,
        datetime.now(UTC),
        cpu_stats(t.name),
        memory_stats(t.name),
        io_stats(t.name),
        connection_stats(t.name),
    )
