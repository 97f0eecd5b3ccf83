"""Daily AWR, ASH and ADDM HTML reports for each target into reports/, and on demand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from ops_core import api
from ops_core.errors import OpsCoreError

from .common import artifact_key, publish_table, resolve_targets

#: set by an in-process caller (the demo) to hear "rendering the AWR report (1 of 3)" as it
#: happens; flow parameters must be serialisable, so this is not one
#: (a step, or detail=True for the renderer's own steps within it)
progress_hook: Callable[[str, bool], None] | None = None


def _progress(msg: str, detail: bool = False) -> None:
    if progress_hook is not None:
        progress_hook(msg, detail)


@task(name="render-report", task_run_name="{kind}-{target}")
def render_one(
    kind: str, target: str, begin: int | str | None, end: int | str | None, since: str | None
) -> dict:
    logger = get_run_logger()
    rendered = api.render_report(
        kind,
        target,
        begin=begin,
        end=end,
        since=since,
        progress=lambda msg: (
            logger.info("%s %s: %s", kind, target, msg),
            _progress(f"{kind.upper()} report of {target}: {msg}", True),
        ),
    )
    logger.info("%s report of %s: %s (%.1f s)", kind, target, rendered.html, rendered.seconds)
    try:
        headline = report_headline(kind, target, begin, end, since)
    except Exception as exc:  # noqa: BLE001 - the report exists; its summary is a bonus
        logger.warning("%s report of %s: no headline (%s)", kind, target, exc)
        headline = ""
    # the Prefect UI cannot open file:// links: the headline and where the file is instead
    create_markdown_artifact(
        markdown=f"# {kind.upper()} report of {target}\n\n{headline}\n\n"
        f"**File:** `{rendered.html.resolve()}` (rendered in {rendered.seconds:.1f} s; open it "
        f"on the machine that ran the flow, or download it from the app's Reports tab)\n",
        key=artifact_key(kind, "report", target),
        description=f"{kind.upper()} report of {target}",
    )
    return {"kind": kind, "target": target, "html": str(rendered.html)}


def _sql_lines(df: Any, time_col: str, unit: str, n: int = 3) -> list[str]:
    if df is None or getattr(df, "empty", True):
        return []
    out = []
    for r in df.head(n).to_dict("records"):
        q = " ".join(str(r.get("query") or "").split())
        q = q if len(q) <= 80 else q[:79] + "…"
        t = r.get(time_col)
        share = r.get("share_pct", r.get("pct"))
        figure = f"{t:,.1f} {unit}" if isinstance(t, int | float) else ""
        figure += f" ({share:.1f} %)" if isinstance(share, int | float) else ""
        qid = r.get("queryid", r.get("query_id"))
        out.append(f"- `{qid}` {figure}: `{q}`")
    return out


def report_headline(
    kind: str, target: str, begin: int | str | None, end: int | str | None, since: str | None
) -> str:
    """Markdown: what the report says first (DB time, top findings, top SQL), for the
    artifact in the Prefect UI."""
    lines: list[str] = []
    if kind == "awr":
        r = api.awr_report(target, begin, end, top=3)  # type: ignore[arg-type]
        h = r.header
        lines.append(
            f"Snapshots {h['begin_snapshot_id']} → {h['end_snapshot_id']} "
            f"({h['elapsed_s']:,.0f} s): **DB time {h['db_time_s']:,.1f} s**, "
            f"SQL time {h['sql_time_s']:,.1f} s, {h['transactions']:,.0f} transactions."
        )
        lines += [f"- {x}" for x in r.highlights[:3]]
        findings = r.addm.findings[:3] if r.addm is not None else []
        if findings:
            lines.append("\n**ADDM findings**")
            lines += [f"- #{f.rank} {f.title} ({f.impact_pct:.1f} % of DB time)" for f in findings]
        sql = _sql_lines(r.top_sql.get("elapsed"), "total_exec_time", "ms")
        if sql:
            lines += ["\n**Top SQL by elapsed time**", *sql]
    elif kind == "ash":
        r = api.ash_report(target, since=since)
        h = r.header
        lines.append(
            f"{h['samples']:,} samples: **DB time {h['db_time_s']:,.1f} s**, "
            f"{h['avg_active_sessions']:,.2f} average active sessions."
        )
        lines += [f"- {x}" for x in r.highlights[:3]]
        sql = _sql_lines(r.top_sql, "db_time_s", "s")
        if sql:
            lines += ["\n**Top SQL by DB time**", *sql]
    elif kind == "addm":
        a = next(
            (x for x in api.list_addm(target) if (x.begin_snapshot_id, x.end_snapshot_id)
             == (begin, end)),
            None,
        )  # fmt: skip
        if a is not None:
            a = api.get_addm(a.analysis_id)
            lines.append(
                f"Analysis {a.analysis_id}, snapshots {a.begin_snapshot_id} → "
                f"{a.end_snapshot_id}: **DB time {a.db_time_s:,.1f} s**."
            )
            lines += [
                f"- #{f.rank} {f.title} ({f.impact_pct:.1f} % of DB time)" for f in a.findings[:3]
            ]
    return "\n".join(lines)


@flow(
    name="reports",
    description="Render AWR and ASH (and on demand ADDM) HTML reports for every target "
    "(default: the last 24 hours) into reports/; on demand with a target, kinds and a range.",
)
def reports_flow(
    targets: list[str] | None = None,
    kinds: list[Literal["awr", "ash", "addm"]] | None = None,
    hours: float = 24.0,
    begin_snapshot: int | None = None,
    end_snapshot: int | None = None,
) -> list[dict]:
    logger = get_run_logger()
    out: list[dict] = []
    names = resolve_targets(targets)
    kinds = kinds or ["awr", "ash"]
    n, i = len(names) * len(kinds), 0
    for target in names:
        for kind in kinds:
            i += 1
            _progress(f"rendering the {kind.upper()} report of {target} ({i} of {n})")
            try:
                if kind in ("awr", "addm"):  # a snapshot range (ADDM: its stored analysis)
                    begin, end = begin_snapshot, end_snapshot
                    if begin is None or end is None:
                        since = datetime.now(UTC) - timedelta(hours=hours)
                        snaps = [
                            s
                            for s in api.list_snapshots(target, limit=10000)
                            if s.status != "failed" and s.captured_at >= since
                        ]
                        if len(snaps) < 2:
                            logger.warning(
                                "%s %s: fewer than two snapshots in the last %s h; skipped",
                                kind.upper(),
                                target,
                                hours,
                            )
                            continue
                        begin, end = snaps[-1].snapshot_id, snaps[0].snapshot_id
                    out.append(render_one(kind, target, begin, end, None))
                else:
                    out.append(render_one(kind, target, None, None, f"{int(hours * 60)}m"))
            except OpsCoreError as exc:
                logger.error("%s report of %s not rendered: %s", kind, target, exc.message)
                out.append({"kind": kind, "target": target, "error": exc.message})
    publish_table("reports-rendered", out, "Reports rendered by this run")
    return out
