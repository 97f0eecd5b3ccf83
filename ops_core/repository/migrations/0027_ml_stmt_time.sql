-- Workload ML: the statement-time rate is named for what it is. It was stored as
-- db_time_s_per_s, but it is statement execution time per second from pg_stat_statements
-- (the average number of statements executing), not ASH DB time (sessions active): renamed
-- stmt_time_s_per_s in the anomalies' moved metrics and in the models' methods and
-- validation scales. (joblib model files are read with the old name mapped, see
-- ops_core.analysis.ml.series.OLD_NAMES.)
UPDATE opscore.ml_anomalies a
   SET metrics = (SELECT jsonb_agg(CASE WHEN e ->> 'metric' = 'db_time_s_per_s'
                                        THEN jsonb_set(e, '{metric}', '"stmt_time_s_per_s"')
                                        ELSE e END ORDER BY n)
                    FROM jsonb_array_elements(a.metrics) WITH ORDINALITY AS x(e, n))
 WHERE a.metrics @> '[{"metric": "db_time_s_per_s"}]';

UPDATE opscore.ml_models
   SET methods = (methods - 'db_time_s_per_s')
                 || jsonb_build_object('stmt_time_s_per_s', methods -> 'db_time_s_per_s')
 WHERE methods ? 'db_time_s_per_s';

UPDATE opscore.ml_models
   SET validation = jsonb_set(validation, '{sigma}',
                              ((validation -> 'sigma') - 'db_time_s_per_s')
                              || jsonb_build_object('stmt_time_s_per_s',
                                                    validation -> 'sigma' -> 'db_time_s_per_s'))
 WHERE validation -> 'sigma' ? 'db_time_s_per_s';
