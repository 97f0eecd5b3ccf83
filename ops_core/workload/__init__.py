"""Real workloads and real faults against a PostgreSQL server.

- :mod:`.driver` runs load: pgbench (standard and custom scripts) and a generated OLTP mix on
  the ``demo`` shop schema (:mod:`.schema`).
- :mod:`.faults` injects one real problem at a time as a context manager that cleans up after
  itself (missing index, lock contention, idle-in-transaction blocker, temp spills, checkpoint
  pressure, stale statistics, vacuum blocked, connection storm, CPU hog, sequential I/O).

Everything here writes to the server it is given: use it on a database you own (the demo
target, a throw-away test database), never through a monitoring session.
"""

from .driver import (
    BackgroundShop,
    PgbenchProgress,
    PgbenchResult,
    ShopProgress,
    ShopResult,
    pgbench_init,
    pgbench_path,
    run_pgbench,
    run_shop,
)
from .faults import FAULTS, Fault, FaultInfo, ServerChangesNotAllowed, fault_class
from .schema import SHOP_STATEMENTS, ShopSchema, setup_shop_schema
from .sessions import DEFAULT_APPLICATION_NAME, workload_connect

__all__ = [
    "BackgroundShop",
    "DEFAULT_APPLICATION_NAME",
    "FAULTS",
    "Fault",
    "FaultInfo",
    "PgbenchProgress",
    "PgbenchResult",
    "SHOP_STATEMENTS",
    "ServerChangesNotAllowed",
    "ShopProgress",
    "ShopResult",
    "ShopSchema",
    "fault_class",
    "pgbench_init",
    "pgbench_path",
    "run_pgbench",
    "run_shop",
    "setup_shop_schema",
    "workload_connect",
]
