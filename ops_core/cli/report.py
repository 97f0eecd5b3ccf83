"""`opscore report awr|ash|addm|compare`: render a report to HTML (papermill), or print it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from .. import api
from ..errors import InvalidInput
from .common import console, example, print_json

app = typer.Typer(
    help="AWR, ASH, ADDM and compare-periods reports: HTML under reports/, or text in the "
    "terminal.",
    no_args_is_help=True,
)

FORMATS = ("html", "text", "json")
TargetOpt = typer.Option(None, "--target", "-t", help="Target (default: the only one).")
FormatOpt = typer.Option(
    "html", "--format", "-f", help="html (notebook → HTML file), text (terminal) or json."
)
JsonFlag = typer.Option(False, "--json", help="Same as --format json.")
OutOpt = typer.Option(None, "--output-dir", "-o", help="Reports directory (default: reports/).")
TopOpt = typer.Option(10, "--top", help="Rows per table (text/json).")


def _target(name: str | None) -> str:
    if name:
        return name
    targets = api.list_targets()
    if len(targets) == 1:
        return targets[0].name
    raise InvalidInput(
        "Say which target: "
        + (", ".join(t.name for t in targets) if targets else "none is registered")
        + ".",
        "Pass --target NAME.",
    )


def _format(fmt: str, as_json: bool) -> str:
    fmt = "json" if as_json else (fmt or "html").lower()
    if fmt not in FORMATS:
        raise InvalidInput(f"{fmt!r} is not a report format.", "Use html, text or json.")
    return fmt


def _render(kind: str, target: str | None, out: Path | None, **kw) -> None:
    of = f" of {target}" if target else ""
    with console.status(f"{kind.upper()} report{of}: starting ...") as status:
        rendered = api.render_report(
            kind,
            target,
            reports_dir=out,
            progress=lambda m: status.update(f"{kind.upper()} report{of}: {m} ..."),
            **kw,
        )
    console.print(f"Report: [bold]{rendered.html}[/] ({rendered.seconds:.1f} s)", soft_wrap=True)
    console.print(f"Executed notebook: {rendered.notebook}", soft_wrap=True)


def _addm_model(target: str | None, begin: int | None, end: int | None, analysis: int | None):
    if analysis is None:
        return api.addm_for_range(target, begin, end)
    if begin is not None or end is not None:
        raise InvalidInput(
            "Give an analysis id or a snapshot range, not both.",
            "Use --analysis ID alone, or --begin A --end B.",
        )
    return api.get_addm(analysis)


def _text(kind: str) -> Callable[[Any, int], None]:
    def show(model: Any, top: int) -> None:
        from ..reports import text

        getattr(text, kind)(model, console, top)

    return show


def _addm_text(model: Any, top: int) -> None:
    from .addm import _render as show

    show(model)


@dataclass(frozen=True)
class Kind:
    """How one report kind is built for --format text/json (html goes to api.render_report
    with the same parameters)."""

    busy: str  # what the terminal says while the model is built
    model: Callable[..., Any]  # (target, top, **params) -> a model with as_dict()
    show: Callable[[Any, int], None]  # the terminal rendering


KINDS: dict[str, Kind] = {
    "awr": Kind(
        "Building the AWR report",
        lambda t, top, begin, end: api.awr_report(t, begin, end, top=top),
        _text("awr"),
    ),
    "ash": Kind(
        "Building the ASH report",
        lambda t, top, since, begin, end, **flt: api.ash_report(
            t, begin, end, since=since, top=top, **flt
        ),
        _text("ash"),
    ),
    "addm": Kind(
        "Finding the ADDM analysis",
        lambda t, top, begin, end, analysis: _addm_model(t, begin, end, analysis),
        _addm_text,
    ),
    "compare": Kind(
        "Building the comparison",
        lambda t, top, begin, end, begin2, end2, baseline: api.compare_report(
            t, begin, end, begin2, end2, baseline, top=top
        ),
        _text("compare"),
    ),
}


def _report(
    kind: str,
    target: str | None,
    fmt: str,
    as_json: bool,
    out: Path | None,
    top: int,
    **params: Any,
) -> None:
    """The one path of every report command: HTML through the notebook, or the model as JSON
    or as terminal text. A stored analysis (``analysis``) needs no target."""
    fmt = _format(fmt, as_json)
    target = target if params.get("analysis") is not None else _target(target)
    if fmt == "html":
        _render(kind, target, out, **params)
        return
    k = KINDS[kind]
    with console.status(f"{k.busy} ..."):
        model = k.model(target, top, **params)
    if fmt == "json":
        print_json(model.as_dict())
    else:
        k.show(model, top)


@app.command(
    epilog=example(
        "opscore report awr --target prod",
        "opscore report awr --target prod --begin 120 --end 124",
        "opscore report awr -t prod --format text",
    )
)
def awr(
    target: str = TargetOpt,
    begin: int = typer.Option(None, "--begin", "-b", help="Begin snapshot id."),
    end: int = typer.Option(None, "--end", "-e", help="End snapshot id."),
    top: int = typer.Option(10, "--top", help="Statements per top-SQL table (text/json)."),
    fmt: str = FormatOpt,
    as_json: bool = JsonFlag,
    out: Path = OutOpt,
) -> None:
    """AWR report between two snapshots (default: the last two)."""
    _report("awr", target, fmt, as_json, out, top, begin=begin, end=end)


@app.command(
    epilog=example(
        "opscore report ash --target prod --since 1h",
        "opscore report ash -t prod --begin '2026-11-25 14:00' --end '2026-11-25 15:00'",
        "opscore report ash -t prod --since 30m --wait-class Lock --format text",
    )
)
def ash(
    target: str = TargetOpt,
    since: str = typer.Option(None, "--since", "-s", help="Up to now: 30s, 10m, 1h, 1d."),
    begin: str = typer.Option(None, "--begin", "-b", help="Begin (ISO 8601, UTC if no zone)."),
    end: str = typer.Option(None, "--end", "-e", help="End (default: now)."),
    wait_class: str = typer.Option(None, "--wait-class", help="Only this wait class."),
    queryid: int = typer.Option(None, "--queryid", help="Only this query id."),
    user: str = typer.Option(None, "--user", help="Only this user."),
    database: str = typer.Option(None, "--database", help="Only this database."),
    application: str = typer.Option(None, "--application", help="Only this application."),
    top: int = TopOpt,
    fmt: str = FormatOpt,
    as_json: bool = JsonFlag,
    out: Path = OutOpt,
) -> None:
    """ASH report for a time range (default: the last hour), optionally filtered."""
    if since is None and begin is None:
        since = "1h"
    flt = {
        "wait_class": wait_class,
        "queryid": queryid,
        "user": user,
        "database": database,
        "application": application,
    }
    _report("ash", target, fmt, as_json, out, top, since=since, begin=begin, end=end, **flt)


@app.command(
    epilog=example(
        "opscore report addm --target prod                       # the last interval",
        "opscore report addm --target prod --begin 120 --end 124",
        "opscore report addm --analysis 7",
        "opscore report addm --analysis 7 --format text",
    )
)
def addm(
    target: str = typer.Option(None, "--target", "-t", help="Target (default: the only one)."),
    begin: int = typer.Option(None, "--begin", "-b", help="Begin snapshot id."),
    end: int = typer.Option(None, "--end", "-e", help="End snapshot id."),
    analysis: int = typer.Option(
        None, "--analysis", "-a", help="A stored ADDM analysis (instead of a range)."
    ),
    fmt: str = FormatOpt,
    as_json: bool = JsonFlag,
    out: Path = OutOpt,
) -> None:
    """ADDM report: findings ranked by share of DB time, the DB time breakdown, evidence and
    recommendations. A range uses its stored analysis, or runs ADDM when there is none."""
    _report("addm", target, fmt, as_json, out, 0, begin=begin, end=end, analysis=analysis)


@app.command(
    epilog=example(
        "opscore report compare -t prod --begin 200 --end 204 --begin2 100 --end2 104",
        "opscore report compare -t prod --begin 200 --end 204 --baseline monday",
    )
)
def compare(
    target: str = TargetOpt,
    begin: int = typer.Option(..., "--begin", "-b", help="Period 1 (studied): begin snapshot."),
    end: int = typer.Option(..., "--end", "-e", help="Period 1: end snapshot."),
    begin2: int = typer.Option(None, "--begin2", help="Period 2 (reference): begin snapshot."),
    end2: int = typer.Option(None, "--end2", help="Period 2: end snapshot."),
    baseline: str = typer.Option(None, "--baseline", help="A baseline as period 2."),
    top: int = TopOpt,
    fmt: str = FormatOpt,
    as_json: bool = JsonFlag,
    out: Path = OutOpt,
) -> None:
    """Compare two periods (or a period against a baseline), differences ranked."""
    _report(
        "compare", target, fmt, as_json, out, top, begin=begin, end=end, begin2=begin2,
        end2=end2, baseline=baseline,
    )  # fmt: skip
