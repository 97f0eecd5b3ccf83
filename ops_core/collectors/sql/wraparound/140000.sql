SELECT /* opscore */
       d.datname::text AS datname,
       age(d.datfrozenxid)::int8 AS xid_age,
       mxid_age(d.datminmxid)::int8 AS mxid_age,
       current_setting('autovacuum_freeze_max_age')::int8 AS freeze_max_age,
       current_setting('autovacuum_multixact_freeze_max_age')::int8 AS mxid_freeze_max_age,
       current_setting('vacuum_failsafe_age')::int8 AS failsafe_age,
       current_setting('vacuum_multixact_failsafe_age')::int8 AS mxid_failsafe_age,
       current_setting('autovacuum')::bool AS autovacuum
  FROM pg_database d
 ORDER BY d.datname
