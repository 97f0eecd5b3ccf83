"""The demo: the embedded server as a monitored target, ready to look at."""

from __future__ import annotations

from typing import Any

import psycopg

from .. import repository
from ..collectors.live import create_plan_role
from ..errors import NotSupported
from ..repository import targets as repo_targets
from ..targets.embedded import EmbeddedServer
from .system import embedded_server, init_repository
from .targets import Target

__all__ = [
    "DEMO_TARGET",
    "DEMO_DATABASE",
    "ensure_demo_target",
    "prepare_demo_schema",
    "injected_vs_found",
]

DEMO_TARGET = "demo"
DEMO_DATABASE = "opscore_demo"


def prepare_embedded_database(server: EmbeddedServer, dbname: str) -> str:
    """Create a database on the embedded server with pg_stat_statements and the least-privilege
    planning role; return its DSN (only opscore's own embedded server: a target registered by a
    user is never changed)."""
    dsn = server.ensure_database(dbname)
    # plans on the embedded (superuser) target are made under the least-privilege role
    with psycopg.connect(dsn, autocommit=True, application_name="opscore-admin") as conn:
        create_plan_role(conn)
    return dsn


def ensure_demo_target() -> Target:
    """Start the embedded server, create the repository and the demo database, register the
    target ``demo``. Idempotent."""
    from ..config import get_settings

    if get_settings().repository_dsn:
        # the demo target lives on the embedded server even when the repository is elsewhere
        pass
    init_repository()
    server = embedded_server()
    dsn = prepare_embedded_database(server, DEMO_DATABASE)
    with repository.session() as repo:
        for t in repo_targets.all_targets(repo):
            if t.name == DEMO_TARGET:
                if not t.embedded:
                    raise NotSupported(
                        f"A target named {DEMO_TARGET!r} exists and is not the embedded server.",
                        "Remove or rename it (`opscore target remove demo`) to run the demo.",
                    )
                if t.dsn != dsn:  # the embedded server moved (new port): follow it
                    repo_targets.set_dsn(repo, t.target_id, dsn)
                    t.dsn = dsn
                return t
        return repo_targets.insert(repo, DEMO_TARGET, dsn, "none", embedded=True)


def prepare_demo_schema(scale: int = 1) -> str:
    """Create and load the shop schema (``demo``) in the demo database; return its name."""
    from ..workload.schema import setup_shop_schema

    target = ensure_demo_target()
    setup_shop_schema(target.dsn, scale)
    return "demo"


#: the ADDM finding that names each injectable fault's cause (faults not listed: by name)
FAULT_FINDING = {"cpu_hog": "cpu_bound_sql", "seq_scan_io": "io_bound_sql",
                 "connection_storm": "connection_saturation"}  # fmt: skip


def injected_vs_found(faults: list[dict[str, Any]], findings: list[Any]) -> list[dict[str, Any]]:
    """For each injected fault (``fault``, ``objects``, ``roles`` as the demo records them), the
    ADDM finding that names it: same cause, and one of its objects or sessions (the holder of
    an idle transaction, the table and column of a missing index); ``finding`` None when ADDM
    did not name it."""
    out = []
    for f in faults:
        want = FAULT_FINDING.get(f["fault"], f["fault"])
        objects = set(f.get("objects") or [])
        pids = {p for ps in (f.get("roles") or {}).values() for p in ps}
        named = [
            x
            for x in findings
            if x.type == want and (objects & set(x.objects) or pids & set(x.sessions))
        ]
        # what identifies it: the sessions holding others up, the table.column of an index
        ids = [f"{r} pid {', '.join(map(str, ps))}" for r, ps in (f.get("roles") or {}).items()
               if r == "holder"] + [o for o in objects if o.count(".") == 2]  # fmt: skip
        label = ", ".join(ids) or ", ".join(sorted(objects)[:2])
        out.append({**f, "expected": want, "label": label, "finding": named[0] if named else None})
    return out
