-- SQL Tuning Advisor: sample values of columns from the planner's statistics (pg_stats: the
-- most common values, else the histogram bounds), as text, to execute a parameterized
-- statement with real values. Parameters: pairs of table (schema.table, quoted as needed) and
-- column name.
SELECT /* opscore */ x.rel, x.col,
       coalesce((s.most_common_vals::text)::text[],
                (s.histogram_bounds::text)::text[]) AS vals,
       CASE WHEN s.most_common_vals IS NOT NULL THEN 'most common value'
            WHEN s.histogram_bounds IS NOT NULL THEN 'histogram bound' END AS source
  FROM unnest(%(rels)s::text[], %(cols)s::text[]) x(rel, col)
  JOIN pg_class c ON c.oid = to_regclass(x.rel)
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                      AND s.attname = x.col
