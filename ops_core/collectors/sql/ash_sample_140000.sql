-- ASH: one sample of pg_stat_activity (PostgreSQL 14+: query_id, leader_pid, backend_type).
-- Keeps sessions that are active, idle in transaction (aborted) or waiting, and background
-- processes that are not idling in their main loop (wait type Activity). pg_blocking_pids()
-- takes the lock manager's partition locks, so it runs only for sessions waiting on a Lock.
-- The sample time comes from a one-row subquery LEFT JOINed to the sessions, so an idle server
-- still answers one row (pid NULL) carrying the sample time.
-- Parameters: text_max = query text length kept, include_opscore = keep opscore's own
-- sessions (application_name starting with opscore).
SELECT /* opscore */ n.sample_time,
       a.pid,
       a.leader_pid,
       a.backend_type,
       a.usename::text AS usename,
       a.datname::text AS datname,
       a.application_name,
       a.client_addr,
       a.backend_start,
       a.state,
       a.wait_event_type,
       a.wait_event,
       a.query_id,
       left(a.query, %(text_max)s) AS query,
       a.query_start,
       a.xact_start,
       a.state_change,
       age(a.backend_xid) AS xid_age,
       age(a.backend_xmin) AS xmin_age,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END AS blocking_pids
  FROM (SELECT now() AS sample_time) n
  LEFT JOIN pg_stat_activity a
    ON a.pid <> pg_backend_pid()
   AND (a.state IN ('active', 'idle in transaction', 'idle in transaction (aborted)',
                    'fastpath function call')
        OR (a.state IS NULL AND a.wait_event_type IS DISTINCT FROM 'Activity'))
   AND (%(include_opscore)s OR coalesce(a.application_name, '') NOT LIKE 'opscore%%')
