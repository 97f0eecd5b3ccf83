-- Live: one row about the server now: version, uptime, sessions by state (client backends,
-- opscore's own sessions left out unless include_opscore).
SELECT /* opscore */
       current_setting('server_version') AS version,
       current_setting('server_version_num')::int AS version_num,
       pg_postmaster_start_time() AS started_at,
       now() AS now,
       count(*) FILTER (WHERE a.backend_type = 'client backend') AS sessions,
       count(*) FILTER (WHERE a.backend_type = 'client backend' AND a.state = 'active')
           AS active,
       count(*) FILTER (WHERE a.state LIKE 'idle in transaction%%') AS idle_in_transaction,
       count(*) FILTER (WHERE a.wait_event_type = 'Lock') AS waiting_on_locks,
       current_setting('max_connections')::int AS max_connections
  FROM pg_stat_activity a
 WHERE a.pid <> pg_backend_pid()
   AND (%(include_opscore)s OR coalesce(a.application_name, '') NOT LIKE 'opscore%%')
