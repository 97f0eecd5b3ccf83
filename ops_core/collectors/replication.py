"""Live replication and storage reads of a target: its role (primary or standby, from
``pg_is_in_recovery``), the standbys and WAL receivers streaming from it
(``pg_stat_replication``, via ``sql/replication``), its own WAL receiver when it is a standby
(``pg_stat_wal_receiver``), its replication slots (``sql/replication_slots``), and the sizes of
its databases, tablespaces and WAL directory.

Read-only monitoring SQL. What a role may not read (``pg_ls_waldir`` needs superuser or
``pg_monitor``; a tablespace's size needs CREATE on it or ``pg_read_all_stats``) comes back as
NULL with the privilege flags, so the service layer can say why instead of inventing a figure.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .live import live_sql
from .rows import dict_rows

__all__ = ["node", "standbys", "wal_receiver", "slots", "databases", "tablespaces", "wal_dir"]

NODE = """
SELECT /* opscore */ pg_is_in_recovery() AS in_recovery,
       CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE')
            THEN (SELECT system_identifier::text FROM pg_control_system()) END
         AS system_identifier,
       CASE WHEN has_function_privilege('pg_control_checkpoint()', 'EXECUTE')
            THEN (SELECT timeline_id FROM pg_control_checkpoint()) END AS timeline,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END
         AS current_lsn,
       pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       pg_last_xact_replay_timestamp() AS last_replay_at,
       CASE WHEN pg_is_in_recovery()
            THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END
         AS replay_delay_s,
       current_setting('wal_level') AS wal_level,
       current_setting('max_wal_senders')::int AS max_wal_senders,
       current_setting('max_replication_slots')::int AS max_replication_slots,
       current_setting('synchronous_standby_names') AS synchronous_standby_names,
       current_setting('cluster_name') AS cluster_name,
       inet_server_addr()::text AS host,
       current_setting('port')::int AS port,
       current_setting('server_version') AS server_version
"""

# conninfo is left out on purpose: even obfuscated, a connection string is no one's business
WAL_RECEIVER = """
SELECT /* opscore */ status, receive_start_lsn::text AS receive_start_lsn,
       written_lsn::text AS written_lsn, flushed_lsn::text AS flushed_lsn,
       received_tli, latest_end_lsn::text AS latest_end_lsn, latest_end_time,
       last_msg_receipt_time, slot_name, sender_host, sender_port
  FROM pg_stat_wal_receiver
"""

STANDBY_EXTRA = """
SELECT /* opscore */ pid, backend_start, reply_time
  FROM pg_stat_replication
"""

DATABASES = """
SELECT /* opscore */ d.datname::text AS name, t.spcname::text AS tablespace,
       CASE WHEN has_database_privilege(d.oid, 'CONNECT')
              OR pg_has_role('pg_read_all_stats', 'MEMBER')
            THEN pg_database_size(d.oid) END AS size_bytes
  FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace
 WHERE d.datallowconn AND d.datconnlimit <> -2
 ORDER BY d.datname
"""

TABLESPACES = """
SELECT /* opscore */ spcname::text AS name, pg_get_userbyid(spcowner)::text AS owner,
       nullif(pg_tablespace_location(oid), '') AS location,
       CASE WHEN has_tablespace_privilege(oid, 'CREATE')
              OR pg_has_role('pg_read_all_stats', 'MEMBER')
              OR spcname = 'pg_default'
            THEN pg_tablespace_size(oid) END AS size_bytes
  FROM pg_tablespace
 ORDER BY spcname
"""

WAL_DIR_ALLOWED = """
SELECT /* opscore */ has_function_privilege('pg_ls_waldir()', 'EXECUTE') AS allowed,
       current_setting('wal_segment_size') AS segment_size,
       current_setting('max_wal_size') AS max_wal_size,
       current_setting('min_wal_size') AS min_wal_size,
       current_setting('wal_keep_size') AS wal_keep_size,
       CASE WHEN pg_has_role('pg_read_all_settings', 'MEMBER')
            THEN current_setting('data_directory') END AS data_directory
"""

WAL_DIR = """
SELECT /* opscore */ count(*)::int AS files, coalesce(sum(size), 0)::int8 AS size_bytes,
       max(modification) AS newest
  FROM pg_ls_waldir()
"""


def node(conn: psycopg.Connection) -> dict[str, Any]:
    return dict_rows(conn, NODE)[0]


def standbys(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """``pg_stat_replication`` rows (sql/replication) with each one's backend start and last
    reply time."""
    rows = dict_rows(conn, live_sql("replication", conn.info.server_version))
    extra = {r["pid"]: r for r in dict_rows(conn, STANDBY_EXTRA)}
    for r in rows:
        r.update({k: v for k, v in extra.get(r["pid"], {}).items() if k != "pid"})
        r.setdefault("backend_start", None)
        r.setdefault("reply_time", None)
    return rows


def wal_receiver(conn: psycopg.Connection) -> dict[str, Any] | None:
    rows = dict_rows(conn, WAL_RECEIVER)
    return rows[0] if rows else None


def slots(conn: psycopg.Connection) -> list[dict[str, Any]]:
    return dict_rows(conn, live_sql("replication_slots", conn.info.server_version))


def databases(conn: psycopg.Connection) -> list[dict[str, Any]]:
    return dict_rows(conn, DATABASES)


def tablespaces(conn: psycopg.Connection) -> list[dict[str, Any]]:
    return dict_rows(conn, TABLESPACES)


def wal_dir(conn: psycopg.Connection) -> dict[str, Any]:
    """WAL settings, and the WAL directory's files and size when this role may list it
    (``allowed`` false otherwise: no figure)."""
    out = dict_rows(conn, WAL_DIR_ALLOWED)[0]
    if out["allowed"]:
        out.update(dict_rows(conn, WAL_DIR)[0])
    else:
        out.update(files=None, size_bytes=None, newest=None)
    return out
