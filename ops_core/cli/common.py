"""Shared CLI plumbing: consoles, JSON output, tables."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ..model.serialize import to_jsonable


def _width() -> int | None:
    # piped or captured output (less, a log file, CI) gets a wide page instead of rich's 80
    # columns, so tables of figures are not folded into unreadable stacks
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return 180


console = Console(width=_width())
err_console = Console(stderr=True)

JsonOpt = typer.Option(False, "--json", help="Machine-readable JSON output (stable keys).")


def _default(o: Any) -> Any:
    if isinstance(o, datetime | date):
        return o.isoformat()
    if isinstance(o, Decimal):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "as_dict"):
        return o.as_dict()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_json(data: Any) -> None:
    """JSON through the one serializer the registry's response models use (ops_core.model)."""
    typer.echo(json.dumps(to_jsonable(data), default=_default, indent=2, sort_keys=False))


FREE_TEXT = {
    "query",
    "title",
    "finding",
    "what to do",
    "error",
    "hint",
    "first action",
    "action",
    "value",
    "description",
    "detail",
    "notes",
    "statement",
    "text",
    "connects as",
}


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    justify: dict[str, str] | None = None,
) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold cyan")
    for c in columns:
        # free text takes the room that is left; figures keep at least their header's width
        text = c.lower() in FREE_TEXT
        t.add_column(
            c,
            justify=(justify or {}).get(c, "left"),
            overflow="fold",
            ratio=1 if text else None,
            min_width=None if text else min(len(c), 12),
        )
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    return t


STATUS_STYLE = {
    "ok": "[green]ok[/]",
    "warn": "[yellow]warn[/]",
    "missing": "[red]missing[/]",
    "info": "[blue]info[/]",
    "failed": "[red]failed[/]",
}


def example(*lines: str) -> str:
    """Epilog for --help: examples, one per line."""
    return "Examples:\n\n" + "\n\n".join(f"  $ {ln}" for ln in lines)
