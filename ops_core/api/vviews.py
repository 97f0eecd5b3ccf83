"""Oracle V$ views over PostgreSQL, live: V$SESSION, V$SQL, V$SYSSTAT, V$SYSTEM_EVENT,
V$SESSTAT, V$LOCK, V$PARAMETER, V$TRANSACTION. Each answer carries the PostgreSQL views it
reads and notes on where PostgreSQL differs (no cumulative wait counters: V$SYSTEM_EVENT is
estimated from ASH samples; per-session counters only from PostgreSQL 18)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

from ..alerts.rules import parse_duration
from ..collectors import vviews as reads
from ..errors import InvalidInput, NotSupported
from .ash import ash_db_time
from .common import opscore_shown
from .locks import live_locks
from .targets import resolve_target, target_session

__all__ = [
    "V_VIEWS",
    "VView",
    "v_view",
    "v_session",
    "v_sql",
    "v_sysstat",
    "v_system_event",
    "v_sesstat",
    "v_lock",
    "v_parameter",
    "v_transaction",
]

#: name -> (Oracle view, PostgreSQL sources, how the columns map)
V_VIEWS: dict[str, tuple[str, str, str]] = {
    "session": (
        "V$SESSION",
        "pg_stat_activity, pg_blocking_pids()",
        "SID=pid, SERIAL#=backend start (epoch s), USERNAME=usename, STATUS ACTIVE/INACTIVE "
        "from state, SCHEMANAME=database, MACHINE/PORT=client, PROGRAM=application_name, "
        "TYPE USER/BACKGROUND, SQL_ID=query_id, EVENT=wait_event ('ON CPU' when active and "
        "not waiting), WAIT_CLASS=wait_event_type, BLOCKING_SESSION=first blocking pid",
    ),
    "sql": (
        "V$SQL",
        "pg_stat_statements",
        "SQL_ID=queryid, EXECUTIONS=calls, PARSE_CALLS=plans, ELAPSED_TIME/AVG_ELAPSED_TIME in "
        "microseconds (execution only), ROWS_PROCESSED=rows, BUFFER_GETS=shared hits+reads, "
        "DISK_READS=shared reads, REDO_SIZE=wal_bytes; no CPU_TIME (PostgreSQL does not "
        "measure CPU per statement)",
    ),
    "sysstat": (
        "V$SYSSTAT",
        "pg_stat_database (all databases), pg_stat_bgwriter / pg_stat_checkpointer (17+), "
        "pg_stat_wal, pg_stat_activity",
        "NAME, CLASS, VALUE (cumulative since the statistics reset), SOURCE",
    ),
    "system_event": (
        "V$SYSTEM_EVENT",
        "opscore ASH samples (the repository)",
        "EVENT, WAIT_CLASS, TOTAL_WAITS=samples, TIME_WAITED_S=sampled seconds over the "
        "window. PostgreSQL keeps no cumulative wait counters: these are ASH estimates",
    ),
    "sesstat": (
        "V$SESSTAT",
        "pg_stat_activity; pg_stat_get_backend_io / _wal (18+); ASH for DB time",
        "SID, NAME, VALUE, SOURCE: connect time for every server; physical reads/writes, "
        "buffer hits, redo size/entries per session from PostgreSQL 18; DB time from ASH",
    ),
    "lock": (
        "V$LOCK",
        "pg_locks, pg_stat_activity",
        "SID=pid, TYPE=locktype, LMODE=mode when granted, REQUEST=mode when waiting, "
        "BLOCK=1 when it blocks another session, OBJECT=relation",
    ),
    "parameter": (
        "V$PARAMETER",
        "pg_settings",
        "NAME, VALUE (with unit), DISPLAY_VALUE, ISDEFAULT, ISSES_MODIFIABLE (user/superuser "
        "context), ISSYS_MODIFIABLE (FALSE for postmaster: needs a restart), DESCRIPTION",
    ),
    "transaction": (
        "V$TRANSACTION",
        "pg_stat_activity (backend_xid, backend_xmin)",
        "SID, START_TIME=xact_start, SECONDS open, XID (WRITE once it has one), XID_AGE, "
        "XMIN_AGE (how far back it holds vacuum), STATUS=state",
    ),
}


@dataclass
class VView:
    view: str  # V$SESSION ...
    target: str
    at: datetime
    sources: str  # the PostgreSQL views read
    mapping: str  # how the columns map to Oracle's
    rows: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _view(key: str, target: str, at: datetime, rows: pd.DataFrame, notes=None) -> VView:
    oracle, sources, mapping = V_VIEWS[key]
    return VView(oracle, target, at, sources, mapping, rows, list(notes or []))


def _now() -> datetime:
    return datetime.now(UTC)


def v_session(
    target: str | None = None, include_opscore: bool | None = None, text_max: int = 200
) -> VView:
    """V$SESSION: every server process now, with Oracle's column names."""
    t = resolve_target(target)
    with target_session(t) as conn:
        df = reads.frame(
            conn,
            reads.SESSION,
            {"include_opscore": opscore_shown(include_opscore), "text_max": text_max},
        )
    return _view("session", t.name, _now(), df)


def v_sql(target: str | None = None, limit: int = 100, text_max: int = 500) -> VView:
    """V$SQL: statements of pg_stat_statements (in the target's database), largest elapsed
    time first."""
    if not 1 <= limit <= 10_000:
        raise InvalidInput(f"limit {limit} is out of range.", "Give 1 to 10000.")
    t = resolve_target(target)
    with target_session(t) as conn:
        if not reads.has_pgss(conn):
            raise NotSupported(
                "V$SQL needs pg_stat_statements, which is not installed in the target's database.",
                "CREATE EXTENSION pg_stat_statements (and load it in shared_preload_libraries).",
            )
        df = reads.frame(conn, reads.SQL, {"limit": limit, "text_max": text_max})
    return _view("sql", t.name, _now(), df)


def v_sysstat(target: str | None = None) -> VView:
    """V$SYSSTAT: server-wide cumulative statistics by name and class."""
    t = resolve_target(target)
    with target_session(t) as conn:
        df = reads.frame(conn, reads.sysstat_sql(conn.info.server_version))
    df.columns = ["NAME", "CLASS", "VALUE", "SOURCE"]
    return _view("sysstat", t.name, _now(), df)


def v_system_event(target: str | None = None, since: str = "1h") -> VView:
    """V$SYSTEM_EVENT: wait events over the window, estimated from the ASH samples."""
    t = resolve_target(target)
    secs = parse_duration(since, "since")
    if secs <= 0:
        raise InvalidInput("since must be a positive duration.", "Use e.g. 15m or 1h.")
    end = _now()
    df = ash_db_time(t.name, end - timedelta(seconds=secs), end, ["wait_class", "event"])
    out = pd.DataFrame(
        {
            "EVENT": df["event"] if len(df) else [],
            "WAIT_CLASS": df["wait_class"] if len(df) else [],
            "TOTAL_WAITS": df["samples"] if len(df) else [],
            "TIME_WAITED_S": df["time_s"] if len(df) else [],
        }
    )
    notes = [
        f"estimated from ASH samples over the last {since}: PostgreSQL keeps no cumulative "
        "wait counters"
    ]
    if out.empty:
        notes.append("no ASH samples in the window (is the sampler running?)")
    return _view("system_event", t.name, end, out, notes)


def v_sesstat(target: str | None = None, pid: int | None = None, since: str = "1h") -> VView:
    """V$SESSTAT: per-session statistics (SID, NAME, VALUE): connect time everywhere, I/O and
    WAL per session from PostgreSQL 18, DB time from ASH over the window."""
    t = resolve_target(target)
    notes: list[str] = []
    params = {"pid": pid, "include_opscore": opscore_shown(None)}
    with target_session(t) as conn:
        frames = [reads.frame(conn, reads.SESSTAT_COMMON, params)]
        if conn.info.server_version >= 180000:
            frames.append(reads.frame(conn, reads.SESSTAT_18, params))
        else:
            notes.append(
                "per-session I/O and WAL counters need PostgreSQL 18 (pg_stat_get_backend_io); "
                f"this server is {conn.info.server_version // 10000}"
            )
    pids = set(frames[0]["sid"])
    secs = parse_duration(since, "since")
    end = _now()
    if secs > 0 and pids:
        ash = ash_db_time(t.name, end - timedelta(seconds=secs), end, ["pid"])
        ash = ash[ash["pid"].isin(pids)]
        frames.append(
            pd.DataFrame(
                {
                    "sid": ash["pid"],
                    "name": "DB time s (ASH)",
                    "value": ash["db_time_s"],
                    "source": "ASH",
                }
            )
        )
    df = pd.concat([f for f in frames if len(f)], ignore_index=True) if pids else frames[0]
    df = df.rename(columns={"sid": "SID", "name": "NAME", "value": "VALUE", "source": "SOURCE"})
    return _view("sesstat", t.name, end, df.sort_values(["SID", "NAME"], ignore_index=True), notes)


def v_lock(target: str | None = None) -> VView:
    """V$LOCK: every lock now, Oracle's columns (LMODE held, REQUEST waited, BLOCK)."""
    live = live_locks(target, all_locks=True)
    df = live.locks
    blockers = {p for b in df["blocked_by"] for p in (b or [])} if len(df) else set()
    out = pd.DataFrame(
        {
            "SID": df["pid"],
            "TYPE": df["locktype"],
            "LMODE": df["mode"].where(df["granted"], None),
            "REQUEST": df["mode"].where(~df["granted"], None),
            "BLOCK": [
                int(p in blockers and g) for p, g in zip(df["pid"], df["granted"], strict=True)
            ],
            "OBJECT": df["relation"],
            "DATABASE": df["database"],
            "SECONDS_IN_STATE": df["state_age_s"],
        }
    )
    return _view("lock", live.target, live.at, out)


def v_parameter(target: str | None = None, name: str | None = None) -> VView:
    """V$PARAMETER: the server's settings (``name``: a LIKE pattern, case-insensitive)."""
    t = resolve_target(target)
    with target_session(t) as conn:
        df = reads.frame(conn, reads.PARAMETER, {"name": name})
    return _view("parameter", t.name, _now(), df)


def v_transaction(target: str | None = None, include_opscore: bool | None = None) -> VView:
    """V$TRANSACTION: open transactions, oldest first, with their xid and xmin age."""
    t = resolve_target(target)
    with target_session(t) as conn:
        df = reads.frame(
            conn,
            reads.TRANSACTION,
            {"include_opscore": opscore_shown(include_opscore), "text_max": 200},
        )
    return _view("transaction", t.name, _now(), df)


_BY_NAME = {
    "session": v_session,
    "sql": v_sql,
    "sysstat": v_sysstat,
    "system_event": v_system_event,
    "sesstat": v_sesstat,
    "lock": v_lock,
    "parameter": v_parameter,
    "transaction": v_transaction,
}


def v_view(name: str, target: str | None = None) -> VView:
    """A V$ view by name (session, sql, sysstat, system_event, sesstat, lock, parameter,
    transaction; ``v$session`` and ``system-event`` spellings accepted)."""
    key = name.strip().lower().removeprefix("v$").replace("-", "_")
    if key not in _BY_NAME:
        raise InvalidInput(
            f"{name!r} is not a V$ view opscore has.", "Use one of: " + ", ".join(_BY_NAME) + "."
        )
    return _BY_NAME[key](target)
