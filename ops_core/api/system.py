"""The embedded server and the repository schema."""

from __future__ import annotations

from dataclasses import dataclass

from .. import repository
from ..config import get_settings
from ..targets.embedded import EmbeddedServer, ServerStatus

__all__ = [
    "db_start",
    "db_stop",
    "db_status",
    "db_url",
    "init_repository",
    "RepositoryInfo",
    "embedded_server",
]


def embedded_server() -> EmbeddedServer:
    return EmbeddedServer(get_settings().home_dir)


def db_start() -> ServerStatus:
    """Start the embedded PostgreSQL (or reuse it if it runs); recovers from a crash."""
    return embedded_server().start()


def db_stop() -> ServerStatus:
    return embedded_server().stop()


def db_status() -> ServerStatus:
    return embedded_server().status()


def db_url(dbname: str = "postgres", tcp: bool = False) -> str:
    return embedded_server().url(dbname, tcp=tcp)


@dataclass
class RepositoryInfo:
    dsn_description: str
    schema_version: int
    applied_now: list[str]
    embedded: bool

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def init_repository() -> RepositoryInfo:
    """Create or upgrade the repository schema (idempotent; refuses a newer schema)."""
    from ..targets.connection import describe

    settings = get_settings()
    dsn = repository.repository_dsn(settings)
    with repository.connect(settings) as conn:
        applied = repository.migrate(conn)
        version = repository.schema_version(conn)
    return RepositoryInfo(
        describe(dsn),
        version,
        [f"{m.version:04d}_{m.name}" for m in applied],
        settings.repository_dsn is None,
    )
