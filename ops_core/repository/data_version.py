"""The version of a target's data in the repository: what a cached analysis of that target is
valid for (``ops_core.model.cache``).

One statement of index lookups (each under a millisecond on a week of data): the repository
database's oid and the newest snapshot's capture time (a repository dropped and created again
under the same name restarts target and snapshot ids at 1: without them a cached answer of the
old one was served for the new one — seen in the test suite, whose repositories are re-created
per test), the target's snapshots (count, first and last id: a new capture, a deletion or a
purge changes it), the
newest ASH sample of the hot table, the newest raw and history chunk (with its sample count:
compaction adding late rows to a bucket changes it), the newest summary bucket, the sampler's
last sample time, and the oldest raw chunk (retention). A change it cannot see (a late row
into an old bucket of the hot table) is bounded by the cache's time to live.
"""

from __future__ import annotations

from collections.abc import Hashable

import psycopg

__all__ = ["target_version"]

_VERSION_SQL = """
SELECT /* opscore */
  (SELECT oid FROM pg_database WHERE datname = current_database()),
  (SELECT max(captured_at) FROM opscore.snapshots WHERE target_id = %(t)s),
  (SELECT count(*) FROM opscore.snapshots WHERE target_id = %(t)s),
  (SELECT min(snapshot_id) FROM opscore.snapshots WHERE target_id = %(t)s),
  (SELECT max(snapshot_id) FROM opscore.snapshots WHERE target_id = %(t)s),
  (SELECT sample_time FROM opscore.ash_samples WHERE target_id = %(t)s
    ORDER BY sample_time DESC LIMIT 1),
  (SELECT array[extract(epoch FROM chunk_start), samples] FROM opscore.ash_chunks
    WHERE target_id = %(t)s ORDER BY chunk_start DESC LIMIT 1),
  (SELECT chunk_start FROM opscore.ash_chunks WHERE target_id = %(t)s
    ORDER BY chunk_start LIMIT 1),
  (SELECT array[extract(epoch FROM chunk_start), samples] FROM opscore.ash_history_chunks
    WHERE target_id = %(t)s ORDER BY chunk_start DESC LIMIT 1),
  (SELECT bucket_start FROM opscore.ash_summary_chunks WHERE target_id = %(t)s
    ORDER BY bucket_start DESC LIMIT 1),
  (SELECT last_sample_time FROM opscore.ash_sampler_status WHERE target_id = %(t)s)
"""


def target_version(conn: psycopg.Connection, target_id: int) -> Hashable:
    """A value that changes when the target's snapshots or ASH samples change (see above)."""
    row = conn.execute(_VERSION_SQL, {"t": target_id}).fetchone()
    assert row is not None
    return tuple(tuple(v) if isinstance(v, list) else v for v in row)
