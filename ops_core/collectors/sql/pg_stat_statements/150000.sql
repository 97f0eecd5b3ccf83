SELECT /* opscore */
       s.userid, s.dbid, s.toplevel, s.queryid,
       s.plans, s.total_plan_time, s.calls, s.total_exec_time, s.rows,
       s.shared_blks_hit, s.shared_blks_read, s.shared_blks_dirtied, s.shared_blks_written,
       s.local_blks_hit, s.local_blks_read, s.local_blks_dirtied, s.local_blks_written,
       s.temp_blks_read, s.temp_blks_written,
       s.blk_read_time AS shared_blk_read_time, s.blk_write_time AS shared_blk_write_time,
       s.temp_blk_read_time, s.temp_blk_write_time,
       s.wal_records, s.wal_fpi, s.wal_bytes,
       s.jit_functions,
       s.jit_generation_time + s.jit_inlining_time + s.jit_optimization_time
         + s.jit_emission_time AS jit_time,
       NULL::timestamptz AS stats_since
  FROM {pgss}(false) s
 WHERE s.queryid IS NOT NULL
