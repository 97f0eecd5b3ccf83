"""Reports: AWR (between two snapshots), ASH (a time range), compare periods; HTML rendering.

The models are built here from repository reads and the pure functions of
``ops_core.analysis.awr`` / ``ash_report`` / ``compare_report``; notebooks, the CLI and the app
call these and format what they get.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg

from .. import repository
from ..analysis import ash_report as ash_model
from ..analysis import awr as awr_model
from ..analysis import compare as compare_model
from ..analysis import compare_report as compare_rmodel
from ..analysis import sql_share
from ..analysis.ash_report import AshReport
from ..analysis.awr import AwrReport
from ..analysis.blocking import blocking_chains as _chains
from ..analysis.compare_report import CompareReport
from ..analysis.waits import normalize_wait_class
from ..collectors import host as host_collector
from ..errors import InvalidInput, OpsCoreError
from ..reports import render as _render
from ..reports.render import RenderedReport
from ..repository import ash_read, report_reads, snapshot_reads
from ..repository import snapshot_ranges as ranges
from ..repository import targets as repo_targets
from ..targets.connection import describe, parse_dsn
from .addm import addm_for_range, get_addm
from .ash import SUMMARY_THRESHOLD, ash_time_range
from .common import opscore_shown
from .targets import resolve_target

__all__ = [
    "AwrReport",
    "AshReport",
    "CompareReport",
    "RenderedReport",
    "REPORT_KINDS",
    "awr_report",
    "ash_report",
    "compare_report",
    "default_awr_range",
    "host_cpu_count",
    "render_report",
    "report_download",
]

REPORT_KINDS = ("awr", "ash", "addm", "compare")


def _usable(conn: psycopg.Connection, target_id: int) -> list[int]:
    return snapshot_reads.latest_usable_ids(conn, target_id, 2)


def default_awr_range(target: str) -> tuple[int, int]:
    """The last two successful snapshots of ``target`` (begin, end)."""
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        ids = _usable(repo, t.target_id)
    if len(ids) < 2:
        raise InvalidInput(
            f"Target {target!r} has {len(ids)} usable snapshot(s); an AWR report needs two.",
            f"Take snapshots before and after the activity: `opscore snapshot take --target "
            f"{target}` (twice), or give --begin and --end.",
        )
    return ids[1], ids[0]


def _ash_waits(
    conn: psycopg.Connection, target_id: int, begin: datetime, end: datetime, edges: bool = False
) -> awr_model.AshInput:
    """ASH DB time of a snapshot interval; with ``edges`` (ranges up to 6 h) also each
    session's first and last sample, for the DB-time cross-check."""
    by_class = ash_read.db_time(conn, target_id, begin, end, ["wait_class"])
    by_event = ash_read.db_time(conn, target_id, begin, end, ["wait_class", "event"])
    by_sql = ash_read.db_time(conn, target_id, begin, end, sql_share.ASH_KEYS)
    background = ash_read.background_time(conn, target_id, begin, end)
    n, first, last = report_reads.ash_sample_count(conn, target_id, begin, end)
    sessions = None
    if edges and n and end - begin <= SUMMARY_THRESHOLD:
        sessions = report_reads.ash_session_edges(conn, target_id, begin, end)
    return awr_model.AshInput(by_class, by_event, first, last, sessions, by_sql, background)


def awr_report(
    target: str,
    begin_id: int | None = None,
    end_id: int | None = None,
    *,
    top: int = 10,
    include_opscore: bool | None = None,
    addm: bool = True,
) -> AwrReport:
    """The AWR report of ``target`` between snapshots ``begin_id`` and ``end_id`` (default: the
    last two). Time model and top waits come from ASH samples of the same interval, when any.

    With ``addm`` the report carries ADDM's analysis of the same range: the stored one (the
    snapshot flow makes one per interval), or a new run for ranges up to 6 hours (longer ones
    read too many ASH samples to run inline: ``addm_note`` says how to run it)."""
    if (begin_id is None) != (end_id is None):
        raise InvalidInput("Give both begin and end snapshot ids, or neither (the last two).")
    if begin_id is None or end_id is None:
        begin_id, end_id = default_awr_range(target)
    if top < 1:
        raise InvalidInput(f"top must be at least 1 (got {top}).")
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        agg = ranges.range_aggregate(
            repo, t.target_id, t.name, begin_id, end_id, opscore_shown(include_opscore)
        )
        ash = _ash_waits(repo, t.target_id, agg.begin.captured_at, agg.end.captured_at, True)
        settings = snapshot_reads.cluster_values(repo, end_id, "settings") or {}
        sizes_at, sizes = report_reads.latest_index_sizes(repo, t.target_id, end_id)
    report = awr_model.build(
        agg,
        ash=ash,
        host=describe(t.dsn),
        top=top,
        settings=settings.get("values"),
        index_sizes=sizes,
        sizes_at=sizes_at,
        local_host=_is_local(t),
    )
    if addm:
        _attach_addm(report, t.name, begin_id, end_id, agg.elapsed_s)
    return report


def _is_local(t: Any) -> bool | None:
    """Whether the target runs on this host (where the host collector reads CPU and memory);
    None when its DSN cannot be read."""
    try:
        return host_collector.is_local(parse_dsn(t.dsn), bool(getattr(t, "embedded", False)))
    except (OpsCoreError, ValueError):
        return None


def _attach_addm(report: AwrReport, target: str, begin_id: int, end_id: int, elapsed: float):
    inline = elapsed <= SUMMARY_THRESHOLD.total_seconds()
    try:
        report.addm = addm_for_range(target, begin_id, end_id, run=inline)
    except OpsCoreError as exc:  # e.g. a restart inside the range: the AWR still renders
        report.addm_note = f"ADDM cannot analyse this range: {exc.message}" + (
            f" {exc.hint}" if exc.hint else ""
        )
        return
    if report.addm is not None:
        report.highlights[:0] = awr_model.addm_highlights(report.addm.findings)
        return
    report.addm_note = (
        f"No stored ADDM analysis of snapshots {begin_id}..{end_id}, and the range is "
        f"longer than {SUMMARY_THRESHOLD.total_seconds() / 3600:g} h, so it is not run "
        "inside the report (it reads every ASH sample of the range). Run it, then render "
        f"again: opscore addm run --target {target} --begin {begin_id} --end {end_id}"
    )


def _ash_filters(
    wait_class: str | None,
    queryid: int | None,
    user: str | None,
    database: str | None,
    application: str | None,
) -> dict[str, Any]:
    if queryid is not None:
        try:
            queryid = int(queryid)
        except (TypeError, ValueError):
            raise InvalidInput(f"{queryid!r} is not a query id (a 64-bit integer).") from None
    return {
        "wait_class": normalize_wait_class(wait_class) if wait_class else None,
        "query_id": queryid,
        "user": user or None,
        "database": database or None,
        "application": application or None,
    }


def ash_report(
    target: str,
    begin: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    since: str | None = None,
    wait_class: str | None = None,
    queryid: int | None = None,
    user: str | None = None,
    database: str | None = None,
    application: str | None = None,
    top: int = 10,
) -> AshReport:
    """The ASH report of ``target`` over [begin, end) (or the last ``since``: '1h', '30m'),
    optionally filtered by wait class, query id, user, database or application."""
    b, e = ash_time_range(since, begin, end)
    flt = _ash_filters(wait_class, queryid, user, database, application)
    long = e - b > SUMMARY_THRESHOLD

    def dt(conn: psycopg.Connection, tid: int, dims: list[str]) -> pd.DataFrame:
        summary = long and ash_read.summary_grouping(dims, flt) is not None
        return ash_read.db_time(conn, tid, b, e, dims, use_summary=summary, **flt)

    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        tid = t.target_id
        n, first, last = report_reads.ash_sample_count(repo, tid, b, e)
        bucket = report_reads.bucket_for(b, e)
        frames = ash_model.AshFrames(
            activity=report_reads.ash_activity(repo, tid, b, e, bucket, **flt),
            bucket_s=bucket,
            by_event=dt(repo, tid, ["wait_class", "event"]),
            by_sql=dt(repo, tid, ["query_id"]),
            by_session=dt(repo, tid, ["pid", "backend_start", "usename", "application_name"]),
            by_user=dt(repo, tid, ["usename"]),
            by_app=dt(repo, tid, ["application_name"]),
            by_database=dt(repo, tid, ["datname"]),
            sql_waits=dt(repo, tid, ["query_id", "wait_class", "event"]),
            blocking=_chains(ash_read.blocking_samples(repo, tid, b, e)),
            sample_rows=n,
            first_sample=first,
            last_sample=last,
            background=ash_read.background_time(repo, tid, b, e),
        )
    flt_shown = {k: v for k, v in flt.items() if v is not None}
    return ash_model.build(t.name, b, e, frames, filters=flt_shown, top=top)


def _wait_frame(ash: awr_model.AshInput) -> pd.DataFrame | None:
    if ash.empty:
        return None
    df = ash.by_event[["wait_class", "event", "db_time_s"]]
    return df.rename(columns={"wait_class": "wait_event_type", "event": "wait_event"})


def compare_report(
    target: str,
    begin1: int,
    end1: int,
    begin2: int | None = None,
    end2: int | None = None,
    baseline: str | None = None,
    *,
    top: int = 10,
    include_opscore: bool | None = None,
) -> CompareReport:
    """Period 1 (begin1..end1) against period 2 (begin2..end2) or a named baseline, with the
    differences that matter ranked (slower SQL, new SQL, wait shifts, load changes)."""
    begin2, end2 = _compare_second(target, begin2, end2, baseline)
    own = opscore_shown(include_opscore)
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        a1 = ranges.range_aggregate(repo, t.target_id, t.name, begin1, end1, own)
        a2 = ranges.range_aggregate(repo, t.target_id, t.name, begin2, end2, own)
        w1 = _ash_waits(repo, t.target_id, a1.begin.captured_at, a1.end.captured_at)
        w2 = _ash_waits(repo, t.target_id, a2.begin.captured_at, a2.end.captured_at)
    cmp = compare_model.compare(
        a1, a2, top=top, waits1=_wait_frame(w1), waits2=_wait_frame(w2), label2=baseline
    )
    return compare_rmodel.build(cmp)


def host_cpu_count(target: str, at: datetime | None = None) -> int | None:
    """CPUs of ``target``'s host as its newest snapshot at or before ``at`` (default: now)
    recorded them (the host collector, local targets only); None when none did. The ASH
    report draws it as a line on its activity chart: sessions above it wait for a CPU."""
    from .snapshots import list_snapshots

    snaps = [
        s
        for s in list_snapshots(target, limit=50)
        if s.status != "failed" and (at is None or s.captured_at <= at)
    ]
    with repository.session() as repo:
        for snap in snaps[:5]:  # newest first
            host = snapshot_reads.cluster_values(repo, snap.snapshot_id, "host") or {}
            cpu = (host.get("values") or {}).get("cpu_count")
            if cpu:
                return int(cpu)
    return None


def _stamp(ts: datetime) -> str:
    return ts.strftime("%Y%m%dT%H%M%SZ")


def render_report(
    kind: str,
    target: str | None,
    begin: int | datetime | str | None = None,
    end: int | datetime | str | None = None,
    *,
    since: str | None = None,
    begin2: int | None = None,
    end2: int | None = None,
    baseline: str | None = None,
    wait_class: str | None = None,
    queryid: int | None = None,
    user: str | None = None,
    database: str | None = None,
    application: str | None = None,
    analysis: int | None = None,
    reports_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> RenderedReport:
    """Execute the report notebook and write ``reports/<target>/<kind>-<begin>-<end>.html``
    (executed .ipynb beside it). The model is built first, so bad input fails here with a clear
    message before any notebook runs. AWR/compare: begin/end are snapshot ids; ASH: times, or
    snapshot ids (the ASH report then covers the interval between those two snapshots).
    ADDM: a stored ``analysis`` id, or snapshot ids (default: the last interval) whose stored
    analysis is used or, when there is none, made now (``addm_for_range``); the file is
    ``addm-<begin>-<end>-analysis<id>.html``."""
    say = progress or (lambda _m: None)
    kind = (kind or "").strip().lower()
    if kind not in REPORT_KINDS:
        raise InvalidInput(f"{kind!r} is not a report kind.", "Use awr, ash, addm or compare.")
    say("checking the range")
    # validation only (cheap): the notebook builds the model itself
    params: dict[str, Any]
    label: tuple[Any, Any]
    if kind == "addm":
        say("finding the ADDM analysis (or running it)")
        a = _addm_analysis(target, begin, end, analysis)
        target = a.target
        params = {"analysis_id": a.analysis_id}
        label = (a.begin_snapshot_id, f"{a.end_snapshot_id}-analysis{a.analysis_id}")
        return _render.render(
            kind, target, label[0], label[1], params, reports_dir=reports_dir, progress=say
        )
    if target is None:  # the only registered target, or 'demo'
        target = resolve_target(None).name
    if kind == "awr":
        if begin is None and end is None:
            begin, end = default_awr_range(target)
        b_id, e_id = _int(begin, "begin"), _int(end, "end")
        _check_range(target, b_id, e_id)
        params = {"target": target, "begin_id": b_id, "end_id": e_id}
        label = (b_id, e_id)
    elif kind == "ash":
        if isinstance(begin, int) and isinstance(end, int):
            begin, end = _snapshot_times(target, begin, end)
        b, e = ash_time_range(since, begin, end)  # type: ignore[arg-type]
        flt = _ash_filters(wait_class, queryid, user, database, application)
        with repository.session() as repo:
            repo_targets.get(repo, target)
        params = {
            "target": target,
            "begin": b.isoformat(),
            "end": e.isoformat(),
            "wait_class": flt["wait_class"] or "",
            "queryid": flt["query_id"] or 0,
            "user": flt["user"] or "",
            "database": flt["database"] or "",
            "application": flt["application"] or "",
        }
        label = (_stamp(b), _stamp(e))
    else:
        b1, e1 = _int(begin, "begin"), _int(end, "end")
        b2, e2 = _compare_second(target, begin2, end2, baseline)
        _check_range(target, b1, e1)
        _check_range(target, b2, e2)
        params = {
            "target": target,
            "begin1": b1,
            "end1": e1,
            "begin2": b2,
            "end2": e2,
            "baseline": baseline or "",
        }
        label = (b1, f"{e1}-vs-{baseline or f'{b2}-{e2}'}")
    return _render.render(
        kind, target, label[0], label[1], params, reports_dir=reports_dir, progress=say
    )


def _addm_analysis(target: str | None, begin: Any, end: Any, analysis: int | None):
    if analysis is not None:
        if begin is not None or end is not None:
            raise InvalidInput(
                "Give an analysis id or a snapshot range, not both.",
                "Use --analysis ID alone, or --begin A --end B.",
            )
        a = get_addm(_int(analysis, "analysis"))
        if target and a.target != target:
            raise InvalidInput(
                f"ADDM analysis {a.analysis_id} is of target {a.target!r}, not {target!r}.",
                f"List the analyses of {target} with `opscore addm list --target {target}`.",
            )
        return a
    if (begin is None) != (end is None):
        raise InvalidInput(
            "Give both --begin and --end, or neither (the last interval).",
            "Example: opscore report addm --target demo --begin 10 --end 12",
        )
    b = None if begin is None else _int(begin, "begin")
    e = None if end is None else _int(end, "end")
    a = addm_for_range(target, b, e)
    assert a is not None
    return a


def _int(v: Any, what: str) -> int:
    if v is None:
        raise InvalidInput(f"The {what} snapshot id is missing.", "Give --begin ID --end ID.")
    try:
        return int(v)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be an id (an integer), not {v!r}.") from None


def _check_range(target: str, begin_id: int, end_id: int) -> None:
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        ranges.validate_range(repo, t.target_id, t.name, begin_id, end_id)


def _compare_second(
    target: str, begin2: int | None, end2: int | None, baseline: str | None
) -> tuple[int, int]:
    """Period 2 of a comparison: a range, or the range of a baseline of the same target."""
    if baseline is not None and (begin2 is not None or end2 is not None):
        raise InvalidInput(
            "Give either a second range (begin2/end2) or a baseline, not both.",
            "Use --baseline NAME alone, or --begin2 A --end2 B.",
        )
    if baseline is not None:
        with repository.session() as repo:
            t = repo_targets.get(repo, target)
            bl = ranges.get_baseline(repo, baseline)
        if bl.target != t.name:
            raise InvalidInput(
                f"Baseline {baseline!r} is of target {bl.target!r}, not {target!r}.",
                f"List baselines of {target} with `opscore baseline list --target {target}`.",
            )
        return bl.begin_snapshot_id, bl.end_snapshot_id
    if begin2 is None or end2 is None:
        raise InvalidInput(
            "A second period is needed: begin2 and end2, or a baseline.",
            "Use --begin2 A --end2 B, or --baseline NAME.",
        )
    return int(begin2), int(end2)


def _snapshot_times(target: str, begin_id: int, end_id: int) -> tuple[datetime, datetime]:
    with repository.session() as repo:
        t = repo_targets.get(repo, target)
        b, e = ranges.validate_range(repo, t.target_id, t.name, begin_id, end_id)
    return b.captured_at, e.captured_at


def report_download(html: str | Path) -> bytes:
    """A rendered report as one self-contained HTML file (its shared plotly.js inlined), for
    downloads that must open offline away from the reports folder."""
    return _render.standalone_html(Path(html))
