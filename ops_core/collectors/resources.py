"""Live reads for resource groups and quotas: opscore's group roles with their limits and
members, each role's limits, connections per role, and the sizes and connection counts a
quota measures. Read-only monitoring SQL; the changes are made by ops_core/targets/actions.py.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .rows import dict_rows

#: the comment that marks a role as an opscore resource group (shobj_description)
GROUP_MARK = "opscore resource group"

_GROUPS = """
SELECT /* opscore */ r.rolname AS name, r.rolconnlimit AS connection_limit,
       shobj_description(r.oid, 'pg_authid') AS comment,
       coalesce((SELECT s.setconfig FROM pg_db_role_setting s
                  WHERE s.setrole = r.oid AND s.setdatabase = 0), '{}') AS settings,
       ARRAY(SELECT m.rolname FROM pg_auth_members am JOIN pg_roles m ON m.oid = am.member
              WHERE am.roleid = r.oid ORDER BY 1) AS members
  FROM pg_roles r
 WHERE shobj_description(r.oid, 'pg_authid') LIKE %(mark)s
   AND (%(name)s::text IS NULL OR r.rolname = %(name)s)
 ORDER BY r.rolname
"""

_ROLES = """
SELECT /* opscore */ r.rolname AS name, r.rolconnlimit AS connection_limit, r.rolcanlogin,
       r.rolsuper,
       coalesce((SELECT s.setconfig FROM pg_db_role_setting s
                  WHERE s.setrole = r.oid AND s.setdatabase = 0), '{}') AS settings,
       shobj_description(r.oid, 'pg_authid') AS comment
  FROM pg_roles r WHERE r.rolname = ANY(%(names)s) ORDER BY 1
"""

_CONNECTIONS = """
SELECT /* opscore */ usename AS role, coalesce(state, 'unknown') AS state, count(*) AS sessions,
       coalesce(sum(extract(epoch FROM now() - xact_start))
                FILTER (WHERE state = 'idle in transaction'), 0)::float8 AS idle_in_xact_s
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND usename = ANY(%(names)s)
 GROUP BY 1, 2 ORDER BY 1, 2
"""

_PGSS_TEMP = """
SELECT /* opscore */ r.rolname AS role, sum(s.temp_blks_written)::bigint
         * current_setting('block_size')::bigint AS temp_bytes,
       sum(s.calls)::bigint AS calls
  FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
 WHERE r.rolname = ANY(%(names)s) GROUP BY 1 ORDER BY 1
"""


def settings_dict(setconfig: list[str] | None) -> dict[str, str]:
    """``{'statement_timeout=5s', ...}`` as a dict."""
    out = {}
    for item in setconfig or []:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def groups(conn: psycopg.Connection, name: str | None = None) -> list[dict[str, Any]]:
    """opscore's resource groups (roles commented with :data:`GROUP_MARK`)."""
    rows = dict_rows(conn, _GROUPS, {"mark": GROUP_MARK + "%", "name": name})
    for r in rows:
        r["settings"] = settings_dict(r["settings"])
    return rows


def roles(conn: psycopg.Connection, names: list[str]) -> dict[str, dict[str, Any]]:
    """The roles that exist among ``names``: connection limit, login, settings, comment."""
    out = {}
    for r in dict_rows(conn, _ROLES, {"names": names}):
        r["settings"] = settings_dict(r["settings"])
        out[r["name"]] = r
    return out


def connections(conn: psycopg.Connection, names: list[str]) -> list[dict[str, Any]]:
    """Client sessions of these roles now, by state."""
    return dict_rows(conn, _CONNECTIONS, {"names": names})


def pgss_available(conn: psycopg.Connection) -> bool:
    return (
        conn.execute(
            "SELECT /* opscore */ 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"
        ).fetchone()
        is not None
    )


def temp_by_role(conn: psycopg.Connection, names: list[str]) -> list[dict[str, Any]]:
    """Temp bytes written per role since pg_stat_statements was last reset (its counters)."""
    return dict_rows(conn, _PGSS_TEMP, {"names": names})


# ---------------------------------------------------------------------- quota measures

_MEASURES = {
    ("database", "size_bytes"): "SELECT /* opscore */ pg_database_size(d.oid)::float8 "
    "FROM pg_database d WHERE d.datname = %(object)s",
    # no row when the database or role does not exist
    ("database", "connections"): "SELECT /* opscore */ (SELECT count(*) FROM pg_stat_activity "
    "WHERE backend_type = 'client backend' AND datname = %(object)s)::float8 "
    "FROM pg_database WHERE datname = %(object)s",
    ("role", "connections"): "SELECT /* opscore */ (SELECT count(*) FROM pg_stat_activity "
    "WHERE backend_type = 'client backend' AND usename = %(object)s)::float8 "
    "FROM pg_roles WHERE rolname = %(object)s",
    ("tablespace", "size_bytes"): "SELECT /* opscore */ pg_tablespace_size(t.oid)::float8 "
    "FROM pg_tablespace t WHERE t.spcname = %(object)s",
    # a schema of the target's database: its tables, indexes, TOAST and materialized views
    ("schema", "size_bytes"): "SELECT /* opscore */ coalesce(sum(pg_relation_size(c.oid)), 0)"
    "::float8 FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid "
    "AND c.relkind IN ('r', 'i', 't', 'm', 'S') WHERE n.nspname = %(object)s GROUP BY n.oid",
}

#: (scope, metric) pairs a quota can measure
MEASURABLE = tuple(_MEASURES)


def measure(conn: psycopg.Connection, scope: str, metric: str, obj: str) -> float | None:
    """The quota's measure now; None when the object does not exist on the target."""
    row = conn.execute(_MEASURES[(scope, metric)], {"object": obj}).fetchone()  # type: ignore[arg-type]
    return None if row is None or row[0] is None else float(row[0])


_DATABASE = """SELECT /* opscore */ datname, datconnlimit FROM pg_database WHERE datname = %s"""

#: grantees of CREATE on a schema or tablespace other than its owner (0 = PUBLIC)
_CREATE_GRANTEES = {
    "schema": "SELECT /* opscore */ CASE WHEN a.grantee = 0 THEN 'PUBLIC' "
    "ELSE pg_get_userbyid(a.grantee) END FROM pg_namespace n, aclexplode(n.nspacl) a "
    "WHERE n.nspname = %s AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner "
    "ORDER BY 1",
    "tablespace": "SELECT /* opscore */ CASE WHEN a.grantee = 0 THEN 'PUBLIC' "
    "ELSE pg_get_userbyid(a.grantee) END FROM pg_tablespace s, aclexplode(s.spcacl) a "
    "WHERE s.spcname = %s AND a.privilege_type = 'CREATE' AND a.grantee <> s.spcowner "
    "ORDER BY 1",
}


def database_conn_limit(conn: psycopg.Connection, name: str) -> int | None:
    row = conn.execute(_DATABASE, (name,)).fetchone()
    return None if row is None else int(row[1])


def create_grantees(conn: psycopg.Connection, scope: str, name: str) -> list[str]:
    """Who may CREATE in the schema or tablespace besides its owner (PUBLIC included)."""
    return [r[0] for r in conn.execute(_CREATE_GRANTEES[scope], (name,)).fetchall()]


#: the state journaled before and after an enforcement
ACL_STATE = {
    "schema": "SELECT /* opscore */ nspname, nspacl::text FROM pg_namespace WHERE nspname = %s",
    "tablespace": "SELECT /* opscore */ spcname, spcacl::text FROM pg_tablespace "
    "WHERE spcname = %s",
}
DATABASE_STATE = "SELECT /* opscore */ datname, datconnlimit FROM pg_database WHERE datname = %s"
