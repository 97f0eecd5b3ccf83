SELECT /* opscore */
       pid, usename::text AS usename, application_name, client_addr::text AS client_addr,
       state, sync_state, sent_lsn::text AS sent_lsn, replay_lsn::text AS replay_lsn,
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::int8 END AS replay_lag_bytes,
       EXTRACT(epoch FROM write_lag)::float8 AS write_lag_s,
       EXTRACT(epoch FROM flush_lag)::float8 AS flush_lag_s,
       EXTRACT(epoch FROM replay_lag)::float8 AS replay_lag_s
  FROM pg_stat_replication
