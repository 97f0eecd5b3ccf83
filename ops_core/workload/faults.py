"""Fault injectors: each starts, holds and cleanly undoes one real problem on a real server.

Use one as a context manager; while the body runs the problem is live and observable from the
server's own views; at exit everything is undone (sessions terminated, settings restored,
objects dropped), also when the body raises::

    with IdleInTransactionBlocker(dsn) as fault:
        ...  # sample ASH, take snapshots, run ADDM
        fault.holder_pid  # the session ADDM must name

What each fault did is in ``fault.info`` (:class:`FaultInfo`): objects, statements, session
pids by role, settings changed and their previous values. Faults that change server-wide
settings refuse to run without ``allow_server_changes=True``.
"""

from __future__ import annotations

import random
from typing import Any

import psycopg

from ..errors import NotFound
from .fault_base import CleanupFailed, Fault, FaultInfo, ServerChangesNotAllowed
from .faults_server import CheckpointPressure, ConnectionStorm, SeqScanIO, checkpoint_counts
from .schema import INDEXES, SHOP_STATEMENTS, setup_shop_schema

__all__ = [
    "FAULTS",
    "CleanupFailed",
    "CheckpointPressure",
    "ConnectionStorm",
    "CpuHog",
    "Fault",
    "FaultInfo",
    "IdleInTransactionBlocker",
    "LockContention",
    "MissingIndex",
    "SeqScanIO",
    "ServerChangesNotAllowed",
    "StaleStatistics",
    "TempSpill",
    "VacuumBlocked",
    "checkpoint_counts",
    "fault_class",
]


def _max_order(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT last_value FROM demo.order_reference_seq").fetchone()
    return max(1, int(row[0])) if row else 1


class _ShopFault(Fault):
    """A fault on the demo shop schema (created at ``scale`` if missing, and kept)."""

    def __init__(self, dsn: str, *, scale: int = 1, **kw: Any):
        super().__init__(dsn, **kw)
        self.scale = scale

    def ensure_shop(self) -> None:
        shop = setup_shop_schema(self.dsn, self.scale, application_name=self.application_name)
        if shop.created:
            self.info.notes.append(
                f"created the demo schema (scale {shop.scale}, {shop.orders} orders); kept "
                "at exit as the workload's schema"
            )


# ------------------------------------------------------------------------------ missing index
class MissingIndex(_ShopFault):
    """Selective lookups ``WHERE reference = $1`` on demo.orders with that column's index
    dropped: each lookup of one row scans the whole table."""

    name = "missing_index"
    description = "hot selective lookup by demo.orders.reference without its index"
    table = "demo.orders"
    column = "reference"
    index = "orders_reference_idx"

    def __init__(self, dsn: str, *, sessions: int = 2, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions = sessions

    def start(self) -> None:
        self.ensure_shop()
        admin = self.sql_admin
        exists = admin.execute("SELECT to_regclass('demo.orders_reference_idx')").fetchone()
        if exists and exists[0]:
            admin.execute("DROP INDEX demo.orders_reference_idx")
            self.info.notes.append("dropped index demo.orders_reference_idx")
        self.undo(
            "recreated index demo.orders_reference_idx",
            lambda: admin.execute(
                INDEXES["orders_reference_idx"].replace("INDEX", "INDEX IF NOT EXISTS", 1)
            ),
        )
        self.info.objects += [self.table, f"{self.table}.{self.column}", f"demo.{self.index}"]
        stmt = SHOP_STATEMENTS["order_by_reference"]
        self.info.statements.append(stmt)
        n = _max_order(admin)
        for i in range(self.sessions):
            rng = random.Random(i)
            conn = self.session("worker")
            self.loop(
                "worker",
                conn,
                lambda c, r=rng: c.execute(stmt, (f"ORD-{r.randint(1, n):09d}",)).fetchall(),
            )


# ------------------------------------------------------------------------------ lock contention
class LockContention(_ShopFault):
    """Several sessions update the same few hot rows of demo.products, each holding its row
    lock for a moment: the others queue on it (wait event Lock/transactionid or tuple)."""

    name = "lock_contention"
    description = "row-lock contention on hot rows of demo.products"
    table = "demo.products"
    statement = "UPDATE demo.products SET stock = stock - 1, updated_at = now() WHERE id = %s"

    def __init__(
        self, dsn: str, *, sessions: int = 4, hot_rows: int = 2, hold_s: float = 0.2, **kw: Any
    ):
        super().__init__(dsn, **kw)
        self.sessions, self.hot_rows, self.hold_s = sessions, hot_rows, hold_s
        self.hot_ids = list(range(1, hot_rows + 1))

    def start(self) -> None:
        self.ensure_shop()
        self.info.objects += [self.table] + [f"{self.table} id={i}" for i in self.hot_ids]
        self.info.statements += [self.statement, "SELECT pg_sleep(%s)"]

        def body(conn: psycopg.Connection, rng: random.Random) -> None:
            with conn.transaction():
                conn.execute(self.statement, (rng.choice(self.hot_ids),))
                conn.execute("SELECT pg_sleep(%s)", (self.hold_s,))

        for i in range(self.sessions):
            conn = self.session("worker")
            self.loop("worker", conn, lambda c, r=random.Random(i): body(c, r))
        self.wait_for(
            "a session waiting on a row lock",
            lambda: any(a["wait_event_type"] == "Lock" for a in self.activity()),
        )


# ------------------------------------------------------------------------------ idle in tx
class IdleInTransactionBlocker(_ShopFault):
    """One session updates a few hot customer rows and then sits idle in its transaction;
    other sessions, each updating one of those rows, wait on its locks until it ends (each
    waiter's ``pg_blocking_pids`` is exactly the holder)."""

    name = "idle_in_transaction"
    description = "a session idle in transaction holding row locks others wait for"
    table = "demo.customers"
    holder_statement = "UPDATE demo.customers SET email = email WHERE id = ANY(%s)"
    waiter_statement = "UPDATE demo.customers SET city = city WHERE id = %s"

    def __init__(self, dsn: str, *, waiters: int = 3, **kw: Any):
        super().__init__(dsn, **kw)
        self.waiters = max(1, waiters)
        self.row_ids = list(range(1, self.waiters + 1))
        self.holder_pid: int | None = None
        self.waiter_pids: list[int] = []

    def start(self) -> None:
        self.ensure_shop()
        self.info.objects += [self.table] + [f"{self.table} id={i}" for i in self.row_ids]
        self.info.statements += [self.holder_statement, self.waiter_statement]
        holder = self.session("holder", autocommit=False)
        holder.execute(self.holder_statement, (self.row_ids,))  # the transaction stays open
        self.holder_pid = holder.info.backend_pid
        for row_id in self.row_ids:
            conn = self.session("waiter")
            self.waiter_pids.append(conn.info.backend_pid)
            self.loop("waiter", conn, lambda c, r=row_id: c.execute(self.waiter_statement, (r,)))

        def blocked() -> bool:
            rows = {a["pid"]: a for a in self.activity()}
            h = rows.get(self.holder_pid)
            return (
                h is not None
                and h["state"] == "idle in transaction"
                and all(
                    rows.get(p, {}).get("blockers") == [self.holder_pid] for p in self.waiter_pids
                )
            )

        self.wait_for("the waiters blocked by the idle-in-transaction session", blocked)


# ------------------------------------------------------------------------------ temp spills
class TempSpill(_ShopFault):
    """Sessions with ``work_mem = '64kB'`` (session level, not server-wide) run a sort and a
    hash join over demo.orders that spill to temporary files."""

    name = "temp_spill"
    description = "sorts and hashes spilling to temp files (work_mem 64kB in the sessions)"
    table = "demo.orders"
    statements = [
        # a sort (under a window function) of all orders
        "SELECT max(rn) FROM (SELECT row_number() OVER (ORDER BY total DESC, created_at) AS rn "
        "FROM demo.orders) s",
        # a multi-batch hash join of orders with customers
        "SELECT c.city, o.status, count(*), sum(o.total) FROM demo.orders o "
        "JOIN demo.customers c ON c.id = o.customer_id GROUP BY c.city, o.status ORDER BY 4 DESC",
    ]

    def __init__(self, dsn: str, *, sessions: int = 2, work_mem: str = "64kB", **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions, self.work_mem = sessions, work_mem

    def start(self) -> None:
        self.ensure_shop()
        self.info.objects.append(self.table)
        self.info.statements += self.statements
        self.info.settings["work_mem"] = {
            "scope": "session",
            "value": self.work_mem,
            "previous": self.setting("work_mem"),
        }
        for i in range(self.sessions):
            conn = self.session("worker", settings={"work_mem": self.work_mem})
            stmt = self.statements[i % len(self.statements)]
            self.loop("worker", conn, lambda c, s=stmt: c.execute(s).fetchall())


# ------------------------------------------------------------------------------ stale stats
class StaleStatistics(_ShopFault):
    """A table analyzed while small and uniform, then autovacuum/auto-analyze disabled on it
    (storage parameter) and a skewed bulk load: the planner still thinks the loaded value is
    rare and estimates ~1 row where there are many (a bad join plan)."""

    name = "stale_statistics"
    description = "stale statistics after a bulk load: row estimates far below actual"
    table = "demo.order_events"
    statement = (
        "SELECT c.city, count(*) FROM demo.order_events e "
        "JOIN demo.customers c ON c.id = e.customer_id "
        "WHERE e.kind = %s GROUP BY c.city ORDER BY 2 DESC"
    )
    loaded_kind = "imported"

    def __init__(
        self, dsn: str, *, sessions: int = 1, initial_rows: int = 10_000,
        bulk_rows: int = 200_000, **kw: Any,
    ):  # fmt: skip
        super().__init__(dsn, **kw)
        self.sessions, self.initial_rows, self.bulk_rows = sessions, initial_rows, bulk_rows
        self.estimate: dict[str, float] = {}

    def start(self) -> None:
        self.ensure_shop()
        admin = self.sql_admin
        self.own_table(
            self.table,
            "CREATE TABLE demo.order_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " customer_id int NOT NULL, kind text NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now())",
        )
        admin.execute(
            "INSERT INTO demo.order_events (customer_id, kind) "
            "SELECT 1 + g %% 5000, (ARRAY['created','paid','shipped','delivered','cancelled'])"
            "[1 + g %% 5] FROM generate_series(1, %s) g",
            (self.initial_rows,),
        )
        admin.execute("ANALYZE demo.order_events")
        admin.execute(
            "ALTER TABLE demo.order_events SET (autovacuum_enabled = false, "
            "toast.autovacuum_enabled = false)"
        )
        self.info.settings["demo.order_events autovacuum_enabled"] = {
            "scope": "table",
            "value": "false",
            "previous": "true (default)",
        }
        admin.execute(
            "INSERT INTO demo.order_events (customer_id, kind) "
            "SELECT 1 + floor(5000 * power(random(), 3))::int, %s FROM generate_series(1, %s)",
            (self.loaded_kind, self.bulk_rows),
        )
        self.info.statements.append(self.statement)
        self.estimate = self.estimate_vs_actual()
        self.info.notes.append(
            f"scan of demo.order_events for kind={self.loaded_kind!r}: estimated "
            f"{self.estimate['plan_rows']:.0f} rows, actual {self.estimate['actual_rows']:.0f}"
        )
        for _ in range(self.sessions):
            conn = self.session("worker")
            self.loop(
                "worker", conn, lambda c: c.execute(self.statement, (self.loaded_kind,)).fetchall()
            )

    def estimate_vs_actual(self) -> dict[str, float]:
        """EXPLAIN ANALYZE of the statement: estimated and actual rows of the scan of the
        table (the node whose estimate is off)."""
        row = self.sql_admin.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + self.statement, (self.loaded_kind,)
        ).fetchone()
        assert row is not None
        found: dict[str, float] = {}

        def walk(node: dict) -> None:
            if node.get("Relation Name") == "order_events" and not found:
                found["plan_rows"] = float(node["Plan Rows"])
                found["actual_rows"] = float(node["Actual Rows"]) * float(
                    node.get("Actual Loops", 1)
                )
            for child in node.get("Plans", []):
                walk(child)

        walk(row[0][0]["Plan"])
        return found


# ------------------------------------------------------------------------------ vacuum blocked
class VacuumBlocked(_ShopFault):
    """A REPEATABLE READ transaction holds its snapshot (backend_xmin) while other sessions
    churn updates on demo.carts and vacuum it: dead rows pile up and cannot be removed."""

    name = "vacuum_blocked"
    description = "table bloat: a held snapshot keeps vacuum from removing dead rows"
    table = "demo.carts"
    holder_statement = "SELECT count(*) FROM demo.customers"
    statement = "UPDATE demo.carts SET items = items + 1, updated_at = now() WHERE id %% %s = %s"

    def __init__(self, dsn: str, *, churners: int = 2, rows: int = 2_000, **kw: Any):
        super().__init__(dsn, **kw)
        self.churners, self.rows = churners, rows
        self.holder_pid: int | None = None

    def start(self) -> None:
        self.ensure_shop()
        admin = self.sql_admin
        self.own_table(
            self.table,
            "CREATE TABLE demo.carts (id int PRIMARY KEY, customer_id int NOT NULL, "
            "items int NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now())",
        )
        admin.execute(
            "INSERT INTO demo.carts (id, customer_id) SELECT g, g FROM generate_series(1, %s) g",
            (self.rows,),
        )
        admin.execute("VACUUM ANALYZE demo.carts")
        holder = self.session("holder", autocommit=False)
        holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        holder.execute(self.holder_statement).fetchall()  # snapshot taken and kept
        self.holder_pid = holder.info.backend_pid
        self.info.statements += [self.holder_statement, self.statement.replace("%%", "%")]
        for i in range(self.churners):
            conn = self.session("churner")
            state = {"n": 0}

            def churn(c: psycopg.Connection, i: int = i, state: dict = state) -> None:
                c.execute(self.statement, (self.churners, i))
                state["n"] += 1
                if i == 0 and state["n"] % 10 == 0:
                    c.execute("VACUUM demo.carts")

            self.loop("churner", conn, churn)


# ------------------------------------------------------------------------------ CPU
class CpuHog(Fault):
    """Sessions running a pure-CPU query (math over a generated series, no I/O, no temp)."""

    name = "cpu_hog"
    description = "a CPU-heavy query dominating"
    statement = (
        "SELECT sum(sqrt(g::float8) * ln(g::float8 + 1)) FROM "
        "(SELECT generate_series(1, %s) AS g) s"
    )

    def __init__(self, dsn: str, *, sessions: int = 2, rows: int = 2_000_000, **kw: Any):
        super().__init__(dsn, **kw)
        self.sessions, self.rows = sessions, rows

    def start(self) -> None:
        self.info.statements.append(self.statement)
        for _ in range(self.sessions):
            conn = self.session("worker")
            self.loop("worker", conn, lambda c: c.execute(self.statement, (self.rows,)).fetchall())


FAULTS: dict[str, type[Fault]] = {
    cls.name: cls
    for cls in (
        MissingIndex,
        LockContention,
        IdleInTransactionBlocker,
        TempSpill,
        CheckpointPressure,
        StaleStatistics,
        VacuumBlocked,
        ConnectionStorm,
        CpuHog,
        SeqScanIO,
    )
}


def fault_class(name: str) -> type[Fault]:
    try:
        return FAULTS[name.replace("-", "_")]
    except KeyError:
        raise NotFound(
            f"There is no fault named {name!r}.", "Known faults: " + ", ".join(sorted(FAULTS))
        ) from None
