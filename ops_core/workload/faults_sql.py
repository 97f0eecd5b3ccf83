"""Faults shaped after application behaviour that is correct but scales badly.

- :class:`DeepOffsetPagination` - a catalogue paged with ``ORDER BY id LIMIT 20 OFFSET $1``
  where users page deep (offsets of 100,000 to 280,000 on a 300,000-row table): every page
  reads and throws away all the rows before it, through an index that is there and used.
  No index to create: the fix is keyset pagination (``WHERE id > $last ORDER BY id LIMIT 20``).
- :class:`ConnectionChurn` - an application without a connection pool: every request opens a
  session, runs one lookup by primary key and closes it. Each statement takes microseconds;
  each session costs the server a process, authentication and a cold catalog cache.

Like :mod:`faults_scenarios`, not in the CLI's fault list: they exist to try the diagnosis.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import psycopg
from psycopg import sql

from .fault_base import Fault
from .sessions import workload_connect


class DeepOffsetPagination(Fault):
    name = "deep_offset_pagination"
    description = "pages read by LIMIT/OFFSET deep into a large table"

    def __init__(self, dsn: str, *, sessions: int = 2, rows: int = 300_000, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions, self.rows = sessions, rows
        self.table = f"public.Products_{uuid.uuid4().hex[:6]}"

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table,
            sql.SQL(
                'CREATE TABLE {} (id int PRIMARY KEY, "Name" text NOT NULL, price numeric)'
            ).format(ident),
        )
        self.sql_admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT g, 'product ' || g, g %% 1000 FROM generate_series(1, %s) g"
            ).format(ident),
            (self.rows,),
        )
        self.sql_admin.execute(sql.SQL("VACUUM ANALYZE {}").format(ident))
        stmt = sql.SQL('SELECT id, "Name", price FROM {} ORDER BY id LIMIT 20 OFFSET %s').format(
            ident
        )
        self.info.objects.append(self.table)
        self.info.statements.append(stmt.as_string(None))
        low, high = self.rows // 3, self.rows - 20_000
        for i in range(self.sessions):
            rng = random.Random(i)

            def body(c: psycopg.Connection, r: random.Random = rng) -> None:
                c.execute(stmt, (r.randint(low, high),)).fetchall()

            self.loop("reader", self.session("reader"), body)


class ConnectionChurn(Fault):
    name = "connection_churn"
    description = "a session opened and closed for every request: no connection pool"

    def __init__(self, dsn: str, *, clients: int = 3, **kw: Any):
        super().__init__(dsn, **kw)
        self.clients = clients
        self.table = f"public.Sessions_{uuid.uuid4().hex[:6]}"
        self.opened = 0

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table, sql.SQL('CREATE TABLE {} (id int PRIMARY KEY, "Token" text)').format(ident)
        )
        self.sql_admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT g, md5(g::text) FROM generate_series(1, 10000) g"
            ).format(ident)
        )
        stmt = sql.SQL('SELECT "Token" FROM {} WHERE id = %s').format(ident)
        self.info.objects.append(self.table)
        self.info.statements.append(stmt.as_string(None))
        lock = self._lock

        for i in range(self.clients):
            rng = random.Random(i)

            def body(_: psycopg.Connection, r: random.Random = rng) -> None:
                # a new session per request, as an application without a pool does
                with workload_connect(
                    self.dsn, application_name=self.application_name, statement_timeout_s=30
                ) as c:
                    c.execute(stmt, (r.randint(1, 10000),)).fetchall()
                with lock:
                    self.opened += 1

            # the loop's own session stays idle: each request opens its own
            self.loop("request", self.session("client"), body)
