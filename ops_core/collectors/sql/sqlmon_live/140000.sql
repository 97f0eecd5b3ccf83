-- SQL Monitor: executions running now (state active, or a fastpath call) with their elapsed
-- time from clock_timestamp() (never negative: a query_start a hair ahead of the clock reads
-- 0), the current wait, the blocking pids (pg_blocking_pids only for sessions waiting on a
-- lock: it takes the lock manager's partition locks) and the root of the blocking chain.
-- Parameters: min_elapsed (seconds), include_opscore, text_max, pid (NULL: every session).
SELECT /* opscore */
       a.pid,
       a.backend_start,
       a.query_start,
       a.query_id,
       left(a.query, %(text_max)s) AS query,
       a.usename::text AS usename,
       a.datname::text AS datname,
       a.application_name,
       host(a.client_addr) AS client_addr,
       a.backend_type,
       a.state,
       a.wait_event_type,
       a.wait_event,
       greatest(0, extract(epoch FROM clock_timestamp() - a.query_start))::float8 AS elapsed_s,
       greatest(0, extract(epoch FROM clock_timestamp() - a.xact_start))::float8 AS xact_s,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END AS blocking_pids,
       clock_timestamp() AS seen_at
  FROM pg_stat_activity a
 WHERE a.pid <> pg_backend_pid()
   AND a.query_start IS NOT NULL
   AND a.state IN ('active', 'fastpath function call')
   AND (%(pid)s::int IS NULL OR a.pid = %(pid)s::int)
   AND (%(pid)s::int IS NOT NULL
        OR clock_timestamp() - a.query_start >= make_interval(secs => %(min_elapsed)s))
   AND (%(include_opscore)s OR coalesce(a.application_name, '') NOT LIKE 'opscore%%')
 ORDER BY a.query_start, a.pid
