"""HTTP API tokens: create (the token is returned once, only its SHA-256 hash is stored), list,
revoke, and check a presented token (what the HTTP API does on every request)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from .. import repository
from ..errors import InvalidInput
from ..repository import api_tokens as repo
from ..repository.api_tokens import ApiToken

__all__ = [
    "API_ROLES",
    "ApiToken",
    "NewApiToken",
    "create_api_token",
    "list_api_tokens",
    "revoke_api_token",
    "check_api_token",
    "api_token_hash",
]

#: roles in increasing power: read < operate (writes) < admin (destructive operations)
API_ROLES = ("read", "operate", "admin")
TOKEN_PREFIX = "opsc_"


@dataclass(frozen=True)
class NewApiToken:
    token: ApiToken
    secret: str  # shown once; never stored, never logged

    def as_dict(self) -> dict[str, Any]:
        return self.token.as_dict() | {"secret": self.secret}


def api_token_hash(secret: str) -> str:
    """The stored form of a token: SHA-256 hex (tokens are 256-bit random, so no salt or
    stretching is needed: there is nothing to guess)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_token(name: str, role: str = "read") -> NewApiToken:
    if role not in API_ROLES:
        raise InvalidInput(
            f"Unknown role {role!r}.",
            f"Use one of {', '.join(API_ROLES)} (read < operate < admin).",
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with repository.session() as conn:
        row = repo.insert_token(conn, name, role, api_token_hash(secret), secret[:10])
    return NewApiToken(row, secret)


def list_api_tokens(include_revoked: bool = True) -> list[ApiToken]:
    with repository.session() as conn:
        return repo.list_tokens(conn, include_revoked=include_revoked)


def revoke_api_token(name: str) -> ApiToken:
    with repository.session() as conn:
        return repo.revoke_token(conn, name)


def check_api_token(secret: str) -> ApiToken | None:
    """The active token whose hash matches ``secret`` (its use recorded), or None."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    with repository.session() as conn:
        token = repo.token_by_hash(conn, api_token_hash(secret))
        if token is not None:
            repo.touch_token(conn, token.token_id)
        return token
