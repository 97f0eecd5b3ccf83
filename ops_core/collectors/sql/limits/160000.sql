SELECT /* opscore */
       current_setting('max_connections')::int4 AS max_connections,
       current_setting('superuser_reserved_connections')::int4 AS superuser_reserved_connections,
       current_setting('reserved_connections')::int4 AS reserved_connections
