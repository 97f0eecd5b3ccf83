"""ASH sampling as a long-running flow: samples for a window, then its schedule starts the
next window (so a sampler that dies is restarted by the schedule)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from ops_core import api
from ops_core.signals import stop_on_signals

from .common import artifact_key, publish_markdown


@flow(
    name="ash",
    description="Sample pg_stat_activity of a target at 1 Hz for a window "
    "(default 15 minutes); flushes on cancel.",
)
def ash_flow(target: str, duration_s: float = 900.0, interval_s: float | None = None) -> dict:
    logger = get_run_logger()
    api.get_target(target)

    def flushed(stats) -> None:
        logger.info(
            "ASH %s: %s samples, %s rows written, last sample %s",
            target,
            stats.samples,
            stats.rows_written,
            stats.last_sample_time,
        )

    # a cancelled run (SIGTERM), an interrupt (SIGINT), or the worker that started this run
    # gone (its process killed): stop, flush, release
    with stop_on_signals(watch_parent=True) as stop:
        # the previous window's sampler may still be flushing: wait for its lease a little
        stats = api.run_ash(
            target,
            duration_s=duration_s,
            interval_s=interval_s,
            stop=stop,
            on_flush=flushed,
            lease_wait_s=60.0,
        )
    if stats.errors:
        logger.warning(
            "ASH %s: %s sampling errors, last: %s", target, stats.errors, stats.last_error
        )
    publish_markdown(
        artifact_key("ash", target),
        f"**ASH {target}**: {stats.samples} samples, {stats.rows_written} session rows written, "
        f"last sample {stats.last_sample_time}, {stats.errors} errors"
        + (f" (last: {stats.last_error})" if stats.last_error else ""),
        f"ASH window of {target}",
    )
    return stats.as_dict()


@flow(
    name="ash-fleet",
    description="Sample pg_stat_activity of many targets (default: all) at 1 Hz from this one "
    "process for a window (default 15 minutes); one connection per target, one COPY per flush.",
)
def ash_fleet_flow(
    targets: list[str] | None = None,
    duration_s: float = 900.0,
    interval_s: float | None = None,
    mode: str = "burst",
) -> dict:
    logger = get_run_logger()

    def flushed(stats) -> None:
        logger.info(
            "ASH fleet: %s targets, %s samples, %s rows written in %s COPY, skew p99 %s ms",
            len(stats.targets),
            stats.samples,
            stats.rows_written,
            stats.copies,
            None if stats.skew(0.99) is None else round(stats.skew(0.99)),
        )

    # a cancelled run (SIGTERM), an interrupt (SIGINT), or the worker that started this run
    # gone (a Prefect process worker does not signal its runs when it stops; killed, it leaves
    # them orphaned): stop at the next tick, flush and release the leases
    with stop_on_signals(watch_parent=True) as stop:
        # the previous window's sampler may still be flushing: wait for its leases a little
        stats = api.run_ash_fleet(
            targets or None,
            duration_s=duration_s,
            interval_s=interval_s,
            mode=mode,
            stop=stop,
            on_flush=flushed,
            lease_wait_s=60.0,
        )
    lines = [
        "| target | state | samples | rows | errors | last error |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in stats.targets.items():
        lines.append(
            f"| {name} | {t.state} | {t.samples} | {t.rows_written} | {t.errors} | "
            f"{t.last_error or ''} |"
        )
        if t.errors:
            logger.warning("ASH %s: %s errors, last: %s", name, t.errors, t.last_error)
    publish_markdown(
        artifact_key("ash-fleet", *(sorted(stats.targets)[:1] or ["all"]), str(len(stats.targets))),
        "\n".join(lines),
        f"ASH window of {len(stats.targets)} targets from one process",
    )
    return stats.as_dict()
