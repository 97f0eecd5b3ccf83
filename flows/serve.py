"""The deployments `opscore serve` runs in one process, built from settings and validated
before anything starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from prefect.deployments.runner import RunnerDeployment

from ops_core import api
from ops_core.backup.schedule import parse_when
from ops_core.config import Settings, get_settings
from ops_core.errors import ConfigError, InvalidInput

from .alerts import alerts_flow
from .ash import ash_fleet_flow, ash_flow
from .autonomous import healing_flow, indexing_flow, tuning_flow
from .backup import backup_deployments
from .ml import ml_retrain_flow
from .quotas import quotas_flow
from .reports import reports_flow
from .retention import retention_flow
from .snapshot import snapshot_flow
from .sqltune import sqlmon_keep_flow, sqltune_top_flow


def validate_cron(expr: str, setting: str) -> str:
    """A 5-field cron expression (the one validator opscore has: backup schedules use it too)."""
    try:
        spec = parse_when(setting, expr)
    except InvalidInput as exc:
        raise ConfigError(
            f"Invalid cron expression for {setting}: {exc.message}",
            f"{exc.hint} Set OPSCORE_{setting.upper()}.",
        ) from None
    if "cron" not in spec:
        raise ConfigError(
            f"Invalid cron expression for {setting}: {expr!r} is an interval.",
            f"Give a 5-field cron expression in OPSCORE_{setting.upper()}.",
        )
    return expr


def validate_minutes(value: int, setting: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"Invalid interval {value!r} for {setting}: it must be a whole "
            "number of minutes, at least 1.",
            f"Set OPSCORE_{setting.upper()}.",
        )
    return value


def build_deployments(
    settings: Settings | None = None, targets: list[str] | None = None, *, fleet: bool = False
) -> list[RunnerDeployment]:
    """Every deployment with its schedule. Raises ConfigError / UnknownTarget on bad input,
    before anything is served. With ``fleet`` the targets' ASH is one ``ash-fleet`` run
    sampling all of them from one process, instead of one run (one thread, two connections)
    per target."""
    s = settings or get_settings()
    names = targets if targets is not None else s.serve_targets
    for name in names:
        api.get_target(name)
    if not names:
        names = [t.name for t in api.list_targets()]
    scoped = list(names) if (targets or s.serve_targets) else None
    deployments: list[RunnerDeployment] = []

    if s.snapshot_cron:
        snap_sched = {"cron": validate_cron(s.snapshot_cron, "snapshot_cron")}
    else:
        minutes = validate_minutes(s.snapshot_interval_minutes, "snapshot_interval_minutes")
        snap_sched = {"interval": timedelta(minutes=minutes)}
    deployments.append(
        snapshot_flow.to_deployment(
            name="snapshot",
            parameters={"targets": scoped},
            tags=["opscore", "awr"],
            description="AWR snapshot of every target",
            **snap_sched,
        )
    )

    window = validate_minutes(s.ash_window_minutes, "ash_window_minutes")
    if fleet:
        deployments.append(ash_fleet_deployment(scoped, window))
    for name in names if not fleet else []:
        deployments.append(
            ash_flow.to_deployment(
                name=f"ash-{name}",
                interval=timedelta(minutes=window),
                parameters={"target": name, "duration_s": window * 60 - 5},
                concurrency_limit=1,
                tags=["opscore", "ash"],
                description=f"ASH sampler of {name}, restarted every {window} minutes",
            )
        )

    deployments.append(
        reports_flow.to_deployment(
            name="reports",
            cron=validate_cron(s.report_cron, "report_cron"),
            parameters={"targets": scoped},
            tags=["opscore", "reports"],
            description="Daily AWR and ASH HTML reports of every target",
        )
    )
    deployments.extend(backup_deployments(list(names)))
    deployments.append(
        alerts_flow.to_deployment(
            name="alerts",
            interval=timedelta(
                minutes=validate_minutes(s.alert_interval_minutes, "alert_interval_minutes")
            ),
            concurrency_limit=1,
            tags=["opscore", "alerts"],
            description="Evaluate alert rules and notify",
        )
    )
    deployments.append(
        quotas_flow.to_deployment(
            name="quotas",
            interval=timedelta(
                minutes=validate_minutes(s.alert_interval_minutes, "alert_interval_minutes")
            ),
            concurrency_limit=1,
            tags=["opscore", "quotas"],
            description="Measure quotas, enforce hard limits where allowed, revert when back under",
        )
    )
    deployments.append(
        retention_flow.to_deployment(
            name="retention",
            cron=validate_cron(s.retention_cron, "retention_cron"),
            tags=["opscore", "retention"],
            description="Purge old snapshots, ASH and reports",
        )
    )
    deployments.append(
        ml_retrain_flow.to_deployment(
            name="ml-retrain",
            cron=validate_cron(s.ml_retrain_cron, "ml_retrain_cron"),
            parameters={"targets": scoped},
            tags=["opscore", "ml"],
            description="Daily retrain of the anomaly models, detection over the last day",
        )
    )
    deployments.append(
        healing_flow.to_deployment(
            name="self-healing",
            interval=timedelta(
                minutes=validate_minutes(s.healing_interval_minutes, "healing_interval_minutes")
            ),
            parameters={"targets": scoped},
            concurrency_limit=1,
            tags=["opscore", "autonomous"],
            description="Self-healing checks, acting as each target's mode allows",
        )
    )
    deployments.append(
        healing_flow.to_deployment(
            name="corruption-check",
            cron=validate_cron(s.corruption_check_cron, "corruption_check_cron"),
            parameters={"targets": scoped, "corruption": True},
            concurrency_limit=1,
            tags=["opscore", "autonomous"],
            description="Weekly B-tree corruption check (amcheck) of every target",
        )
    )
    deployments.append(
        tuning_flow.to_deployment(
            name="self-tuning",
            cron=validate_cron(s.tuning_cron, "tuning_cron"),
            parameters={"targets": scoped},
            concurrency_limit=1,
            tags=["opscore", "autonomous"],
            description="Judge parameter trials (roll back what hurt), apply recommendations",
        )
    )
    deployments.append(
        sqltune_top_flow.to_deployment(
            name="sqltune-top",
            cron=validate_cron(s.sqltune_cron, "sqltune_cron"),
            parameters={"targets": scoped, "top": s.sqltune_top},
            concurrency_limit=1,
            tags=["opscore", "sqltune"],
            description=f"SQL Tuning Advisor on the top {s.sqltune_top} statements of the day",
        )
    )
    deployments.append(
        sqlmon_keep_flow.to_deployment(
            name="sqlmon-keep",
            interval=timedelta(
                minutes=validate_minutes(s.sqlmon_keep_minutes, "sqlmon_keep_minutes")
            ),
            parameters={"targets": scoped},
            concurrency_limit=1,
            tags=["opscore", "sqlmon"],
            description="Keep SQL Monitor executions sampled by ASH; apply their retention",
        )
    )
    deployments.append(
        indexing_flow.to_deployment(
            name="auto-indexing",
            cron=validate_cron(s.indexing_cron, "indexing_cron"),
            parameters={"targets": scoped},
            concurrency_limit=1,
            tags=["opscore", "autonomous"],
            description="Auto-indexing cycle: verify/drop own indexes, choose and build new ones",
        )
    )
    return deployments


def ash_fleet_deployment(
    targets: list[str] | None, window_minutes: int, name: str = "ash-fleet", **kw: Any
) -> RunnerDeployment:
    """The ASH of many targets from one process, one window per run, restarted by its
    schedule (the next window waits for the previous one's leases). In one process
    (``opscore serve``) a concurrency limit of 1 keeps windows apart; on a work pool
    (``kw`` holds the pool) the leases alone do: a run whose worker died can stay "Running"
    on the server and would hold a concurrency slot, stopping the shard's next windows."""
    limit = None if kw.get("work_pool_name") else 1
    return ash_fleet_flow.to_deployment(
        name=name,
        interval=timedelta(minutes=window_minutes),
        parameters={"targets": targets, "duration_s": window_minutes * 60 - 5},
        concurrency_limit=limit,
        tags=["opscore", "ash"],
        description=f"ASH of {len(targets) if targets else 'every'} target(s) from one process, "
        f"restarted every {window_minutes} minutes",
        **kw,
    )


def serve(
    settings: Settings | None = None, targets: list[str] | None = None, *, fleet: bool = False
) -> None:
    """Serve every deployment in this process until Ctrl-C (Prefect's `serve`)."""
    from prefect import serve as prefect_serve

    deployments = build_deployments(settings, targets, fleet=fleet)
    try:
        # schedules paused on shutdown: no run turns "Late" while nothing serves them (the
        # next `opscore serve` applies the deployments again, un-paused)
        prefect_serve(*deployments, pause_on_shutdown=True)
    finally:
        settle_runs([f"{d.flow_name}/{d.name}" for d in deployments])


@dataclass
class ShardDeployment:
    """What `opscore deploy` created for one shard: its work queue and deployments."""

    shard: str
    work_queue: str
    targets: list[str]
    deployments: list[str] = field(default_factory=list)
    #: a shard of an earlier deploy left without targets: its deployments were removed
    removed: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def shard_deployments(
    pool: str,
    shards: int = 1,
    targets: list[str] | None = None,
    settings: Settings | None = None,
    prefix: str = "",
    *,
    by_tag: str | None = None,
) -> list[tuple[ShardDeployment, list[RunnerDeployment]]]:
    """The deployments of each shard on work pool ``pool``: per shard an ``ash-fleet`` window
    and a ``snapshot`` of its targets, on the shard's own work queue (``prefect worker start
    -p POOL -q shard-N`` runs that share; a worker without ``-q`` runs every shard). The
    entrypoints are module paths (``flows.ash:...``): a worker runs them wherever opscore is
    installed, in a process, Docker or Kubernetes pool alike. With ``by_tag`` the shards are
    the values of that target tag (``env-prod`` ...) instead of a hash of the name."""
    from prefect.types.entrypoint import EntrypointType

    s = settings or get_settings()
    if not pool or not pool.strip():
        raise InvalidInput("The work pool name is empty.", "Give --pool NAME.")
    if not 1 <= shards <= 1000:
        raise InvalidInput(f"The number of shards must be from 1 to 1000, not {shards}.")
    window = validate_minutes(s.ash_window_minutes, "ash_window_minutes")
    minutes = validate_minutes(s.snapshot_interval_minutes, "snapshot_interval_minutes")
    split = api.shard_targets(shards, targets, by_tag=by_tag)
    out = []
    for shard, names in split.items():
        if not names:
            continue
        kw = {
            "work_pool_name": pool,
            "work_queue_name": shard,
            "entrypoint_type": EntrypointType.MODULE_PATH,
        }
        deps = [
            ash_fleet_deployment(names, window, name=f"{prefix}ash-{shard}", **kw),
            snapshot_flow.to_deployment(
                name=f"{prefix}snapshot-{shard}",
                interval=timedelta(minutes=minutes),
                parameters={"targets": names},
                tags=["opscore", "awr"],
                description=f"AWR snapshot of the {len(names)} target(s) of {shard}",
                **kw,
            ),
        ]
        info = ShardDeployment(shard, shard, names, [f"{d.flow_name}/{d.name}" for d in deps])
        out.append((info, deps))
    return out


def deploy(
    pool: str,
    shards: int = 1,
    targets: list[str] | None = None,
    settings: Settings | None = None,
    prefix: str = "",
    *,
    by_tag: str | None = None,
) -> list[ShardDeployment]:
    """Create (or update) the shards' deployments on work pool ``pool`` of the Prefect API
    (PREFECT_API_URL), creating the pool (type process) and its queues when missing. The
    shard deployments of an earlier deploy (same ``prefix``) whose shard has no target now
    (retagged, removed, fewer shards) are deleted, so no worker samples a target twice or a
    target that moved; they are returned with ``removed`` set."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    planned = shard_deployments(pool, shards, targets, settings, prefix, by_tag=by_tag)
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        for info, deps in planned:
            try:
                client.read_work_queue_by_name(info.work_queue, work_pool_name=pool)
            except ObjectNotFound:
                client.create_work_queue(info.work_queue, work_pool_name=pool)
            for d in deps:
                d.apply(work_pool_name=pool)
        keep = {name for info, _ in planned for name in info.deployments}
        removed = _remove_stale_shards(client, pool, prefix, keep)
    return [info for info, _ in planned] + removed


def _remove_stale_shards(client: Any, pool: str, prefix: str, keep: set[str]) -> list:
    """Delete this deploy's shard deployments on ``pool`` (flows ash-fleet and snapshot, names
    ``{prefix}ash-*`` / ``{prefix}snapshot-*``) that are not in ``keep``."""
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    found = client.read_deployments(
        work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool]))
    )
    flows: dict = {}
    stale: dict[str, list[str]] = {}
    for dep in found:
        if dep.flow_id not in flows:
            flows[dep.flow_id] = client.read_flow(dep.flow_id).name
        flow = flows[dep.flow_id]
        for kind, flow_name in (("ash-", "ash-fleet"), ("snapshot-", "snapshot")):
            if flow == flow_name and dep.name.startswith(prefix + kind):
                full = f"{flow}/{dep.name}"
                if full not in keep:
                    client.delete_deployment(dep.id)
                    stale.setdefault(dep.name[len(prefix + kind) :], []).append(full)
    return [
        ShardDeployment(shard, shard, [], sorted(names), removed=True)
        for shard, names in sorted(stale.items())
    ]


def settle_runs(deployment_names: list[str], reason: str | None = None) -> list[str]:
    """After serve stopped (Ctrl-C, SIGTERM, a crash): every run of these deployments still
    Running or Pending ends Crashed (nothing runs it any more; the Prefect UI must not show it
    running for ever), and their Scheduled runs are deleted (they would turn Late; the next
    serve schedules anew). Returns the ids of the runs it changed; never raises (the API may
    be gone with the process)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    changed: list[str] = []
    message = reason or "opscore serve stopped while this run was in progress"
    try:
        with get_client(sync_client=True) as client:
            ids = []
            for name in deployment_names:
                try:
                    ids.append(client.read_deployment_by_name(name).id)
                except Exception:  # noqa: BLE001 - never applied: nothing to settle
                    continue
            if not ids:
                return changed
            deps = DeploymentFilter(id=DeploymentFilterId(any_=ids))

            def runs(*types: StateType):
                return client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(types)))
                    ),
                    deployment_filter=deps,
                )

            for run in runs(StateType.RUNNING, StateType.PENDING):
                client.set_flow_run_state(run.id, Crashed(message=message), force=True)
                changed.append(str(run.id))
            for run in runs(StateType.SCHEDULED):
                client.delete_flow_run(run.id)
                changed.append(str(run.id))
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass
    return changed
