-- Auto-indexing: size and write activity of candidate tables (rows, pages, inserts, updates
-- and how many of them were HOT, deletes, the number of valid indexes, the pages the
-- visibility map says all-visible: index-only scans). Parameter: names
-- (schema.table, quoted as needed).
SELECT /* opscore */ x.rel, n.nspname AS schema, c.relname AS table_name,
       greatest(c.reltuples, 0)::float8 AS reltuples, c.relpages::float8 AS relpages,
       c.relallvisible::float8 AS relallvisible,
       coalesce(s.n_live_tup, 0)::float8 AS n_live_tup,
       coalesce(s.n_tup_ins, 0)::float8 AS n_tup_ins, coalesce(s.n_tup_upd, 0)::float8 AS n_tup_upd,
       coalesce(s.n_tup_hot_upd, 0)::float8 AS n_tup_hot_upd,
       coalesce(s.n_tup_del, 0)::float8 AS n_tup_del,
       (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid AND i.indisvalid)::int
           AS n_indexes
  FROM unnest(%(names)s::text[]) x(rel)
  JOIN pg_class c ON c.oid = to_regclass(x.rel)
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
