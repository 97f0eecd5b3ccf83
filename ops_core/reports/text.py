"""Compact terminal versions of the reports (rich tables), for `opscore report ... --format text`.

The same models as the HTML notebooks; only the most useful sections, SQL text shortened.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from ..analysis.ash_report import AshReport
from ..analysis.awr import TOP_SQL, AwrReport, interval_label
from ..analysis.compare_report import CompareReport
from ..model.formats import dur, fmt, short
from . import spec
from .display import Col, metric_in_mb


def _table(title: str, df: pd.DataFrame | None, cols: Sequence[Col], limit: int = 10) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold cyan", title_style="bold")
    use = [c for c in cols if df is not None and c[0] in df.columns]
    for _, head, kind in use:
        if kind == "query":  # the SQL takes what is left of the width, on one line
            t.add_column(head, no_wrap=True, overflow="ellipsis", max_width=40)
        else:
            t.add_column(
                head,
                justify="left" if kind in ("text", "time") else "right",
                no_wrap=kind not in ("text",),
                min_width=min(len(head), 12),
            )
    if df is None or df.empty:
        t.add_row(*(["(none)"] + [""] * (len(use) - 1)) if use else ["(none)"])
        return t
    for rec in df.head(limit).to_dict("records"):
        t.add_row(
            *[
                short(rec.get(name), 40) if kind == "query" else fmt(rec.get(name), kind)
                for name, _, kind in use
            ]
        )
    return t


def _summary(lines: Sequence[str], notes: Sequence[str]) -> Panel:
    body = "\n".join(f"• {x}" for x in lines)
    if notes:
        body += "\n" + "\n".join(f"[yellow]! {n}[/]" for n in notes)
    return Panel(body, title="What stands out", title_align="left", border_style="blue")


SHARE = spec.text(spec.SHARE)
SHARE_FIELDS = [c.field for c in spec.SHARE]


def _addm(r: AwrReport, console: Console) -> None:
    a = r.addm
    if a is None:
        if r.addm_note:
            console.print(f"[yellow]ADDM: {r.addm_note}[/]")
        return
    t = Table(
        title=f"ADDM findings (analysis {a.analysis_id}, DB time {dur(a.db_time_s)} from "
        f"{'ASH' if a.db_time_source == 'ash' else 'pg_stat_statements: no ASH samples'})",
        title_justify="left",
        header_style="bold cyan",
        title_style="bold",
    )
    t.add_column("#", justify="right")
    t.add_column("impact", justify="right")
    t.add_column("finding")
    t.add_column("first action")
    for f in a.findings:
        act = f.recommendations[0].action if f.recommendations else ""
        t.add_row(str(f.rank), f"{f.score:.1f} %", f.title, short(act, 90))
    console.print(t)


def awr(r: AwrReport, console: Console, top: int = 10) -> None:
    h = r.header
    console.print(
        f"[bold]AWR report[/] {h['target']} · PostgreSQL {h['version']} · snapshots "
        f"{h['begin_snapshot_id']} → {h['end_snapshot_id']} · "
        f"{interval_label(h['begin_at'], h['end_at'])} ({dur(h['elapsed_s'])})\n"
        f"DB time {dur(h['db_time_s'])} ({h.get('db_time_source', 'ASH')}) · cross-checks: "
        f"sessions active {dur(h.get('active_time_s') or 0)}, SQL time {dur(h['sql_time_s'])}"
        + (f" · background (not DB time) {dur(h['background_s'])}" if h.get("background_s") else "")
        + f" · {h['transactions']:,.0f} transactions"
    )
    if h.get("ash_vs_active"):
        console.print(f"[dim]{h['ash_vs_active']}[/]", highlight=False)
    console.print(_summary(r.highlights, r.notes))
    _addm(r, console)
    lp = r.load_profile.copy()
    mb = lp["unit"] == "bytes"
    lp.loc[mb, ["total", "per_second", "per_transaction"]] = (
        lp.loc[mb, ["total", "per_second", "per_transaction"]].astype("float64") / 1048576
    )
    lp.loc[mb, "unit"] = "MB"
    lp["metric"] = [
        f"{m} ({u})" if u not in ("count", "blocks") else m
        for m, u in zip(lp.metric, lp.unit, strict=True)
    ]
    console.print(
        _table(
            "Load profile",
            lp,
            spec.text(spec.LOAD_PROFILE),
            limit=30,
        )
    )
    console.print(
        _table(
            "Efficiency", r.efficiency, spec.text(spec.pick(spec.EFFICIENCY, "metric", "value_pct"))
        )
    )
    console.print(
        _table(
            "DB time by wait class (ASH)",
            r.ash_time_model,
            spec.text(spec.AWR_CLASSES),
        )
    )
    console.print(
        _table(
            "Top wait events (ASH)",
            r.top_waits,
            spec.text(spec.AWR_WAITS),
        )
    )
    for key, title in spec.TOP_SQL_TEXT.items():
        cols = spec.text(spec.top_sql_text_columns(TOP_SQL[key][0]))
        console.print(_table(f"Top SQL {title}", r.top_sql[key], cols, limit=top))
    if r.background is not None and not r.background.empty:
        console.print(
            _table(
                "Background activity (ASH, not DB time)",
                r.background,
                spec.text(
                    spec.pick(spec.BACKGROUND, "backend_type", "wait_class", "event", "time_s")
                ),
                limit=top,
            )
        )
    if r.io_note:
        console.print(f"[blue]{r.io_note}[/]")
    _host(r, console)
    if not r.settings_changes.empty:
        console.print(
            _table(
                "Settings changed",
                r.settings_changes,
                spec.text(spec.pick(spec.SETTINGS_CHANGED, "name", "before", "after")),
            )
        )


def _host(r: AwrReport, console: Console) -> None:
    """Host / OS figures (same-host targets), or why there are none."""
    if r.host is None or r.host.empty:
        if r.host_note:
            console.print(f"[blue]{r.host_note}[/]")
        return
    df = metric_in_mb(r.host)
    console.print(_table("Host / OS", df, spec.text(spec.METRIC_VALUE), limit=30))


def ash(r: AshReport, console: Console, top: int = 10) -> None:
    h = r.header
    console.print(
        f"[bold]ASH report[/] {h['target']} · {h['begin']:%Y-%m-%d %H:%M:%S} → "
        f"{h['end']:%Y-%m-%d %H:%M:%S} UTC ({dur(h['elapsed_s'])}) · filters: {h['filters']}\n"
        f"{h['samples']:,} samples · DB time {dur(h['db_time_s'])} · "
        f"{h['avg_active_sessions']:,.2f} average active sessions"
        + (f" · background (not DB time) {dur(h['background_s'])}" if h.get("background_s") else "")
    )
    console.print(_summary(r.highlights, r.notes))
    console.print(_table("Wait classes", r.wait_classes, spec.text(spec.ASH_CLASSES)))
    console.print(
        _table(
            "Top events",
            r.top_events,
            spec.text(spec.ASH_EVENTS),
            top,
        )
    )
    console.print(
        _table(
            "Top SQL",
            r.top_sql,
            spec.text(spec.pick(spec.ASH_SQL, "query_id", *SHARE_FIELDS, "query")),
            top,
        )
    )
    console.print(
        _table(
            "Top sessions",
            r.top_sessions,
            spec.text(
                spec.pick(spec.ASH_SESSIONS, "pid", "usename", "application_name", *SHARE_FIELDS)
            ),
            top,
        )
    )
    if r.background is not None and not r.background.empty:
        console.print(
            _table(
                "Background activity (not DB time)",
                r.background,
                spec.text(
                    spec.pick(spec.BACKGROUND, "backend_type", "wait_class", "event", "time_s")
                ),
                top,
            )
        )
    b = r.blocking
    if b is not None and not b.empty:
        b = b.copy()
        b["waiters"] = b["waiters"].map(lambda w: ", ".join(map(str, w)))
    console.print(
        _table(
            "Blocking chains",
            b,
            spec.text(
                spec.pick(
                    spec.ASH_BLOCKING,
                    "root_pid",
                    "root_state",
                    "duration_s",
                    "waiters",
                    "blocked_time_s",
                    "root_query",
                )
            ),
            top,
        )
    )


def compare(r: CompareReport, console: Console, top: int = 10) -> None:
    p1, p2 = r.period1, r.period2
    console.print(
        f"[bold]Compare periods[/] {r.target}: period 1 snapshots {p1['begin_snapshot_id']} → "
        f"{p1['end_snapshot_id']} vs period 2 "
        + (f"baseline {p2['label']} " if p2.get("label") else "")
        + f"{p2['begin_snapshot_id']} → {p2['end_snapshot_id']}"
    )
    console.print(_summary(r.highlights, r.notes))
    console.print(
        Group(
            _table(
                "Differences that matter",
                r.differences,
                spec.text(
                    spec.pick(
                        spec.COMPARE_DIFFERENCES, "kind", "subject", "period1", "period2", "change"
                    )
                ),
                top,
            ),
            _table(
                "Load per second",
                r.load_profile,
                spec.text(spec.pick(spec.COMPARE_LOAD, *spec.COMPARE_LOAD_TEXT)),
                30,
            ),
        )
    )


__all__ = ["awr", "ash", "compare"]
