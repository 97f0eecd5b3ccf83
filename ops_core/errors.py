"""One exception hierarchy for opscore.

Every error a user can cause or meet carries a ``message`` (what is wrong) and a ``hint``
(what to do). Surfaces (CLI, flows, app) print both and never a traceback.
"""

from __future__ import annotations


class OpsCoreError(Exception):
    """Root of all opscore errors."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class ConfigError(OpsCoreError):
    """Invalid configuration (settings, TOML file, environment)."""


class InvalidInput(OpsCoreError):
    """A value given by the user is malformed or out of range."""


class InvalidDSN(InvalidInput):
    """A connection string cannot be parsed."""


class NotFound(OpsCoreError):
    """Something named by the user (target, snapshot, backup, ...) does not exist."""


class UnknownTarget(NotFound):
    pass


class ConnectionFailed(OpsCoreError):
    """A server could not be reached or refused the connection."""


class AuthFailed(ConnectionFailed):
    pass


class PrivilegeMissing(OpsCoreError):
    """The role lacks a privilege the operation needs."""


class RepositoryError(OpsCoreError):
    """The repository schema is missing, too new or inconsistent."""


class SchemaTooNew(RepositoryError):
    pass


class NotSupported(OpsCoreError):
    """The server cannot provide this (old version, missing extension or view)."""


class CommandFailed(OpsCoreError):
    """An external program (pg_basebackup, pgbench, ...) exited non-zero."""

    def __init__(
        self, message: str, hint: str | None = None, *, returncode: int = 1, stderr: str = ""
    ):
        super().__init__(message, hint)
        self.returncode = returncode
        self.stderr = stderr


class EmbeddedServerError(OpsCoreError):
    """The embedded PostgreSQL could not be started or stopped."""
