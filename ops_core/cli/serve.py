"""`opscore serve`: all scheduled flows in one process."""

from __future__ import annotations

import typer

from .common import console, example


def every(seconds: float) -> str:
    """A schedule interval as a person says it: every 15 min, every 30 s, every 2 h, daily."""
    s = round(seconds)
    if s == 86400:
        return "daily"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size and s % size == 0:
            return f"every {s // size} {unit}"
    return f"every {s} s"


def describe_schedule(schedule: object) -> str:
    """An interval schedule as "every 15 min", a cron one as "cron '*/10 * * * *'"."""
    interval = getattr(schedule, "interval", None)
    if interval is not None:
        secs = interval.total_seconds() if hasattr(interval, "total_seconds") else interval
        return every(float(secs))
    cron = getattr(schedule, "cron", None)
    if cron:
        tz = getattr(schedule, "timezone", None)
        return f"cron '{cron}'" + (f" ({tz})" if tz and tz != "UTC" else "")
    rrule = getattr(schedule, "rrule", None)
    return f"rrule '{rrule}'" if rrule else str(schedule)


def register(root: typer.Typer) -> None:
    @root.command(
        "serve",
        epilog=example(
            "opscore serve",
            "PREFECT_API_URL=http://127.0.0.1:4200/api opscore serve --target prod",
            "OPSCORE_SNAPSHOT_CRON='*/10 * * * *' opscore serve",
        ),
    )
    def serve(
        target: list[str] = typer.Option(
            None, "--target", "-t", help="Only these targets (repeatable); default all."
        ),
        check: bool = typer.Option(
            False, "--check", help="Validate and list the deployments, then exit."
        ),
        fleet: bool = typer.Option(
            False,
            "--fleet",
            help="ASH of every target from one sampler run (one process), not one run each.",
        ),
    ) -> None:
        """Run the snapshot, ASH, retention (and other) flows on their schedules in this
        process; watch them in the Prefect UI. Ctrl-C stops cleanly."""
        from flows.serve import build_deployments, serve

        deployments = build_deployments(targets=target or None, fleet=fleet)
        for d in deployments:
            sched = ", ".join(describe_schedule(s.schedule) for s in d.schedules or [])
            console.print(f"  {d.flow_name}/{d.name}: {sched or 'no schedule'}", highlight=False)
        if check:
            return
        try:
            serve(targets=target or None, fleet=fleet)
        except KeyboardInterrupt:
            console.print("Stopped.")

    @root.command(
        "deploy",
        epilog=example(
            "opscore deploy --pool opscore --check",
            "PREFECT_API_URL=http://prefect:4200/api opscore deploy --pool opscore --shards 4",
            "prefect worker start -p opscore -q shard-0   # on each machine, its shard",
            "opscore deploy --pool opscore --shard-tag env   # one shard per env tag value",
        ),
    )
    def deploy(
        pool: str = typer.Option(
            ...,
            "--pool",
            help="Prefect work pool (created as a process "
            "pool if missing; Docker/Kubernetes pools work the same).",
        ),
        shards: int = typer.Option(1, "--shards", help="Split the targets into K shards."),
        shard_tag: str = typer.Option(
            None,
            "--shard-tag",
            help="One shard per value of this target tag (e.g. env: env-prod, env-test; "
            "targets without it in env-untagged). See `opscore target tag`.",
        ),
        target: list[str] = typer.Option(
            None, "--target", "-t", help="Only these targets (repeatable); default all."
        ),
        check: bool = typer.Option(
            False, "--check", help="Show the shards and deployments, create nothing."
        ),
    ) -> None:
        """Create the ASH (one sampler process per shard) and snapshot deployments of every
        target on a Prefect work pool, targets split into shards by a stable hash of their
        name (or by the value of a tag); each shard has its own work queue, run by `prefect
        worker start -p POOL -q SHARD` on any machine. A shard left without targets (a target
        retagged or removed) has its deployments removed."""
        from flows.serve import deploy as do_deploy
        from flows.serve import shard_deployments

        if check:
            planned = [
                info
                for info, _ in shard_deployments(pool, shards, target or None, by_tag=shard_tag)
            ]
        else:
            planned = do_deploy(pool, shards, target or None, by_tag=shard_tag)
        for info in planned:
            if info.removed:
                console.print(
                    f"  {info.shard}: no target left, deployments removed: "
                    f"{', '.join(info.deployments)}",
                    highlight=False,
                )
                continue
            console.print(
                f"  {info.shard} (queue {info.work_queue}): {len(info.targets)} target(s): "
                f"{', '.join(info.targets[:8])}{' ...' if len(info.targets) > 8 else ''}",
                highlight=False,
            )
            for d in info.deployments:
                console.print(f"    {d}", highlight=False)
        if not check:
            console.print(
                f"Deployed on work pool {pool!r}. Start a worker per machine: "
                f"prefect worker start -p {pool} -q shard-N (or without -q for every shard).",
                highlight=False,
            )
