-- SQL Monitor: every session waiting on a lock and the pids blocking it (to walk blocking
-- chains to their root), with what each blocker is doing.
SELECT /* opscore */ a.pid, pg_blocking_pids(a.pid) AS blocking_pids
  FROM pg_stat_activity a
 WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()
