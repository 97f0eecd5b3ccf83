"""Small helpers shared by tests (no fixtures here)."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 300):
    """Run the real `opscore` CLI in a subprocess with the test environment."""
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ops_core", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
