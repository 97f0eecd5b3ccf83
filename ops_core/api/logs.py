"""The server log of a target, filtered and paged, when opscore can read it (see
:mod:`ops_core.collectors.serverlog` for where it looks); otherwise the reason, plainly."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from ..alerts.metrics import is_local_target
from ..collectors import serverlog
from ..errors import InvalidInput
from ..model.target import Target
from .common import utc_time
from .system import embedded_server
from .targets import resolve_target, target_session

__all__ = ["LOG_SEVERITIES", "LogPage", "server_log", "read_log_entries"]

#: severities in log_min_messages order (LOG ranks between ERROR and FATAL there)
LOG_SEVERITIES = (
    "DEBUG5", "DEBUG4", "DEBUG3", "DEBUG2", "DEBUG1", "INFO", "NOTICE", "WARNING", "ERROR",
    "LOG", "FATAL", "PANIC",
)  # fmt: skip
_RANK = {s: i for i, s in enumerate(LOG_SEVERITIES)}
COLUMNS = [
    "time", "severity", "pid", "user", "database", "application", "sqlstate", "message",
    "detail", "hint", "statement",
]  # fmt: skip
MAX_BYTES = 64 * 1024 * 1024


@dataclass
class LogPage:
    target: str
    readable: bool
    reason: str | None  # why the log cannot be read
    source: str | None  # the file
    format: str | None  # csvlog, jsonlog, stderr
    how: str | None  # local file, pg_read_file
    bytes_read: int
    matched: int  # entries matching the filters in what was read
    offset: int
    limit: int
    entries: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COLUMNS))


def _embedded() -> tuple[str, str]:
    server = embedded_server()
    return str(server.pgdata), str(server.log_file)


def read_log_entries(t: Target, max_bytes: int) -> tuple[serverlog.LogSource, list[dict], int]:
    """The parsed entries of the tail of a target's log (oldest first), its source and the
    bytes read; no entries and the source's reason when it cannot be read."""
    with target_session(t) as conn:
        src = serverlog.locate(conn, is_local_target(t), _embedded())
        if src.path is None:
            return src, [], 0
        try:
            text = serverlog.read_tail(conn, src, max_bytes)
        except Exception as exc:  # noqa: BLE001 - a permission or I/O error is the answer
            msg = getattr(exc, "message", None) or str(exc).strip()
            src.reason = f"the log {src.path} could not be read ({src.how}): {msg}"
            src.path = None
            return src, [], 0
    return src, serverlog.parse(text, src), len(text.encode())


def _severities(severity: str | list[str] | None) -> set[str] | None:
    if severity is None or severity == [] or severity == "":
        return None
    names = [severity] if isinstance(severity, str) else list(severity)
    out: set[str] = set()
    for n in names:
        key = str(n).strip().upper()
        base = key[:-1] if key.endswith("+") else key
        if base not in _RANK:
            raise InvalidInput(
                f"{n!r} is not a log severity.",
                "Use one of " + ", ".join(LOG_SEVERITIES) + " (or WARNING+ for that and above).",
            )
        if key.endswith("+"):
            out |= {s for s in LOG_SEVERITIES if _RANK[s] >= _RANK[base]}
        else:
            out.add(base)
    return out


def server_log(
    target: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    severity: str | list[str] | None = None,
    database: str | None = None,
    user: str | None = None,
    text: str | None = None,
    limit: int = 100,
    offset: int = 0,
    max_bytes: int = 8 * 1024 * 1024,
) -> LogPage:
    """Server log entries, newest first, from the last ``max_bytes`` of the current log file:
    filtered by time, severity (a name, a list, or ``WARNING+``), database, user and a text in
    the message/detail/statement (case-insensitive), paged by ``limit``/``offset``. When the log
    cannot be read, ``readable`` is false and ``reason`` says why."""
    if not 1 <= limit <= 10_000:
        raise InvalidInput(f"limit {limit} is out of range.", "Give 1 to 10000.")
    if offset < 0:
        raise InvalidInput(f"offset {offset} is negative.", "Give 0 or more.")
    if not 1024 <= max_bytes <= MAX_BYTES:
        raise InvalidInput(f"max_bytes {max_bytes} is out of range.", "Give 1kB to 64MB.")
    b = utc_time(since, "since") if since is not None else None
    e = utc_time(until, "until") if until is not None else None
    sev = _severities(severity)
    t = resolve_target(target)
    src, entries, nbytes = read_log_entries(t, max_bytes)
    if src.path is None:
        return LogPage(t.name, False, src.reason, None, None, None, 0, 0, offset, limit)
    needle = text.lower() if text else None

    def keep(x: dict[str, Any]) -> bool:
        if sev is not None and x["severity"] not in sev:
            return False
        if b is not None and (x["time"] is None or x["time"] < b):
            return False
        if e is not None and (x["time"] is None or x["time"] >= e):
            return False
        if database is not None and x["database"] != database:
            return False
        if user is not None and x["user"] != user:
            return False
        if needle is not None:
            hay = " ".join(str(x[k] or "") for k in ("message", "detail", "statement")).lower()
            return needle in hay
        return True

    matched = [x for x in reversed(entries) if keep(x)]
    page = pd.DataFrame(matched[offset : offset + limit], columns=COLUMNS)
    return LogPage(
        t.name, True, None, src.path, src.format, src.how, nbytes, len(matched), offset, limit,
        page,
    )  # fmt: skip
