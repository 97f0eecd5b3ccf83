SELECT /* opscore */
       now() AS captured_at,
       current_setting('server_version_num')::int AS server_version_num,
       pg_postmaster_start_time() AS postmaster_start,
       current_setting('port')::int AS port,
       current_database()::text AS datname,
       pg_is_in_recovery() AS in_recovery,
       (SELECT extnamespace::regnamespace::text FROM pg_extension
         WHERE extname = 'pg_stat_statements') AS pgss_schema
