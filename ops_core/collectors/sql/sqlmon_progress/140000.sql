-- SQL Monitor: progress of the commands PostgreSQL reports it for (pg_stat_progress_*: CREATE
-- INDEX, VACUUM, ANALYZE, CLUSTER/VACUUM FULL, COPY, base backup), one row per pid: the
-- command, its phase, work done and total in the unit the view counts, and the percentage done when the
-- total is known (NULL otherwise: never guessed).
SELECT /* opscore */ pid, command, phase, done::float8 AS done, total::float8 AS total, unit,
       CASE WHEN total > 0 THEN least(100, round(100.0 * done / total, 1))::float8 END AS pct
  FROM (
    SELECT pid, 'create index' AS command, phase,
           CASE WHEN blocks_total > 0 THEN blocks_done ELSE tuples_done END AS done,
           CASE WHEN blocks_total > 0 THEN blocks_total ELSE tuples_total END AS total,
           CASE WHEN blocks_total > 0 THEN 'blocks' ELSE 'tuples' END AS unit
      FROM pg_stat_progress_create_index
    UNION ALL
    SELECT pid, 'vacuum', phase, heap_blks_scanned, heap_blks_total, 'blocks'
      FROM pg_stat_progress_vacuum
    UNION ALL
    SELECT pid, 'analyze', phase, sample_blks_scanned, sample_blks_total, 'blocks'
      FROM pg_stat_progress_analyze
    UNION ALL
    SELECT pid, lower(command), phase, heap_blks_scanned, heap_blks_total, 'blocks'
      FROM pg_stat_progress_cluster
    UNION ALL
    SELECT pid, lower(command), type,
           CASE WHEN bytes_total > 0 THEN bytes_processed ELSE tuples_processed END,
           CASE WHEN bytes_total > 0 THEN bytes_total END,
           CASE WHEN bytes_total > 0 THEN 'bytes' ELSE 'tuples' END
      FROM pg_stat_progress_copy
    UNION ALL
    SELECT pid, 'base backup', phase, backup_streamed, backup_total, 'bytes'
      FROM pg_stat_progress_basebackup
  ) p
