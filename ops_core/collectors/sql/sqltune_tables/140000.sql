-- SQL Tuning Advisor: the statistics state of the tables a statement names (schema.table as
-- written, resolved with to_regclass): planner's row count, live rows, rows changed since the
-- last analyze, the last analyze times, and whether auto-analyze may run on it.
SELECT /* opscore */ n.nspname AS schema, c.relname AS table_name, c.reltuples::float8 AS reltuples,
       s.n_live_tup, s.n_mod_since_analyze, s.last_analyze, s.last_autoanalyze,
       coalesce(current_setting('autovacuum')::bool, true)
         AND coalesce((SELECT option_value::bool FROM pg_options_to_table(c.reloptions)
                        WHERE option_name = 'autovacuum_enabled'), true) AS autoanalyze_on
  FROM unnest(%(names)s::text[]) x(name)
  JOIN pg_class c ON c.oid = to_regclass(x.name)
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
 WHERE c.relkind IN ('r', 'p', 'm')
