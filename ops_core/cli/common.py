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
from typer.core import TyperGroup
from typer.exceptions import TyperException

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
    "sql_text",
    "text",
    "connects as",
}


#: free text shown on one line, cut with an ellipsis (a statement's text in a table)
ONE_LINE = {"query", "statement", "sql_text"}
#: the narrowest a free-text column gets before lower-priority columns are dropped
TEXT_MIN = 16


def _cell_width(v: str) -> int:
    from rich.text import Text

    return max((Text.from_markup(ln).cell_len for ln in v.splitlines()), default=0)


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    justify: dict[str, str] | None = None,
    drop: Sequence[str] = (),
    width: int | None = None,
) -> Table:
    """A table whose figures and identifiers (every column not in FREE_TEXT) never wrap: free
    text wraps at words into the room left; when even that does not fit the terminal, the
    columns named in ``drop`` are left out, first named first (lowest priority first), and a
    caption says which."""
    cols = list(columns)
    data = [["" if v is None else str(v) for v in r] for r in rows]
    width = width or console.width
    keep = list(range(len(cols)))
    # prose wraps at words: the named free-text columns, and any column holding long text with
    # spaces (a log message, a reason) — never a figure or an identifier
    text_cols = {
        i
        for i, c in enumerate(cols)
        if c.lower() in FREE_TEXT or any(len(r[i]) > 40 and " " in r[i].strip() for r in data)
    }

    def need(idx: list[int]) -> int:
        total = 1 + 3 * len(idx)
        for i in idx:
            if i in text_cols:
                total += TEXT_MIN
            else:
                total += max([len(cols[i])] + [_cell_width(r[i]) for r in data])
        return total

    dropped: list[str] = []
    for name in drop:
        if need(keep) <= width:
            break
        if name in cols and cols.index(name) in keep:
            keep.remove(cols.index(name))
            dropped.append(name)
    # still too wide (a view with twenty columns, a caller without a drop list): leave out
    # columns from the right rather than let rich squeeze figures and identifiers into "12…"
    # or a zero-width column; the first column (the row's identity) always stays
    while need(keep) > width and len(keep) > 1:
        dropped.append(cols[keep.pop()])
    caption = f"(narrow terminal: {', '.join(dropped)} not shown)" if dropped else None
    t = Table(
        title=title,
        title_justify="left",
        header_style="bold cyan",
        caption=caption,
        caption_justify="left",
    )
    # SQL in a table is a one-line summary (the whole text: --json, the reports) in the room
    # the other columns leave; prose wraps at words
    one_line = [i for i in keep if cols[i].lower() in ONE_LINE]
    room = width - need(keep) + TEXT_MIN * len(one_line)
    each = max(TEXT_MIN, room // len(one_line)) if one_line else 0
    for i in keep:
        c = cols[i]
        text = i in text_cols
        if i in one_line:
            longest = max([len(c)] + [_cell_width(r[i]) for r in data])
            t.add_column(c, overflow="ellipsis", no_wrap=True, max_width=min(each, longest))
            continue
        t.add_column(
            c,
            justify=(justify or {}).get(c, "left"),
            overflow="fold" if text else "ellipsis",
            no_wrap=not text,
            min_width=TEXT_MIN if text else None,
        )
    for r in data:
        # a one-line column shows a multi-line statement on one line (whitespace collapsed)
        t.add_row(*[" ".join(r[i].split()) if i in one_line else r[i] for i in keep])
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


# ------------------------------------------------------------------------------ errors
def _first_line(text: str) -> str:
    from ..collectors.scrub import scrub_message

    line = next((ln for ln in str(text).strip().splitlines() if ln.strip()), "")
    return scrub_message(line) or ""


def _db_hint(exc: Exception) -> str:
    import psycopg

    sqlstate = getattr(exc, "sqlstate", None) or ""
    if isinstance(exc, psycopg.OperationalError) and not sqlstate:
        return (
            "The connection was lost or refused: check the server is up (`opscore db status` "
            "for the repository, `opscore target check NAME` for a target) and retry."
        )
    if sqlstate == "57014":
        return "A statement timed out: retry later, or raise OPSCORE_STATEMENT_TIMEOUT_MS."
    if sqlstate == "42501":
        return "The role lacks a privilege: the README's set-up SQL lists the grants opscore needs."
    if sqlstate in ("42P01", "42883", "3F000"):
        return "The repository schema looks incomplete: run `opscore init`."
    if sqlstate.startswith("22"):
        return "A value was out of range for the database: check the numbers and times given."
    if sqlstate.startswith("08") or sqlstate.startswith("57P"):
        return "The server went away or is shutting down: check it is up and retry."
    if sqlstate.startswith("53"):
        return "The server is out of a resource (disk, memory, connections): check it and retry."
    return (
        "Check the repository (`opscore db status`) and the target (`opscore target check "
        "NAME`); retry, and report it with the command if it persists."
    )


#: set from the command line before a command runs: with --json (or --format json) errors are
#: printed as JSON on stdout, where the result would have been
_json_errors = False


def wants_json(args: Sequence[str]) -> bool:
    """Whether a command line asks for JSON output (--json, --format json, -f json)."""
    args = list(args)
    if "--json" in args or "--format=json" in args:
        return True
    return any(
        a in ("--format", "-f") and b.lower() == "json"
        for a, b in zip(args, args[1:], strict=False)
    )


def set_json_errors(on: bool) -> None:
    global _json_errors
    _json_errors = on


def _code_name(exc: BaseException) -> str:
    """InvalidInput -> invalid_input: the error's kind, stable for scripts."""
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def print_json_error(code: str, message: str, hint: str | None) -> None:
    """``{"error": {"code", "message", "hint"}}`` on stdout (scrubbed like the text form)."""
    from ..collectors.scrub import scrub_message

    err = {"code": code, "message": scrub_message(message) or "", "hint": scrub_message(hint)}
    typer.echo(json.dumps({"error": err}, indent=2))


def report_error(exc: BaseException) -> int:
    """Print an error as `Error:` + `What to do:` (never a traceback, never a secret), or as
    JSON when the command line asked for JSON, and return the exit code."""
    import psycopg

    from ..errors import OpsCoreError

    if isinstance(exc, KeyboardInterrupt):
        if _json_errors:
            print_json_error("interrupted", "Interrupted.", None)
        else:
            err_console.print("Interrupted.")
        return 130
    if isinstance(exc, BrokenPipeError):
        # the reader went away (`opscore ... | head`): stop quietly, as Unix tools do; stdout is
        # pointed at /dev/null so the interpreter's final flush does not fail again
        import os as _os  # local names: report_error reads the module's `os` further down
        import sys as _sys

        try:
            _os.dup2(_os.open(_os.devnull, _os.O_WRONLY), _sys.stdout.fileno())
        except OSError:
            pass
        return 141
    kind = _code_name(exc)
    if isinstance(exc, OpsCoreError):
        message, hint, code = exc.message, exc.hint, exc.exit_code
    elif isinstance(exc, psycopg.Error):
        message, hint, code = f"Database error: {_first_line(str(exc))}", _db_hint(exc), 1
        kind = "database_error"
    elif isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        message = f"{exc.strerror or type(exc).__name__}{where}."
        hint = "Check the path exists and is writable by this user, and that the disk has room."
        code, kind = 1, "os_error"
    else:
        message = f"Unexpected error: {type(exc).__name__}: {_first_line(str(exc))}"
        hint = "Run again with OPSCORE_DEBUG=1 for the traceback, and report it."
        code, kind = 70, "unexpected_error"
    from rich.markup import escape

    from ..collectors.scrub import scrub_message

    if _json_errors:
        print_json_error(kind, message, hint)
        if os.environ.get("OPSCORE_DEBUG") and not isinstance(exc, OpsCoreError):
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        return code
    err_console.print(
        f"[bold red]Error:[/] {escape(scrub_message(message) or '')}", highlight=False
    )
    if hint:
        err_console.print(
            f"[yellow]What to do:[/] {escape(scrub_message(hint) or '')}", highlight=False
        )
    if os.environ.get("OPSCORE_DEBUG") and not isinstance(exc, OpsCoreError):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    return code


class OpsCoreGroup(TyperGroup):
    """The root command group: every error of every command goes through :func:`report_error`
    (in the real CLI and in tests that invoke the app in-process)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        set_json_errors(wants_json(args))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TyperException as exc:
            # usage errors echo the value given (a DSN pasted into --begin would show its
            # password): scrubbed like every other message
            from ..collectors.scrub import scrub_message

            if isinstance(getattr(exc, "message", None), str):
                exc.message = scrub_message(exc.message) or ""
            usage = type(exc).__name__ in ("UsageError", "BadParameter", "MissingParameter")
            usage = usage or "UsageError" in [k.__name__ for k in type(exc).__mro__]
            if _json_errors and usage and hasattr(exc, "format_message"):
                sub = getattr(exc, "ctx", None)
                hint = f"See `{sub.command_path} --help`." if sub is not None else None
                print_json_error("usage_error", exc.format_message(), hint)
                raise typer.Exit(getattr(exc, "exit_code", 2)) from None
            raise
        except (typer.Exit, typer.Abort):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            raise typer.Exit(report_error(exc)) from None
