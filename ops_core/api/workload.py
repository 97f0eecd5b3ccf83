"""Workloads and fault injection against a target (writes to it: an explicit action).

Thin over :mod:`ops_core.workload`: resolve the DSN, run, return the driver's or the fault's
own result objects.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InvalidInput
from ..targets.connection import parse_dsn
from ..workload import driver, faults
from ..workload.fault_base import FaultInfo
from ..workload.sessions import DEFAULT_APPLICATION_NAME
from .targets import get_target, target_dsn

__all__ = [
    "FaultSpec",
    "FaultInfo",
    "FaultRun",
    "list_faults",
    "workload_dsn",
    "run_workload",
    "inject_fault",
    "WORKLOAD_KINDS",
]

WORKLOAD_KINDS = ("shop", "pgbench")


@dataclass
class FaultSpec:
    name: str
    description: str
    server_wide: bool  # always needs allow_server_changes
    server_wide_when: str  # or only in this case
    doc: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class FaultRun:
    """What an injected fault did, and the background load that ran around it (if any)."""

    info: FaultInfo
    load: driver.ShopResult | None = None

    def as_dict(self) -> dict:
        return {"fault": self.info.as_dict(), "load": self.load.as_dict() if self.load else None}


def list_faults() -> list[FaultSpec]:
    """The fault injectors, with what each one does."""
    out = []
    for name, cls in faults.FAULTS.items():
        doc = " ".join((cls.__doc__ or "").split())
        out.append(FaultSpec(name, cls.description, cls.server_wide, cls.server_wide_when, doc))
    return out


def workload_dsn(target: str | None = None, dsn: str | None = None) -> str:
    """The DSN to drive load with: ``dsn`` if given, else the registered target's (which must
    then be a role allowed to write, e.g. the embedded demo target)."""
    if dsn:
        parse_dsn(dsn)
        return dsn
    if target:
        return target_dsn(get_target(target))
    raise InvalidInput(
        "No target and no DSN given.", "Give --target NAME (a registered target) or --dsn DSN."
    )


def run_workload(
    target: str | None = None,
    *,
    dsn: str | None = None,
    kind: str = "shop",
    duration_s: float = 10,
    clients: int = 2,
    scale: int = 1,
    rate: float | None = None,
    seed: int = 1,
    application_name: str = DEFAULT_APPLICATION_NAME,
    on_progress: Callable[[Any], None] | None = None,
) -> driver.ShopResult | driver.PgbenchResult:
    """Run the shop mix or pgbench (initialised at ``scale`` when its tables are missing)."""
    if kind not in WORKLOAD_KINDS:
        raise InvalidInput(
            f"Unknown workload kind {kind!r}.", "Use one of: " + ", ".join(WORKLOAD_KINDS)
        )
    url = workload_dsn(target, dsn)
    if kind == "shop":
        return driver.run_shop(
            url,
            duration_s=duration_s,
            clients=clients,
            seed=seed,
            scale=scale,
            application_name=application_name,
            on_progress=on_progress,
        )
    if not driver.has_pgbench_tables(url, application_name):
        driver.pgbench_init(url, scale, application_name=application_name)
    return driver.run_pgbench(
        url,
        duration_s=duration_s,
        clients=clients,
        threads=min(clients, 2),
        rate=rate,
        application_name=application_name,
        on_progress=on_progress,
    )


_FAULT_INTERNAL = {
    "self",
    "dsn",
    "allow_server_changes",
    "application_name",
    "max_hold_s",
    "server",
}


def _check_fault_params(cls: type, name: str, params: dict[str, Any]) -> None:
    """Refuse a parameter the fault does not have, or a value of the wrong kind."""
    known: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:  # subclasses pass **kw on to their bases
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for n, p in inspect.signature(init).parameters.items():
            if n not in _FAULT_INTERNAL and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                known.setdefault(n, p)
    for key, value in params.items():
        if key == "server":
            continue
        if key not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise InvalidInput(
                f"The fault {name!r} has no parameter {key!r}.",
                f"Its parameters: {listed} (see `opscore workload faults`).",
            )
        default = known[key].default
        if isinstance(default, int | float) and not isinstance(default, bool):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or value < 0 or value != value:
                raise InvalidInput(
                    f"The fault parameter {key!r} takes a non-negative number.",
                    f"Example: --param {key}={default}",
                )


def inject_fault(
    name: str,
    target: str | None = None,
    *,
    dsn: str | None = None,
    duration_s: float = 10,
    allow_server_changes: bool = False,
    application_name: str = DEFAULT_APPLICATION_NAME,
    on_progress: Callable[[float, list[dict[str, Any]]], None] | None = None,
    background_clients: int = 0,
    **params: Any,
) -> FaultRun:
    """Inject fault ``name`` for ``duration_s`` seconds, then undo it; return what it did.

    With ``background_clients`` the shop mix runs on that many sessions around the fault
    (the healthy load a real system would have), and its result is in ``FaultRun.load``.

    ``on_progress(elapsed_s, activity)`` is called about every second with the
    pg_stat_activity rows of the fault's sessions. On the embedded target, ``seq_scan_io``
    with ``allow_server_changes`` really lowers shared_buffers (restarting the server twice).
    """
    if duration_s <= 0:
        raise InvalidInput("The duration must be positive.", "Example: --duration 30")
    cls = faults.fault_class(name)
    _check_fault_params(cls, name, params)
    url = workload_dsn(target, dsn)
    if cls is faults.SeqScanIO and target and not dsn and allow_server_changes:
        t = get_target(target)
        if t.embedded:
            from .system import embedded_server

            params.setdefault("server", embedded_server())
    fault = cls(
        url,
        allow_server_changes=allow_server_changes,
        application_name=application_name,
        max_hold_s=duration_s + 120,
        **params,
    )
    load = driver.BackgroundShop(url, clients=background_clients) if background_clients else None
    with contextlib.ExitStack() as stack:
        if load is not None:
            stack.enter_context(load)
        stack.enter_context(fault)
        t0 = time.monotonic()  # the fault holds for duration_s once it is in place
        while (elapsed := time.monotonic() - t0) < duration_s:
            time.sleep(min(1.0, duration_s - elapsed))
            if on_progress:
                on_progress(round(time.monotonic() - t0, 1), fault.activity())
    return FaultRun(fault.info, load.result if load is not None else None)
