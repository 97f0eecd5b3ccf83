-- Live: the sessions doing something now (active, idle in transaction, waiting background
-- processes), opscore's own sessions left out unless include_opscore. Durations in seconds.
SELECT /* opscore */
       a.pid,
       a.usename::text AS usename,
       a.datname::text AS datname,
       a.application_name,
       host(a.client_addr) AS client_addr,
       a.backend_type,
       a.state,
       a.wait_event_type,
       a.wait_event,
       a.query_id,
       left(a.query, %(text_max)s) AS query,
       extract(epoch FROM clock_timestamp() - a.query_start)::float8 AS query_s,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS xact_s,
       extract(epoch FROM clock_timestamp() - a.state_change)::float8 AS state_s,
       a.backend_start,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END AS blocking_pids
  FROM pg_stat_activity a
 WHERE a.pid <> pg_backend_pid()
   AND (a.state IN ('active', 'idle in transaction', 'idle in transaction (aborted)',
                    'fastpath function call')
        OR (a.state IS NULL AND a.wait_event_type IS DISTINCT FROM 'Activity'))
   AND (%(include_opscore)s OR coalesce(a.application_name, '') NOT LIKE 'opscore%%')
 ORDER BY a.query_start NULLS LAST, a.pid
