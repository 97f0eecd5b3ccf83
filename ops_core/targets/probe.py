"""Capability probe: what a target server offers opscore, and what to do where it falls short."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import psycopg

OPTIONAL_VIEWS: list[tuple[str, int, str]] = [
    # (view, first major that has it, what opscore uses it for)
    ("pg_stat_statements", 0, "top SQL, AWR statement deltas"),
    ("pg_stat_statements_info", 140000, "pg_stat_statements deallocations and resets"),
    ("pg_stat_wal", 140000, "WAL volume and write/sync time"),
    ("pg_stat_io", 160000, "I/O by backend type and object"),
    ("pg_stat_checkpointer", 170000, "checkpoint counters (pg_stat_bgwriter before 17)"),
    ("pg_stat_recovery_prefetch", 150000, "recovery prefetch on standbys"),
]


@dataclass
class Check:
    name: str
    status: str  # ok | warn | missing | info
    value: str
    hint: str = ""


@dataclass
class Capabilities:
    version_num: int
    version: str
    database: str
    user: str
    is_superuser: bool
    can_read_all_stats: bool
    in_recovery: bool
    pgss_loaded: bool
    pgss_created: bool
    pgss_version: str | None
    views: dict[str, bool] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def major(self) -> int:
        return self.version_num // 10000

    def has_view(self, name: str) -> bool:
        return self.views.get(name, False)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["major"] = self.major
        return d


TRACKED_SETTINGS = [
    "track_activities",
    "track_counts",
    "track_io_timing",
    "track_wal_io_timing",
    "track_functions",
    "track_activity_query_size",
    "compute_query_id",
    "shared_preload_libraries",
    "wal_level",
    "summarize_wal",
    "archive_mode",
    "pg_stat_statements.max",
    "pg_stat_statements.track",
    "session_preload_libraries",
    "auto_explain.log_min_duration",
    "auto_explain.log_analyze",
    "auto_explain.log_format",
    "logging_collector",
    "log_destination",
]

#: how to let the SQL Monitor show actual plans of finished executions (auto_explain)
AUTO_EXPLAIN_HOW = (
    "Load auto_explain on the target: shared_preload_libraries = "
    "'pg_stat_statements,auto_explain' (restart), or session_preload_libraries = "
    "'auto_explain' (new sessions), and set auto_explain.log_min_duration = '5s' (the SQL "
    "Monitor threshold); auto_explain.log_analyze = on with log_timing = off gives actual rows "
    "at little cost; auto_explain.log_format = json and log_destination csvlog or jsonlog "
    "(logging_collector = on) keep the plan readable from the log."
)


def probe(conn: psycopg.Connection) -> Capabilities:
    """Probe a server through an open (read-only) connection; one round trip per question."""
    row = conn.execute(
        """
        SELECT current_setting('server_version_num')::int,
               current_setting('server_version'),
               current_database(), current_user,
               (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
               pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'),
               pg_is_in_recovery(),
               (SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements')
        """
    ).fetchone()
    assert row is not None
    version_num, version, db, user, superuser, read_all, in_recovery, pgss_version = row
    settings = dict(
        conn.execute(
            "SELECT name, setting || COALESCE(unit, '') FROM pg_settings WHERE name = ANY(%s)",
            (TRACKED_SETTINGS,),
        ).fetchall()
    )
    # setting values with units: track_activity_query_size is reported in bytes ('B')
    preload = [p.strip() for p in settings.get("shared_preload_libraries", "").split(",")]
    pgss_loaded = "pg_stat_statements" in preload
    names = [v for v, _, _ in OPTIONAL_VIEWS]
    present = {
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = ANY(%s) AND c.relkind IN ('v', 'r')",
            (names,),
        ).fetchall()
    }
    caps = Capabilities(
        version_num=version_num,
        version=version,
        database=db,
        user=user,
        is_superuser=bool(superuser),
        can_read_all_stats=bool(superuser or read_all),
        in_recovery=bool(in_recovery),
        pgss_loaded=pgss_loaded,
        pgss_created=pgss_version is not None,
        pgss_version=pgss_version,
        views={v: v in present for v in names},
        settings=settings,
    )
    caps.checks = _checks(caps)
    return caps


def _checks(c: Capabilities) -> list[Check]:
    out: list[Check] = []
    supported = 14 <= c.major <= 18
    out.append(
        Check(
            "server version",
            "ok" if supported else "warn",
            c.version,
            ""
            if supported
            else "opscore supports PostgreSQL 14 to 18; other versions may miss views or columns.",
        )
    )
    out.append(
        Check(
            "statistics privileges",
            "ok" if c.can_read_all_stats else "missing",
            "superuser"
            if c.is_superuser
            else (
                "pg_read_all_stats" if c.can_read_all_stats else f"role {c.user} lacks pg_monitor"
            ),
            ""
            if c.can_read_all_stats
            else f"GRANT pg_monitor TO {c.user}; (without it, other "
            "users' queries and wait events are hidden)",
        )
    )
    out.append(
        Check(
            "pg_stat_statements loaded",
            "ok" if c.pgss_loaded else "missing",
            "yes" if c.pgss_loaded else "no",
            ""
            if c.pgss_loaded
            else "Add pg_stat_statements to shared_preload_libraries and "
            "restart the server (top SQL and AWR statement sections need it).",
        )
    )
    out.append(
        Check(
            "pg_stat_statements extension",
            "ok" if c.pgss_created else "missing",
            f"version {c.pgss_version}" if c.pgss_created else f"not created in {c.database}",
            ""
            if c.pgss_created
            else f"CREATE EXTENSION pg_stat_statements; in database "
            f"{c.database} (needs a superuser or a trusted-extension owner).",
        )
    )
    for view, since, use in OPTIONAL_VIEWS:
        if view == "pg_stat_statements":
            continue
        have = c.views.get(view, False)
        if have:
            out.append(Check(f"view {view}", "ok", "present"))
        elif c.version_num < since:
            out.append(
                Check(
                    f"view {view}",
                    "info",
                    f"not in PostgreSQL {c.major}",
                    f"Needs PostgreSQL {since // 10000}+; {use} will be reported as not available.",
                )
            )
        else:
            out.append(Check(f"view {view}", "warn", "absent", f"Expected on {c.major}: {use}."))
    wanted = {
        "track_counts": ("on", "Table and index statistics need it: SET track_counts = on."),
        "track_activities": ("on", "ASH needs it: ALTER SYSTEM SET track_activities = on."),
        "track_io_timing": (
            "on",
            "I/O times in AWR need it: ALTER SYSTEM SET track_io_timing "
            "= on; SELECT pg_reload_conf(); (measure timer overhead with "
            "pg_test_timing first).",
        ),
        "compute_query_id": (
            "on|auto",
            "ASH can only link sessions to statements with "
            "query ids: ALTER SYSTEM SET compute_query_id = on;",
        ),
    }
    if c.major >= 14:
        wanted["track_wal_io_timing"] = (
            "on",
            "WAL write/sync times need it: ALTER SYSTEM SET "
            "track_wal_io_timing = on; SELECT pg_reload_conf();",
        )
    for name, (want, hint) in wanted.items():
        value = c.settings.get(name, "")
        ok = value in want.split("|")
        if name == "compute_query_id" and value == "auto" and not c.pgss_loaded:
            ok = False
        out.append(
            Check(f"setting {name}", "ok" if ok else "warn", value or "?", "" if ok else hint)
        )
    out.append(_auto_explain(c))
    size = c.settings.get("track_activity_query_size", "1024B").rstrip("B")
    try:
        nbytes = int(size)
    except ValueError:
        nbytes = 1024
    out.append(
        Check(
            "setting track_activity_query_size",
            "ok" if nbytes >= 4096 else "warn",
            f"{nbytes} bytes",
            ""
            if nbytes >= 4096
            else "Query texts in ASH are cut at this length: "
            "ALTER SYSTEM SET track_activity_query_size = 16384; (needs a restart).",
        )
    )
    return out


def _auto_explain(c: Capabilities) -> Check:
    """auto_explain gives the SQL Monitor the actual plans of finished slow executions (read
    from the server log): informational, opscore works without it."""
    libs = ",".join(
        c.settings.get(k, "") for k in ("shared_preload_libraries", "session_preload_libraries")
    )
    dur = c.settings.get("auto_explain.log_min_duration")
    loaded = "auto_explain" in [x.strip() for x in libs.split(",")]
    if not loaded:
        return Check("auto_explain", "info", "not loaded", AUTO_EXPLAIN_HOW)
    if dur is None or dur.startswith("-1"):
        return Check("auto_explain", "info", "loaded, log_min_duration -1 (off)", AUTO_EXPLAIN_HOW)
    value = f"logs executions over {dur}"
    if c.settings.get("auto_explain.log_analyze") != "on":
        value += ", estimates only (log_analyze off)"
    if c.settings.get("logging_collector") != "on":
        return Check(
            "auto_explain",
            "info",
            value + "; logging_collector off",
            "The log goes to the server's standard error: opscore reads it only from the "
            "embedded server it runs. Turn logging_collector on (log_destination csvlog or "
            "jsonlog) for the SQL Monitor to read actual plans.",
        )
    return Check("auto_explain", "ok", value)
