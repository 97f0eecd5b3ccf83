SELECT /* opscore */
       d.datid, COALESCE(d.datname, '(shared)')::text AS datname,
       d.numbackends::int8 AS numbackends,
       d.xact_commit, d.xact_rollback, d.blks_read, d.blks_hit,
       d.tup_returned, d.tup_fetched, d.tup_inserted, d.tup_updated, d.tup_deleted,
       d.conflicts, d.temp_files, d.temp_bytes, d.deadlocks,
       COALESCE(d.checksum_failures, 0)::int8 AS checksum_failures,
       d.blk_read_time, d.blk_write_time,
       d.session_time, d.active_time, d.idle_in_transaction_time,
       d.sessions, d.sessions_abandoned, d.sessions_fatal, d.sessions_killed,
       CASE WHEN %(with_sizes)s AND d.datid <> 0
                 AND has_database_privilege(d.datid, 'CONNECT')
            THEN pg_database_size(d.datid) END AS size_bytes,
       d.stats_reset
  FROM pg_stat_database d
  LEFT JOIN pg_database db ON db.oid = d.datid
 WHERE d.datid = 0 OR NOT db.datistemplate
