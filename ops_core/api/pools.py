"""Connection pools of a target: PgBouncer's pools and stats when the target is reached
through a PgBouncer whose admin console is configured (``set_target_pooler``); in every case
the server's own client connections grouped by database, user, application and state against
max_connections. opscore itself keeps no connection pool (one short session per read)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import psycopg
from psycopg.conninfo import conninfo_to_dict

from .. import repository
from ..collectors import pools as reads
from ..errors import InvalidInput
from ..repository import poolers as store
from .targets import resolve_target, target_session

__all__ = ["ConnectionPools", "connection_pools", "set_target_pooler"]


@dataclass
class ConnectionPools:
    target: str
    pooler: str | None  # pgbouncer, or None when none is configured
    pooler_reachable: bool
    note: str
    max_connections: int
    superuser_reserved: int
    client_connections: int
    connections: pd.DataFrame  # database, user, application_name, state, connections
    pools: pd.DataFrame = field(default_factory=pd.DataFrame)  # SHOW POOLS
    stats: pd.DataFrame = field(default_factory=pd.DataFrame)  # SHOW STATS


def set_target_pooler(target: str, dsn: str | None) -> str | None:
    """The DSN of the PgBouncer admin console in front of a target (dbname pgbouncer, a user in
    admin_users or stats_users; no password in it: pgpass or PGPASSWORD); None removes it."""
    t = resolve_target(target)
    if dsn is not None:
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise InvalidInput(f"The pooler DSN is not valid: {exc}.") from None
        if "password" in params:
            raise InvalidInput(
                "The pooler DSN holds a password; opscore does not store passwords.",
                "Put it in ~/.pgpass (or PGPASSWORD) and give the DSN without it.",
            )
        if params.get("dbname") != "pgbouncer":
            raise InvalidInput(
                "The pooler DSN must name PgBouncer's admin console (dbname=pgbouncer).",
                "e.g. host=10.0.0.5 port=6432 dbname=pgbouncer user=stats",
            )
    with repository.session() as repo:
        store.set_pooler(repo, t.target_id, dsn)
    return dsn


def connection_pools(target: str | None = None) -> ConnectionPools:
    """PgBouncer pools and stats (when configured) and the server's connections by database,
    user, application and state."""
    t = resolve_target(target)
    with repository.session() as repo:
        dsn = store.get_pooler(repo, t.target_id)
    with target_session(t) as conn:
        groups, limits = reads.activity(conn)
    out = ConnectionPools(
        target=t.name,
        pooler=None,
        pooler_reachable=False,
        note="no connection pooler is configured for this target (set_target_pooler); the "
        "server's own connections are shown grouped",
        max_connections=limits["max_connections"],
        superuser_reserved=limits["superuser_reserved"],
        client_connections=limits["client_connections"],
        connections=groups,
    )
    if dsn is None:
        return out
    out.pooler = "pgbouncer"
    try:
        out.pools, out.stats = reads.pgbouncer(dsn)
    except psycopg.Error as exc:
        out.note = f"PgBouncer admin console unreachable: {str(exc).strip()}"
        return out
    out.pooler_reachable = True
    out.note = f"PgBouncer: {len(out.pools)} pools"
    return out
