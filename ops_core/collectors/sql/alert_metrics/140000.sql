-- Alerts, health and Prometheus: one cheap row about the server now. Read-only; opscore's own
-- sessions are left out of the idle-in-transaction figures (they carry their own timeout).
WITH act AS (
    SELECT a.datname, a.state, a.backend_type, a.application_name,
           a.state_change, a.xact_start, a.wait_event_type,
           cardinality(pg_blocking_pids(a.pid)) > 0 AS blocked
      FROM pg_stat_activity a
     WHERE a.pid <> pg_backend_pid()
), per_db AS (
    SELECT d.datname, d.datconnlimit, count(a.datname) AS n
      FROM pg_database d LEFT JOIN act a ON a.datname = d.datname
     WHERE d.datconnlimit > 0
     GROUP BY d.datname, d.datconnlimit
), rep AS (
    SELECT count(*) AS standbys,
           max(EXTRACT(epoch FROM replay_lag))::float8 AS lag_s,
           max(CASE WHEN pg_is_in_recovery() THEN NULL
                    ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) END)::float8 AS lag_bytes
      FROM pg_stat_replication
), dbs AS (
    SELECT sum(xact_commit)::float8 AS xact_commit, sum(xact_rollback)::float8 AS xact_rollback,
           sum(deadlocks)::float8 AS deadlocks, sum(temp_bytes)::float8 AS temp_bytes,
           sum(blks_read)::float8 AS blks_read, sum(blks_hit)::float8 AS blks_hit
      FROM pg_stat_database
)
SELECT /* opscore */
       now() AS now,
       current_setting('server_version_num')::int AS version_num,
       pg_postmaster_start_time() AS started_at,
       pg_is_in_recovery() AS in_recovery,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved_connections,
       (SELECT setting FROM pg_settings WHERE name = 'data_directory') AS data_directory,
       current_setting('archive_mode') AS archive_mode,
       (SELECT count(*) FROM act WHERE backend_type = 'client backend') AS client_connections,
       (SELECT count(*) FROM act WHERE backend_type = 'client backend' AND state = 'active')
           AS active_sessions,
       (SELECT count(*) FROM act WHERE state LIKE 'idle in transaction%%'
            AND coalesce(application_name, '') NOT LIKE 'opscore%%') AS idle_in_transaction,
       (SELECT max(EXTRACT(epoch FROM now() - state_change)) FROM act
         WHERE state LIKE 'idle in transaction%%'
           AND coalesce(application_name, '') NOT LIKE 'opscore%%')::float8
           AS idle_in_transaction_max_s,
       (SELECT max(EXTRACT(epoch FROM now() - xact_start)) FROM act
         WHERE backend_type = 'client backend'
           AND coalesce(application_name, '') NOT LIKE 'opscore%%')::float8
           AS longest_transaction_s,
       (SELECT count(*) FROM act WHERE blocked) AS blocked_sessions,
       (SELECT count(*) FROM pg_prepared_xacts) AS prepared_transactions,
       (SELECT max(EXTRACT(epoch FROM now() - prepared)) FROM pg_prepared_xacts)::float8
           AS prepared_transaction_max_s,
       (SELECT gid FROM pg_prepared_xacts ORDER BY prepared LIMIT 1) AS oldest_prepared_gid,
       (SELECT database::text FROM pg_prepared_xacts ORDER BY prepared LIMIT 1)
           AS oldest_prepared_database,
       (SELECT max(EXTRACT(epoch FROM now() - state_change)) FROM act WHERE blocked)::float8
           AS longest_blocked_s,
       (SELECT datname FROM per_db ORDER BY n::float8 / datconnlimit DESC LIMIT 1)
           AS fullest_limited_db,
       (SELECT max(100.0 * n / datconnlimit) FROM per_db)::float8 AS fullest_db_pct,
       (SELECT max(age(datfrozenxid)) FROM pg_database)::float8 AS max_xid_age,
       (SELECT datname FROM pg_database ORDER BY age(datfrozenxid) DESC LIMIT 1)
           AS oldest_xid_database,
       (SELECT max(mxid_age(datminmxid)) FROM pg_database)::float8 AS max_mxid_age,
       rep.standbys, rep.lag_s AS replica_lag_s, rep.lag_bytes AS replica_lag_bytes,
       CASE WHEN pg_is_in_recovery()
            THEN EXTRACT(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END
           AS standby_replay_age_s,
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_walfile_name(pg_current_wal_lsn()) END AS current_wal_file,
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 END AS wal_bytes,
       ar.archived_count, ar.failed_count, ar.last_archived_wal, ar.last_archived_time,
       ar.last_failed_wal, ar.last_failed_time,
       dbs.xact_commit, dbs.xact_rollback, dbs.deadlocks, dbs.temp_bytes,
       dbs.blks_read, dbs.blks_hit
  FROM rep, dbs, pg_stat_archiver ar
