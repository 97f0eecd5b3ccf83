-- 16-17: bytes = operations x op_bytes
SELECT /* opscore */
       backend_type::text, object::text, context::text,
       reads, reads * op_bytes AS read_bytes, read_time,
       writes, writes * op_bytes AS write_bytes, write_time,
       writebacks, writeback_time,
       extends, extends * op_bytes AS extend_bytes, extend_time,
       hits, evictions, reuses, fsyncs, fsync_time, stats_reset
  FROM pg_stat_io
