"""`opscore api`: the HTTP API (REST + GraphQL, generated from the operation registry) and its
tokens (create, list, revoke). Not named ``api.py``: importing ``ops_core.cli.api`` would set
the package attribute ``api`` and shadow ``ops_core.api`` in ``ops_core/cli/__init__.py``."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(
    help="The HTTP API: `opscore api serve` (REST under /api/v1, GraphQL at /api/v1/graphql) "
    "and its tokens."
)
token_app = typer.Typer(help="API tokens (only a hash is stored; the token is shown once).")
app.add_typer(token_app, name="token")


@app.command(
    "serve",
    epilog=example(
        "opscore api serve",
        "opscore api serve --port 9000 --cors https://grafana.example.com",
        "opscore api serve --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem",
    ),
)
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8080, "--port", "-p", min=1, max=65535, help="TCP port."),
    tls_cert: str | None = typer.Option(None, "--tls-cert", help="TLS certificate (PEM)."),
    tls_key: str | None = typer.Option(None, "--tls-key", help="TLS private key (PEM)."),
    cors: list[str] | None = typer.Option(
        None, "--cors", help="An origin allowed by CORS (repeat; off by default)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", "-w", min=1, max=64, help="Server processes (default 1)."
    ),
) -> None:
    """Serve the HTTP API with uvicorn until interrupted (docs at /api/v1/docs)."""
    from ..http import serve as run

    scheme = "https" if tls_cert else "http"
    console.print(f"opscore API on {scheme}://{host}:{port}/api/v1 (docs: /api/v1/docs)")
    run(
        host,
        port,
        certfile=tls_cert,
        keyfile=tls_key,
        cors_origins=cors or (),
        workers=workers,
    )


@token_app.command(
    "create",
    epilog=example(
        "opscore api token create grafana --role read", "opscore api token create ci --role operate"
    ),
)
def token_create(
    name: str = typer.Argument(..., help="A name for the token (who or what uses it)."),
    role: str = typer.Option("read", "--role", help="read, operate (writes) or admin."),
    as_json: bool = JsonOpt,
) -> None:
    """Create a token: printed once, only its hash is stored."""
    made = api.create_api_token(name, role)
    if as_json:
        print_json(made.as_dict())
        return
    console.print(f"Token {made.token.name!r} ({made.token.role}); shown once, keep it safe:")
    typer.echo(made.secret)


@token_app.command(
    "list", epilog=example("opscore api token list", "opscore api token list --json")
)
def token_list(as_json: bool = JsonOpt) -> None:
    """Tokens with their role, prefix and last use (never the token itself)."""
    tokens = api.list_api_tokens()
    if as_json:
        print_json([t.as_dict() for t in tokens])
        return
    console.print(
        table(
            None,
            ["name", "role", "prefix", "created", "last used", "revoked"],
            [
                [
                    t.name,
                    t.role,
                    t.prefix + "…",
                    t.created_at,
                    t.last_used_at or "",
                    t.revoked_at or "",
                ]
                for t in tokens
            ],
        )
    )


@token_app.command("revoke", epilog=example("opscore api token revoke grafana"))
def token_revoke(
    name: str = typer.Argument(..., help="The token's name."), as_json: bool = JsonOpt
) -> None:
    """Revoke a token (it stops working within seconds; the record stays)."""
    t = api.revoke_api_token(name)
    if as_json:
        print_json(t.as_dict())
        return
    console.print(f"Token {t.name!r} revoked at {t.revoked_at}.")
