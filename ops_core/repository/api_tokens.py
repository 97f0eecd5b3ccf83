"""Repository side of HTTP API tokens (migration 0019): only the SHA-256 hash of a token is
stored, with its name, role and prefix (to recognise it in a list)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from ..errors import InvalidInput, NotFound

__all__ = [
    "ApiToken",
    "insert_token",
    "list_tokens",
    "revoke_token",
    "token_by_hash",
    "touch_token",
]

_COLS = "token_id, name, role, prefix, created_at, last_used_at, revoked_at"


@dataclass(frozen=True)
class ApiToken:
    token_id: int
    name: str
    role: str  # read, operate, admin
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"active": self.active}


def insert_token(
    conn: psycopg.Connection, name: str, role: str, token_hash: str, prefix: str
) -> ApiToken:
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(ApiToken)) as cur:
            cur.execute(
                f"INSERT INTO opscore.api_tokens (name, role, token_hash, prefix) "
                f"VALUES (%s, %s, %s, %s) RETURNING {_COLS}",
                (name, role, token_hash, prefix),
            )
            row = cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise InvalidInput(
            f"An API token named {name!r} already exists.",
            f"Pick another name, or `opscore api token revoke {name}` and use a new name.",
        ) from None
    except psycopg.errors.CheckViolation:
        raise InvalidInput(
            f"{name!r} is not a valid token name.",
            "Use 1-63 letters, digits, '_', '.', '-', starting with a letter or digit.",
        ) from None
    assert row is not None
    return row


def list_tokens(conn: psycopg.Connection, *, include_revoked: bool = True) -> list[ApiToken]:
    where = "" if include_revoked else " WHERE revoked_at IS NULL"
    with conn.cursor(row_factory=class_row(ApiToken)) as cur:
        cur.execute(f"SELECT {_COLS} FROM opscore.api_tokens{where} ORDER BY token_id")
        return cur.fetchall()


def revoke_token(conn: psycopg.Connection, name: str) -> ApiToken:
    with conn.cursor(row_factory=class_row(ApiToken)) as cur:
        cur.execute(
            f"UPDATE opscore.api_tokens SET revoked_at = coalesce(revoked_at, now()) "
            f"WHERE name = %s RETURNING {_COLS}",
            (name,),
        )
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"No API token named {name!r}.", "See `opscore api token list`.")
    return row


def token_by_hash(conn: psycopg.Connection, token_hash: str) -> ApiToken | None:
    """The active token with this hash, or None."""
    with conn.cursor(row_factory=class_row(ApiToken)) as cur:
        cur.execute(
            f"SELECT {_COLS} FROM opscore.api_tokens WHERE token_hash = %s AND revoked_at IS NULL",
            (token_hash,),
        )
        return cur.fetchone()


def touch_token(conn: psycopg.Connection, token_id: int) -> None:
    """Record a use (at most once a minute per token: not a write per request)."""
    conn.execute(
        "UPDATE opscore.api_tokens SET last_used_at = now() WHERE token_id = %s "
        "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        (token_id,),
    )
