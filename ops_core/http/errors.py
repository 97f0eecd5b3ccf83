"""One error shape for the whole HTTP API, ``{"error": {"code", "message", "details"}}``, and
the status code of each opscore error: 400 bad input, 401/403 auth, 404 unknown id, 409 a
conflict with what exists, 501 not built yet / not available on this server, 503 a server
(target or repository) unreachable."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..api.snapshots import SnapshotFailed
from ..errors import (
    CommandFailed,
    ConnectionFailed,
    EmbeddedServerError,
    NotFound,
    NotSupported,
    OpsCoreError,
    RepositoryError,
)
from ..repository.ash_lease import SamplerBusy
from ..targets.actions import ActionRefused

__all__ = ["ApiError", "ErrorBody", "ERROR_RESPONSES", "error_response", "install", "status_of"]

log = logging.getLogger("ops_core.http")


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


#: documented on every route (the OpenAPI document lists the error shape)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "Bad input: what is wrong and what to do; nothing changed"),
        (401, "No token, or an unknown or revoked one"),
        (403, "The token's role does not allow this operation"),
        (404, "Unknown id, name or target"),
        (409, "Conflicts with what exists (a duplicate name, a busy resource)"),
        (501, "Not built yet, or not available on this server"),
        (503, "A server (target or repository) is unreachable"),
    )
}


class ApiError(Exception):
    """An error raised by the HTTP layer itself (auth, paging, unknown parameters)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(exc: OpsCoreError) -> tuple[int, str]:
    """The HTTP status and error code of an opscore error."""
    if isinstance(exc, NotFound):
        return 404, "not_found"
    if isinstance(exc, ConnectionFailed):
        return 503, "unavailable"
    if isinstance(exc, RepositoryError | EmbeddedServerError):
        return 503, "repository_unavailable"
    if isinstance(exc, SnapshotFailed):  # the capture failed on the target (recorded as such)
        return 503, "target_failed"
    if isinstance(exc, NotSupported):
        return 501, "not_available"
    if isinstance(exc, SamplerBusy | ActionRefused):
        return 409, "conflict"
    # a duplicate name: the repository's unique constraint, kept as the error's context
    if isinstance(exc.__context__, psycopg.errors.UniqueViolation):
        return 409, "conflict"
    if isinstance(exc, CommandFailed):
        return 500, "command_failed"
    return 400, "bad_input"


def _validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path")]
        out.append({"field": ".".join(loc) or None, "problem": e.get("msg", "")})
    return out


def install(app: FastAPI) -> None:
    """Error handlers that turn every failure into the one shape."""

    @app.exception_handler(OpsCoreError)
    async def _opscore(request: Request, exc: OpsCoreError) -> JSONResponse:
        status, code = status_of(exc)
        details = {"hint": exc.hint} if exc.hint else None
        if status >= 500 and status not in (501, 503):
            log.warning("%s %s: %s", request.method, request.url.path, exc.message)
        return error_response(status, code, exc.message, details)

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(list(exc.errors()))
        fields = ", ".join(d["field"] or "body" for d in details)
        return error_response(400, "bad_input", f"Invalid request: {fields}.", details)

    @app.exception_handler(ValidationError)
    async def _model(request: Request, exc: ValidationError) -> JSONResponse:
        details = _validation_details(list(exc.errors()))
        fields = ", ".join(d["field"] or "body" for d in details)
        return error_response(400, "bad_input", f"Invalid request: {fields}.", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.detail else "HTTP error"
        if exc.status_code == 404:
            message = f"No route {request.url.path}; see /api/v1/docs."
        return error_response(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(
            500, "internal", f"Unexpected {type(exc).__name__}; the server log has the trace."
        )
