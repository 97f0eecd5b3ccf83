"""Wait classes: PostgreSQL ``wait_event_type`` (and session state) mapped to ASH classes.

Pure: no database access. The SQL form (:func:`wait_class_sql`) is generated from the same
constants so that Python and SQL agree on every row.

- ``CPU`` is the pseudo-wait of a session that is running and reports no wait event.
- ``Client`` (waiting for the application, e.g. ``ClientRead`` of a session idle in transaction)
  and ``Activity`` (background processes idling in their main loop) are idle waits: such samples
  are kept (a blocker idle in transaction matters) but are not DB time.
- DB time is the sampled time of *foreground* sessions (client backends and their parallel
  workers, :data:`FOREGROUND_BACKEND_TYPES`) that are active, on CPU or in a non-idle wait.
  Background processes (checkpointer, autovacuum, WAL writer, background writer, I/O
  workers...) working or waiting are *background activity*, never DB time. This is the one
  definition every surface uses (AWR, ASH report, ADDM, compare, app, CLI): the repository
  stores no DB-time flag per sample, it is computed at read time by :func:`is_db_time_sql`
  (and :func:`is_db_time` in Python) from the sample's state, wait type and backend type.
"""

from __future__ import annotations

from psycopg import sql

from ..errors import InvalidInput

__all__ = [
    "PG_WAIT_TYPES",
    "WAIT_CLASSES",
    "IDLE_CLASSES",
    "ACTIVE_STATES",
    "IDLE_IN_XACT_STATES",
    "wait_class",
    "event_name",
    "is_db_time",
    "normalize_wait_class",
    "wait_class_sql",
    "event_sql",
    "is_db_time_sql",
    "FOREGROUND_BACKEND_TYPES",
    "is_foreground",
    "is_working",
    "is_background_sql",
]

#: backend types whose time is DB time (the sessions' own work). A NULL backend type (samples
#: of servers or sources that do not report one) counts as foreground.
FOREGROUND_BACKEND_TYPES: tuple[str, ...] = ("client backend", "parallel worker")

#: PostgreSQL wait_event_type values that are classes of their own
PG_WAIT_TYPES: tuple[str, ...] = (
    "Lock",
    "LWLock",
    "IO",
    "IPC",
    "Client",
    "Timeout",
    "Extension",
    "BufferPin",
    "Activity",
)
#: every ASH wait class, ``Other`` for types unknown to this list (e.g. InjectionPoint, PG17+)
WAIT_CLASSES: tuple[str, ...] = ("CPU", *PG_WAIT_TYPES, "Other")
IDLE_CLASSES: frozenset[str] = frozenset({"Client", "Activity"})
#: session states that count as running (NULL: background processes, which report no state)
ACTIVE_STATES: tuple[str, ...] = ("active", "fastpath function call")
#: states the sampler keeps besides the active ones
IDLE_IN_XACT_STATES: tuple[str, ...] = ("idle in transaction", "idle in transaction (aborted)")

_BY_LOWER = {c.lower(): c for c in WAIT_CLASSES}


def _missing(v: object) -> bool:
    """None, or a NaN/NA that pandas put where a None was (pandas 3 turns None into NaN in
    object columns after concat/merge/astype)."""
    if v is None:
        return True
    try:
        return bool(v != v)  # NaN and pd.NA are not equal to themselves
    except (TypeError, ValueError):  # pd.NA raises in bool()
        return True


def _running(state: str | None) -> bool:
    return _missing(state) or state in ACTIVE_STATES


def wait_class(state: str | None, wait_event_type: str | None) -> str:
    """The ASH class of one sample: ``CPU`` when running without a wait event."""
    if _missing(wait_event_type):
        return "CPU" if _running(state) else "Client"
    return wait_event_type if wait_event_type in PG_WAIT_TYPES else "Other"


def event_name(state: str | None, wait_event_type: str | None, wait_event: str | None) -> str:
    """The event shown in reports: the wait event, or ``CPU`` for a running session."""
    if _missing(wait_event_type) or _missing(wait_event):
        return wait_class(state, wait_event_type)
    return wait_event


def is_foreground(backend_type: str | None) -> bool:
    """A foreground session (client backend, parallel worker; unknown counts as foreground)."""
    return _missing(backend_type) or backend_type in FOREGROUND_BACKEND_TYPES


def is_working(state: str | None, wait_event_type: str | None) -> bool:
    """Running, on CPU or in a non-idle wait (any process, foreground or background)."""
    return _running(state) and wait_class(state, wait_event_type) not in IDLE_CLASSES


def is_db_time(
    state: str | None, wait_event_type: str | None, backend_type: str | None = None
) -> bool:
    """Whether a sample counts as DB time: a foreground session working (on CPU or in a
    non-idle wait). ``backend_type`` None: treated as foreground."""
    return is_foreground(backend_type) and is_working(state, wait_event_type)


def normalize_wait_class(name: str) -> str:
    """The canonical spelling of a wait class name (case-insensitive); InvalidInput if unknown."""
    found = _BY_LOWER.get((name or "").strip().lower())
    if found is None:
        raise InvalidInput(
            f"{name!r} is not a wait class.",
            "Use one of: " + ", ".join(WAIT_CLASSES) + ".",
        )
    return found


def wait_class_sql(state: str = "state", wait_event_type: str = "wait_event_type") -> sql.Composed:
    """SQL expression computing :func:`wait_class` from two column references."""
    st, wt = sql.SQL(state), sql.SQL(wait_event_type)
    running = _running_sql(st)
    return sql.SQL(
        "(CASE WHEN {wt} IS NULL THEN (CASE WHEN {running} THEN 'CPU' ELSE 'Client' END) "
        "WHEN {wt} = ANY({types}) THEN {wt} ELSE 'Other' END)"
    ).format(wt=wt, running=running, types=sql.Literal(list(PG_WAIT_TYPES)))


def event_sql(
    state: str = "state", wait_event_type: str = "wait_event_type", wait_event: str = "wait_event"
) -> sql.Composed:
    """SQL expression computing :func:`event_name`."""
    return sql.SQL("(CASE WHEN {wt} IS NULL OR {we} IS NULL THEN {cls} ELSE {we} END)").format(
        wt=sql.SQL(wait_event_type),
        we=sql.SQL(wait_event),
        cls=wait_class_sql(state, wait_event_type),
    )


def _working_sql(state: str, wait_event_type: str) -> sql.Composed:
    return sql.SQL("({running} AND {cls} <> ALL({idle}))").format(
        running=_running_sql(sql.SQL(state)),
        cls=wait_class_sql(state, wait_event_type),
        idle=sql.Literal(sorted(IDLE_CLASSES)),
    )


def _foreground_sql(backend_type: str) -> sql.Composed:
    return sql.SQL("({bt} IS NULL OR {bt} = ANY({fg}))").format(
        bt=sql.SQL(backend_type), fg=sql.Literal(list(FOREGROUND_BACKEND_TYPES))
    )


def is_db_time_sql(
    state: str = "state",
    wait_event_type: str = "wait_event_type",
    backend_type: str = "backend_type",
) -> sql.Composed:
    """SQL boolean expression computing :func:`is_db_time` (foreground and working)."""
    return sql.SQL("({fg} AND {working})").format(
        fg=_foreground_sql(backend_type), working=_working_sql(state, wait_event_type)
    )


def is_background_sql(
    state: str = "state",
    wait_event_type: str = "wait_event_type",
    backend_type: str = "backend_type",
) -> sql.Composed:
    """SQL boolean expression: a background process working (background activity, not DB
    time)."""
    return sql.SQL("(NOT {fg} AND {working})").format(
        fg=_foreground_sql(backend_type), working=_working_sql(state, wait_event_type)
    )


def _running_sql(state: sql.Composable) -> sql.Composed:
    return sql.SQL("({st} IS NULL OR {st} = ANY({active}))").format(
        st=state, active=sql.Literal(list(ACTIVE_STATES))
    )


__all__ = [
    "WAIT_CLASSES",
    "IDLE_CLASSES",
    "PG_WAIT_TYPES",
    "wait_class",
    "event_name",
    "is_db_time",
    "normalize_wait_class",
    "wait_class_sql",
    "event_sql",
    "is_db_time_sql",
    "FOREGROUND_BACKEND_TYPES",
    "is_foreground",
    "is_working",
    "is_background_sql",
]
