SELECT /* opscore */
       s.queryid, s.dbid, s.userid, s.toplevel,
       d.datname::text AS datname, r.rolname::text AS username, s.query
  FROM {pgss}(true) s
  LEFT JOIN pg_database d ON d.oid = s.dbid
  LEFT JOIN pg_roles r ON r.oid = s.userid
 WHERE s.queryid = ANY (%(queryids)s::int8[])
