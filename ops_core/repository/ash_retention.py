"""ASH retention in two tiers, by partition drop.

:func:`purge` as of ``now``:

1. compacts hot rows left behind in complete buckets (a sampler that crashed or stopped
   mid-bucket) into raw chunks, rebuilding their summary buckets;
2. a raw day older than the raw window (its hot and raw-chunk partitions) is downsampled into
   history chunks (every 10th sample of the target, weighted by the seconds it stands for) and
   dropped, in one transaction: a day is raw or history, never both, so DB time over both tiers
   is a plain sum of weights;
3. a history day older than the history window is dropped;
4. the hot partitions of past days, emptied by compaction, are dropped (their space would
   otherwise wait for a vacuum);
5. the summary past the history window is trimmed, the complete days it keeps without a day
   row get one, and the query texts and dictionary entries nothing can reference any more (no
   kept day of samples, no kept summary bucket) are deleted.

A partition that a long query holds is skipped after a bounded wait and retried by the next purge.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import psycopg
from psycopg import sql

from . import ash_summary
from .ash import DOWNSAMPLE, PARTITION_LOCK, create_partition, list_partitions, partition_name
from .ash_chunks import compact, write_chunks
from .ash_stage import ensure_stage, lock_targets, stage_insert_sql
from .ash_tiers import (
    DICTIONARIES,
    HISTORY_CHUNKS,
    HOT_TABLE,
    RAW_CHUNK_S,
    RAW_CHUNKS,
    STORED_COLUMNS,
    decoding,
    tiers_sql,
)
from .ash_time import bucket_floor, day_of, day_start


class _Busy(Exception):
    """A day could not be finished now (late samples arrived): retried by the next purge."""


def _lock_for_ddl(conn: psycopg.Connection) -> None:
    # dropping a partition locks its parent: never queue the sampler's COPY behind a long
    # report for more than a few seconds
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
    conn.execute("SET LOCAL lock_timeout = '5s'")


def _drop(conn: psycopg.Connection, part: str) -> bool:
    conn.execute(sql.SQL("DROP TABLE opscore.{}").format(sql.Identifier(part)))
    return True


def _all_targets(conn: psycopg.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT target_id FROM opscore.targets")]


def _lock_hot_and_check_empty(conn: psycopg.Connection, hot_part: str) -> None:
    """Stop ingest into the hot table until commit, and refuse if samples arrived in the day
    since it was compacted (they are compacted and the day retried by the next purge)."""
    conn.execute(
        sql.SQL("LOCK TABLE opscore.{} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(HOT_TABLE))
    )
    late = conn.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM opscore.{})").format(sql.Identifier(hot_part))
    ).fetchone()[0]
    if late:
        raise _Busy(f"{hot_part}: new samples arrived; retried by the next purge")


def _downsample(conn: psycopg.Connection, day: date) -> int:
    """Every DOWNSAMPLE-th sample time of each target in the raw tier of ``day`` into history
    chunks, weighted by the sampled seconds of its group; returns the history rows added."""
    cols = sql.SQL(", ").join(
        sql.SQL("k.weight") if c == "weight_s" else sql.Identifier("s", c) for c in STORED_COLUMNS
    )
    query = sql.SQL(
        """
        WITH s AS MATERIALIZED (
            SELECT * FROM {tiers}
             WHERE s.sample_time >= %(lo)s AND s.sample_time < %(hi)s),
        t AS (
            SELECT target_id, sample_time, max(weight_s) AS w,
                   (row_number() OVER (PARTITION BY target_id ORDER BY sample_time) - 1)
                   / %(n)s AS g
              FROM s GROUP BY target_id, sample_time),
        k AS (
            SELECT target_id, min(sample_time) AS keep_time, sum(w) AS weight
              FROM t GROUP BY target_id, g)
        SELECT {cols}
          FROM s JOIN k ON k.target_id = s.target_id AND k.keep_time = s.sample_time
        """
    ).format(tiers=tiers_sql(False, target=None, begin="lo", end="hi"), cols=cols)
    params = {"lo": day_start(day), "hi": day_start(day + timedelta(days=1)), "n": DOWNSAMPLE}
    with decoding(conn):
        added = conn.execute(stage_insert_sql() + query, params).rowcount
    if added:
        write_chunks(conn, HISTORY_CHUNKS)
    return added


def _compact_leftovers(conn: psycopg.Connection, before: datetime) -> int:
    """Hot rows of every target in buckets complete before ``before`` into raw chunks."""
    targets = conn.execute(
        sql.SQL("SELECT DISTINCT target_id FROM opscore.{} WHERE sample_time < %s").format(
            sql.Identifier(HOT_TABLE)
        ),
        (bucket_floor(before, RAW_CHUNK_S),),
    ).fetchall()
    return sum(compact(conn, t, before, summarize=True) or 0 for (t,) in targets)


def _retire_raw_day(
    conn: psycopg.Connection, day: date, keep_history: bool, report: dict
) -> list[str]:
    """Downsample (if the day is inside the history window) and drop one raw day."""
    hot_part = list_partitions(conn, HOT_TABLE).get(day)
    chunk_part = list_partitions(conn, RAW_CHUNKS).get(day)
    lock_targets(conn, _all_targets(conn))
    if hot_part:  # leftovers that arrived after the first step
        for (t,) in conn.execute(
            sql.SQL("SELECT DISTINCT target_id FROM opscore.{}").format(sql.Identifier(hot_part))
        ).fetchall():
            compact(conn, t, day_start(day + timedelta(days=1)), summarize=True)
        chunk_part = list_partitions(conn, RAW_CHUNKS).get(day)
    if keep_history:
        if day not in list_partitions(conn, HISTORY_CHUNKS):
            create_partition(conn, HISTORY_CHUNKS, day)
        report["history_added"] += _downsample(conn, day)
    dropped = []
    if hot_part:
        _lock_hot_and_check_empty(conn, hot_part)
        _drop(conn, hot_part)
        dropped.append(hot_part)
    if chunk_part:
        _drop(conn, chunk_part)
        dropped.append(chunk_part)
    return dropped


def _oldest_kept_day(conn: psycopg.Connection) -> date | None:
    days = [
        d for table in (HOT_TABLE, RAW_CHUNKS, HISTORY_CHUNKS) for d in list_partitions(conn, table)
    ]
    return min(days) if days else None


def purge(
    conn: psycopg.Connection, now: datetime, raw_days: int, history_days: int
) -> dict[str, object]:
    """Two-tier retention as of ``now`` (see the module docstring)."""
    raw_cut = now - timedelta(days=raw_days)
    hist_cut = now - timedelta(days=history_days)
    raw_dropped: list[str] = []
    history_dropped: list[str] = []
    skipped: list[str] = []
    report: dict[str, object] = {
        "now": now,
        "raw_cutoff": raw_cut,
        "history_cutoff": hist_cut,
        "raw_dropped": raw_dropped,
        "history_added": 0,
        "history_dropped": history_dropped,
        "summary_deleted": 0,
        "summary_days_built": 0,
        "texts_deleted": 0,
        "skipped": skipped,
    }
    ensure_stage(conn)

    def attempt(what: str, step, *args) -> object:
        try:
            with conn.transaction():
                _lock_for_ddl(conn)
                return step(*args)
        except psycopg.errors.LockNotAvailable:
            skipped.append(f"{what}: busy (a long query holds it); retried by the next purge")
        except _Busy as exc:
            skipped.append(str(exc))
        return None

    _compact_leftovers(conn, now)
    days = set(list_partitions(conn, HOT_TABLE)) | set(list_partitions(conn, RAW_CHUNKS))
    for day in sorted(days):
        if day_start(day + timedelta(days=1)) > raw_cut:
            continue
        keep = day_start(day + timedelta(days=1)) > hist_cut
        names = ", ".join(partition_name(t, day) for t in (HOT_TABLE, RAW_CHUNKS))
        dropped = attempt(names, _retire_raw_day, conn, day, keep, report)
        raw_dropped.extend(dropped or [])
    for day, part in sorted(list_partitions(conn, HISTORY_CHUNKS).items()):
        if day_start(day + timedelta(days=1)) <= hist_cut and attempt(part, _drop, conn, part):
            history_dropped.append(part)
    today = day_of(now)
    for day, part in sorted(list_partitions(conn, HOT_TABLE).items()):
        if day < today:  # compacted above: empty unless samples arrived meanwhile
            if attempt(part, _drop_empty_hot, conn, part):
                raw_dropped.append(part)
    _trim(conn, report, min(raw_cut, hist_cut))
    return report


def _drop_empty_hot(conn: psycopg.Connection, part: str) -> bool:
    _lock_hot_and_check_empty(conn, part)
    _drop(conn, part)
    return True


def _trim(conn: psycopg.Connection, report: dict, keep_from: datetime) -> None:
    """Delete summary buckets past the history window, and query texts and dictionary entries
    last seen before the oldest day any tier or kept summary bucket still holds (nothing can
    reference them: a summary bucket references entries last seen no earlier than its start)."""
    with conn.transaction():
        report["summary_deleted"] = ash_summary.trim(conn, report["history_cutoff"])
        # by whole days: query texts are last seen by the day (ash.AshWriter)
        days = [_oldest_kept_day(conn)]
        bucket = ash_summary.oldest_bucket(conn)
        days.append(day_of(bucket) if bucket else None)
        cut = min([keep_from, *(day_start(d) for d in days if d is not None)])
        report["texts_deleted"] = conn.execute(
            "DELETE FROM opscore.ash_query_texts WHERE last_seen < %s", (cut,)
        ).rowcount
        lock_targets(conn, _all_targets(conn))
        report["summary_days_built"] = ash_summary.build_missing_days(
            conn, report["history_cutoff"], report["now"]
        )
        for d in DICTIONARIES:
            conn.execute(
                sql.SQL("DELETE FROM opscore.{} WHERE last_seen < %s").format(
                    sql.Identifier(d.table)
                ),
                (cut,),
            )
