SELECT /* opscore */
       slot_name::text AS slot_name, slot_type, database::text AS database, active,
       wal_status,
       CASE WHEN pg_is_in_recovery() OR restart_lsn IS NULL THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8 END AS retained_bytes,
       safe_wal_size
  FROM pg_replication_slots
