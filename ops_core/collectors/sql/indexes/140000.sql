SELECT /* opscore */
       i.indexrelid, i.relid, i.schemaname::text AS schemaname, i.relname::text AS relname,
       i.indexrelname::text AS indexrelname,
       i.idx_scan, i.idx_tup_read, i.idx_tup_fetch, io.idx_blks_read, io.idx_blks_hit,
       CASE WHEN %(with_sizes)s THEN pg_relation_size(i.indexrelid) END AS index_bytes
  FROM pg_stat_user_indexes i
  JOIN pg_statio_user_indexes io USING (indexrelid)
 WHERE i.schemaname <> ALL (%(exclude_schemas)s::text[])
 ORDER BY COALESCE(i.idx_scan, 0) + COALESCE(io.idx_blks_read, 0) + COALESCE(io.idx_blks_hit, 0)
          DESC, i.indexrelid
 LIMIT %(max_relations)s
