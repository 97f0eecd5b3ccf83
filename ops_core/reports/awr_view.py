"""AWR report sections as notebook output (HTML tables and plotly charts) from an AwrReport."""

from __future__ import annotations

import html

from ..analysis.awr import TOP_SQL, AwrReport, interval_label
from . import spec
from .display import (
    activity_chart,  # noqa: F401  (re-exported for notebooks)
    class_bar,
    dur,
    kv_html,
    metric_in_mb,
    note,
    show_fig,
    show_html,
    show_table,
    sql_bar,
    summary_box,
)


def header(r: AwrReport) -> None:
    h = r.header
    pairs = [
        ("Target", h["target"]),
        ("Server", f"PostgreSQL {h['version']} — {h['host'] or ''}"),
        (
            "Interval",
            f"snapshots {h['begin_snapshot_id']} → {h['end_snapshot_id']}: "
            + interval_label(h["begin_at"], h["end_at"]),
        ),
        ("Elapsed", dur(h["elapsed_s"])),
        (
            "DB time",
            f"{dur(h['db_time_s'])} ({h.get('db_time_source', 'ASH')}: foreground sessions on "
            "CPU or in non-idle waits)",
        ),
        (
            "cross-check: sessions active",
            dur(h.get("active_time_s") or 0.0)
            + (f" — {h['ash_vs_active']}" if h.get("ash_vs_active") else ""),
        ),
        ("cross-check: SQL time", f"{dur(h['sql_time_s'])} (pg_stat_statements)"),
        (
            "Background activity (not DB time)",
            dur(h["background_s"]) if h.get("background_s") is not None else "no ASH samples",
        ),
        ("Transactions", f"{h['transactions']:,.0f}"),
        ("Statements with activity", f"{h['statements']:,}"),
    ]
    sub = (
        f"{h['target']} · PostgreSQL {h['version']} · snapshots {h['begin_snapshot_id']} → "
        f"{h['end_snapshot_id']} · {interval_label(h['begin_at'], h['end_at'])} "
        f"({dur(h['elapsed_s'])})"
    )
    show_html(
        f'<p class="opscore-sub">{html.escape(sub)}</p>'
        + summary_box("What stands out", r.highlights)
        + kv_html(pairs)
        + "".join(note(n, "warn") for n in r.notes)
        + toc_html(spec.AWR_SECTIONS)
    )


def toc_html(sections: list[spec.Section]) -> str:
    """The table of contents: one link per section heading (the anchors the notebook builder
    puts before each heading)."""
    items = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    return f'<nav class="opscore-toc"><h3>Contents</h3><ol>{items}</ol></nav>'


def host(r: AwrReport) -> None:
    """Host CPU, load, memory and disk of the interval (same-host targets only)."""
    if r.host is None or r.host.empty:
        show_html(note(r.host_note or "Host figures are not available.", "info"))
        return
    show_table(metric_in_mb(r.host), spec.html(spec.METRIC_VALUE))
    if r.host_note:
        show_html(note(r.host_note, "info"))


def addm(r: AwrReport) -> None:
    """ADDM's findings for the report's range, ranked by share of DB time (up front, as in
    Oracle's AWR)."""
    from . import addm_view

    addm_view.awr_section(r.addm, r.addm_note, r.target)


def load_profile(r: AwrReport) -> None:
    df = r.load_profile.copy()
    out = []
    for rec in df.to_dict("records"):
        unit = rec["unit"]
        if unit == "bytes":
            for k in ("total", "per_second", "per_transaction"):
                rec[k] = None if rec[k] is None else rec[k] / 1048576
            unit = "MB"
        rec["metric"] = f"{rec['metric']} ({unit})" if unit != "count" else rec["metric"]
        out.append(rec)
    import pandas as pd

    show_table(pd.DataFrame(out), spec.html(spec.LOAD_PROFILE))


def efficiency(r: AwrReport) -> None:
    show_table(r.efficiency, spec.html(spec.EFFICIENCY))


def time_model(r: AwrReport) -> None:
    show_table(r.time_model, spec.html(spec.TIME_MODEL))
    c = r.db_time_check
    if c is not None:
        show_html("<h4>DB time cross-check: ASH against pg_stat_database.active_time</h4>")
        show_html(note(c.summary, "info"))
        show_table(c.frame(), spec.html(spec.DB_TIME_CHECK))
        if not c.sessions_checked:
            show_html(note("ASH sessions are not read for ranges over 6 h.", "info"))
    if r.ash_time_model is None or r.ash_time_model.empty:
        show_html(
            note(
                "DB time by wait class: no ASH samples exist in this interval "
                "(run the ASH sampler, `opscore ash run`, to get CPU vs wait classes).",
                "warn",
            )
        )
        return
    show_fig(class_bar(r.ash_time_model, "DB time by wait class (ASH samples)"))
    show_table(r.ash_time_model, spec.html(spec.AWR_CLASSES))


def background(r: AwrReport) -> None:
    """Background processes (checkpointer, autovacuum, WAL writer...): not DB time."""
    show_table(
        r.background,
        spec.html(spec.BACKGROUND),
        empty="No background process was sampled working in this interval (or no ASH samples).",
    )


def top_waits(r: AwrReport) -> None:
    show_table(
        r.top_waits,
        spec.html(spec.AWR_WAITS),
        empty="No ASH samples exist in this interval: wait events are not available.",
    )


def top_sql(r: AwrReport, key: str) -> None:
    col, title, unit = TOP_SQL[key]
    df = r.top_sql[key]
    show_html(f'<h3 id="top-sql-{key}">{html.escape(title)}</h3>')
    if key == "elapsed" and not df.empty:
        d = df.copy()
        d["elapsed_s"] = d["total_exec_time"] / 1000.0
        show_fig(sql_bar(d, "elapsed_s", "s", "Top SQL by elapsed time"))
    show_table(
        df,
        spec.html(spec.top_sql_columns(col)),
        empty=f"No statement had {unit} in this interval.",
        highlight=col,
    )


def top_sql_all(r: AwrReport) -> None:
    """Every top-SQL ranking, with links to each."""
    links = " · ".join(
        f'<a href="#top-sql-{k}">{html.escape(title.removeprefix("SQL ordered by "))}</a>'
        for k, (_, title, _) in TOP_SQL.items()
    )
    show_html(f'<p class="opscore-sub">SQL ordered by: {links}</p>')
    for key in TOP_SQL:
        top_sql(r, key)


def io(r: AwrReport) -> None:
    if r.io is None:
        show_html(note(r.io_note or "pg_stat_io not available.", "info"))
    else:
        show_table(
            r.io.head(30),
            spec.html(spec.IO),
            empty="No I/O recorded in pg_stat_io for this interval.",
        )


def objects_io(r: AwrReport) -> None:
    show_html("<h4>Tables</h4>")
    show_table(
        r.tables,
        spec.html(spec.TABLE_IO),
        empty="No table activity recorded.",
    )
    show_html("<h4>Indexes</h4>")
    show_table(
        r.indexes,
        spec.html(spec.INDEX_IO),
        empty="No index activity recorded.",
    )


def table_activity(r: AwrReport) -> None:
    show_table(
        r.tables,
        spec.html(spec.TABLE_ACTIVITY),
        empty="No table activity recorded.",
    )


def checkpoints_wal(r: AwrReport) -> None:
    cols = spec.html(spec.METRIC_VALUE)
    show_html("<h4>Checkpointer and background writer</h4>")
    show_table(r.checkpoints, cols, empty="Checkpointer statistics not captured.")
    show_html("<h4>WAL and archiving</h4>")
    show_table(metric_in_mb(r.wal), cols, empty="WAL statistics not captured.")


def settings_resets(r: AwrReport) -> None:
    show_html("<h4>Settings changed in the interval</h4>")
    show_table(
        r.settings_changes,
        spec.html(spec.SETTINGS_CHANGED),
        empty="No setting changed between the two snapshots.",
    )
    show_html("<h4>Settings not at their default (end snapshot)</h4>")
    show_table(
        r.settings,
        spec.html(spec.SETTINGS),
        empty="The settings of the end snapshot were not captured.",
    )
    show_html("<h4>Statistics resets and restarts inside the interval</h4>")
    if not r.resets and not r.failed_snapshots:
        show_html(note("None: every counter is continuous over the interval.", "ok"))
        return
    import pandas as pd

    show_table(pd.DataFrame(r.resets), spec.html(spec.RESETS))
    if r.failed_snapshots:
        show_html(note(f"Failed captures: {', '.join(map(str, r.failed_snapshots))}.", "warn"))


def index_usage(r: AwrReport) -> None:
    """Indexes no scan used in the interval (largest first), and where sizes come from."""
    show_html("<h4>Indexes not used in the interval</h4>")
    show_table(
        r.unused_indexes,
        spec.html(spec.UNUSED_INDEXES),
        empty="Every captured index was scanned in the interval.",
    )
    show_html(
        note(
            "Listed: indexes whose rows the snapshots kept in this range (one of their "
            "counters moved, e.g. maintenance by writes) but no scan used. A snapshot keeps no "
            "row of an index idle in every way, so those are not listed here. An index unused "
            "over one interval may still serve a constraint, a rare report or a month-end job: "
            "check over a long range (a baseline) before dropping it.",
            "info",
        )
    )
    if r.index_note:
        show_html(note(r.index_note, "info"))
