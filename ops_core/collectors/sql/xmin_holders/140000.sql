-- What holds the xmin horizon besides sessions (whose backend_xmin ASH samples): prepared
-- transactions (pg_prepared_xacts; they hold their locks and their xid until COMMIT/ROLLBACK
-- PREPARED, with no session to end), replication slots with an xmin (a physical slot of a
-- standby with hot_standby_feedback; catalog_xmin holds only the system catalogs), and standbys
-- sending feedback (backend_xmin of their WAL sender). The oldest first.
SELECT /* opscore */ *
  FROM (SELECT 'prepared_transaction'::text AS kind, gid AS name, database::text AS database,
               owner::text AS owner, prepared AS since, age(transaction)::int8 AS xmin_age,
               NULL::bool AS active
          FROM pg_prepared_xacts
        UNION ALL
        SELECT 'replication_slot', slot_name::text, database::text, NULL, NULL,
               age(xmin)::int8, active
          FROM pg_replication_slots
         WHERE xmin IS NOT NULL
        UNION ALL
        SELECT 'standby', application_name, NULL, usename::text, backend_start,
               age(backend_xmin)::int8, true
          FROM pg_stat_replication
         WHERE backend_xmin IS NOT NULL) h
 ORDER BY xmin_age DESC
 LIMIT 20
