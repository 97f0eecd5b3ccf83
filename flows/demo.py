"""The demo, run through the same flows production runs: snapshots, ASH, ADDM, reports,
around a realistic load with two injected problems on the embedded server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ops_core import api

from . import reports as reports_module
from .ash import ash_flow
from .reports import reports_flow
from .snapshot import snapshot_flow

Say = Callable[[str], None]


def prefect_server_in_background() -> Callable[[], None]:
    """Start Prefect's temporary API server now, in a thread, when no PREFECT_API_URL names a
    server; returns a wait() to call before the first flow. It takes 30 s to minutes to start
    on a small loaded machine: the demo starts it before the embedded PostgreSQL and the schema
    load instead of under its first flow. Failing here is not fatal: the first flow starts it
    again itself (and says why it cannot)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE

    if PREFECT_API_URL.value() or not PREFECT_SERVER_ALLOW_EPHEMERAL_MODE.value():
        return lambda: None
    from prefect.server.api.server import SubprocessASGIServer

    def start() -> None:
        try:
            SubprocessASGIServer().start()
        except Exception:  # noqa: BLE001 - the first flow retries and reports it
            pass

    thread = threading.Thread(target=start, name="prefect-server", daemon=True)
    thread.start()
    return thread.join


#: the two problems the demo injects, in order: (fault name, what a DBA would call it, its
#: options). Three lookup sessions, not two: the lookups' share of DB time is CPU and shrinks
#: on a busy machine (their clients wait for a core too) while the lock waiters' does not, and
#: with two it came near ADDM's 5 % threshold beside a loaded test suite (7.9 % at load ~6).
DEMO_FAULTS: list[tuple[str, str, dict]] = [
    ("idle_in_transaction", "a session idle in transaction holding row locks others wait for",
     {}),
    ("missing_index", "lookups by an unindexed column on a large table", {"sessions": 3}),
]  # fmt: skip


@dataclass
class DemoPlan:
    healthy_s: float
    fault_s: float
    clients: int

    @classmethod
    def for_mode(cls, quick: bool) -> DemoPlan:
        return cls(healthy_s=6, fault_s=10, clients=2) if quick else cls(60, 60, 3)

    @property
    def load_s(self) -> float:
        return self.healthy_s + self.fault_s * len(DEMO_FAULTS)


@dataclass
class DemoResult:
    target: str
    begin_snapshot: int | None = None
    end_snapshot: int | None = None
    ash: dict[str, Any] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    addm: Any = None
    named: list[dict[str, Any]] = field(default_factory=list)  # injected fault -> ADDM finding
    seconds: float = 0.0


def run_demo(
    quick: bool = False,
    say: Say = print,
    detail: Say | None = None,
    prefect_ready: Callable[[], None] | None = None,
) -> DemoResult:
    """The demo; ``say`` hears each step, ``detail`` (optional) the steps within a step,
    ``prefect_ready`` waits for a Prefect server started early (prefect_server_in_background)."""
    started = time.monotonic()
    plan = DemoPlan.for_mode(quick)
    target = api.ensure_demo_target().name
    result = DemoResult(target)
    say("loading the shop schema (customers, products, orders) into the demo database")
    api.prepare_demo_schema(scale=1)

    if prefect_ready is not None:
        say("waiting for Prefect's temporary API server (started in the background)")
        prefect_ready()
    say("snapshot before the load (snapshot flow)")
    result.begin_snapshot = snapshot_flow(targets=[target])[0]["snapshot_id"]

    ash_out: dict[str, Any] = {}

    def sample() -> None:
        try:
            ash_out.update(ash_flow(target, duration_s=plan.load_s + 4, interval_s=0.5))
        except Exception as exc:  # surfaced after the load
            ash_out["error"] = str(exc)

    sampler = threading.Thread(target=sample, name="demo-ash", daemon=True)
    sampler.start()
    time.sleep(2)  # let the sampler flow start before the load

    say(f"healthy load: {plan.clients} shop clients for {plan.healthy_s:.0f} s")
    api.run_workload(target, kind="shop", duration_s=plan.healthy_s, clients=plan.clients)
    for name, what, options in DEMO_FAULTS:
        say(f"injecting {name} ({what}) for {plan.fault_s:.0f} s under load")
        run = api.inject_fault(
            name, target, duration_s=plan.fault_s, background_clients=plan.clients, **options
        )
        info = run.info
        result.faults.append(
            {
                "fault": name,
                "what": what,
                "objects": list(info.objects),
                "roles": {k: list(v) for k, v in info.roles.items()},
            }
        )
    sampler.join(timeout=plan.load_s + 120)
    result.ash = ash_out
    if "error" in ash_out:
        say(f"ASH sampling failed: {ash_out['error']}")

    say("snapshot after the load, then ADDM on the interval (snapshot flow, chained ADDM flow)")
    result.end_snapshot = snapshot_flow(targets=[target])[0]["snapshot_id"]
    done = next(
        (a for a in api.list_addm(target) if a.end_snapshot_id == result.end_snapshot), None
    )
    result.addm = api.get_addm(done.analysis_id) if done is not None else None

    if result.addm is not None:
        result.named = api.injected_vs_found(result.faults, result.addm.findings)
    minutes = (time.monotonic() - started) / 60 + 1
    reports_module.progress_hook = lambda msg, sub: (detail or say if sub else say)(msg)
    try:
        rendered = reports_flow(
            targets=[target],
            kinds=["awr", "ash", "addm"],
            hours=minutes / 60,
            begin_snapshot=result.begin_snapshot,
            end_snapshot=result.end_snapshot,
        )
    finally:
        reports_module.progress_hook = None
    result.reports = [r["html"] for r in rendered if "html" in r]
    for r in rendered:
        if "error" in r:
            say(f"{r['kind']} report not rendered: {r['error']}")
    result.seconds = round(time.monotonic() - started, 1)
    return result
