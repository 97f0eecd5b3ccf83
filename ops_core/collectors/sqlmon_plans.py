"""Actual plans of finished executions, from auto_explain in the server log.

auto_explain logs ``duration: N ms  plan:`` and the plan of every execution slower than
``auto_explain.log_min_duration`` (text, or JSON with ``auto_explain.log_format = json``; with
``log_analyze`` the actual rows and loops per node). This module reads the target's
auto_explain settings (read-only monitoring SQL), recognises those entries among the parsed log
entries (:mod:`.serverlog`), matches one to an execution by pid and start time, and renders a
JSON plan as an indented text tree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..targets.probe import AUTO_EXPLAIN_HOW

_SETTINGS = """
SELECT /* opscore */ current_setting('shared_preload_libraries') AS shared_preload,
       current_setting('session_preload_libraries') AS session_preload,
       current_setting('auto_explain.log_min_duration', true) AS log_min_duration,
       current_setting('auto_explain.log_analyze', true) AS log_analyze,
       current_setting('auto_explain.log_format', true) AS log_format,
       (SELECT setting::int FROM pg_settings
         WHERE name = 'auto_explain.log_min_duration' AND vartype = 'integer') AS min_duration_ms
"""
_ENTRY = re.compile(r"^duration: (?P<ms>[0-9.]+) ms\s+plan:\s*\n?(?P<body>.*)$", re.S)

HOW_TO_ENABLE = AUTO_EXPLAIN_HOW


@dataclass
class AutoExplain:
    loaded: bool
    min_duration_ms: int | None  # -1: disabled
    log_analyze: bool
    log_format: str | None

    def reason_off(self) -> str | None:
        """Why auto_explain logs no plans on this server, or None when it does."""
        if not self.loaded:
            return "auto_explain is not loaded on the target. " + HOW_TO_ENABLE
        if self.min_duration_ms is None or self.min_duration_ms < 0:
            return (
                "auto_explain is loaded but auto_explain.log_min_duration is -1 (off). "
                + HOW_TO_ENABLE
            )
        return None


def settings(conn: psycopg.Connection) -> AutoExplain:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_SETTINGS)  # type: ignore[arg-type]
        s = cur.fetchone() or {}
    # the integer setting exists only where the library is loaded (a placeholder set by
    # ALTER DATABASE without the library is a string)
    loaded = s.get("min_duration_ms") is not None
    return AutoExplain(
        loaded,
        s.get("min_duration_ms"),
        (s.get("log_analyze") or "off") == "on",
        s.get("log_format"),
    )


@dataclass
class LoggedPlan:
    time: datetime | None
    pid: int | None
    duration_ms: float
    query: str | None
    plan: str  # the text tree
    document: dict[str, Any] | None  # the JSON plan when logged as JSON
    analyzed: bool  # actual rows/loops present
    database: str | None = None


def _body(message: str, detail: str | None) -> tuple[float, str] | None:
    m = _ENTRY.match(message or "")
    if m is None:
        return None
    body = m.group("body").strip() or (detail or "").strip()
    return float(m.group("ms")), body


def parse_entries(entries: list[dict[str, Any]]) -> list[LoggedPlan]:
    """The auto_explain plans among parsed log entries (oldest first, as given)."""
    out = []
    for e in entries:
        got = _body(e.get("message") or "", e.get("detail"))
        if got is None:
            continue
        ms, body = got
        doc: dict[str, Any] | None = None
        try:
            parsed = json.loads(body)
            doc = parsed if isinstance(parsed, dict) and "Plan" in parsed else None
        except ValueError:
            doc = None
        if doc is not None:
            query = doc.get("Query Text")
            text = render(doc["Plan"])
            analyzed = "Actual Rows" in doc["Plan"]
        else:
            lines = body.splitlines()
            query = None
            if lines and lines[0].startswith("Query Text:"):
                query = lines.pop(0).removeprefix("Query Text:").strip()
            text = "\n".join(lines)
            analyzed = "actual" in text
        out.append(
            LoggedPlan(
                e.get("time"), e.get("pid"), ms, query, text, doc, analyzed, e.get("database")
            )
        )
    return out


def match(
    plans: list[LoggedPlan], pid: int, query_start: datetime, *, slack_s: float = 2.0
) -> LoggedPlan | None:
    """The logged plan of the execution that pid started at ``query_start``: same pid, logged
    after it started, and its start (log time - duration) within ``slack_s`` of query_start."""
    best, gap = None, None
    for p in plans:
        if p.pid != pid or p.time is None or p.time < query_start - timedelta(seconds=slack_s):
            continue
        started = p.time - timedelta(milliseconds=p.duration_ms)
        d = abs((started - query_start).total_seconds())
        if d <= slack_s and (gap is None or d < gap):
            best, gap = p, d
    return best


_DETAILS = (
    "Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond", "Join Filter", "Filter",
    "Rows Removed by Filter", "Sort Key", "Sort Method", "Group Key",
)  # fmt: skip


def render(node: dict[str, Any], depth: int = 0) -> str:
    """An auto_explain JSON plan node as the indented text EXPLAIN would print."""
    pad = "  " * depth + ("->  " if depth else "")
    what = node.get("Node Type", "?")
    if node.get("Relation Name"):
        schema = f"{node['Schema']}." if node.get("Schema") else ""
        what += f" on {schema}{node['Relation Name']}"
        if node.get("Alias") and node["Alias"] != node["Relation Name"]:
            what += f" {node['Alias']}"
    if node.get("Index Name"):
        what += f" using {node['Index Name']}"
    line = (
        f"{pad}{what}  (cost={node.get('Startup Cost', 0):.2f}..{node.get('Total Cost', 0):.2f} "
        f"rows={node.get('Plan Rows', 0)})"
    )
    if "Actual Rows" in node:
        t = (
            f"time={node['Actual Startup Time']:.3f}..{node['Actual Total Time']:.3f} "
            if "Actual Total Time" in node
            else ""
        )
        line += f" (actual {t}rows={node['Actual Rows']} loops={node.get('Actual Loops', 1)})"
    out = [line]
    ind = "  " * depth + ("      " if depth else "  ")
    for key in _DETAILS:
        if key in node:
            v = node[key]
            out.append(f"{ind}{key}: {', '.join(map(str, v)) if isinstance(v, list) else v}")
    for child in node.get("Plans", []):
        out.append(render(child, depth + 1))
    return "\n".join(out)
