SELECT /* opscore */
       s.schemaname::text AS schemaname, s.sequencename::text AS sequencename,
       s.data_type::text AS data_type, s.last_value, s.min_value, s.max_value,
       s.increment_by, s.cycle
  FROM pg_sequences s
 WHERE s.schemaname <> ALL (%(exclude_schemas)s::text[])
 ORDER BY CASE WHEN s.last_value IS NULL OR s.max_value = s.min_value THEN NULL
               WHEN s.increment_by > 0
               THEN (s.last_value - s.min_value)::float8 / (s.max_value - s.min_value)::float8
               ELSE (s.max_value - s.last_value)::float8 / (s.max_value - s.min_value)::float8
          END DESC NULLS LAST, 1, 2
 LIMIT %(max_relations)s
