"""Faults for ADDM's widened scenario suite: everyday shapes the shop faults do not cover.

Each is a :class:`Fault` context manager (its own tables, dropped at exit; its own sessions,
terminated at exit). They are not in the CLI's fault list (``FAULTS``): they exist to try to
break the diagnosis, so their shapes follow real incidents, not the analysis.

- :class:`HotRowShortTransactions` - many short transactions (two statements and a commit, each
  a client round trip) updating a few hot rows: lock waits whose blockers are working, caught
  idle in transaction only between statements. The cause is row-lock contention; no session is
  an idle-in-transaction blocker.
- :class:`PlainTableMissingIndex` - ``SELECT * FROM <t> WHERE id = $1`` (public schema,
  unqualified name) on a 300,000-row table without an index on ``id``; ``created_in_range``
  makes the table when the fault starts (enter it after the begin snapshot), ``dead_pct``
  deletes that share of the rows first (dead rows kept: autovacuum off on the table).
- :class:`BulkInsertExtension` - sessions inserting 20,000-row batches into one table at once:
  relation extension lock waits.
- :class:`OverIndexedWrites` - single-row inserts and updates on a table with many indexes,
  most of them never used by a read: the writes pay for every index.
- :class:`BulkLoadWal` - one session bulk-loading wide rows (INSERT ... SELECT) in big
  transactions: WAL volume, not many small commits.
- :class:`CpuHeavyNoSpill` - a CPU-heavy join/aggregate that fits in work_mem (no temp).
- :class:`PinnedPageVacuum` - a VACUUM (FREEZE) waiting on a page an open cursor keeps pinned:
  a wait (BufferPin) that no specific finding models, for ADDM's safety net.
- :class:`DeadRowsAutovacuumOff` - dead rows piling up on a table with autovacuum disabled.
- :class:`UnindexedForeignKey` - deletes by primary key on a parent table (mixed-case, quoted
  names) whose referencing table has no index on its foreign-key column: every deleted row's
  foreign-key check (or cascade) scans the referencing table, which no plan and, with
  pg_stat_statements.track = top, no statement shows.
- :class:`DdlLockQueue` - a migration's ``ALTER TABLE`` waits for a long report query's
  ACCESS SHARE lock, and every application query on the table queues behind the ALTER: the
  waiters' blocker is the DDL, the root is the report.
- :class:`LatestRowsNoIndex` - "the 20 newest" (``ORDER BY "createdAt" DESC LIMIT 20``) on a
  300,000-row table without an index on the sort column: every call sorts the whole table.
- :class:`JoinMissingIndex` - a customer's order lines by a join (``JOIN lines l ON
  l."OrderRef" = o.id WHERE o.customer_id = $1``) where the lines table has no index on its
  join column: a hash join reads all 300,000 lines for a handful.
- :class:`WrongIndexLookup` - a customer's orders of a day (``"createdOn" = $1 AND
  customer_id = $2``) where only ``"createdOn"`` is indexed: each call reads the day's ~800
  rows, each on its own page, to keep one.
- :class:`TriggerHotRow` - single-row inserts into an orders table whose AFTER INSERT trigger
  keeps a running count in one row of another table: every insert locks that row until it
  commits, so the inserts queue on each other though no statement of the application names
  the counter table.
- :class:`OrLookup` - a customer found by e-mail OR phone (``"Email" = $1 OR phone = $2``) on a
  300,000-row table where only ``"Email"`` is indexed (or neither): the OR scans the table.
- :class:`PatternSearch` - searches by a word inside a title (``"Title" ILIKE $1`` with
  ``'%word%'``) on a 300,000-row table whose B-tree on the column cannot serve them.
- :class:`JitOverhead` - short reporting lookups (an aggregate over ~200 rows found by index)
  run by sessions whose JIT thresholds are 0 (as a server configured for analytics, or a role
  setting, would have them): every call compiles its expressions, which takes far longer than
  running them. Needs a server built with JIT (``pg_jit_available()``).
- :class:`ExpressionLookup` - case-insensitive lookups ``WHERE lower("Email") = lower($1)`` (or
  ``WHERE id::text = $1``) on a table whose plain index on the column cannot serve them.
"""

from __future__ import annotations

import datetime
import hashlib
import random
import threading
import uuid
from typing import Any

import psycopg
from psycopg import sql

from .fault_base import Fault


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:6]}"


class HotRowShortTransactions(Fault):
    name = "hot_row_short_tx"
    description = "many short transactions updating a few hot rows"

    def __init__(self, dsn: str, *, sessions: int = 5, hot_rows: int = 3, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions, self.hot_rows = sessions, hot_rows
        self.table = f"public.{_name('hot_counters')}"

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table,
            sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0)").format(
                ident
            ),
        )
        self.sql_admin.execute(
            sql.SQL("INSERT INTO {} SELECT g, 0 FROM generate_series(1, %s) g").format(ident),
            (self.hot_rows,),
        )
        upd = sql.SQL("UPDATE {} SET n = n + 1 WHERE id = %s").format(ident)
        self.info.statements.append(upd.as_string(None))

        def body(conn: psycopg.Connection, rng: random.Random) -> None:
            with conn.transaction():  # BEGIN, two statements, COMMIT: four round trips
                conn.execute(upd, (rng.randint(1, self.hot_rows),))
                conn.execute(upd, (rng.randint(1, self.hot_rows),))

        for i in range(self.sessions):
            conn = self.session("worker")
            self.loop("worker", conn, lambda c, r=random.Random(i): body(c, r))
        self.wait_for(
            "a session waiting on a row lock",
            lambda: any(a["wait_event_type"] == "Lock" for a in self.activity()),
        )


class PlainTableMissingIndex(Fault):
    name = "plain_missing_index"
    description = "selective lookups by id on a plain public table without an index on id"

    def __init__(
        self,
        dsn: str,
        *,
        sessions: int = 3,
        rows: int = 300_000,
        dead_pct: int = 0,
        analyze: bool = True,
        relname: str | None = None,
        column: str = "id",
        keep: bool = False,
        **kw: Any,
    ):
        super().__init__(dsn, **kw)
        self.sessions, self.rows, self.dead_pct, self.analyze = sessions, rows, dead_pct, analyze
        self.relname = relname or _name("t")
        self.column, self.keep = column, keep
        self.table = f"public.{self.relname}"

    def start(self) -> None:
        ident = sql.Identifier(self.relname)
        col = sql.Identifier(self.column)
        ddl = sql.SQL(
            "CREATE TABLE {} ({} int NOT NULL, payload text, created_at timestamptz) "
            "WITH (autovacuum_enabled = off)"
        ).format(ident, col)
        if self.keep:  # the caller drops it (e.g. after running a recommendation on it)
            self.sql_admin.execute(ddl)
        else:
            self.own_table(self.table, ddl)
        admin = self.sql_admin
        admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT g, md5(g::text), now() FROM generate_series(1, %s) g"
            ).format(ident),
            (self.rows,),
        )
        if self.dead_pct:
            admin.execute(
                sql.SQL("DELETE FROM {} WHERE {} %% 100 < %s").format(ident, col),
                (self.dead_pct,),
            )
        if self.analyze:
            admin.execute(sql.SQL("ANALYZE {}").format(ident))
        keep = [i for i in range(1, self.rows + 1) if i % 100 >= self.dead_pct]
        stmt = sql.SQL("SELECT * FROM {} WHERE {} = %s").format(ident, col)
        self.info.objects += [self.table, f"{self.table}.{self.column}"]
        self.info.statements.append(stmt.as_string(None))
        for i in range(self.sessions):
            rng = random.Random(i)
            conn = self.session("worker")
            self.loop(
                "worker", conn, lambda c, r=rng: c.execute(stmt, (r.choice(keep),)).fetchall()
            )


class BulkInsertExtension(Fault):
    name = "bulk_insert_extension"
    description = "concurrent 20,000-row batch inserts into one table"

    def __init__(self, dsn: str, *, sessions: int = 3, batch: int = 20_000, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions, self.batch = sessions, batch
        self.table = f"public.{_name('events_load')}"

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table,
            sql.SQL("CREATE TABLE {} (id bigint, kind int, payload text, at timestamptz)").format(
                ident
            ),
        )
        ins = sql.SQL(
            "INSERT INTO {} SELECT g, g %% 7, repeat('x', 120), now() FROM generate_series(1, %s) g"
        ).format(ident)
        trunc = sql.SQL("TRUNCATE {}").format(ident)
        self.info.statements.append(ins.as_string(None))
        self.info.objects.append(self.table)
        state = {"n": 0}

        def body(c: psycopg.Connection) -> None:
            c.execute(ins, (self.batch,))
            state["n"] += 1
            if state["n"] % 200 == 0:  # keep the table from filling the disk
                self.sql_admin.execute(trunc)

        for _ in range(self.sessions):
            self.loop("loader", self.session("loader"), body)


class OverIndexedWrites(Fault):
    name = "over_indexed_writes"
    description = "single-row writes on a table with many (mostly unused) indexes"

    def __init__(self, dsn: str, *, sessions: int = 3, indexes: int = 12, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions, self.n_indexes = sessions, indexes
        self.table = f"public.{_name('accounts')}"

    def start(self) -> None:
        schema, rel = self.table.split(".")
        ident = sql.Identifier(schema, rel)
        cols = [f"c{i}" for i in range(self.n_indexes)]
        self.own_table(
            self.table,
            sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, {})").format(
                ident,
                sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in cols),
            ),
        )
        admin = self.sql_admin
        for c in cols:  # one index per column, and a few redundant composite ones
            admin.execute(sql.SQL("CREATE INDEX ON {} ({})").format(ident, sql.Identifier(c)))
        for a, b in zip(cols, cols[1:4], strict=False):
            admin.execute(
                sql.SQL("CREATE INDEX ON {} ({}, {})").format(
                    ident, sql.Identifier(a), sql.Identifier(b)
                )
            )
        ins = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            ident,
            sql.SQL(", ").join(sql.Identifier(c) for c in cols),
            sql.SQL(", ").join(sql.Placeholder() for _ in cols),
        )
        upd = sql.SQL("UPDATE {} SET {} = %s, {} = %s WHERE id = %s").format(
            ident, sql.Identifier(cols[0]), sql.Identifier(cols[1])
        )
        self.info.statements += [ins.as_string(None), upd.as_string(None)]
        self.info.objects.append(self.table)

        def body(c: psycopg.Connection, rng: random.Random) -> None:
            # a batch of 50 new rows and 50 changes per transaction (an importer, a sync job)
            with c.transaction():
                ids = []
                for _ in range(50):
                    row = c.execute(
                        ins + sql.SQL(" RETURNING id"), [uuid.uuid4().hex for _ in cols]
                    ).fetchone()
                    ids.append(row[0] if row else 1)
                for i in ids:
                    c.execute(upd, (uuid.uuid4().hex, uuid.uuid4().hex, i))

        for i in range(self.sessions):
            self.loop("writer", self.session("writer"), lambda c, r=random.Random(i): body(c, r))


class BulkLoadWal(Fault):
    name = "bulk_load_wal"
    description = "a bulk load of wide rows in big transactions"

    def __init__(self, dsn: str, *, sessions: int = 1, batch: int = 50_000, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions, self.batch = sessions, batch
        self.table = f"public.{_name('staging')}"

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table,
            sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, doc text, at timestamptz)").format(
                ident
            ),
        )
        ins = sql.SQL(
            "INSERT INTO {} SELECT g, repeat(md5(g::text), 12), now() "
            "FROM generate_series(%s::bigint, %s::bigint) g"
        ).format(ident)
        trunc = sql.SQL("TRUNCATE {}").format(ident)
        self.info.statements.append(ins.as_string(None))
        self.info.objects.append(self.table)
        state = {"next": 1}

        def body(c: psycopg.Connection) -> None:
            lo = state["next"]
            state["next"] += self.batch
            c.execute(ins, (lo, lo + self.batch - 1))
            if state["next"] > 40 * self.batch:
                self.sql_admin.execute(trunc)
                state["next"] = 1

        for _ in range(self.sessions):
            self.loop("loader", self.session("loader"), body)


class CpuHeavyNoSpill(Fault):
    name = "cpu_heavy_no_spill"
    description = "a CPU-heavy aggregate over an in-memory table (no temp files)"

    def __init__(self, dsn: str, *, sessions: int = 2, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions = sessions
        self.table = f"public.{_name('measures')}"

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table, sql.SQL("CREATE TABLE {} (id int, grp int, v float8)").format(ident)
        )
        self.sql_admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT g, g % 50, random() FROM generate_series(1, 200000) g"
            ).format(ident)
        )
        self.sql_admin.execute(sql.SQL("ANALYZE {}").format(ident))
        q = sql.SQL(
            "SELECT grp, sum(sqrt(v) * ln(v + 1) * cos(v)), count(DISTINCT (v * 1000)::int) "
            "FROM {} WHERE grp < %s GROUP BY grp"
        ).format(ident)
        self.info.statements.append(q.as_string(None))
        self.info.objects.append(self.table)
        for _ in range(self.sessions):
            self.loop(
                "worker",
                self.session("worker", settings={"work_mem": "64MB"}),
                lambda c: c.execute(q, (40,)).fetchall(),
            )


class PinnedPageVacuum(Fault):
    """A session keeps a cursor open on a table (its scan keeps the current page pinned) and
    sits idle in its transaction; a VACUUM (FREEZE) of that table needs a cleanup lock on the
    page and waits for the pin to go (wait event BufferPin). No lock wait: the cursor's
    ACCESS SHARE and VACUUM's SHARE UPDATE EXCLUSIVE do not conflict."""

    name = "pinned_page_vacuum"
    description = "VACUUM (FREEZE) waiting for a page an open cursor keeps pinned"

    def __init__(self, dsn: str, *, vacuums: int = 2, **kw: Any):
        super().__init__(dsn, **kw)
        self.vacuums = vacuums
        self.table = f"public.{_name('ledger')}"

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(self.table, sql.SQL("CREATE TABLE {} (id int, note text)").format(ident))
        self.sql_admin.execute(
            sql.SQL("INSERT INTO {} SELECT g, md5(g::text) FROM generate_series(1, 5000) g").format(
                ident
            )
        )
        holder = self.session("holder", autocommit=False)
        holder.execute(sql.SQL("DECLARE pin CURSOR FOR SELECT * FROM {}").format(ident))
        holder.execute("FETCH 1 FROM pin").fetchall()
        vacuum = sql.SQL("VACUUM (FREEZE) {}").format(ident)
        self.info.statements.append(vacuum.as_string(None))
        self.info.objects.append(self.table)
        for _ in range(self.vacuums):
            self.loop("vacuum", self.session("vacuum"), lambda c: c.execute(vacuum))
        self.wait_for(
            "a VACUUM waiting for a buffer pin",
            lambda: any(a["wait_event_type"] == "BufferPin" for a in self.activity()),
        )


class DeadRowsAutovacuumOff(Fault):
    """Whole-table updates on a table whose autovacuum is disabled (``autovacuum_enabled =
    false``, as someone set it during a bulk load and forgot), read by sequential scans that
    wade through the growing dead rows."""

    name = "dead_rows_autovacuum_off"
    description = "dead rows piling up on a table with autovacuum disabled"

    def __init__(self, dsn: str, *, rows: int = 100_000, readers: int = 1, **kw: Any):
        super().__init__(dsn, **kw)
        self.rows, self.readers = rows, readers
        self.table = f"public.{_name('balances')}"

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table,
            sql.SQL(
                "CREATE TABLE {} (id int PRIMARY KEY, amount numeric NOT NULL, kind int) "
                "WITH (autovacuum_enabled = false)"
            ).format(ident),
        )
        self.sql_admin.execute(
            sql.SQL("INSERT INTO {} SELECT g, 0, g %% 10 FROM generate_series(1, %s) g").format(
                ident
            ),
            (self.rows,),
        )
        self.sql_admin.execute(sql.SQL("ANALYZE {}").format(ident))
        upd = sql.SQL("UPDATE {} SET amount = amount + 1 WHERE kind = %s").format(ident)
        read = sql.SQL("SELECT kind, sum(amount) FROM {} GROUP BY kind").format(ident)
        self.info.statements += [upd.as_string(None), read.as_string(None)]
        self.info.objects.append(self.table)
        state = {"k": 0}

        def update(c: psycopg.Connection) -> None:
            state["k"] = (state["k"] + 1) % 10
            c.execute(upd, (state["k"],))

        self.loop("updater", self.session("updater"), update)
        for _ in range(self.readers):
            self.loop("reader", self.session("reader"), lambda c: c.execute(read).fetchall())


SCENARIO_FAULTS: dict[str, type[Fault]] = {
    cls.name: cls
    for cls in (
        HotRowShortTransactions,
        PlainTableMissingIndex,
        BulkInsertExtension,
        OverIndexedWrites,
        BulkLoadWal,
        CpuHeavyNoSpill,
        PinnedPageVacuum,
        DeadRowsAutovacuumOff,
    )
}


class UnindexedForeignKey(Fault):
    """Deletes by primary key on a parent table whose referencing table has no index on its
    foreign-key column; with ``rekey``, updates of the parent's key instead (orders renumbered:
    PostgreSQL checks, or with ``cascade`` cascades to, the referencing table for each)."""

    name = "unindexed_foreign_key"
    description = "deletes on a parent table whose referencing table has no index on its FK"

    def __init__(
        self,
        dsn: str,
        *,
        sessions: int = 3,
        parents: int = 200_000,
        lines: int = 300_000,
        cascade: bool = False,
        rekey: bool = False,
        **kw: Any,
    ):
        super().__init__(dsn, **kw)
        self.sessions, self.parents, self.lines, self.cascade = sessions, parents, lines, cascade
        self.rekey = rekey
        tag = uuid.uuid4().hex[:6]
        self.parent = f"public.Orders_{tag}"  # mixed case: quoted everywhere
        self.table = f"public.order_Lines_{tag}"
        self.column = "OrderId"

    def start(self) -> None:
        parent = sql.Identifier(*self.parent.split("."))
        child = sql.Identifier(*self.table.split("."))
        col = sql.Identifier(self.column)
        self.own_table(
            self.parent,
            sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, note text)").format(parent),
        )
        self.own_table(
            self.table,
            sql.SQL(
                "CREATE TABLE {} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "{} int NOT NULL REFERENCES {} (id){}, qty int)"
            ).format(child, col, parent, sql.SQL(self._action())),
        )
        admin = self.sql_admin
        admin.execute(
            sql.SQL("INSERT INTO {} SELECT g, md5(g::text) FROM generate_series(1, %s) g").format(
                parent
            ),
            (self.parents,),
        )
        with_lines = self.parents // 10  # the first tenth of the orders have lines
        admin.execute(
            sql.SQL(
                "INSERT INTO {} ({}, qty) SELECT 1 + g %% %s, g %% 7 FROM generate_series(1, %s) g"
            ).format(child, col),
            (with_lines, self.lines),
        )
        admin.execute(sql.SQL("ANALYZE {}").format(parent))
        admin.execute(sql.SQL("ANALYZE {}").format(child))
        if self.rekey:  # renumbered out of the way of the existing ids
            stmt = sql.SQL("UPDATE {} SET id = id + %s WHERE id = %s").format(parent)
        else:
            stmt = sql.SQL("DELETE FROM {} WHERE id = %s").format(parent)
        self.info.objects += [self.table, f"{self.table}.{self.column}", self.parent]
        self.info.statements.append(stmt.as_string(None))
        shift = 10 * self.parents
        for i in range(self.sessions):
            # each session changes its own orders without lines, each once: every statement
            # removes (or re-keys) a row, so every one runs the foreign-key check
            ids = iter(range(with_lines + 1 + i, self.parents + 1, self.sessions))
            conn = self.session("worker")
            if self.rekey:
                self.loop("worker", conn, lambda c, it=ids: c.execute(stmt, (shift, next(it, 0))))
            else:
                self.loop("worker", conn, lambda c, it=ids: c.execute(stmt, (next(it, 0),)))

    def _action(self) -> str:
        if not self.cascade:
            return ""
        return " ON UPDATE CASCADE" if self.rekey else " ON DELETE CASCADE"


class ExpressionLookup(Fault):
    name = "expression_lookup"
    description = "lookups by a function (or cast) of an indexed column: the index is no use"

    def __init__(self, dsn: str, *, sessions: int = 3, rows: int = 300_000, cast: bool = False,
                 **kw: Any):  # fmt: skip
        super().__init__(dsn, **kw)
        self.sessions, self.rows, self.cast = sessions, rows, cast
        self.table = f"public.Accounts_{uuid.uuid4().hex[:6]}"
        self.column = "id" if cast else "Email"

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table,
            sql.SQL(
                'CREATE TABLE {} (id int PRIMARY KEY, "Email" text NOT NULL, name text)'
            ).format(ident),
        )
        admin = self.sql_admin
        admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT g, 'User' || g || '@Example.com', md5(g::text) "
                "FROM generate_series(1, %s) g"
            ).format(ident),
            (self.rows,),
        )
        admin.execute(sql.SQL('CREATE INDEX ON {} ("Email")').format(ident))
        admin.execute(sql.SQL("ANALYZE {}").format(ident))
        if self.cast:
            stmt = sql.SQL("SELECT * FROM {} WHERE id::text = %s").format(ident)
        else:
            stmt = sql.SQL('SELECT * FROM {} WHERE lower("Email") = lower(%s)').format(ident)
        self.info.objects += [self.table, f"{self.table}.{self.column}"]
        self.info.statements.append(stmt.as_string(None))
        for i in range(self.sessions):
            rng = random.Random(i)

            def body(c: psycopg.Connection, r: random.Random = rng) -> None:
                n = r.randint(1, self.rows)
                c.execute(stmt, (str(n) if self.cast else f"user{n}@example.com",)).fetchall()

            self.loop("worker", self.session("worker"), body)


class DdlLockQueue(Fault):
    name = "ddl_lock_queue"
    description = "ALTER TABLE queued behind a long query, application queries queued behind it"

    def __init__(self, dsn: str, *, sessions: int = 3, idle_holder: bool = False, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions, self.idle_holder = sessions, idle_holder
        self.table = f"public.{_name('inventory')}"

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table, sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, qty int)").format(ident)
        )
        self.sql_admin.execute(
            sql.SQL("INSERT INTO {} SELECT g, 100 FROM generate_series(1, 10000) g").format(ident)
        )
        report = sql.SQL("SELECT count(*), pg_sleep(3600) FROM {}").format(ident)
        alter = sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS reserved int").format(ident)
        read = sql.SQL("SELECT qty FROM {} WHERE id = %s").format(ident)
        self.info.statements += [report.as_string(None), alter.as_string(None)]
        self.info.objects.append(self.table)
        if self.idle_holder:  # read the table, then sit idle in the open transaction
            reporter = self.session("reporter", autocommit=False)
            reporter.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchall()
        else:
            reporter = self.session("reporter")
            threading.Thread(target=self._quietly, args=(reporter, report), daemon=True).start()
        self.wait_for(
            "the report query running",
            lambda: any(a["pid"] in self.info.roles["reporter"]
                        and a["state"] in ("active", "idle in transaction")
                        for a in self.activity()),
        )  # fmt: skip
        self.loop("migration", self.session("migration"), lambda c: c.execute(alter))
        self.wait_for(
            "the ALTER TABLE waiting for its lock",
            lambda: any(a["pid"] in self.info.roles["migration"] and a["wait_event_type"] == "Lock"
                        for a in self.activity()),
        )  # fmt: skip
        for i in range(self.sessions):
            rng = random.Random(i)
            self.loop(
                "app", self.session("app"), lambda c, r=rng: c.execute(read, (r.randint(1, 10000),))
            )

    def _quietly(self, conn: psycopg.Connection, stmt: sql.Composed) -> None:
        """The report runs until the fault ends (its session is terminated then)."""
        try:
            conn.execute(stmt)
        except psycopg.Error:
            pass


class LatestRowsNoIndex(Fault):
    name = "latest_rows_no_index"
    description = "ORDER BY a column LIMIT n on a large table without an index on the column"

    def __init__(self, dsn: str, *, sessions: int = 3, rows: int = 300_000, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions, self.rows = sessions, rows
        self.table = f"public.{_name('events')}"
        self.column = "createdAt"

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        col = sql.Identifier(self.column)
        self.own_table(
            self.table,
            sql.SQL(
                "CREATE TABLE {} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "{} timestamptz NOT NULL, kind int, payload text)"
            ).format(ident, col),
        )
        self.sql_admin.execute(
            sql.SQL(
                "INSERT INTO {} ({}, kind, payload) SELECT now() - g * interval '1 second', "
                "g %% 10, md5(g::text) FROM generate_series(1, %s) g"
            ).format(ident, col),
            (self.rows,),
        )
        self.sql_admin.execute(sql.SQL("ANALYZE {}").format(ident))
        stmt = sql.SQL("SELECT * FROM {} ORDER BY {} DESC LIMIT 20").format(ident, col)
        self.info.objects += [self.table, f"{self.table}.{self.column}"]
        self.info.statements.append(stmt.as_string(None))
        for _ in range(self.sessions):
            self.loop("worker", self.session("worker"), lambda c: c.execute(stmt).fetchall())


class JoinMissingIndex(Fault):
    name = "join_missing_index"
    description = "a join reading a whole large table for a few rows: no index on its join column"

    def __init__(self, dsn: str, *, sessions: int = 3, orders: int = 20_000, lines: int = 300_000,
                 **kw: Any):  # fmt: skip
        super().__init__(dsn, **kw)
        self.sessions, self.orders, self.lines = sessions, orders, lines
        tag = uuid.uuid4().hex[:6]
        self.parent = f"public.orders_{tag}"
        self.table = f"public.lines_{tag}"
        self.column = "OrderRef"

    def start(self) -> None:
        parent = sql.Identifier(*self.parent.split("."))
        child = sql.Identifier(*self.table.split("."))
        col = sql.Identifier(self.column)
        self.own_table(
            self.parent,
            sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, customer_id int NOT NULL)").format(
                parent
            ),
        )
        self.own_table(
            self.table,
            sql.SQL(
                "CREATE TABLE {} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "{} int NOT NULL, qty int NOT NULL)"
            ).format(child, col),
        )
        admin = self.sql_admin
        admin.execute(
            sql.SQL("INSERT INTO {} SELECT g, g %% 5000 FROM generate_series(1, %s) g").format(
                parent
            ),
            (self.orders,),
        )
        admin.execute(sql.SQL("CREATE INDEX ON {} (customer_id)").format(parent))
        admin.execute(
            sql.SQL(
                "INSERT INTO {} ({}, qty) SELECT 1 + g %% %s, g %% 9 FROM generate_series(1, %s) g"
            ).format(child, col),
            (self.orders, self.lines),
        )
        admin.execute(sql.SQL("ANALYZE {}").format(parent))
        admin.execute(sql.SQL("ANALYZE {}").format(child))
        stmt = sql.SQL(
            "SELECT o.id, sum(l.qty) FROM {} o JOIN {} l ON l.{} = o.id "
            "WHERE o.customer_id = %s GROUP BY o.id"
        ).format(parent, child, col)
        self.info.objects += [self.table, f"{self.table}.{self.column}"]
        self.info.statements.append(stmt.as_string(None))
        for i in range(self.sessions):
            rng = random.Random(i)
            self.loop(
                "worker",
                self.session("worker"),
                lambda c, r=rng: c.execute(stmt, (r.randint(0, 4999),)).fetchall(),
            )


class JitOverhead(Fault):
    name = "jit_overhead"
    description = "short lookups JIT-compiled on every call (JIT thresholds at 0)"

    #: what an analytics setting (or a role's) does to an OLTP statement: compile everything
    SETTINGS = {
        "jit": "on",
        "jit_above_cost": "0",
        "jit_inline_above_cost": "0",
        "jit_optimize_above_cost": "0",
    }

    def __init__(self, dsn: str, *, sessions: int = 2, rows: int = 50_000, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions, self.rows = sessions, rows
        self.table = f"public.{_name('Daily_totals')}"

    def start(self) -> None:
        admin = self.sql_admin
        if not admin.execute("SELECT pg_jit_available()").fetchone()[0]:
            raise RuntimeError(
                "this server has no JIT (pg_jit_available() is false: built without LLVM)"
            )
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table,
            sql.SQL(
                'CREATE TABLE {} (id int PRIMARY KEY, "storeId" int, amount numeric, qty int)'
            ).format(ident),
        )
        admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT g, g %% 40, (random() * 100)::numeric(10, 2), g %% 7 "
                "FROM generate_series(1, %s) g"
            ).format(ident),
            (self.rows,),
        )
        admin.execute(sql.SQL("ANALYZE {}").format(ident))
        stmt = sql.SQL(
            'SELECT "storeId", sum(amount * qty), avg(amount), max(qty) - min(qty) FROM {} '
            'WHERE id BETWEEN %s AND %s GROUP BY "storeId"'
        ).format(ident)
        self.info.objects.append(self.table)
        self.info.statements.append(stmt.as_string(None))
        for i in range(self.sessions):
            rng = random.Random(i)

            def body(c: psycopg.Connection, r: random.Random = rng) -> None:
                lo = r.randint(1, self.rows - 200)
                c.execute(stmt, (lo, lo + 200)).fetchall()

            self.loop("worker", self.session("worker", settings=self.SETTINGS), body)


class PatternSearch(Fault):
    name = "pattern_search"
    description = "ILIKE '%word%' searches on a large table with only a B-tree on the column"

    def __init__(self, dsn: str, *, sessions: int = 2, rows: int = 300_000, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions, self.rows = sessions, rows
        self.table = f"public.{_name('Books')}"
        self.column = "Title"

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table,
            sql.SQL('CREATE TABLE {} (id int PRIMARY KEY, "Title" text NOT NULL, year int)').format(
                ident
            ),
        )
        admin = self.sql_admin
        admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT g, 'Volume ' || md5(g::text) || ' of the series ' "
                "|| (g %% 997), 1900 + g %% 120 FROM generate_series(1, %s) g"
            ).format(ident),
            (self.rows,),
        )
        admin.execute(sql.SQL('CREATE INDEX ON {} ("Title")').format(ident))  # no use here
        admin.execute(sql.SQL("ANALYZE {}").format(ident))
        stmt = sql.SQL('SELECT id, "Title" FROM {} WHERE "Title" ILIKE %s').format(ident)
        self.info.objects += [self.table, f"{self.table}.{self.column}"]
        self.info.statements.append(stmt.as_string(None))
        for i in range(self.sessions):
            rng = random.Random(i)

            def body(c: psycopg.Connection, r: random.Random = rng) -> None:
                # a fragment of one title's md5: one or two rows match
                word = hashlib.md5(str(r.randint(1, self.rows)).encode()).hexdigest()[3:11]
                c.execute(stmt, (f"%{word.upper()}%",)).fetchall()

            self.loop("worker", self.session("worker"), body)


class WrongIndexLookup(Fault):
    name = "wrong_index_lookup"
    description = "lookups by two columns through an index on the unselective one"

    def __init__(self, dsn: str, *, sessions: int = 2, rows: int = 300_000, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions, self.rows = sessions, rows
        self.table = f"public.{_name('Orders_day')}"

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table,
            sql.SQL(
                'CREATE TABLE {} (id int PRIMARY KEY, "createdOn" date NOT NULL, '
                "customer_id int NOT NULL, total numeric)"
            ).format(ident),
        )
        admin = self.sql_admin
        # a day's rows spread over the table (one in 365), 15 rows per customer
        admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT g, date '2026-01-01' + g %% 365, "
                "(g::bigint * 7919) %% 20000, g %% 1000 FROM generate_series(1, %s) g"
            ).format(ident),
            (self.rows,),
        )
        admin.execute(sql.SQL('CREATE INDEX ON {} ("createdOn")').format(ident))
        admin.execute(sql.SQL("ANALYZE {}").format(ident))
        stmt = sql.SQL(
            'SELECT id, total FROM {} WHERE "createdOn" = %s AND customer_id = %s'
        ).format(ident)
        self.info.objects += [self.table, f"{self.table}.customer_id"]
        self.info.statements.append(stmt.as_string(None))
        start = datetime.date(2026, 1, 1)
        for i in range(self.sessions):
            rng = random.Random(i)

            def body(c: psycopg.Connection, r: random.Random = rng) -> None:
                g = r.randint(1, self.rows)  # an existing order: its day and its customer
                day = start + datetime.timedelta(days=g % 365)
                c.execute(stmt, (day, (g * 7919) % 20000)).fetchall()

            self.loop("worker", self.session("worker"), body)


class TriggerHotRow(Fault):
    name = "trigger_hot_row"
    description = "inserts whose trigger updates one counter row: they queue on each other"

    def __init__(self, dsn: str, *, sessions: int = 4, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions = sessions
        tag = uuid.uuid4().hex[:6]
        self.table = f"public.Orders_trg_{tag}"
        self.counter = f"public.order_counts_{tag}"
        self.function = f"public.count_order_{tag}"
        self.trigger = f"trg_count_{tag}"

    def start(self) -> None:
        t = sql.Identifier(*self.table.split("."))
        cnt = sql.Identifier(*self.counter.split("."))
        fn = sql.Identifier(*self.function.split("."))
        self.own_table(
            self.counter, sql.SQL("CREATE TABLE {} (name text PRIMARY KEY, n bigint)").format(cnt)
        )
        self.own_table(
            self.table,
            sql.SQL(
                'CREATE TABLE {} (id bigserial PRIMARY KEY, "customerId" int, total numeric)'
            ).format(t),
        )
        admin = self.sql_admin
        admin.execute(sql.SQL("INSERT INTO {} VALUES ('orders', 0)").format(cnt))
        admin.execute(
            sql.SQL(
                "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "UPDATE {} SET n = n + 1 WHERE name = 'orders'; RETURN NULL; END $$"
            ).format(fn, cnt)
        )
        self.undo("dropped the trigger function", lambda: admin.execute(
            sql.SQL("DROP FUNCTION IF EXISTS {}() CASCADE").format(fn)))  # fmt: skip
        admin.execute(
            sql.SQL(
                "CREATE TRIGGER {} AFTER INSERT ON {} FOR EACH ROW EXECUTE FUNCTION {}()"
            ).format(sql.Identifier(self.trigger), t, fn)
        )
        stmt = sql.SQL('INSERT INTO {} ("customerId", total) VALUES (%s, %s)').format(t)
        self.info.objects += [self.table, self.counter]
        self.info.statements.append(stmt.as_string(None))
        for i in range(self.sessions):
            rng = random.Random(i)

            def body(c: psycopg.Connection, r: random.Random = rng) -> None:
                with c.transaction():  # the insert and a second statement: a short transaction
                    c.execute(stmt, (r.randint(1, 5000), r.randint(1, 500)))
                    c.execute("SELECT pg_sleep(0.01)")

            self.loop("worker", self.session("worker"), body)


class OrLookup(Fault):
    name = "or_lookup"
    description = "lookups by one column OR another where only one of them is indexed"

    def __init__(self, dsn: str, *, sessions: int = 2, rows: int = 300_000,
                 email_index: bool = True, **kw: Any):  # fmt: skip
        super().__init__(dsn, **kw)
        self.sessions, self.rows, self.email_index = sessions, rows, email_index
        self.table = f"public.{_name('Customers')}"

    def start(self) -> None:
        ident = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table,
            sql.SQL('CREATE TABLE {} (id int PRIMARY KEY, "Email" text, phone text)').format(ident),
        )
        admin = self.sql_admin
        admin.execute(
            sql.SQL(
                "INSERT INTO {} SELECT g, 'c' || g || '@example.com', '+33' || (600000000 + g) "
                "FROM generate_series(1, %s) g"
            ).format(ident),
            (self.rows,),
        )
        if self.email_index:
            admin.execute(sql.SQL('CREATE INDEX ON {} ("Email")').format(ident))
        admin.execute(sql.SQL("ANALYZE {}").format(ident))
        stmt = sql.SQL('SELECT id FROM {} WHERE "Email" = %s OR phone = %s').format(ident)
        self.info.objects += [self.table, f"{self.table}.phone"]
        self.info.statements.append(stmt.as_string(None))
        for i in range(self.sessions):
            rng = random.Random(i)

            def body(c: psycopg.Connection, r: random.Random = rng) -> None:
                g = r.randint(1, self.rows)
                c.execute(stmt, (f"c{g}@example.com", f"+33{600000000 + g}")).fetchall()

            self.loop("worker", self.session("worker"), body)
