"""The HTTP API: REST (FastAPI, OpenAPI at /api/v1/openapi.json) and GraphQL (strawberry,
subscriptions over WebSocket) generated from the operation registry; no logic of its own.
``create_app()`` builds the ASGI app; ``serve()`` runs it with uvicorn (127.0.0.1 by default,
TLS when given a certificate and key)."""

from __future__ import annotations

from .app import create_app, serve

__all__ = ["create_app", "serve"]
