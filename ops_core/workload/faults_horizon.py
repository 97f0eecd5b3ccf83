"""Faults whose holder is not a session: what pg_stat_activity does not show.

- :class:`PreparedTransactionLeft` - a two-phase-commit participant prepared a transaction that
  updated two rows of an accounts table and its coordinator never came back: the prepared
  transaction keeps its row locks (the sessions updating those rows wait, and
  ``pg_blocking_pids`` names their blocker as pid 0) and its xid (vacuum cannot remove the
  rows other sessions keep updating: bloat grows). No session to terminate, no timeout applies.
  Needs ``max_prepared_transactions`` > 0 (PostgreSQL's default is 0).

Like :mod:`faults_scenarios`, not in the CLI's fault list: they exist to try the diagnosis.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import sql

from ..errors import InvalidInput
from .fault_base import Fault


class PreparedTransactionLeft(Fault):
    name = "prepared_transaction_left"
    description = "a prepared transaction left behind holding row locks and the xmin horizon"

    def __init__(
        self, dsn: str, *, waiters: int = 2, churners: int = 2, rows: int = 4_000, **kw: Any
    ):
        super().__init__(dsn, **kw)
        self.waiters, self.churners, self.rows = waiters, churners, rows
        tag = uuid.uuid4().hex[:6]
        self.table = f"public.Accounts_2pc_{tag}"
        self.gid = f"transfer:{tag}:node-2"
        self.locked_ids = [1, 2]

    def start(self) -> None:
        if int(self.setting("max_prepared_transactions")) == 0:
            raise InvalidInput(
                "This server does not allow prepared transactions (max_prepared_transactions = 0).",
                "Set max_prepared_transactions (restart needed) to run this fault.",
            )
        t = sql.Identifier(*self.table.split("."))
        self.own_table(
            self.table,
            sql.SQL(
                'CREATE TABLE {} (id int PRIMARY KEY, "Balance" bigint NOT NULL, note text)'
            ).format(t),
        )
        admin = self.sql_admin
        admin.execute(
            sql.SQL("INSERT INTO {} SELECT g, 1000, 'opened' FROM generate_series(1, %s) g").format(
                t
            ),
            (self.rows,),
        )
        admin.execute(sql.SQL("VACUUM ANALYZE {}").format(t))
        # the participant: one transfer's two rows updated, then prepared; its session goes
        # away as a crashed coordinator's would, the transaction stays
        part = self.session("participant", autocommit=False)
        part.execute(
            sql.SQL('UPDATE {} SET "Balance" = "Balance" + %s WHERE id = ANY(%s)').format(t),
            (10, self.locked_ids),
        )
        part.execute(sql.SQL("PREPARE TRANSACTION {}").format(sql.Literal(self.gid)))
        part.close()
        self.undo("rolled back the prepared transaction", self._finish)
        self.info.objects += [self.table, f"prepared transaction {self.gid}"]
        pay = sql.SQL('UPDATE {} SET "Balance" = "Balance" - 1 WHERE id = %s').format(t)
        churn = sql.SQL(
            "UPDATE {} SET note = md5(random()::text) WHERE id %% %s = %s AND id > 2"
        ).format(t)
        self.info.statements += [pay.as_string(None), churn.as_string(None)]
        for i in range(self.waiters):
            rid = self.locked_ids[i % len(self.locked_ids)]
            self.loop("payer", self.session("payer"), lambda c, r=rid: c.execute(pay, (r,)))
        for i in range(self.churners):
            state = {"n": 0}

            def body(c: psycopg.Connection, i: int = i, state: dict = state) -> None:
                c.execute(churn, (self.churners, i))
                state["n"] += 1
                if i == 0 and state["n"] % 10 == 0:
                    c.execute(sql.SQL("VACUUM {}").format(t))  # finds nothing it may remove

            self.loop("churner", self.session("churner"), body)

        def blocked() -> bool:
            payers = set(self.info.roles.get("payer", []))
            rows = {a["pid"]: a for a in self.activity()}
            return all(rows.get(p, {}).get("blockers") == [0] for p in payers)

        self.wait_for("the payers blocked by the prepared transaction (pid 0)", blocked)

    def _finish(self) -> None:
        admin = self.sql_admin
        left = admin.execute(
            "SELECT 1 FROM pg_prepared_xacts WHERE gid = %s", (self.gid,)
        ).fetchone()
        if left:
            admin.execute(sql.SQL("ROLLBACK PREPARED {}").format(sql.Literal(self.gid)))
