-- 18: write/sync counts and times moved to pg_stat_io (object 'wal')
SELECT /* opscore */
       wal_records, wal_fpi, wal_bytes, wal_buffers_full,
       NULL::int8 AS wal_write, NULL::int8 AS wal_sync,
       NULL::float8 AS wal_write_time, NULL::float8 AS wal_sync_time, stats_reset
  FROM pg_stat_wal
