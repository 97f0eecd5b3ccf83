"""ASH and compare-periods report sections as notebook output, from the report models."""

from __future__ import annotations

import html

import pandas as pd

from ..analysis.ash_report import AshReport
from ..analysis.compare_report import CompareReport
from . import spec
from .display import (
    activity_chart,
    class_bar,
    dur,
    kv_html,
    note,
    show_fig,
    show_html,
    show_table,
    summary_box,
)

SHARE = spec.html(spec.SHARE)


def ash_header(r: AshReport) -> None:
    h = r.header
    pairs = [
        ("Target", h["target"]),
        ("Range", f"{h['begin']:%Y-%m-%d %H:%M:%S} → {h['end']:%Y-%m-%d %H:%M:%S} UTC"),
        ("Elapsed", dur(h["elapsed_s"])),
        ("Filters", h["filters"]),
        ("Samples (session rows)", f"{h['samples']:,}"),
        ("DB time (foreground sessions on CPU or in non-idle waits)", dur(h["db_time_s"])),
        ("Background activity (not DB time)", dur(h.get("background_s") or 0.0)),
        ("Average active sessions", f"{h['avg_active_sessions']:,.2f}"),
    ]
    peak = activity_peaks(r)
    if peak is not None:
        pairs.append(
            (f"Peak ({r.bucket_s} s bucket)", f"{peak['peak']:,.2f} at {peak['peak_at']:%H:%M:%S}")
        )
        if peak["minute"] is not None:
            pairs.append(("Busiest minute", f"{peak['minute']:,.2f} at {peak['minute_at']:%H:%M}"))
    sub = (
        f"{h['target']} · {h['begin']:%Y-%m-%d %H:%M:%S} → {h['end']:%Y-%m-%d %H:%M:%S} UTC "
        f"({dur(h['elapsed_s'])}) · filters: {h['filters']}"
    )
    show_html(
        f'<p class="opscore-sub">{html.escape(sub)}</p>'
        + summary_box("What stands out", r.highlights)
        + kv_html(pairs)
        + "".join(note(n, "warn") for n in r.notes)
    )


def _utc(ts) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _overlap_s(starts: pd.DatetimeIndex, length_s: int, begin, end) -> pd.Series:
    """Seconds of each [start, start + length) inside [begin, end) (at least 1)."""
    ends = starts + pd.Timedelta(seconds=length_s)
    lo = starts.where(starts > begin, begin)
    hi = ends.where(ends < end, end)
    return pd.Series((hi - lo).total_seconds(), index=starts).clip(lower=1.0)


def activity_peaks(r: AshReport) -> dict | None:
    """Beside the range's average: the busiest bucket and the busiest minute, in average
    active sessions over the part of the bucket (minute) inside the range, so a short range
    is not diluted by a long bucket (a light average over a long range hides a burst).
    ``minute`` is None when buckets are longer than a minute. None without activity."""
    if r.empty or r.activity.empty or r.activity.shape[1] == 0:
        return None
    begin, end = _utc(r.begin), _utc(r.end)
    db_time = r.activity.sum(axis=1) * r.bucket_s  # seconds of DB time per bucket
    db_time.index = pd.DatetimeIndex([_utc(t) for t in db_time.index])
    aas = db_time / _overlap_s(db_time.index, r.bucket_s, begin, end)
    out = {"peak": float(aas.max()), "peak_at": aas.idxmax(), "minute": None, "minute_at": None}
    if r.bucket_s <= 60:
        per_min = db_time.groupby(db_time.index.floor("1min")).sum()
        per_min.index = pd.DatetimeIndex(per_min.index)
        per_min = per_min / _overlap_s(per_min.index, 60, begin, end)
        out["minute"], out["minute_at"] = float(per_min.max()), per_min.idxmax()
    return out


def ash_activity(r: AshReport, cpu_count: int | None = None) -> None:
    if r.empty or r.activity.empty or r.activity.shape[1] == 0:
        show_html(note("No activity to chart: no ASH samples in this range.", "info"))
        return
    show_fig(activity_chart(r.activity, r.bucket_s, cpu_count=cpu_count))
    if not r.wait_classes.empty:
        show_fig(class_bar(r.wait_classes, "DB time by wait class"))
        show_table(r.wait_classes, spec.html(spec.ASH_CLASSES))


def ash_events(r: AshReport) -> None:
    show_table(
        r.top_events,
        spec.html(spec.ASH_EVENTS),
        empty="No wait events sampled.",
    )


def ash_background(r: AshReport) -> None:
    """Background processes (checkpointer, autovacuum, WAL writer...): not DB time."""
    show_table(
        r.background,
        spec.html(spec.BACKGROUND),
        empty="No background process was sampled working in this range.",
    )


def ash_sql(r: AshReport) -> None:
    show_table(
        r.top_sql,
        spec.html(spec.ASH_SQL),
        empty="No SQL sampled.",
    )


def ash_sessions(r: AshReport) -> None:
    show_table(
        r.top_sessions,
        spec.html(spec.ASH_SESSIONS),
        empty="No sessions sampled.",
    )


def ash_dimensions(r: AshReport) -> None:
    for title, df, cols in (
        ("Users", r.top_users, spec.ASH_USERS),
        ("Applications", r.top_apps, spec.ASH_APPS),
        ("Databases", r.top_databases, spec.ASH_DATABASES),
    ):
        show_html(f"<h4>{title}</h4>")
        col = cols[0].field
        if df is not None and not df.empty:
            df = df.copy()
            df[col] = df[col].astype(object).where(df[col].notna(), "(none: background process)")
        show_table(df, spec.html(cols), empty="None sampled.")


def ash_blocking(r: AshReport) -> None:
    df = r.blocking
    if df is None or df.empty:
        show_html(note("No session was blocked by another in this range.", "ok"))
        return
    df = df.copy()
    df["waiters"] = df["waiters"].map(lambda w: ", ".join(map(str, w)))
    df["waiter_events"] = df["waiter_events"].map(lambda w: ", ".join(w))
    show_table(
        df,
        spec.html(spec.ASH_BLOCKING),
    )


def ash_sql_profiles(r: AshReport) -> None:
    df = r.sql_wait_profiles
    cls_cols = [(c, c, "pct") for c in df.columns if c.endswith(" %")]
    show_table(
        df,
        [
            *spec.html(spec.ASH_SQL_PROFILE_HEAD),
            *cls_cols,
            *spec.html(spec.ASH_SQL_PROFILE_TAIL),
        ],
        empty="No SQL sampled.",
    )


# ------------------------------------------------------------------------------ compare
def _period(p: dict) -> str:
    label = f"baseline {p['label']}: " if p.get("label") else ""
    return (
        f"{label}snapshots {p['begin_snapshot_id']} → {p['end_snapshot_id']} "
        f"({p['begin_at'][:19].replace('T', ' ')} → {p['end_at'][:19].replace('T', ' ')} UTC, "
        f"{dur(p['elapsed_s'])})"
    )


def compare_header(r: CompareReport) -> None:
    pairs = [
        ("Target", r.target),
        ("Period 1 (studied)", _period(r.period1)),
        ("Period 2 (reference)", _period(r.period2)),
    ]
    sub = f"{r.target} · period 1: {_period(r.period1)} · period 2: {_period(r.period2)}"
    show_html(
        f'<p class="opscore-sub">{html.escape(sub)}</p>'
        + summary_box("What stands out", r.highlights)
        + kv_html(pairs)
        + "".join(note(n, "warn") for n in r.notes)
    )


def compare_differences(r: CompareReport) -> None:
    show_table(
        r.differences,
        spec.html(spec.COMPARE_DIFFERENCES),
        empty="No difference that matters between the two periods.",
    )


def compare_load(r: CompareReport) -> None:
    lp = r.load_profile.copy()
    mb = lp["metric"].str.endswith("bytes")
    vals = ["total_1", "per_second_1", "per_transaction_1", "total_2", "per_second_2"]
    vals += ["per_transaction_2"]
    vals = [c for c in vals if c in lp.columns]
    lp.loc[mb, vals] = lp.loc[mb, vals].astype("float64") / 1048576
    lp.loc[mb, "metric"] = lp.loc[mb, "metric"].str.replace(" bytes", " (MB)", regex=False)
    show_table(
        lp,
        spec.html(spec.COMPARE_LOAD),
    )


def compare_sql(r: CompareReport) -> None:
    show_html("<h4>SQL that got slower (mean time per call up 20 % or more)</h4>")
    show_table(
        r.slower_sql,
        spec.html(spec.COMPARE_SLOWER),
        empty="No statement got slower.",
    )
    cols = spec.html(spec.COMPARE_ONE_SIDE)
    show_html("<h4>New top SQL (only in period 1)</h4>")
    show_table(r.new_sql, cols, empty="No new statement among the top SQL.")
    show_html("<h4>Top SQL of period 2 absent from period 1</h4>")
    show_table(r.gone_sql, cols, empty="None.")
    show_html("<h4>Top SQL side by side (by elapsed time)</h4>")
    show_table(
        r.top_sql,
        spec.html(spec.COMPARE_TOP_SQL),
        empty="No SQL in either period.",
    )


def compare_waits(r: CompareReport) -> None:
    if r.wait_shifts is None:
        show_html(
            note("Wait class shifts not available: ASH samples must cover both periods.", "info")
        )
        return
    show_table(
        r.wait_shifts,
        spec.html(spec.COMPARE_WAITS),
    )


def compare_io(r: CompareReport) -> None:
    if r.io is None:
        show_html(note("pg_stat_io not available on this server (PostgreSQL 16+).", "info"))
        return
    show_table(
        r.io.head(25),
        spec.html(spec.COMPARE_IO),
        empty="No I/O in either period.",
    )
    if r.resets:
        show_html("<h4>Resets inside the periods</h4>")
        show_table(
            pd.DataFrame(r.resets),
            spec.html(spec.COMPARE_RESETS),
        )  # fmt: skip
