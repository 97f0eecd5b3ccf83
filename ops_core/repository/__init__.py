"""The repository: PostgreSQL schema ``opscore``, created by ordered SQL migrations.

By default a database ``opscore`` on the embedded server; ``OPSCORE_REPOSITORY_DSN`` points it
at any PostgreSQL 14+.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql
from psycopg.types.json import set_json_dumps

from ..config import Settings, get_settings
from ..errors import ConnectionFailed, RepositoryError, SchemaTooNew
from ..targets.connection import _classify, parse_dsn
from . import pool as _pool

APPLICATION_NAME = "opscore-repository"


def _json_dumps(value: object) -> str:
    """Every jsonb value opscore writes goes through the one serializer: NaN/inf (pandas' missing
    values: a statement sampled with no text) become null instead of a JSON token PostgreSQL
    refuses, numpy scalars become numbers, timestamps ISO 8601 (seen: an ADDM analysis under load
    failed to store on ``"query": NaN`` and the demo stopped). Imported here: the serializer
    loads pandas, which a repository session alone must not pay for."""
    from ..model.serialize import to_jsonable

    return json.dumps(to_jsonable(value), allow_nan=False)


set_json_dumps(_json_dumps)
MIGRATION_LOCK = 0x6F7073636F7265  # "opscore": serialises concurrent `opscore init`


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    return list(_migrations())


@functools.cache
def _migrations() -> tuple[Migration, ...]:
    # package data, fixed for the life of the process: read once (every repository session
    # checks the schema against it; reading ~30 files each time cost more than the check)
    out = []
    for entry in resources.files("ops_core.repository").joinpath("migrations").iterdir():
        m = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), entry.read_text()))
    return tuple(sorted(out, key=lambda m: m.version))


def repository_dsn(settings: Settings | None = None, *, start: bool = True) -> str:
    """DSN of the repository; on the embedded default, start the server and create the DB."""
    s = settings or get_settings()
    if s.repository_dsn:
        parse_dsn(s.repository_dsn)
        return s.repository_dsn
    from ..targets.embedded import EmbeddedServer

    server = EmbeddedServer(s.home_dir)
    if start:
        server.start()
    _ensure_database(server.conninfo("postgres"), s.repository_database)
    return server.conninfo(s.repository_database)


def _ensure_database(admin_dsn: str, dbname: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True, application_name=APPLICATION_NAME) as conn:
        exists = conn.execute(
            "SELECT /* opscore */ 1 FROM pg_database WHERE datname = %s", (dbname,)
        ).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            except psycopg.errors.DuplicateDatabase:
                pass


def connect(
    settings: Settings | None = None, *, autocommit: bool = True, start: bool = True
) -> psycopg.Connection:
    """A repository connection (``start=False``: never start the embedded server, e.g. for a
    health check that must not change what it observes)."""
    s = settings or get_settings()
    if not s.repository_dsn:
        # Fast path on the embedded default: the server is usually up and the database there,
        # so connect first and only on failure take the full path (start it, create the
        # database). That path cost a lock, a second connection and the server's status on
        # every repository session (~50 ms each under the HTTP API's load).
        from ..targets.embedded import EmbeddedServer

        server = EmbeddedServer(s.home_dir)
        if server.initialized and server.configured_port():
            try:
                return psycopg.connect(
                    server.conninfo(s.repository_database),
                    autocommit=autocommit,
                    application_name=APPLICATION_NAME,
                    connect_timeout=s.connect_timeout_s,
                )
            except psycopg.OperationalError:
                pass  # not running, or the database is gone: the full path says which
    dsn = repository_dsn(s, start=start)
    try:
        return psycopg.connect(
            dsn,
            autocommit=autocommit,
            application_name=APPLICATION_NAME,
            connect_timeout=s.connect_timeout_s,
        )
    except psycopg.OperationalError as exc:
        err = _classify(exc, dsn)
        raise ConnectionFailed(
            "The repository database is unreachable. " + err.message,
            "Check OPSCORE_REPOSITORY_DSN, or unset it to use the embedded "
            "server (`opscore db start`).",
        ) from None


@contextmanager
def session(settings: Settings | None = None) -> Iterator[psycopg.Connection]:
    """A repository connection that is ready (schema current) for reads and writes.

    Autocommit: every multi-statement write runs in an explicit ``conn.transaction()`` block,
    so a crash mid-way leaves nothing half-written.
    """
    if _pool.enabled():
        s = settings or get_settings()
        with _pool.borrow(_pool_key(s)) as conn:
            if conn is not None:
                yield conn  # schema checked when the pool opened
                return
    conn = connect(settings)
    try:
        check_schema(conn)
        yield conn
    finally:
        conn.close()


def _pool_key(s: Settings) -> tuple:
    return (s.repository_dsn, s.home, s.repository_database)


def use_pool(*, min_size: int = 2, max_size: int = 20, settings: Settings | None = None) -> None:
    """Borrow repository connections from a pool in this process from now on (a long-lived
    server: the HTTP API); the schema is made current once, now. See ``repository.pool``."""
    s = settings or get_settings()
    with session(s):  # starts the embedded server if needed, makes the schema current
        pass
    _pool.enable(
        _pool_key(s),
        repository_dsn(s),
        min_size=min_size,
        max_size=max_size,
        application_name=APPLICATION_NAME,
    )


def applied_versions(conn: psycopg.Connection) -> set[int]:
    exists = conn.execute("SELECT to_regclass('opscore.schema_migrations')").fetchone()
    if not exists or exists[0] is None:
        return set()
    return {r[0] for r in conn.execute("SELECT version FROM opscore.schema_migrations")}


def check_schema(conn: psycopg.Connection) -> None:
    """Refuse to work on a missing, older or newer schema, saying what to do."""
    known = {m.version for m in migrations()}
    applied = applied_versions(conn)
    unknown = applied - known
    if unknown:
        raise SchemaTooNew(
            f"The repository schema has migrations this opscore does not know "
            f"({', '.join(str(v) for v in sorted(unknown))}): it was created by a newer opscore.",
            "Upgrade opscore (pip install -U opscore) before using this repository.",
        )
    if known - applied:
        # applying our own pending migrations is always safe: they are additive
        migrate(conn)


def migrate(conn: psycopg.Connection) -> list[Migration]:
    """Apply pending migrations in order, each in its own transaction. Idempotent."""
    if not conn.autocommit:
        conn.commit()
        conn.autocommit = True
    applied_now: list[Migration] = []
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            server = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
            if server and server[0] < 140000:
                raise RepositoryError(
                    f"The repository server is PostgreSQL {server[0] // 10000}; opscore needs "
                    "14 or later for its repository.",
                    "Point OPSCORE_REPOSITORY_DSN at PostgreSQL 14+.",
                )
            conn.execute("CREATE SCHEMA IF NOT EXISTS opscore")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS opscore.schema_migrations ("
                " version int PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            applied = applied_versions(conn)
            known = {m.version for m in migrations()}
            unknown = applied - known
            if unknown:
                raise SchemaTooNew(
                    f"The repository schema is newer than this opscore (it has migrations "
                    f"{', '.join(str(v) for v in sorted(unknown))} that this version does not "
                    "know). Nothing was changed.",
                    "Upgrade opscore before running `opscore init` against this repository.",
                )
            for m in migrations():
                if m.version in applied:
                    continue
                with conn.transaction():
                    conn.execute(m.sql)
                    conn.execute(
                        "INSERT INTO opscore.schema_migrations (version, name) VALUES (%s, %s)",
                        (m.version, m.name),
                    )
                applied_now.append(m)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RepositoryError(
            f"Cannot create the opscore schema: {exc}",
            "Use a role that may CREATE in the repository database.",
        ) from None
    return applied_now


def schema_version(conn: psycopg.Connection) -> int:
    applied = applied_versions(conn)
    return max(applied) if applied else 0
