"""`opscore fleet`: every registered target at once, worst first (the app's Fleet page)."""

from __future__ import annotations

import re

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_UNIT_MIN = {"s": 1 / 60, "m": 1.0, "h": 60.0}
COLORS = {"failing": "red", "stale": "yellow", "not sampled": "dim", "sampling": "green"}
#: the Fleet page's columns, in its order (short headers: the table fits 80 columns)
COLUMNS = [
    "target",
    "collector",
    "sample age s",
    "snapshot age s",
    "snapshot",
    "AAS",
    "top wait",
    "share %",
    "alerts",
    "critical",
    "sampler errors",
    "error",
    "tags",
]
#: left out first when the terminal is narrow (lowest priority first)
DROP = [
    "tags",
    "sampler errors",
    "share %",
    "critical",
    "snapshot",
    "top wait",
    "snapshot age s",
    "error",
]


def _window(value: str) -> float:
    """Minutes from ``5m``, ``30s``, ``1h`` or a bare number of minutes."""
    m = _WINDOW.match(value or "")
    if not m:
        raise typer.BadParameter(f"{value!r} is not a window; use e.g. 5m, 30s or 1h.")
    minutes = float(m.group(1)) * _UNIT_MIN[m.group(2) or "m"]
    if not 0 < minutes <= 24 * 60:
        raise typer.BadParameter(f"{value!r}: the window must be over 0 and at most 24h.")
    return minutes


def _num(v: float | None, fmt: str) -> str:
    return "" if v is None else format(v, fmt)


def register(root: typer.Typer) -> None:
    @root.command(
        "fleet",
        epilog=example("opscore fleet", "opscore fleet --window 15m", "opscore fleet --json"),
    )
    def fleet(
        window: str = typer.Option(
            "5m", "--window", "-w", help="DB time over the last: 30s, 5m, 1h (up to 24h)."
        ),
        as_json: bool = JsonOpt,
    ) -> None:
        """Every target, worst first: its ASH collector (sampling, stale, failing, not
        sampled), age of its newest sample and snapshot, DB time as average active sessions
        over the window, top wait class, open alerts, the sampler's errors."""
        minutes = _window(window)
        rows = api.fleet_overview(minutes)
        if as_json:
            print_json([r.as_dict() for r in rows])
            return
        if not rows:
            console.print("No target is registered yet. Add one: opscore target add NAME DSN")
            return
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.collector] = counts.get(r.collector, 0) + 1
        console.print(
            f"{len(rows)} targets: "
            + ", ".join(f"{counts[s]} {s}" for s in COLORS if counts.get(s))
            + f"; {sum(r.open_alerts for r in rows)} open alerts; DB time over {window.strip()}"
        )
        data = [
            [
                r.target,
                f"[{COLORS.get(r.collector, 'white')}]{r.collector}[/]",
                _num(r.last_sample_age_s, ".0f"),
                _num(r.last_snapshot_age_s, ".0f"),
                r.last_snapshot_status or "",
                _num(r.db_time_rate, ".2f"),
                r.top_wait_class or "",
                _num(r.top_wait_class_pct, ".0f"),
                str(r.open_alerts),
                str(r.critical_alerts),
                str(r.sampler_errors),
                r.last_error or "",
                ", ".join(f"{k}={v}" for k, v in sorted(r.tags.items())),
            ]
            for r in rows
        ]
        right = {c: "right" for c in COLUMNS[2:4] + ["AAS", "share %", "alerts", "critical"]}
        right["sampler errors"] = "right"
        t = table(None, COLUMNS, data, justify=right, drop=DROP)
        console.print(t)
        if t.caption and re.search(r"[ ,]error[ ,]", str(t.caption)):
            for r in rows:  # the error column did not fit: the errors below the table
                if r.last_error:
                    console.print(f"{r.target}: {r.last_error}", soft_wrap=False, overflow="fold")
