"""Connection churn: an application opening a session per request instead of keeping a pool.

Every new session is a new server process: fork, authentication, a cold catalog cache - time
no statement and no ASH sample shows (a session is sampled once it runs something, and lives
a few milliseconds). The count is exact (pg_stat_database ``sessions``, PostgreSQL 14+); what
one costs is measured at analysis time on the target itself (``AddmInput.session_setup_s``:
the least of a few fresh sessions' process start to first statement), so the impact is the
range's new sessions times that, next to the DB time the sessions' statements used.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .model import AddmInput, Finding, Recommendation, pct

#: new sessions per second in one database from which opening them is the workload's shape
MIN_RATE_PER_S = 20.0
MIN_SESSIONS = 200


def _who(inp: AddmInput, database: str) -> dict[str, Any]:
    """The application and user most of the database's short-lived sessions came from: pids
    seen in at most two ASH samples of the range."""
    s = inp.samples
    if s.empty or "pid" not in s.columns:
        return {}
    mine = s[s["datname"] == database]
    if mine.empty:
        return {}
    seen = mine.groupby("pid")["sample_time"].nunique()
    short = mine[mine["pid"].isin(seen[seen <= 2].index)]
    if short.empty:
        return {}
    key = short.groupby(["application_name", "usename"], dropna=False)["pid"].nunique()
    (app, user), n = key.idxmax(), int(key.max())
    return {
        "application": app if isinstance(app, str) else None,
        "user": user if isinstance(user, str) else None,
        "short_lived_sessions_sampled": n,
    }


def churn_findings(inp: AddmInput, total: float) -> list[Finding]:
    db = inp.databases
    if db.empty or "sessions" not in db.columns or inp.elapsed_s <= 0:
        return []
    out = []
    for r in db.itertuples(index=False):
        n = float(r.sessions) if r.sessions is not None and not pd.isna(r.sessions) else 0.0
        name = r.datname if isinstance(r.datname, str) else None
        rate = n / inp.elapsed_s
        if name is None or n < MIN_SESSIONS or rate < MIN_RATE_PER_S:
            continue
        setup = inp.session_setup_s
        cost = n * setup if setup is not None else None
        impact = float(cost) if cost is not None else 0.0
        who = _who(inp, name)
        src = f" (most from {who['application'] or '?'} as {who['user'] or '?'})" if who else ""
        title = (
            f"Connection churn in database {name}: {rate:,.0f} new sessions per second"
            f"{src}, each a new server process"
        )
        if setup is not None:
            title += f" (~{setup * 1000:.1f} ms to start: {impact:.1f} s of server time)"
        out.append(
            Finding(
                type="connection_churn",
                title=title,
                impact_db_time_s=impact,
                impact_pct=pct(impact, total + impact),
                basis="snapshot",
                evidence={
                    "database": name,
                    "new_sessions": int(n),
                    "per_second": round(rate, 1),
                    "session_setup_ms": round(setup * 1000, 2) if setup is not None else None,
                    "session_setup_measured": "at analysis time, on the target: the least of 3 "
                    "fresh sessions' process start to first statement"
                    if setup is not None
                    else "not measured (target not reachable): the impact is not estimated",
                    "sessions_fatal": int(getattr(r, "sessions_fatal", 0) or 0),
                    "connections_now": int(r.numbackends or 0)
                    if getattr(r, "numbackends", None) is not None and not pd.isna(r.numbackends)
                    else None,
                    **({"source": who} if who else {}),
                },
                objects=[f"database {name}"],
                recommendations=[
                    Recommendation(
                        "application",
                        "Keep connections open in a pool: the application's own (HikariCP, "
                        "psycopg_pool, SQLAlchemy's pool, ...) or PgBouncer in transaction "
                        f"mode in front of database {name}",
                        f"{int(n):,} sessions were opened in {inp.elapsed_s:.0f} s; each costs "
                        "the server a process, authentication and a cold catalog cache before "
                        "it runs anything, and a pool pays that once per connection.",
                        impact if cost is not None else None,
                        pct(impact, total + impact) if cost is not None else None,
                    ),
                    Recommendation(
                        "setting",
                        "ALTER SYSTEM SET log_connections = on; SELECT pg_reload_conf();",
                        "Names the clients opening them (host, user, application) in the "
                        "server log, if the application is not known.",
                        None,
                        None,
                    ),
                ],
            )
        )
    return out
