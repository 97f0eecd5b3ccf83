"""A database a DROP DATABASE was interrupted in (pg_database.datconnlimit = -2, PostgreSQL
15.4+/16) cannot be connected to: a snapshot leaves it out instead of going partial (seen on
the shared PostgreSQL 15 test server: every snapshot of it was partial)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from ops_core import api


def test_invalid_database_is_left_out_of_object_capture(repo, target_db, pg):
    api.add_target("inv", target_db)
    name = "invalid_" + target_db.rsplit("dbname=", 1)[-1].split()[0][-10:]
    with pg.admin() as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        # what an interrupted DROP DATABASE leaves (a superuser may mark it so by hand)
        c.execute("UPDATE pg_database SET datconnlimit = -2 WHERE datname = %s", (name,))
    try:
        snap = api.take_snapshot("inv")
        assert snap.status == "ok", snap
        detail = api.get_snapshot(snap.snapshot_id)
        assert not any(name in k for k in detail.info.sources), detail.info.sources
    finally:
        with pg.admin() as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    with psycopg.connect(target_db) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
