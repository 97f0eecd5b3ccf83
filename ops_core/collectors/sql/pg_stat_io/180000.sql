-- 18: op_bytes replaced by read_bytes/write_bytes/extend_bytes
SELECT /* opscore */
       backend_type::text, object::text, context::text,
       reads, read_bytes::int8 AS read_bytes, read_time,
       writes, write_bytes::int8 AS write_bytes, write_time,
       writebacks, writeback_time,
       extends, extend_bytes::int8 AS extend_bytes, extend_time,
       hits, evictions, reuses, fsyncs, fsync_time, stats_reset
  FROM pg_stat_io
