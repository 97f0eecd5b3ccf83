"""`opscore app`: the Streamlit app."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from .common import console, example


def app_entry() -> Path:
    import app as app_pkg

    return Path(app_pkg.__file__).resolve().parent / "main.py"


def register(root: typer.Typer) -> None:
    @root.command("app", epilog=example("opscore app", "opscore app --port 8600 --host 0.0.0.0"))
    def run_app(
        port: int = typer.Option(8501, help="Port to listen on."),
        host: str = typer.Option("127.0.0.1", help="Address to listen on (default: local only)."),
    ) -> None:
        """Start the Streamlit app (Overview, Performance Hub, ASH, ADDM, ...)."""
        entry = app_entry()
        console.print(f"opscore app on http://{host}:{port}  (Ctrl-C stops it)")
        argv = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(entry),
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
        os.execv(sys.executable, argv)
