SELECT /* opscore */
-- 16: n_tup_newpage_upd
       t.relid, t.schemaname::text AS schemaname, t.relname::text AS relname,
       t.seq_scan, t.seq_tup_read, t.idx_scan, t.idx_tup_fetch,
       t.n_tup_ins, t.n_tup_upd, t.n_tup_del, t.n_tup_hot_upd, t.n_tup_newpage_upd,
       t.vacuum_count, t.autovacuum_count, t.analyze_count, t.autoanalyze_count,
       io.heap_blks_read, io.heap_blks_hit, io.idx_blks_read, io.idx_blks_hit,
       io.toast_blks_read, io.toast_blks_hit, io.tidx_blks_read, io.tidx_blks_hit,
       t.n_live_tup, t.n_dead_tup, t.n_mod_since_analyze, t.n_ins_since_vacuum,
       t.last_vacuum, t.last_autovacuum, t.last_analyze, t.last_autoanalyze,
       CASE WHEN %(with_sizes)s THEN pg_relation_size(t.relid) END AS table_bytes,
       CASE WHEN %(with_sizes)s THEN pg_total_relation_size(t.relid) END AS total_bytes
  FROM pg_stat_user_tables t
  JOIN pg_statio_user_tables io USING (relid)
 WHERE t.schemaname <> ALL (%(exclude_schemas)s::text[])
 ORDER BY COALESCE(t.seq_tup_read, 0) + COALESCE(t.idx_tup_fetch, 0) + COALESCE(t.n_tup_ins, 0)
        + COALESCE(t.n_tup_upd, 0) + COALESCE(t.n_tup_del, 0)
        + COALESCE(io.heap_blks_read, 0) + COALESCE(io.heap_blks_hit, 0) DESC, t.relid
 LIMIT %(max_relations)s
