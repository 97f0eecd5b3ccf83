-- 17: pg_stat_checkpointer; buffers_backend* gone (see pg_stat_io)
SELECT /* opscore */
       c.num_timed, c.num_requested,
       c.restartpoints_timed, c.restartpoints_req, c.restartpoints_done,
       c.write_time, c.sync_time, c.buffers_written,
       b.buffers_clean, b.maxwritten_clean,
       NULL::int8 AS buffers_backend, NULL::int8 AS buffers_backend_fsync, b.buffers_alloc,
       c.stats_reset
  FROM pg_stat_checkpointer c, pg_stat_bgwriter b
