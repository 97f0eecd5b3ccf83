-- Auto-indexing: the indexes it created, by name (schema, index): whether they still exist,
-- are valid, their size and how often they were scanned.
SELECT /* opscore */ x.schema, x.index, i.indisvalid AS valid,
       pg_relation_size(c.oid)::int8 AS bytes, coalesce(s.idx_scan, 0)::int8 AS idx_scan
  FROM unnest(%(schemas)s::text[], %(indexes)s::text[]) x(schema, index)
  JOIN pg_namespace n ON n.nspname = x.schema
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = x.index
  JOIN pg_index i ON i.indexrelid = c.oid
  LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = c.oid
