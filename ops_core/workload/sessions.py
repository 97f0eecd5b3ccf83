"""Sessions that do work on a server (the opposite of a monitoring session).

They are named like an application (``demo-app`` by default), never ``opscore...``: opscore
leaves its own sessions out of what it reports, and a workload must be seen. They write, so
they are opened only on a DSN the caller chose for that (an admin or workload role on a
database it owns), with a safety ``idle_in_transaction_session_timeout`` and
``statement_timeout`` so that a crashed test cannot leave a session holding locks for ever.
"""

from __future__ import annotations

import psycopg

from ..errors import InvalidInput
from ..targets.connection import _classify, parse_dsn

DEFAULT_APPLICATION_NAME = "demo-app"


def check_application_name(name: str) -> str:
    if not name or name.lower().startswith("opscore"):
        raise InvalidInput(
            f"Workload sessions cannot be named {name!r}.",
            "opscore hides sessions named opscore* from its reports; use an application "
            "name such as 'demo-app' or 'shop-app'.",
        )
    return name


def workload_connect(
    dsn: str,
    *,
    application_name: str = DEFAULT_APPLICATION_NAME,
    autocommit: bool = True,
    statement_timeout_s: float = 600,
    idle_in_transaction_timeout_s: float = 600,
    settings: dict[str, str] | None = None,
) -> psycopg.Connection:
    """A read-write session for workload or fault injection.

    ``statement_timeout_s`` / ``idle_in_transaction_timeout_s`` bound how long anything this
    session does can last even if its owner dies (0 disables). ``settings`` are session-level
    GUCs (e.g. ``{"work_mem": "64kB"}``), given at connection start.
    """
    parse_dsn(dsn)
    check_application_name(application_name)
    opts = {
        "statement_timeout": f"{int(statement_timeout_s * 1000)}",
        "idle_in_transaction_session_timeout": f"{int(idle_in_transaction_timeout_s * 1000)}",
        **(settings or {}),
    }
    options = " ".join(f"-c {k}={v}" for k, v in opts.items())
    try:
        return psycopg.connect(
            dsn,
            application_name=application_name,
            autocommit=autocommit,
            connect_timeout=10,
            options=options,
        )
    except psycopg.OperationalError as exc:
        raise _classify(exc, dsn) from None


ADMIN_APPLICATION_NAME = "opscore-workload-admin"


def admin_connect(dsn: str) -> psycopg.Connection:
    """The session a fault uses to set up, observe and undo (named ``opscore...``: it is
    machinery, not the problem, and opscore's reports leave it out)."""
    parse_dsn(dsn)
    try:
        return psycopg.connect(
            dsn,
            application_name=ADMIN_APPLICATION_NAME,
            autocommit=True,
            connect_timeout=10,
            options="-c statement_timeout=300000 -c lock_timeout=30000",
        )
    except psycopg.OperationalError as exc:
        raise _classify(exc, dsn) from None
