"""Prometheus exposition of per-target figures (pure: :class:`TargetMetrics`-like dicts in,
the text format out), with prometheus-client. Names follow Prometheus conventions: an
``opscore_`` prefix, base units in the name (``_seconds``, ``_bytes``, ``_ratio``), counters
ending in ``_total``, timestamps as ``_timestamp_seconds``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: name -> (type, help, key in TargetMetrics.values); counters are named without _total here
#: (prometheus-client appends it)
FAMILIES: list[tuple[str, str, str, str]] = [
    ("opscore_target_up", "gauge", "1 when opscore could read the target, else 0", "up"),
    ("opscore_scrape_duration_seconds", "gauge", "time to read the target", "scrape_s"),
    ("opscore_server_start_time_seconds", "gauge", "postmaster start (unix time)", "started_at"),
    ("opscore_client_connections", "gauge", "client backends connected", "client_connections"),
    ("opscore_active_sessions", "gauge", "client backends running a statement", "active_sessions"),
    ("opscore_idle_in_transaction_sessions", "gauge", "sessions idle in a transaction",
     "idle_in_transaction"),
    ("opscore_max_connections", "gauge", "max_connections", "max_connections"),
    ("opscore_connections_used_ratio", "gauge",
     "connections used: of max_connections minus the superuser reserve, or of the fullest "
     "database CONNECTION LIMIT", "connections_ratio"),
    ("opscore_idle_in_transaction_max_seconds", "gauge",
     "longest idle-in-transaction session (not opscore)", "idle_in_transaction_max_s"),
    ("opscore_longest_transaction_seconds", "gauge", "oldest open client transaction",
     "longest_transaction_s"),
    ("opscore_blocked_sessions", "gauge", "sessions waiting for a lock", "blocked_sessions"),
    ("opscore_prepared_transactions", "gauge", "prepared transactions (pg_prepared_xacts)",
     "prepared_transactions"),
    ("opscore_prepared_transaction_max_seconds", "gauge",
     "oldest prepared transaction waiting for COMMIT/ROLLBACK PREPARED",
     "prepared_transaction_max_s"),
    ("opscore_oldest_xid_age", "gauge", "age of the oldest datfrozenxid (transactions)",
     "max_xid_age"),
    ("opscore_wraparound_ratio", "gauge", "oldest xid/mxid age over the 2^31 horizon",
     "wraparound_ratio"),
    ("opscore_standbys", "gauge", "standbys connected (pg_stat_replication)", "standbys"),
    ("opscore_replication_lag_seconds", "gauge", "replay lag of the slowest standby",
     "replication_lag_s"),
    ("opscore_replication_lag_bytes", "gauge", "WAL not replayed by the slowest standby",
     "replication_lag_bytes"),
    ("opscore_wal_archived", "counter", "WAL files archived (pg_stat_archiver)",
     "archived_count"),
    ("opscore_wal_archive_failed", "counter", "failed WAL archive attempts", "failed_count"),
    ("opscore_wal_archive_last_success_timestamp_seconds", "gauge",
     "when the last WAL file was archived (unix time)", "last_archived_time"),
    ("opscore_wal_written_bytes", "counter", "WAL position in bytes", "wal_bytes"),
    ("opscore_xact_commit", "counter", "commits, all databases", "xact_commit"),
    ("opscore_xact_rollback", "counter", "rollbacks, all databases", "xact_rollback"),
    ("opscore_deadlocks", "counter", "deadlocks, all databases", "deadlocks"),
    ("opscore_temp_written_bytes", "counter", "temporary file bytes", "temp_bytes"),
    ("opscore_blocks_read", "counter", "blocks read from outside shared buffers", "blks_read"),
    ("opscore_blocks_hit", "counter", "blocks found in shared buffers", "blks_hit"),
    ("opscore_data_disk_size_bytes", "gauge", "file system of the data directory (local)",
     "disk_total_bytes"),
    ("opscore_data_disk_used_bytes", "gauge", "used on the data directory's file system",
     "disk_used_bytes"),
    ("opscore_last_snapshot_timestamp_seconds", "gauge", "newest good AWR snapshot (unix time)",
     "last_snapshot"),
    ("opscore_ash_last_flush_timestamp_seconds", "gauge", "last ASH sampler flush (unix time)",
     "ash_last_flush"),
    ("opscore_ash_sampler_errors", "counter", "ASH sampler errors", "ash_errors"),
    ("opscore_last_backup_timestamp_seconds", "gauge",
     "start of the newest usable physical backup (unix time)", "last_backup"),
]  # fmt: skip


class _TargetsCollector(Collector):
    def __init__(self, source: Callable[[], Iterable[Any]]):
        self.source = source

    def collect(self) -> Iterable[Metric]:
        targets = list(self.source())
        for name, kind, doc, key in FAMILIES:
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            fam = cls(name, doc, labels=["target"])
            for t in targets:
                v = t.values.get(key)
                if v is not None:
                    fam.add_metric([t.target], float(v))
            yield fam
        alerts = GaugeMetricFamily(
            "opscore_alerts_open",
            "open alerts (firing or acknowledged)",
            labels=["target", "severity"],
        )
        for t in targets:
            for sev, n in t.open_alerts.items():
                alerts.add_metric([t.target, sev], float(n))
        yield alerts


def exposition(source: Callable[[], Iterable[Any]]) -> str:
    """The text format of the figures ``source()`` returns (called on each scrape)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_TargetsCollector(source))
    return generate_latest(registry).decode()


def registry_for(source: Callable[[], Iterable[Any]]) -> CollectorRegistry:
    """A registry whose every scrape reads fresh figures (for the HTTP exporter)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_TargetsCollector(source))
    return registry
