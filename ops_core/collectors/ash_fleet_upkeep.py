"""The upkeep of a fleet sampler's targets after each flush: 5-minute summaries and
compaction of the raw chunks, per target."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from ..repository import ash_chunks, ash_summary
from ..repository.ash import SUMMARY_BUCKET_S

__all__ = ["Upkeep"]

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class Upkeep:
    """A target's 5-minute summary and compaction after its rows are written (the same rules
    as ``collectors.ash.AshSampler``: complete buckets only, never waiting for a purge)."""

    def __init__(self, target_id: int):
        self.target_id = target_id
        self.summarized_until: datetime | None = None
        self.compacted_until: datetime | None = None
        self.last_written: datetime | None = None
        self.partial = False

    def after_write(
        self, conn: psycopg.Connection, first: datetime | None, last: datetime | None, final: bool
    ) -> None:
        if first is not None and last is not None:
            self.last_written = last
            self._summarize(conn, first, last, final)
        elif final and self.partial and self.last_written is not None:
            self._summarize(conn, self.last_written, self.last_written, final)
        if last is not None:
            self._compact(conn, first or last, last)

    def _summarize(
        self, conn: psycopg.Connection, first: datetime, last: datetime, final: bool
    ) -> None:
        start = min(self.summarized_until or first, first)
        bucket = SUMMARY_BUCKET_S
        last_bucket = _EPOCH + timedelta(
            seconds=((last - _EPOCH).total_seconds() // bucket) * bucket
        )
        end = last + timedelta(microseconds=1) if final else last_bucket
        if end <= start:
            self.partial = True
            return
        if ash_summary.summarize(conn, self.target_id, start, end, wait=False) is None:
            self.partial = True
            return
        self.summarized_until = last_bucket
        self.partial = not final

    def _compact(self, conn: psycopg.Connection, first: datetime, last: datetime) -> None:
        cutoff = ash_chunks.bucket_floor(last, ash_chunks.RAW_CHUNK_S)
        if self.compacted_until is None:
            earlier = ash_chunks.bucket_floor(first, ash_chunks.RAW_CHUNK_S)
            if (
                ash_chunks.compact(conn, self.target_id, earlier, wait=False, summarize=True)
                is None
            ):
                return
            self.compacted_until = earlier
        if cutoff > self.compacted_until:
            if ash_chunks.compact(conn, self.target_id, cutoff, wait=False) is not None:
                self.compacted_until = cutoff
