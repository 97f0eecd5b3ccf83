"""`opscore app`: the Streamlit app.

It listens on 127.0.0.1 unless told otherwise. Every write action in the app needs a login: the
operator's ``OPSCORE_APP_TOKEN``, or on a loopback bind a token generated here and printed on
this terminal. A bind beyond this machine is refused without ``OPSCORE_APP_TOKEN`` and then
asks for the login before showing anything.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from .. import api
from ..errors import InvalidInput
from .common import console, err_console, example


def app_entry() -> Path:
    import app as app_pkg

    return Path(app_pkg.__file__).resolve().parent / "main.py"


def check_bind(host: str, token: str | None) -> bool:
    """Validate the address; return True for a loopback bind. A network bind without a login
    token is refused."""
    if host != host.strip() or any(c.isspace() for c in host) or len(host) > 253:
        raise InvalidInput(
            "--host must be an address or host name without blanks.",
            "Use 127.0.0.1 (default), or the address of one interface with OPSCORE_APP_TOKEN set.",
        )
    loopback = api.app_bind_is_loopback(host)
    if not loopback and not token:
        where = "every interface" if host in ("", "0.0.0.0", "::") else host
        raise InvalidInput(
            f"Refusing to serve the app on {where} without a login: anyone who reaches it "
            "could read every target's activity and delete or restore backups.",
            f"Set a login token first: export {api.APP_TOKEN_ENV}=$(openssl rand -hex 24), or "
            "keep the default --host 127.0.0.1 (and use an SSH tunnel).",
        )
    return loopback


def register(root: typer.Typer) -> None:
    @root.command(
        "app",
        epilog=example(
            "opscore app",
            "OPSCORE_APP_TOKEN=... opscore app --port 8600 --host 10.0.0.5",
        ),
    )
    def run_app(
        port: int = typer.Option(8501, min=1, max=65535, help="Port to listen on."),
        host: str = typer.Option(
            "127.0.0.1",
            help="Address to listen on (default: this machine only; others need "
            f"{api.APP_TOKEN_ENV}).",
        ),
    ) -> None:
        """Start the Streamlit app (Overview, Performance Hub, ASH, ADDM, ...)."""
        token = api.app_token()
        loopback = check_bind(host, token)
        env = dict(os.environ)
        env[api.APP_BIND_ENV] = host
        if not loopback:
            err_console.print(
                f"[bold red]WARNING:[/] the app listens on {host or 'every interface'}:{port}, "
                "reachable from the network. Every page needs the login token; traffic is NOT "
                "encrypted (put it behind a TLS proxy).",
                highlight=False,
            )
        elif not token:
            token = api.new_app_token()
            env[api.APP_TOKEN_ENV] = token
            console.print(
                f"Write actions need a login: token [bold]{token}[/] (valid while this app "
                f"runs; set {api.APP_TOKEN_ENV} to choose your own).",
                highlight=False,
            )
        console.print(f"opscore app on http://{host}:{port}  (Ctrl-C stops it)")
        argv = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(app_entry()),
            "--server.address",
            host,
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--client.toolbarMode",
            "minimal",
        ]
        os.execve(sys.executable, argv, env)
