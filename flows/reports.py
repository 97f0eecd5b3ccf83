"""Daily AWR, ASH and ADDM HTML reports for each target into reports/, and on demand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact

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
    create_link_artifact(
        link=rendered.html.resolve().as_uri(),
        link_text=f"{kind.upper()} report {target}",
        key=artifact_key(kind, "report", target),
    )
    return {"kind": kind, "target": target, "html": str(rendered.html)}


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
