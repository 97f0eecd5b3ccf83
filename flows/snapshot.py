"""Snapshot capture for every registered target (or some), one task per target, several
targets at a time (``concurrency``)."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.futures import wait
from prefect.tasks import exponential_backoff

from ops_core import api

from .common import publish_markdown, resolve_targets


@task(
    name="capture-snapshot",
    retries=2,
    retry_delay_seconds=exponential_backoff(10),
    task_run_name="snapshot-{target}",
)
def capture_target(target: str) -> dict:
    """Capture one target. A failure (unreachable, auth, timeout) is recorded in the
    repository by the API and raised here, so the task run shows the reason."""
    logger = get_run_logger()
    info = api.take_snapshot(target)
    logger.info(
        "snapshot %s of %s: %s, %s statements changed, %.0f ms on the target",
        info.snapshot_id,
        target,
        info.status,
        info.statements,
        info.target_ms or 0,
    )
    return {
        "target": target,
        "snapshot_id": info.snapshot_id,
        "status": info.status,
        "statements": info.statements,
        "target_ms": info.target_ms,
        "first": info.is_baseline,  # no previous snapshot: no interval to analyse yet
    }


@flow(
    name="snapshot",
    description="Capture an AWR snapshot of every target (or the given "
    "ones); one task per target so one target down does not stop the others; at most "
    "`concurrency` at once.",
)
def snapshot_flow(
    targets: list[str] | None = None,
    retries: int = 2,
    analyze: bool = True,
    concurrency: int = 4,
) -> list[dict]:
    logger = get_run_logger()
    names = resolve_targets(targets)
    if not names:
        logger.warning("No targets registered: nothing to capture (opscore target add NAME DSN)")
        return []
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    job = capture_target.with_options(retries=retries)
    # at most `concurrency` captures at once (each holds a target and a repository
    # connection): a new one starts as soon as the oldest running one is done
    futures: dict = {}
    running: list = []
    for name in names:
        if len(running) >= concurrency:
            wait([running.pop(0)])
        futures[name] = job.submit(name)
        running.append(futures[name])
    wait(list(futures.values()))
    results: list[dict] = []
    failed: list[str] = []
    for name, fut in futures.items():
        state = fut.state
        if state.is_completed():
            results.append(fut.result())
        else:
            reason = str(state.message or "failed")
            try:
                fut.result()
            except Exception as exc:  # the task's own exception carries the reason
                reason = getattr(exc, "message", None) or str(exc)
            logger.error("snapshot of %s failed: %s", name, reason)
            results.append(
                {"target": name, "snapshot_id": None, "status": "failed", "error": reason}
            )
            failed.append(name)
    lines = [
        "| target | snapshot | status | statements | target ms | error |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['target']} | {r.get('snapshot_id') or ''} | {r['status']} | "
            f"{r.get('statements') or ''} | {round(r.get('target_ms') or 0)} | "
            f"{r.get('error', '')} |"
        )
    publish_markdown(
        "snapshot-summary",
        "\n".join(lines),
        f"{len(results) - len(failed)} of {len(results)} targets captured",
    )
    if analyze:
        _analyze([r for r in results if r["status"] != "failed"])
    if failed:
        raise RuntimeError(
            f"Snapshot failed for {', '.join(failed)} (see the task runs); "
            f"the other {len(results) - len(failed)} target(s) were captured."
        )
    return results


def _analyze(captured: list[dict]) -> None:
    """ADDM on each target's new interval, chained as a subflow (a failed analysis is logged,
    it does not fail the capture)."""
    from ops_core.errors import OpsCoreError

    from .addm import addm_flow

    logger = get_run_logger()
    for r in captured:
        if r.get("first"):
            logger.info(
                "ADDM for %s waits for the next snapshot (this one starts its history)", r["target"]
            )
            continue
        try:
            addm_flow(r["target"])
        except OpsCoreError as exc:
            logger.warning("ADDM for %s skipped: %s", r["target"], exc.message)
