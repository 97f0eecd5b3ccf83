"""Live catalog reads of a target for ADDM (read-only monitoring SQL): the settings ADDM reads,
and every user table with its options, planner counts, current size, indexes and the foreign
keys that reference it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

#: settings read for the analysis, in their base units (pg_settings.setting)
ADDM_SETTINGS = (
    "max_connections",
    "max_wal_size",
    "checkpoint_timeout",
    "work_mem",
    "shared_buffers",
    "synchronous_commit",
    "idle_in_transaction_session_timeout",
    "autovacuum",
    "autovacuum_naptime",
    "jit",
    "jit_above_cost",
    "jit_inline_above_cost",
    "jit_optimize_above_cost",
)

SETTINGS_SQL = "SELECT /* opscore */ name, setting FROM pg_settings WHERE name = ANY(%s)"

CATALOG_SQL = """SELECT /* opscore */
       n.nspname || '.' || c.relname AS tbl, coalesce(c.reloptions, '{}')::text[] AS opts,
       c.reltuples, c.relpages,
       -- pg_relation_size takes an ACCESS SHARE lock: never on a table an ACCESS EXCLUSIVE
       -- lock is held or requested on (an ALTER TABLE queued behind a long query), where it
       -- would queue like every other query (and end in lock_timeout)
       CASE WHEN %(sizes)s AND c.oid <> ALL (%(locked)s::oid[])
            THEN (pg_relation_size(c.oid) / current_setting('block_size')::int)::int8
       END AS pages_now,
       coalesce(array_agg(
         array_to_string(array(SELECT a.attname::text FROM unnest(i.indkey)
                               WITH ORDINALITY k(attnum, ord)
                               JOIN pg_attribute a ON a.attrelid = i.indrelid
                                                  AND a.attnum = k.attnum ORDER BY k.ord), ',')
         ORDER BY i.indexrelid) FILTER (WHERE i.indexrelid IS NOT NULL), '{}') AS idx,
       coalesce(array_agg(n.nspname || '.' || ic.relname ORDER BY i.indexrelid)
                FILTER (WHERE i.indexrelid IS NOT NULL), '{}') AS idx_names,
       coalesce(array_agg(i.indexrelid::int8 ORDER BY i.indexrelid)
                FILTER (WHERE i.indexrelid IS NOT NULL), '{}') AS idx_oids,
       coalesce(array_agg(i.indisvalid ORDER BY i.indexrelid)
                FILTER (WHERE i.indexrelid IS NOT NULL), '{}') AS idx_valid,
       coalesce(array_agg(i.indisunique OR i.indisprimary ORDER BY i.indexrelid)
                FILTER (WHERE i.indexrelid IS NOT NULL), '{}') AS idx_unique,
       -- an index whose first key is an expression: its expressions (the first one leads)
       coalesce(array_agg(CASE WHEN i.indkey[0] = 0 THEN pg_get_expr(i.indexprs, i.indrelid)
                          END ORDER BY i.indexrelid)
                FILTER (WHERE i.indexrelid IS NOT NULL), '{}') AS idx_exprs,
       -- access method and the first key's operator class ("gin gin_trgm_ops"): which
       -- operators the index serves (a B-tree serves no LIKE with a leading wildcard)
       coalesce(array_agg((SELECT am.amname || ' ' || oc.opcname FROM pg_am am, pg_opclass oc
                            WHERE am.oid = ic.relam AND oc.oid = i.indclass[0])
                          ORDER BY i.indexrelid)
                FILTER (WHERE i.indexrelid IS NOT NULL), '{}') AS idx_methods
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_index i ON i.indrelid = c.oid
  LEFT JOIN pg_class ic ON ic.oid = i.indexrelid
 WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%%'
 GROUP BY c.oid, n.nspname, c.relname, c.reloptions, c.reltuples, c.relpages
"""


#: foreign keys by referenced table: deleting (or re-keying) a row of it makes PostgreSQL check
#: each referencing table, a scan of it when no index leads with the referencing columns
FK_SQL = """SELECT /* opscore */
       pn.nspname || '.' || p.relname AS parent, cn.nspname || '.' || c.relname AS child,
       con.conname::text,
       array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
              ORDER BY k.ord) AS cols,
       array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
              ORDER BY k.ord) AS ref_cols,
       con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update
  FROM pg_constraint con
  JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
  JOIN pg_class p ON p.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
 WHERE con.contype = 'f' AND con.conparentid = 0
   AND pn.nspname NOT IN ('pg_catalog', 'information_schema')
"""

#: user triggers (enabled) with their function's language and source: what a write to the
#: table also does (ADDM reads which tables the function writes)
TRIGGERS_SQL = """SELECT /* opscore */
       n.nspname || '.' || c.relname AS tbl, t.tgname::text, t.tgtype::int,
       pn.nspname || '.' || p.proname AS function, l.lanname::text, p.prosrc
  FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
  JOIN pg_language l ON l.oid = p.prolang
 WHERE NOT t.tgisinternal AND t.tgenabled <> 'D'
"""

#: pg_trigger.tgtype bits (ROW 1, BEFORE 2, INSTEAD 64; INSERT 4, DELETE 8, UPDATE 16)
TG_EVENTS = ((4, "INSERT"), (16, "UPDATE"), (8, "DELETE"), (32, "TRUNCATE"))


def _timing(tgtype: int) -> str:
    when = "INSTEAD OF" if tgtype & 64 else "BEFORE" if tgtype & 2 else "AFTER"
    return f"{when} {' OR '.join(e for bit, e in TG_EVENTS if tgtype & bit)}" + (
        " FOR EACH ROW" if tgtype & 1 else ""
    )


#: pg_constraint.confdeltype
ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


#: tables with an ACCESS EXCLUSIVE lock held or requested, in this database
LOCKED_SQL = """SELECT /* opscore */ coalesce(array_agg(DISTINCT relation), '{}') FROM pg_locks
 WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock'
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""


def num(v: Any) -> Any:
    """A pg_settings value as int or float when it is one, else the text."""
    try:
        return int(v)
    except (TypeError, ValueError):
        try:
            return float(v)
        except (TypeError, ValueError):
            return v


@dataclass
class Catalog:
    settings: dict[str, Any] = field(default_factory=dict)
    indexes: dict[str, list[list[str]]] = field(default_factory=dict)
    index_defs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extensions: set[str] = field(default_factory=set)  # created in the database read


def read_catalog(conn: psycopg.Connection) -> Catalog:
    """Settings, tables (options, reltuples, relpages, pages now) and their indexes (key
    columns, name, oid, valid) as the target's catalog has them now."""
    cat = Catalog()
    cat.settings = {name: num(v) for name, v in conn.execute(SETTINGS_SQL, (list(ADDM_SETTINGS),))}
    locked = conn.execute(LOCKED_SQL).fetchone()[0]  # type: ignore[index]
    try:
        rows = conn.execute(CATALOG_SQL, {"sizes": True, "locked": locked}).fetchall()
    except psycopg.errors.LockNotAvailable:
        # a table locked since: the catalog without current sizes (relpages stands in)
        if not conn.autocommit:
            conn.rollback()
        rows = conn.execute(CATALOG_SQL, {"sizes": False, "locked": []}).fetchall()
        cat.notes.append(
            "Current table sizes not read: a table lock queue made the size read wait "
            "(lock_timeout); the planner's page counts stand in."
        )
    if locked:
        cat.notes.append(
            f"Current size not read for {len(locked)} table(s) under an ACCESS EXCLUSIVE lock "
            "(held or requested): reading it would queue behind that lock."
        )
    for row in rows:
        tbl, opts, reltuples, relpages, pages_now, idx, names, oids, valid, uniq, exprs, am = row
        cols = [s.split(",") if s else [] for s in idx]
        cat.indexes[tbl] = cols
        cat.index_defs[tbl] = [
            {"name": nm, "oid": int(oid), "columns": c, "valid": bool(ok), "unique": bool(u),
             "method": m}
            | ({"exprs": ex} if ex else {})  # pg_get_expr of an index led by an expression
            for c, nm, oid, ok, u, ex, m in zip(
                cols, names, oids, valid, uniq, exprs, am, strict=True
            )
        ]  # fmt: skip
        cat.tables[tbl] = {
            "options": list(opts),
            "reltuples": float(reltuples),
            "relpages": int(relpages),
            "pages_now": int(pages_now or 0),
            "referenced_by": [],
            "triggers": [],
        }
    for tbl, name, tgtype, function, language, source in conn.execute(TRIGGERS_SQL):
        if tbl in cat.tables:
            cat.tables[tbl]["triggers"].append(
                {"name": name, "timing": _timing(tgtype), "function": function,
                 "language": language, "source": source}
            )  # fmt: skip
    cat.extensions = {r[0] for r in conn.execute("SELECT /* opscore */ extname FROM pg_extension")}
    for parent, child, conname, cols, ref_cols, on_delete, on_update in conn.execute(FK_SQL):
        if parent in cat.tables:
            cat.tables[parent]["referenced_by"].append(
                {
                    "table": child,
                    "constraint": conname,
                    "columns": list(cols),
                    "ref_columns": list(ref_cols),
                    "on_delete": ON_DELETE.get(on_delete, on_delete),
                    "on_update": ON_DELETE.get(on_update, on_update),
                }
            )
    return cat
