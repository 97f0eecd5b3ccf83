"""Active session history (ASH): sample, query, DB time, blocking chains, retention.

Times are UTC ``datetime`` (a naive datetime is taken as UTC); ranges are [begin, end).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd

from .. import repository
from ..analysis import blocking as blocking_analysis
from ..analysis.waits import WAIT_CLASSES, normalize_wait_class
from ..collectors.ash import MIN_INTERVAL_S, AshRunStats, AshSampler
from ..config import get_settings
from ..errors import InvalidInput
from ..repository import ash as repo_ash
from ..repository import ash_read, ash_retention, ash_summary, ash_tiers
from .cache import cached_read
from .common import time_range, utc_time
from .targets import resolve_target, target_dsn

__all__ = [
    "AshRunStats",
    "AshSampler",
    "WAIT_CLASSES",
    "ASH_TOP_DIMENSIONS",
    "ash_sampler",
    "run_ash",
    "query_ash",
    "ash_db_time",
    "ash_background",
    "ash_top",
    "ash_activity",
    "blocking_chains",
    "summarize_ash",
    "purge_ash",
    "last_ash_sample",
    "ash_time_range",
    "ash_partitions",
]

#: `opscore ash top --by X` -> dimensions
ASH_TOP_DIMENSIONS: dict[str, list[str]] = {
    "event": ["wait_class", "event"],
    "class": ["wait_class"],
    "sql": ["query_id"],
    "session": ["pid", "backend_start", "usename", "application_name"],
    "user": ["usename"],
    "app": ["application_name"],
    "database": ["datname"],
}
#: ranges longer than this are answered from the 5-minute summary when it has the dimensions
SUMMARY_THRESHOLD = timedelta(hours=6)


_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)\s*$", re.I)


def ash_time_range(
    since: str | None = None,
    begin: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """A range from ``since`` ('30s', '10m', '2h', '1d': up to now) or ``begin``/``end``."""
    now = utc_time(now, "now") if now else datetime.now(UTC)
    if since is not None and begin is not None:
        raise InvalidInput("Give either a duration (--since) or --begin/--end, not both.")
    if since is not None and end is not None:
        raise InvalidInput(
            "Give either a duration (--since, which ends now) or --begin/--end, not both.",
            "Use --since 10m, or --begin ... --end ... for a range in the past.",
        )
    if since is not None:
        m = _SINCE.match(since)
        if not m:
            raise InvalidInput(
                "The --since value is not a duration.", "Use a number and a unit: 30s, 10m, 2h, 1d."
            )
        unit = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[m.group(2).lower()]
        seconds = float(m.group(1)) * unit
        if not 0 < seconds <= 36_500 * 86400:
            raise InvalidInput(
                "The --since duration must be more than 0 and at most 36500d.",
                "Use e.g. --since 10m or --since 7d.",
            )
        return time_range(now - timedelta(seconds=seconds), now)
    if begin is None:
        raise InvalidInput("No time range given.", "Use --since 10m, or --begin and --end.")
    return time_range(begin, end if end is not None else now)


def ash_sampler(
    target: str | None = None,
    *,
    interval_s: float | None = None,
    flush_interval_s: float | None = None,
    include_opscore: bool | None = None,
    on_flush: Callable[[AshRunStats], None] | None = None,
    on_sample: Callable[[AshRunStats], None] | None = None,
) -> AshSampler:
    """A sampler for a target (use ``start()``/``stop()``/``flush()``, or ``run()``)."""
    s = get_settings()
    t = resolve_target(target)
    interval = s.ash_interval_s if interval_s is None else interval_s
    if not MIN_INTERVAL_S <= interval <= 3600:
        raise InvalidInput(
            f"The sampling interval must be from {MIN_INTERVAL_S} to 3600 seconds, not {interval}.",
            "1 second is the usual interval; shorter ones query the target more often.",
        )
    return AshSampler(
        t.name,
        t.target_id,
        target_dsn(t),
        interval_s=interval,
        flush_interval_s=flush_interval_s or s.ash_flush_interval_s,
        include_opscore=s.include_opscore_activity if include_opscore is None else include_opscore,
        text_max=s.ash_query_text_max,
        on_flush=on_flush,
        on_sample=on_sample,
    )


def run_ash(
    target: str | None = None,
    duration_s: float | None = None,
    interval_s: float | None = None,
    stop: threading.Event | None = None,
    on_flush: Callable[[AshRunStats], None] | None = None,
    *,
    on_sample: Callable[[AshRunStats], None] | None = None,
    include_opscore: bool | None = None,
    flush_interval_s: float | None = None,
    lease_wait_s: float = 0.0,
) -> AshRunStats:
    """Sample a target in the foreground until ``duration_s``, ``stop`` or Ctrl-C; the buffer is
    always flushed before returning (``stats.interrupted`` tells a Ctrl-C). One sampler per
    target: another one running is waited for up to ``lease_wait_s``, then ``SamplerBusy``."""
    if duration_s is not None and not duration_s > 0:
        raise InvalidInput(f"The duration must be positive, not {duration_s}.")
    sampler = ash_sampler(
        target,
        interval_s=interval_s,
        flush_interval_s=flush_interval_s,
        include_opscore=include_opscore,
        on_flush=on_flush,
        on_sample=on_sample,
    )
    try:
        return sampler.run(duration_s=duration_s, stop=stop, lease_wait_s=lease_wait_s)
    finally:
        sampler.close()


def _filters(wait_class, queryid, user, database, application) -> dict:
    return {
        "wait_class": normalize_wait_class(wait_class) if wait_class is not None else None,
        "query_id": int(queryid) if queryid is not None else None,
        "user": user,
        "database": database,
        "application": application,
    }


def query_ash(
    target: str | None,
    begin: datetime | str,
    end: datetime | str,
    *,
    wait_class: str | None = None,
    queryid: int | None = None,
    user: str | None = None,
    database: str | None = None,
    application: str | None = None,
    include_history: bool = True,
    limit: int | None = None,
) -> pd.DataFrame:
    """Samples of a target in [begin, end), oldest first (columns: ash_read.SAMPLE_COLUMNS)."""
    b, e = time_range(begin, end)
    flt = _filters(wait_class, queryid, user, database, application)
    t = resolve_target(target)
    with repository.session() as repo:
        return ash_read.query_samples(
            repo, t.target_id, b, e, include_history=include_history, limit=limit, **flt
        )


def ash_db_time(
    target: str | None,
    begin: datetime | str,
    end: datetime | str,
    by: list[str] | tuple[str, ...] | str = ("wait_class", "event"),
    *,
    wait_class: str | None = None,
    queryid: int | None = None,
    user: str | None = None,
    database: str | None = None,
    application: str | None = None,
    include_history: bool = True,
    source: str = "auto",
) -> pd.DataFrame:
    """DB time (seconds, both tiers weighted) by any dimensions, largest first.

    ``by``: wait_class, wait_event_type, event, query_id, pid, backend_start, usename,
    datname, application_name, backend_type, state, client_addr, minute, hour, or the aliases
    user, database, app, sql, session. Columns: the dimensions, samples, time_s (all sampled
    time), db_time_s, pct (share of db_time_s), query (with query_id). ``source``: 'samples',
    'summary' (5-minute buckets; whole buckets at the range edges; groupings: event, sql by wait
    class, session) or 'auto' (the summary for ranges over 6 h when one of its groupings has the
    dimensions and filters). ``df.attrs['source']`` says which was used.
    """
    b, e = time_range(begin, end)
    dims = ash_read.normalize_dimensions(by)
    flt = _filters(wait_class, queryid, user, database, application)
    if source not in ("auto", "samples", "summary"):
        raise InvalidInput(f"{source!r} is not an ASH source.", "Use auto, samples or summary.")
    use_summary = source == "summary" or (
        source == "auto"
        and e - b > SUMMARY_THRESHOLD
        and include_history
        and ash_read.summary_grouping(dims, flt) is not None
    )
    t = resolve_target(target)

    def compute() -> pd.DataFrame:
        df = ash_read.db_time(
            repo,
            t.target_id,
            b,
            e,
            dims,
            include_history=include_history,
            use_summary=use_summary,
            **flt,
        )
        total = float(df["db_time_s"].sum()) if len(df) else 0.0
        df["pct"] = (df["db_time_s"] / total * 100.0).round(2) if total > 0 else 0.0
        df.attrs["source"] = "summary" if use_summary else "samples"
        df.attrs["db_time_s"] = total
        return df

    args = (b, e, tuple(dims), tuple(sorted(flt.items())), include_history, use_summary)
    with repository.session() as repo:
        return cached_read(repo, "ash_db_time", t.target_id, args, compute)


def ash_background(
    target: str | None,
    begin: datetime | str,
    end: datetime | str,
    *,
    include_history: bool = True,
) -> pd.DataFrame:
    """Background activity of [begin, end): sampled time of background processes
    (checkpointer, autovacuum, WAL writer, background writer, I/O workers...) working or in a
    non-idle wait. Not DB time (see ops_core.model.waits). Columns: backend_type, wait_class,
    event, time_s, samples; ``df.attrs['time_s']`` the total."""
    b, e = time_range(begin, end)
    t = resolve_target(target)
    with repository.session() as repo:
        df = ash_read.background_time(repo, t.target_id, b, e, include_history=include_history)
    df.attrs["time_s"] = float(df["time_s"].sum()) if len(df) else 0.0
    return df


#: bucket sizes ash_activity picks from (seconds)
_BUCKETS = (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


def ash_activity(
    target: str | None,
    begin: datetime | str,
    end: datetime | str,
    by: list[str] | tuple[str, ...] | str = ("wait_class",),
    *,
    bucket_s: int | None = None,
    points: int = 120,
    source: str = "auto",
    include_history: bool = True,
    **filters,
) -> pd.DataFrame:
    """Active sessions over time (the ASH chart): per time bucket and ``by`` dimensions,
    ``db_time_s`` and ``aas`` (average active sessions = DB time / bucket length).

    ``bucket_s`` defaults to a round size giving about ``points`` buckets; reading the 5-minute
    summary (``source`` 'summary', or 'auto' over 6 h) rounds it up to a multiple of 300 s.
    Buckets without activity have no row. ``df.attrs``: source, bucket_s.
    """
    b, e = time_range(begin, end)
    dims = ash_read.normalize_dimensions(by)
    flt = _filters(
        filters.pop("wait_class", None),
        filters.pop("queryid", None),
        filters.pop("user", None),
        filters.pop("database", None),
        filters.pop("application", None),
    )
    if filters:
        raise InvalidInput(f"Unknown filter(s): {', '.join(filters)}.")
    if bucket_s is None:
        want = (e - b).total_seconds() / max(points, 1)
        bucket_s = next((x for x in _BUCKETS if x >= want), _BUCKETS[-1])
    if not bucket_s >= 1:
        raise InvalidInput(f"The bucket must be at least 1 second, not {bucket_s}.")
    if source not in ("auto", "samples", "summary"):
        raise InvalidInput(f"{source!r} is not an ASH source.", "Use auto, samples or summary.")
    use_summary = source == "summary" or (
        source == "auto"
        and e - b > SUMMARY_THRESHOLD
        and include_history
        and ash_read.summary_grouping(dims, flt) is not None
    )
    if use_summary:
        step = repo_ash.SUMMARY_BUCKET_S
        bucket_s = max(step, -(-int(bucket_s) // step) * step)
    t = resolve_target(target)
    with repository.session() as repo:
        df = ash_read.db_time(
            repo,
            t.target_id,
            b,
            e,
            dims,
            include_history=include_history,
            use_summary=use_summary,
            bucket_s=int(bucket_s),
            **flt,
        )
    df["aas"] = df["db_time_s"] / float(bucket_s)
    df.attrs.update(source="summary" if use_summary else "samples", bucket_s=int(bucket_s))
    return df


def ash_top(
    target: str | None,
    begin: datetime | str,
    end: datetime | str,
    by: str = "event",
    limit: int = 10,
    **kw,
) -> pd.DataFrame:
    """Top contributors to DB time: by event, class, sql, session, user, app or database."""
    key = (by or "").strip().lower()
    if key not in ASH_TOP_DIMENSIONS:
        raise InvalidInput(
            f"{by!r} is not a way to rank ASH.", "Use one of: " + ", ".join(ASH_TOP_DIMENSIONS)
        )
    df = ash_db_time(target, begin, end, ASH_TOP_DIMENSIONS[key], **kw)
    out = df.head(limit).reset_index(drop=True)
    out.attrs.update(df.attrs)
    return out


def blocking_chains(
    target: str | None,
    begin: datetime | str,
    end: datetime | str,
    *,
    include_history: bool = True,
) -> pd.DataFrame:
    """Who blocked whom: one row per episode of a root blocker (pid, state, query, waiters,
    duration_s, blocked_time_s); see :mod:`ops_core.analysis.blocking`."""
    b, e = time_range(begin, end)
    t = resolve_target(target)
    with repository.session() as repo:
        samples = ash_read.blocking_samples(
            repo, t.target_id, b, e, include_history=include_history
        )
    return blocking_analysis.blocking_chains(samples)


def summarize_ash(target: str | None, begin: datetime | str, end: datetime | str) -> int:
    """Rebuild the 5-minute DB-time summary of a range from the raw samples (idempotent)."""
    b, e = time_range(begin, end)
    t = resolve_target(target)
    with repository.session() as repo:
        return ash_summary.summarize(repo, t.target_id, b, e) or 0


def purge_ash(now: datetime | None = None) -> dict:
    """Retention for all targets: compact hot rows left in complete buckets; downsample raw days
    older than ash_raw_retention_days into history (1 sample in 10, weighted) and drop them; drop
    history days older than ash_history_retention_days; trim the summary and unused query
    texts."""
    s = get_settings()
    when = utc_time(now, "now") if now is not None else datetime.now(UTC)
    with repository.session() as repo:
        return ash_retention.purge(
            repo, when, s.ash_raw_retention_days, s.ash_history_retention_days
        )


def ash_partitions() -> dict[str, list[str]]:
    """Day partitions that exist: {'raw': [...], 'history': [...]} (names, oldest first; raw:
    hot rows and raw chunks, history: history chunks)."""

    def parts(*tables: str) -> list[str]:
        found = [(d, p) for t in tables for d, p in repo_ash.list_partitions(repo, t).items()]
        return [p for _, p in sorted(found)]

    with repository.session() as repo:
        return {
            ash_tiers.RAW_TIER: parts(ash_tiers.HOT_TABLE, ash_tiers.RAW_CHUNKS),
            ash_tiers.HISTORY_TIER: parts(ash_tiers.HISTORY_CHUNKS),
        }


def last_ash_sample(target: str | None) -> datetime | None:
    """Time of the newest stored sample of a target (sampler health); None if never sampled."""
    t = resolve_target(target)
    with repository.session() as repo:
        return ash_read.last_sample_time(repo, t.target_id)
