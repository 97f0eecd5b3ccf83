"""The `opscore` command's entry point: Ctrl-C while the CLI is still importing (pandas,
Prefect, ... take seconds on a busy machine) ends quietly with 130, not a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        sys.exit(130)
    cli_main()
