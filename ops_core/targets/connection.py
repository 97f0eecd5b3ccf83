"""Connections to monitored servers: DSN parsing, password hygiene, the monitoring session.

A target is production. A monitoring session is named ``application_name=opscore``, bounded by
``statement_timeout``/``lock_timeout``, read-only, and errors are turned into messages that say
what is wrong and what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..config import Settings, get_settings
from ..errors import AuthFailed, ConnectionFailed, InvalidDSN

APPLICATION_NAME = "opscore"


def parse_dsn(dsn: str) -> dict[str, str]:
    """Parse a libpq DSN (URL or key=value); raise :class:`InvalidDSN` with the reason."""
    if not dsn or not dsn.strip():
        raise InvalidDSN(
            "The DSN is empty.",
            "Give a libpq connection string, e.g. postgresql://user@host:5432/dbname",
        )
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        reason = str(exc).replace(dsn, "<dsn>")
        raise InvalidDSN(
            f"The DSN cannot be parsed: {reason}",
            "Use a libpq URL (postgresql://user@host:5432/dbname) or key=value "
            "pairs (host=... dbname=...).",
        ) from exc
    return {k: str(v) for k, v in params.items() if v is not None}


def strip_password(dsn: str) -> tuple[str, str | None]:
    """Return the DSN without its password (as key=value) and the password it contained."""
    params = parse_dsn(dsn)
    password = params.pop("password", None)
    return make_conninfo(**params), password


def redact(dsn: str) -> str:
    """A DSN safe to print: the password, if any, replaced by ``***``."""
    try:
        params = parse_dsn(dsn)
    except InvalidDSN:
        return "<invalid DSN>"
    if "password" in params:
        params["password"] = "***"
    return make_conninfo(**params)


def describe(dsn: str) -> str:
    """Short human form: user@host:port/dbname (no password)."""
    p = parse_dsn(dsn)
    host = p.get("host") or p.get("hostaddr") or os.environ.get("PGHOST") or "local socket"
    if host.startswith("/"):
        host = f"socket {host}"
    port = p.get("port") or os.environ.get("PGPORT") or "5432"
    user = p.get("user") or os.environ.get("PGUSER") or "(os user)"
    db = p.get("dbname") or os.environ.get("PGDATABASE") or user
    return f"{user}@{host}:{port}/{db}"


@dataclass(frozen=True)
class SessionLimits:
    statement_timeout_ms: int
    lock_timeout_ms: int
    connect_timeout_s: int

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SessionLimits:
        s = settings or get_settings()
        return cls(s.statement_timeout_ms, s.lock_timeout_ms, s.connect_timeout_s)


def _classify(exc: psycopg.OperationalError, dsn: str) -> ConnectionFailed:
    text = str(exc).strip()
    # libpq messages can echo parts of the conninfo; never the password, but be safe
    pw = parse_dsn(dsn).get("password")
    if pw:
        text = text.replace(pw, "***")
    where = describe(dsn)
    low = text.lower()
    if (
        "password authentication failed" in low
        or "no password supplied" in low
        or "authentication failed" in low
    ):
        return AuthFailed(
            f"Authentication failed for {where}: {text}",
            "Check the user and its password (in ~/.pgpass, a service file, PGPASSWORD or the "
            "target's password environment variable) and pg_hba.conf on the server.",
        )
    if "does not exist" in low:
        return ConnectionFailed(
            f"Connected to {where} but: {text}", "Check the database and user names in the DSN."
        )
    if "timeout" in low:
        return ConnectionFailed(
            f"Timed out connecting to {where}: {text}",
            "Check that the host is reachable and the port open; raise "
            "OPSCORE_CONNECT_TIMEOUT_S for slow networks.",
        )
    if "no pg_hba.conf entry" in low:
        return AuthFailed(
            f"The server at {where} refuses this connection: {text}",
            "Add a pg_hba.conf entry for this host/user/database and reload.",
        )
    return ConnectionFailed(
        f"Cannot connect to {where}: {text}",
        "Check that the server is running and that host, port and socket in the DSN are right.",
    )


def connect(
    dsn: str,
    *,
    read_only: bool = True,
    autocommit: bool = True,
    limits: SessionLimits | None = None,
    application_name: str = APPLICATION_NAME,
    **extra,
) -> psycopg.Connection:
    """Open a monitoring connection to a target.

    Named ``application_name=opscore``, with statement/lock timeouts and (by default) in
    read-only mode, so a bug in opscore cannot write to a production server through it.
    """
    parse_dsn(dsn)
    lim = limits or SessionLimits.from_settings()
    options = (
        f"-c statement_timeout={lim.statement_timeout_ms} "
        f"-c lock_timeout={lim.lock_timeout_ms} "
        "-c idle_in_transaction_session_timeout=60000"
    )
    if read_only:
        options += " -c default_transaction_read_only=on"
    try:
        conn = psycopg.connect(
            dsn,
            application_name=application_name,
            connect_timeout=lim.connect_timeout_s,
            options=options,
            autocommit=autocommit,
            **extra,
        )
    except psycopg.OperationalError as exc:
        raise _classify(exc, dsn) from None
    return conn


@contextmanager
def monitoring_session(dsn: str, **kw) -> Iterator[psycopg.Connection]:
    conn = connect(dsn, **kw)
    try:
        yield conn
    finally:
        conn.close()
