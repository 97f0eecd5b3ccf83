"""The server log of a target, when it can be read: where it is, reading its tail, and
parsing entries (csvlog, jsonlog, or stderr lines cut by the server's log_line_prefix).

Where the log is:

1. ``logging_collector`` on: ``pg_current_logfile()`` names the current file (csvlog and
   jsonlog preferred: structured). A server on this host is read from its data directory;
   otherwise through ``pg_read_file`` (superuser or pg_read_server_files, read-only).
2. The embedded server opscore runs: its stderr file (``<home>/log/postgresql.log``).
3. Otherwise the log goes to the server's stderr, wherever its service manager sends it:
   opscore cannot locate it and says so.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from psycopg.rows import dict_row

SEVERITIES = (
    "DEBUG5",
    "DEBUG4",
    "DEBUG3",
    "DEBUG2",
    "DEBUG1",
    "INFO",
    "NOTICE",
    "WARNING",
    "ERROR",
    "LOG",
    "FATAL",
    "PANIC",
)
#: an entry's extra lines (stderr format)
_DETAIL_KINDS = ("DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION")

_SETTINGS = """
SELECT /* opscore */ current_setting('logging_collector') AS logging_collector,
       current_setting('log_destination') AS log_destination,
       current_setting('log_line_prefix') AS log_line_prefix,
       current_setting('data_directory', true) AS data_directory,
       pg_current_logfile() AS stderr_file,
       pg_current_logfile('csvlog') AS csv_file,
       pg_current_logfile('jsonlog') AS json_file
"""
# pg_current_logfile('jsonlog') errors on 14 (no jsonlog): a version without it
_SETTINGS_14 = _SETTINGS.replace("pg_current_logfile('jsonlog')", "NULL::text")

_READ = "SELECT /* opscore */ pg_read_file(%s, %s, %s)"
_SIZE = "SELECT /* opscore */ (pg_stat_file(%s)).size"


@dataclass
class LogSource:
    path: str | None  # the file, as the server or this host names it
    format: str | None  # csvlog, jsonlog, stderr
    how: str | None  # local file, pg_read_file
    prefix: str  # log_line_prefix (stderr parsing)
    reason: str | None = None  # why the log cannot be read (path None)


def locate(
    conn: psycopg.Connection, local: bool, embedded: tuple[str, str] | None = None
) -> LogSource:
    """Where this target's log is and how opscore can read it (or why it cannot).
    ``embedded``: (data directory, log file) of the embedded server opscore runs."""
    q = _SETTINGS if conn.info.server_version >= 150000 else _SETTINGS_14
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(q)
            s = cur.fetchone() or {}
    except psycopg.Error as exc:
        return LogSource(None, None, None, "", f"the server's log settings are not readable: {exc}")
    prefix = s.get("log_line_prefix") or ""
    if s.get("logging_collector") == "on":
        for fmt, col in (
            ("jsonlog", "json_file"),
            ("csvlog", "csv_file"),
            ("stderr", "stderr_file"),
        ):
            rel = s.get(col)
            if not rel:
                continue
            datadir = s.get("data_directory")
            if local and datadir:
                path = rel if rel.startswith("/") else str(Path(datadir) / rel)
                if Path(path).is_file():
                    return LogSource(path, fmt, "local file", prefix)
            return LogSource(rel, fmt, "pg_read_file", prefix)
        return LogSource(
            None,
            None,
            None,
            prefix,
            "logging_collector is on but the server names no current log file",
        )
    datadir = s.get("data_directory")
    if local and embedded and datadir and Path(datadir) == Path(embedded[0]):
        if Path(embedded[1]).is_file():  # opscore started it: its stderr goes to this file
            return LogSource(embedded[1], "stderr", "local file", prefix)
    return LogSource(
        None,
        None,
        None,
        prefix,
        "logging_collector is off: the server writes its log to its standard error, wherever its "
        "service manager sends it (e.g. /var/log/postgresql on Debian), which opscore cannot "
        "locate. Turn logging_collector on (log_destination csvlog or jsonlog gives structured "
        "entries) to read the log here.",
    )


def read_tail(conn: psycopg.Connection, src: LogSource, max_bytes: int) -> str:
    """The last ``max_bytes`` of the log (from a line start)."""
    assert src.path is not None
    if src.how == "local file":
        with open(src.path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            start = max(0, size - max_bytes)
            f.seek(start)
            data = f.read()
    else:
        size = conn.execute(_SIZE, (src.path,)).fetchone()[0]  # type: ignore[index]
        start = max(0, int(size) - max_bytes)
        text = conn.execute(_READ, (src.path, start, max_bytes)).fetchone()[0]  # type: ignore[index]
        data = (text or "").encode()
    if start > 0:  # drop the partial first line
        nl = data.find(b"\n")
        data = data[nl + 1 :] if nl >= 0 else b""
    return data.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------- parsing

_ESCAPES = {
    "m": r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z0-9+:-]+)?)",
    "t": r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: [A-Za-z0-9+:-]+)?)",
    "n": r"(?P<epoch>\d+(?:\.\d+)?)",
    "p": r"(?P<pid>\d+)",
    "u": r"(?P<user>[^\s@\[\]]*)",
    "d": r"(?P<database>[^\s@\[\]]*)",
    "a": r"(?P<application>.*?)",
    "e": r"(?P<sqlstate>[0-9A-Z]{5})",
}


def prefix_regex(prefix: str) -> re.Pattern[str]:
    """A regex for log lines from the server's ``log_line_prefix`` (its % escapes)."""
    out, optional, i, used = [], None, 0, set()
    while i < len(prefix):
        ch = prefix[i]
        if ch == "%" and i + 1 < len(prefix):
            esc = prefix[i + 1]
            i += 2
            if esc.isdigit() or esc == "-":  # padding: %-10u
                m = re.match(r"-?\d+(.)", prefix[i - 1 :])
                if m:
                    esc = m.group(1)
                    i += len(m.group(0)) - 1
            if esc == "%":
                out.append("%")
            elif esc == "q":
                optional = len(out)
            elif esc in _ESCAPES and esc not in used:
                out.append(_ESCAPES[esc])
                used.add(esc)
                if esc in ("m", "t"):
                    used.update(("m", "t"))
            else:
                out.append(r".*?")
        else:
            out.append(re.escape(ch))
            i += 1
    if optional is not None:
        out = out[:optional] + ["(?:" + "".join(out[optional:]) + ")?"]
    sev = "|".join((*SEVERITIES, *_DETAIL_KINDS))
    return re.compile("^" + "".join(out) + rf"\s*(?P<severity>{sev}):\s+(?P<message>.*)$")


def _when(text: str | None, epoch: str | None) -> datetime | None:
    if epoch:
        return datetime.fromtimestamp(float(epoch), UTC)
    if not text:
        return None
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        try:
            ts = pd.Timestamp(text.rsplit(" ", 1)[0])  # an unknown zone name: taken as UTC
        except (ValueError, TypeError):
            return None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("UTC").to_pydatetime()


def _entry(**kw: Any) -> dict[str, Any]:
    base = {
        "time": None,
        "severity": None,
        "pid": None,
        "user": None,
        "database": None,
        "application": None,
        "sqlstate": None,
        "message": "",
        "detail": None,
        "hint": None,
        "statement": None,
    }
    base.update(kw)
    return base


def parse_stderr(text: str, prefix: str) -> list[dict[str, Any]]:
    rx = prefix_regex(prefix)
    out: list[dict[str, Any]] = []
    key = "message"  # the field a continuation line belongs to
    for line in text.splitlines():
        m = rx.match(line)
        if m is None:
            if out:
                out[-1][key] = f"{out[-1][key] or ''}\n{line.strip()}".lstrip("\n")
            continue
        g = m.groupdict()
        sev = g["severity"]
        if sev in _DETAIL_KINDS:
            if out:
                key = {"DETAIL": "detail", "HINT": "hint", "STATEMENT": "statement"}.get(
                    sev, "message"
                )
                if key == "message":
                    out[-1]["message"] += f"\n{sev}: {g['message']}"
                else:
                    out[-1][key] = g["message"]
            continue
        key = "message"
        out.append(
            _entry(
                time=_when(g.get("time"), g.get("epoch")),
                severity=sev,
                pid=int(g["pid"]) if g.get("pid") else None,
                user=g.get("user") or None,
                database=g.get("database") or None,
                application=g.get("application") or None,
                sqlstate=g.get("sqlstate"),
                message=g["message"],
            )
        )
    return out


#: csvlog columns (PostgreSQL 14+; 13 had one fewer, 14 added backend_type, leader_pid, query_id)
_CSV = (
    "log_time user_name database_name process_id connection_from session_id session_line_num "
    "command_tag session_start_time virtual_transaction_id transaction_id error_severity "
    "sql_state_code message detail hint internal_query internal_query_pos context query "
    "query_pos location application_name backend_type leader_pid query_id"
).split()


def parse_csv(text: str) -> list[dict[str, Any]]:
    out = []
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 14:
            continue
        r = dict(zip(_CSV, row, strict=False))
        out.append(
            _entry(
                time=_when(r["log_time"], None),
                severity=r["error_severity"],
                pid=int(r["process_id"]) if r["process_id"] else None,
                user=r["user_name"] or None,
                database=r["database_name"] or None,
                application=r.get("application_name") or None,
                sqlstate=r["sql_state_code"] or None,
                message=r["message"],
                detail=r.get("detail") or None,
                hint=r.get("hint") or None,
                statement=r.get("query") or None,
            )
        )
    return out


def parse_json(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        out.append(
            _entry(
                time=_when(r.get("timestamp"), None),
                severity=r.get("error_severity"),
                pid=r.get("pid"),
                user=r.get("user"),
                database=r.get("dbname"),
                application=r.get("application_name"),
                sqlstate=r.get("state_code"),
                message=r.get("message", ""),
                detail=r.get("detail"),
                hint=r.get("hint"),
                statement=r.get("statement"),
            )
        )
    return out


def parse(text: str, src: LogSource) -> list[dict[str, Any]]:
    if src.format == "csvlog":
        return parse_csv(text)
    if src.format == "jsonlog":
        return parse_json(text)
    return parse_stderr(text, src.prefix)
