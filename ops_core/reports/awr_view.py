"""AWR report sections as notebook output (HTML tables and plotly charts) from an AwrReport."""

from __future__ import annotations

import html

from ..analysis.awr import TOP_SQL, AwrReport, interval_label
from .display import (
    activity_chart,  # noqa: F401  (re-exported for notebooks)
    class_bar,
    dur,
    kv_html,
    note,
    show_html,
    show_table,
    sql_bar,
    summary_box,
)

SQL_COLS = [
    ("rank", "#", "int"),
    ("share_pct", "share of the ranked metric %", "pct"),
    ("pct_db_time", "% of DB time (ASH)", "pct"),
    ("total_exec_time", "elapsed (ms)", "ms"),
    ("calls", "calls", "int"),
    ("mean_exec_time", "per call (ms)", "ms"),
    ("rows", "rows", "int"),
    ("shared_blks_read", "shared read (blocks)", "int"),
    ("temp_blks_written", "temp written (MB)", "blocks_mb"),
    ("wal_bytes", "WAL (MB)", "mb"),
    ("query", "SQL text (click ▸ for the full text)", "query"),
    ("datname", "database", "text"),
    ("username", "user", "text"),
    ("queryid", "query id", "text"),
]


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
    )


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

    show_table(
        pd.DataFrame(out),
        [
            ("metric", "metric", "text"),
            ("total", "total", "num"),
            ("per_second", "per second", "num"),
            ("per_transaction", "per transaction", "num"),
        ],
    )


def efficiency(r: AwrReport) -> None:
    show_table(
        r.efficiency,
        [("metric", "metric", "text"), ("value_pct", "%", "pct"), ("detail", "detail", "text")],
    )


def time_model(r: AwrReport) -> None:
    show_table(
        r.time_model,
        [
            ("component", "component", "text"),
            ("time_s", "time (s)", "s"),
            ("pct_of_db_time", "% of DB time", "pct"),
            ("source", "source", "text"),
        ],
    )
    c = r.db_time_check
    if c is not None:
        show_html("<h4>DB time cross-check: ASH against pg_stat_database.active_time</h4>")
        show_html(note(c.summary, "info"))
        show_table(
            c.frame(),
            [
                ("component", "component", "text"),
                ("time_s", "time (s)", "s"),
                ("effect", "where it counts", "text"),
                ("detail", "from the data", "text"),
            ],
        )
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
    class_bar(r.ash_time_model, "DB time by wait class (ASH samples)").show()
    show_table(
        r.ash_time_model,
        [
            ("wait_class", "wait class", "text"),
            ("db_time_s", "DB time (s)", "s"),
            ("pct", "% of sampled DB time", "pct"),
            ("avg_active_sessions", "avg active sessions", "num"),
        ],
    )


def background(r: AwrReport) -> None:
    """Background processes (checkpointer, autovacuum, WAL writer...): not DB time."""
    show_table(
        r.background,
        [
            ("backend_type", "process", "text"),
            ("wait_class", "wait class", "text"),
            ("event", "event", "text"),
            ("time_s", "time (s)", "s"),
            ("samples", "samples", "int"),
        ],
        empty="No background process was sampled working in this interval (or no ASH samples).",
    )


def top_waits(r: AwrReport) -> None:
    show_table(
        r.top_waits,
        [
            ("wait_class", "wait class", "text"),
            ("event", "event", "text"),
            ("db_time_s", "DB time (s)", "s"),
            ("pct", "% of sampled DB time", "pct"),
            ("avg_active_sessions", "avg active sessions", "num"),
        ],
        empty="No ASH samples exist in this interval: wait events are not available.",
    )


def top_sql(r: AwrReport, key: str) -> None:
    col, title, unit = TOP_SQL[key]
    df = r.top_sql[key]
    show_html(f"<h3>{title}</h3>")
    if key == "elapsed" and not df.empty:
        d = df.copy()
        d["elapsed_s"] = d["total_exec_time"] / 1000.0
        sql_bar(d, "elapsed_s", "s", "Top SQL by elapsed time").show()
    show_table(df, SQL_COLS, empty=f"No statement had {unit} in this interval.", highlight=col)


def io(r: AwrReport) -> None:
    if r.io is None:
        show_html(note(r.io_note or "pg_stat_io not available.", "info"))
    else:
        show_table(
            r.io.head(30),
            [
                ("backend_type", "backend type", "text"),
                ("object", "object", "text"),
                ("context", "context", "text"),
                ("reads", "reads", "int"),
                ("read_bytes", "read (MB)", "mb"),
                ("read_time", "read time (ms)", "ms"),
                ("writes", "writes", "int"),
                ("write_bytes", "written (MB)", "mb"),
                ("write_time", "write time (ms)", "ms"),
                ("extends", "extends", "int"),
                ("hits", "hits", "int"),
                ("evictions", "evictions", "int"),
                ("fsyncs", "fsyncs", "int"),
            ],
            empty="No I/O recorded in pg_stat_io for this interval.",
        )


def objects_io(r: AwrReport) -> None:
    show_html("<h4>Tables</h4>")
    show_table(
        r.tables,
        [
            ("datname", "database", "text"),
            ("schemaname", "schema", "text"),
            ("relname", "table", "text"),
            ("heap_blks_read", "heap read (blocks)", "int"),
            ("heap_blks_hit", "heap hit (blocks)", "int"),
            ("idx_blks_read", "index read (blocks)", "int"),
            ("idx_blks_hit", "index hit (blocks)", "int"),
        ],
        empty="No table activity recorded.",
    )
    show_html("<h4>Indexes</h4>")
    show_table(
        r.indexes,
        [
            ("datname", "database", "text"),
            ("relname", "table", "text"),
            ("indexrelname", "index", "text"),
            ("idx_scan", "scans", "int"),
            ("idx_tup_read", "tuples read", "int"),
            ("idx_blks_read", "read (blocks)", "int"),
            ("idx_blks_hit", "hit (blocks)", "int"),
            ("index_bytes", "size (MB)", "mb"),
        ],
        empty="No index activity recorded.",
    )


def table_activity(r: AwrReport) -> None:
    show_table(
        r.tables,
        [
            ("datname", "database", "text"),
            ("schemaname", "schema", "text"),
            ("relname", "table", "text"),
            ("seq_scan", "seq scans", "int"),
            ("seq_tup_read", "rows seq read", "int"),
            ("idx_scan", "index scans", "int"),
            ("idx_tup_fetch", "rows index fetched", "int"),
            ("n_tup_ins", "inserted", "int"),
            ("n_tup_upd", "updated", "int"),
            ("n_tup_hot_upd", "HOT updated", "int"),
            ("n_tup_del", "deleted", "int"),
            ("n_live_tup", "live rows (end)", "int"),
            ("n_dead_tup", "dead rows (end)", "int"),
            ("vacuum_count", "vacuums", "int"),
            ("autovacuum_count", "autovacuums", "int"),
            ("analyze_count", "analyzes", "int"),
            ("autoanalyze_count", "autoanalyzes", "int"),
        ],
        empty="No table activity recorded.",
    )


def checkpoints_wal(r: AwrReport) -> None:
    cols = [("metric", "metric", "text"), ("value", "value", "num"), ("unit", "unit", "text")]
    show_html("<h4>Checkpointer and background writer</h4>")
    show_table(r.checkpoints, cols, empty="Checkpointer statistics not captured.")
    show_html("<h4>WAL and archiving</h4>")
    w = r.wal.copy()
    mask = w["unit"] == "bytes"
    w.loc[mask, "value"] = w.loc[mask, "value"] / 1048576
    w.loc[mask, "unit"] = "MB"
    show_table(w, cols, empty="WAL statistics not captured.")


def settings_resets(r: AwrReport) -> None:
    show_html("<h4>Settings changed in the interval</h4>")
    show_table(
        r.settings_changes,
        [
            ("name", "setting", "text"),
            ("before", "before", "text"),
            ("after", "after", "text"),
            ("unit", "unit", "text"),
        ],
        empty="No setting changed between the two snapshots.",
    )
    show_html("<h4>Statistics resets and restarts inside the interval</h4>")
    if not r.resets and not r.failed_snapshots:
        show_html(note("None: every counter is continuous over the interval.", "ok"))
        return
    import pandas as pd

    show_table(
        pd.DataFrame(r.resets),
        [
            ("snapshot_id", "snapshot", "int"),
            ("source", "source", "text"),
            ("reason", "reason", "text"),
        ],
    )
    if r.failed_snapshots:
        show_html(note(f"Failed captures: {', '.join(map(str, r.failed_snapshots))}.", "warn"))
