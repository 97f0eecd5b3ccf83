-- Auto-indexing: the planner's statistics of candidate key columns (pg_stats): distinct
-- values, physical correlation, null fraction, width, the most common value's frequency and
-- the most common values with their frequencies (partial index predicates).
-- Parameters: pairs of table (schema.table, quoted as needed) and column name.
SELECT /* opscore */ x.rel, x.col, s.n_distinct::float8 AS n_distinct,
       s.correlation::float8 AS correlation, s.null_frac::float8 AS null_frac,
       s.avg_width, (s.most_common_freqs)[1]::float8 AS top_freq,
       (s.most_common_vals::text)::text[] AS mcv, s.most_common_freqs::float8[] AS mcf
  FROM unnest(%(rels)s::text[], %(cols)s::text[]) x(rel, col)
  JOIN pg_class c ON c.oid = to_regclass(x.rel)
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                      AND s.attname = x.col AND NOT s.inherited
