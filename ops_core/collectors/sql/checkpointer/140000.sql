-- before 17: checkpointer counters live in pg_stat_bgwriter
SELECT /* opscore */
       checkpoints_timed AS num_timed, checkpoints_req AS num_requested,
       NULL::int8 AS restartpoints_timed, NULL::int8 AS restartpoints_req,
       NULL::int8 AS restartpoints_done,
       checkpoint_write_time AS write_time, checkpoint_sync_time AS sync_time,
       buffers_checkpoint AS buffers_written, buffers_clean, maxwritten_clean,
       buffers_backend, buffers_backend_fsync, buffers_alloc,
       stats_reset
  FROM pg_stat_bgwriter
