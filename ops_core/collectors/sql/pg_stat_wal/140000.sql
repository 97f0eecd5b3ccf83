SELECT /* opscore */
       wal_records, wal_fpi, wal_bytes, wal_buffers_full,
       wal_write, wal_sync, wal_write_time, wal_sync_time, stats_reset
  FROM pg_stat_wal
