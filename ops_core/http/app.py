"""The ASGI app and its server."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware

from .. import __version__
from ..api.registry import REGISTRY
from ..errors import InvalidInput
from . import errors, rest
from .auth import Authenticator
from .examples import add_examples
from .graphql import graphql_router

__all__ = ["create_app", "served_app", "serve", "default_workers", "PREFIX"]

PREFIX = "/api/v1"
log = logging.getLogger("ops_core.http")
#: what `serve` hands its worker processes (they build the app from the environment)
CORS_ENV = "OPSCORE_API_CORS_ORIGINS"
#: threads per worker running the (synchronous) operations (``OPSCORE_API_THREADS``; anyio's
#: default 40: against 16, 1,000 concurrent reads ran at 62.8 and 50.9 vs 42.3 and 44.7 req/s,
#: runs alternated 16-40-40-16 on the same machine, writes undecided); the pool holds one
#: repository connection per thread and a few more for an operation that nests a session
THREADS = int(os.environ.get("OPSCORE_API_THREADS") or 40)
POOL_MAX = THREADS + 8


def default_workers() -> int:
    """Worker processes for `opscore api serve` when not given: one. Measured on 2 shared
    cores (bench/bench_http.py, 1,000 concurrent reads, load ~20): 2 workers 20.8 req/s vs 1
    worker 20.3 req/s, while starting took 151 s vs 54 s and each worker keeps its own result
    cache; more cores than a busy 2 may well differ: `--workers N`."""
    return 1


def served_app() -> FastAPI:
    """The app a server process runs (uvicorn's factory, in every worker): CORS origins from
    the environment, repository connections from a pool, a bounded thread pool."""
    import anyio.to_thread

    from ..api import use_repository_pool

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        await anyio.to_thread.run_sync(lambda: use_repository_pool(min_size=2, max_size=POOL_MAX))
        await anyio.to_thread.run_sync(app.openapi)  # built once, before the first request
        yield

    return create_app(cors_origins=json.loads(os.environ.get(CORS_ENV) or "[]"), lifespan=lifespan)


def create_app(
    *, cors_origins: Sequence[str] = (), token_ttl_s: float = 2.0, lifespan: Any = None
) -> FastAPI:
    """The app: every registry row as a REST route and GraphQL field. CORS is off unless
    ``cors_origins`` lists the origins allowed; ``lifespan``: what a server process does when
    it starts and stops."""
    auth = Authenticator(ttl_s=token_ttl_s)
    app = FastAPI(
        title="opscore",
        version=__version__,
        summary="PostgreSQL operations intelligence: AWR, ASH, ADDM, backup/PITR, alerts.",
        description=(
            "Generated from the operation registry (ops_core.api.REGISTRY): one route per "
            "catalog row. Rows not built yet answer 501 with the catalog's words. "
            "Auth: `Authorization: Bearer <token>` (`opscore api token create`); roles "
            "read < operate (writes) < admin (destructive). Errors: "
            '`{"error": {"code", "message", "details"}}`.'
        ),
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=f"{PREFIX}/redoc",
        lifespan=lifespan,
    )
    errors.install(app)

    def _read(request: Request) -> None:
        auth.allow(auth.check(auth.token_of(request.headers)), "read", "the catalog")

    @app.get(
        f"{PREFIX}/catalog",
        summary="Every catalog row with its status (served / not available / not yet)",
        tags=["catalog"],
        dependencies=[Depends(_read)],
        responses=errors.ERROR_RESPONSES,
    )
    def catalog() -> list[dict[str, Any]]:
        return [op.as_dict() for op in REGISTRY]

    rest.install(app, auth)
    # GraphQL documents itself (introspection, GraphiQL): not part of the OpenAPI document
    app.include_router(graphql_router(auth), prefix=f"{PREFIX}/graphql", include_in_schema=False)
    generated = app.openapi

    def openapi() -> dict[str, Any]:  # the generated document, with generated examples
        if app.openapi_schema is None:
            app.openapi_schema = add_examples(generated())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=list(rest.HTTP_METHODS),
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["X-Total-Count"],
        )
    return app


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
    cors_origins: Sequence[str] = (),
    log_level: str = "info",
    workers: int | None = None,
) -> None:
    """Run the API with uvicorn until interrupted (``workers`` processes; default
    :func:`default_workers`)."""
    import uvicorn

    if bool(certfile) != bool(keyfile):
        raise InvalidInput(
            "TLS needs both a certificate and its key.", "Give --tls-cert and --tls-key together."
        )
    if not _loopback(host) and not certfile:
        log.warning(
            "serving on %s without TLS: tokens cross the network in clear; give --tls-cert "
            "and --tls-key",
            host,
        )
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise InvalidInput(f"workers must be at least 1 (got {workers}).")
    os.environ[CORS_ENV] = json.dumps(list(cors_origins))
    uvicorn.run(
        "ops_core.http.app:served_app" if workers > 1 else served_app(),
        factory=workers > 1,
        workers=workers if workers > 1 else None,
        host=host,
        port=port,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        log_level=log_level,
        ws="websockets-sansio",
    )
