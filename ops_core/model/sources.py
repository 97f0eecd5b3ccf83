"""The row type of each source opscore reads from a target (shared vocabulary: the collectors
read with it, the repository stores and reads by it, so it sits below both).

Column kinds: ``key`` identifies a row across snapshots, ``counter`` is cumulative (stored as
per-interval deltas), ``gauge`` is a value stored as is, ``since`` is a reset timestamp (a
change means the row's counters restarted from zero).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SQL_MARKER",
    "OWN_TEXTS",
    "is_own_sql",
    "Col",
    "Source",
    "SOURCES",
    "HOST_SOURCE",
    "columns",
]

SQL_MARKER = "/* opscore */"  # every catalog query carries it: how opscore finds its own SQL
# statements opscore sends without a marker (transaction control of its capture sessions)
OWN_TEXTS = frozenset(
    {
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        "SET LOCAL stats_fetch_consistency = $1",
        "SET LOCAL /* opscore */ stats_fetch_consistency = $1",
    }
)


def is_own_sql(query: str | None) -> bool:
    """True for statements opscore itself runs on targets (marker or known text)."""
    return bool(query) and (SQL_MARKER in query or query.strip() in OWN_TEXTS)  # type: ignore[union-attr]


@dataclass(frozen=True)
class Col:
    name: str
    pgtype: str  # psycopg type name: int8, float8, numeric, text, oid, bool, timestamptz, int4
    kind: str  # key | counter | gauge | since


def columns(spec: str) -> tuple[Col, ...]:
    """'name:type:kind, ...' -> columns (kind defaults to counter, type to int8)."""
    out = []
    for item in spec.split():
        parts = item.split(":")
        name = parts[0]
        pgtype = parts[1] if len(parts) > 1 and parts[1] else "int8"
        kind = parts[2] if len(parts) > 2 else "counter"
        out.append(Col(name, pgtype, kind))
    return tuple(out)


@dataclass(frozen=True)
class Source:
    name: str
    columns: tuple[Col, ...]
    per_database: bool = False  # run in every captured database, not once per cluster
    only_changed: bool = False  # store only rows whose counters moved in the interval
    new_rows: str = "delta"  # a row unseen before: "delta" (counted since creation) | "baseline"
    description: str = ""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def of_kind(self, kind: str) -> list[str]:
        return [c.name for c in self.columns if c.kind == kind]


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source(
            "cluster_info",
            columns(
                "captured_at:timestamptz:gauge server_version_num:int4:gauge "
                "postmaster_start:timestamptz:gauge port:int4:gauge datname:text:gauge "
                "in_recovery:bool:gauge pgss_schema:text:gauge"
            ),
            description="snapshot time, version, postmaster start",
        ),
        Source(
            "pg_stat_statements",
            columns(
                "userid:oid:key dbid:oid:key toplevel:bool:key queryid:int8:key "
                "plans total_plan_time:float8 calls total_exec_time:float8 rows "
                "shared_blks_hit shared_blks_read shared_blks_dirtied shared_blks_written "
                "local_blks_hit local_blks_read local_blks_dirtied local_blks_written "
                "temp_blks_read temp_blks_written "
                "shared_blk_read_time:float8 shared_blk_write_time:float8 "
                "temp_blk_read_time:float8 temp_blk_write_time:float8 "
                "wal_records wal_fpi wal_bytes:numeric jit_functions jit_time:float8 "
                "stats_since:timestamptz:since"
            ),
            only_changed=True,
            description="statement counters (texts fetched once per statement)",
        ),
        Source(
            "statement_texts",
            columns(
                "queryid:int8:key dbid:oid:key userid:oid:key toplevel:bool:key "
                "datname:text:gauge username:text:gauge query:text:gauge"
            ),
            description="texts of statements not yet in the repository",
        ),
        Source(
            "pg_stat_statements_info",
            columns("dealloc:int8:gauge stats_reset:timestamptz:since"),
            description="pg_stat_statements evictions and resets",
        ),
        Source(
            "pg_stat_database",
            columns(
                "datid:oid:key datname:text:gauge numbackends:int8:gauge "
                "xact_commit xact_rollback blks_read blks_hit tup_returned tup_fetched "
                "tup_inserted tup_updated tup_deleted conflicts temp_files temp_bytes deadlocks "
                "checksum_failures blk_read_time:float8 blk_write_time:float8 "
                "session_time:float8 active_time:float8 idle_in_transaction_time:float8 "
                "sessions sessions_abandoned sessions_fatal sessions_killed "
                "size_bytes:int8:gauge stats_reset:timestamptz:since"
            ),
            description="database counters and sizes",
        ),
        Source(
            "tables",
            columns(
                "relid:oid:key schemaname:text:gauge relname:text:gauge "
                "seq_scan seq_tup_read idx_scan idx_tup_fetch n_tup_ins n_tup_upd n_tup_del "
                "n_tup_hot_upd n_tup_newpage_upd vacuum_count autovacuum_count analyze_count "
                "autoanalyze_count heap_blks_read heap_blks_hit idx_blks_read idx_blks_hit "
                "toast_blks_read toast_blks_hit tidx_blks_read tidx_blks_hit "
                "n_live_tup:int8:gauge n_dead_tup:int8:gauge n_mod_since_analyze:int8:gauge "
                "n_ins_since_vacuum:int8:gauge last_vacuum:timestamptz:gauge "
                "last_autovacuum:timestamptz:gauge last_analyze:timestamptz:gauge "
                "last_autoanalyze:timestamptz:gauge table_bytes:int8:gauge total_bytes:int8:gauge"
            ),
            per_database=True,
            only_changed=True,
            new_rows="baseline",
            description="pg_stat_user_tables + pg_statio_user_tables (top-N by activity)",
        ),
        Source(
            "indexes",
            columns(
                "indexrelid:oid:key relid:oid:gauge schemaname:text:gauge relname:text:gauge "
                "indexrelname:text:gauge idx_scan idx_tup_read idx_tup_fetch idx_blks_read "
                "idx_blks_hit index_bytes:int8:gauge"
            ),
            per_database=True,
            only_changed=True,
            new_rows="baseline",
            description="pg_stat_user_indexes + pg_statio_user_indexes (top-N by activity)",
        ),
        Source(
            "pg_stat_io",
            columns(
                "backend_type:text:key object:text:key context:text:key "
                "reads read_bytes read_time:float8 writes write_bytes write_time:float8 "
                "writebacks writeback_time:float8 extends extend_bytes extend_time:float8 "
                "hits evictions reuses fsyncs fsync_time:float8 stats_reset:timestamptz:since"
            ),
            only_changed=True,
            description="I/O by backend type, object and context",
        ),
        Source(
            "pg_stat_wal",
            columns(
                "wal_records wal_fpi wal_bytes:numeric wal_buffers_full wal_write wal_sync "
                "wal_write_time:float8 wal_sync_time:float8 stats_reset:timestamptz:since"
            ),
            description="WAL volume",
        ),
        Source(
            "checkpointer",
            columns(
                "num_timed num_requested restartpoints_timed restartpoints_req "
                "restartpoints_done write_time:float8 sync_time:float8 buffers_written "
                "buffers_clean maxwritten_clean buffers_backend buffers_backend_fsync "
                "buffers_alloc stats_reset:timestamptz:since"
            ),
            description="checkpointer and background writer",
        ),
        Source(
            "pg_stat_archiver",
            columns(
                "archived_count failed_count last_archived_wal:text:gauge "
                "last_archived_time:timestamptz:gauge last_failed_wal:text:gauge "
                "last_failed_time:timestamptz:gauge stats_reset:timestamptz:since"
            ),
            description="WAL archiving",
        ),
        Source(
            "replication",
            columns(
                "pid:int4:key usename:text:gauge application_name:text:gauge "
                "client_addr:text:gauge state:text:gauge sync_state:text:gauge "
                "sent_lsn:text:gauge replay_lsn:text:gauge replay_lag_bytes:int8:gauge "
                "write_lag_s:float8:gauge flush_lag_s:float8:gauge replay_lag_s:float8:gauge"
            ),
            description="pg_stat_replication (values)",
        ),
        Source(
            "replication_slots",
            columns(
                "slot_name:text:key slot_type:text:gauge database:text:gauge active:bool:gauge "
                "wal_status:text:gauge retained_bytes:int8:gauge safe_wal_size:int8:gauge"
            ),
            description="replication slots and the WAL they hold",
        ),
        Source(
            "wraparound",
            columns(
                "datname:text:key xid_age:int8:gauge mxid_age:int8:gauge "
                "freeze_max_age:int8:gauge mxid_freeze_max_age:int8:gauge "
                "failsafe_age:int8:gauge mxid_failsafe_age:int8:gauge autovacuum:bool:gauge"
            ),
            description="transaction-ID and multixact age of every database, with the "
            "autovacuum freeze and failsafe ages",
        ),
        Source(
            "sequences",
            columns(
                "schemaname:text:key sequencename:text:key data_type:text:gauge "
                "last_value:int8:gauge min_value:int8:gauge max_value:int8:gauge "
                "increment_by:int8:gauge cycle:bool:gauge"
            ),
            description="sequences of a database: last value against their bounds",
        ),
        Source(
            "xmin_holders",
            columns(
                "kind:text:key name:text:key database:text:gauge owner:text:gauge "
                "since:timestamptz:gauge xmin_age:int8:gauge active:bool:gauge"
            ),
            description="what holds the xmin horizon besides sessions: prepared transactions, "
            "replication slots with an xmin, standbys' feedback (oldest first)",
        ),
        Source(
            "limits",
            columns(
                "max_connections:int4:gauge superuser_reserved_connections:int4:gauge "
                "reserved_connections:int4:gauge"
            ),
            description="connection limits in force, whatever their source (the settings "
            "capture keeps only non-default ones): the capacity forecasts compare with them; "
            "reserved_connections from PostgreSQL 16 (NULL before)",
        ),
        Source(
            "settings",
            columns("name:text:key setting:text:gauge unit:text:gauge source:text:gauge"),
            description="settings changed from their defaults",
        ),
    ]
}

#: host counters and gauges (psutil, same-host targets: ``collectors.host.sample``), kept
#: apart from SOURCES (no catalog SQL)
HOST_SOURCE = Source(
    "host",
    columns(
        "cpu_user:float8 cpu_system:float8 cpu_idle:float8 cpu_iowait:float8 cpu_steal:float8 "
        "disk_read_bytes disk_write_bytes disk_reads disk_writes net_bytes_sent net_bytes_recv "
        "cpu_count:int8:gauge load1:float8:gauge load5:float8:gauge load15:float8:gauge "
        "mem_total:int8:gauge mem_available:int8:gauge mem_used:int8:gauge "
        "swap_used:int8:gauge data_disk_total:int8:gauge data_disk_used:int8:gauge "
        "boot_time:timestamptz:since"
    ),
    description="host CPU (seconds), memory, disk and network (same-host targets only)",
)
