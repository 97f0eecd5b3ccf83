"""Bearer-token auth: the token's hash is looked up in the repository (``ops_core.api``
token functions); roles read < operate < admin. Reads need read, operations that write need
operate, destructive ones (deletes, restores) need admin. The token value is never logged:
it travels only in the ``Authorization`` header (or the GraphQL WebSocket's connection_init
payload), never in a URL."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from .. import api
from ..api.registry import Operation
from .errors import ApiError

__all__ = ["RANK", "Authenticator", "required_role"]

RANK = {role: i for i, role in enumerate(api.API_ROLES)}  # read 0, operate 1, admin 2
DESTRUCTIVE_PREFIXES = ("delete_", "drop_", "restore_", "revoke_")


def required_role(op: Operation) -> str:
    """What an operation needs: admin when destructive (DELETE, or a delete/drop/restore
    function), operate when it writes anything (its registry effects, or a write method on a
    row not built yet), read otherwise (a POST that only computes, such as compare, is a read)."""
    if op.kind == "DELETE" or op.function.startswith(DESTRUCTIVE_PREFIXES):
        return "admin"
    if op.served:
        return "operate" if op.writes else "read"
    return "read" if op.kind in ("GET", "query", "subscription") else "operate"


class Authenticator:
    """Checks presented tokens; a valid token is remembered for ``ttl_s`` seconds (so a read
    is not a repository round trip each time; a revoked token stops working within that)."""

    def __init__(self, ttl_s: float = 2.0):
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, api.ApiToken]] = {}
        self._lock = threading.Lock()
        self._checking: dict[str, threading.Lock] = {}  # token hash -> its check in progress

    def token_of(self, headers: Mapping[str, Any]) -> str | None:
        value = None
        for k, v in headers.items():
            if str(k).lower() == "authorization":
                value = str(v)
        if not value:
            return None
        scheme, _, secret = value.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "unauthorized", "Use the header `Authorization: Bearer <token>`.")
        return secret.strip()

    def check(self, secret: str | None) -> api.ApiToken:
        if not secret:
            raise ApiError(
                401,
                "unauthorized",
                "An API token is required: `Authorization: Bearer <token>` "
                "(create one with `opscore api token create NAME --role read`).",
            )
        key = api.api_token_hash(secret)
        hit = self._fresh(key)
        if hit is not None:
            return hit
        # one repository check per token at a time: a burst of requests that all find the
        # entry missing or expired waits for the first check instead of each running its own
        with self._lock:
            key_lock = self._checking.setdefault(key, threading.Lock())
        with key_lock:
            hit = self._fresh(key)
            if hit is not None:
                return hit
            now = time.monotonic()
            token = api.check_api_token(secret)
            if token is None:
                with self._lock:  # unknown secrets leave nothing behind
                    self._checking.pop(key, None)
                raise ApiError(401, "unauthorized", "Unknown or revoked API token.")
            with self._lock:
                self._cache[key] = (now, token)
            return token

    def _fresh(self, key: str) -> api.ApiToken | None:
        with self._lock:
            hit = self._cache.get(key)
        if hit and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        return None

    def allow(self, token: api.ApiToken, need: str, what: str) -> None:
        if RANK[token.role] < RANK[need]:
            raise ApiError(
                403,
                "forbidden",
                f"{what} needs the {need} role; token {token.name!r} has {token.role}.",
                {"required_role": need, "token_role": token.role},
            )
