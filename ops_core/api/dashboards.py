"""Dashboards: named lists of panels (a chart or a table over what the repository holds),
saved in the repository; two built-in ones (``fleet-overview``, ``target``) are rows too,
installed on first use and not deletable. ``dashboard_data`` evaluates the panels for a target
and a window; the app draws them with plotly."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from .. import repository
from ..alerts.rules import parse_duration
from ..errors import InvalidInput, OpsCoreError
from ..model.serialize import to_jsonable
from ..repository import dashboards as store
from .alerts import list_alerts
from .ash import ash_db_time, ash_top
from .performance import load_trends, targets_status
from .quotas import list_quotas
from .snapshots import list_snapshots
from .targets import resolve_target

__all__ = [
    "PANEL_SOURCES",
    "PANEL_KINDS",
    "BUILTIN_DASHBOARDS",
    "Dashboard",
    "PanelData",
    "DashboardData",
    "create_dashboard",
    "list_dashboards",
    "get_dashboard",
    "update_dashboard",
    "delete_dashboard",
    "dashboard_data",
]

PANEL_KINDS = ("line", "bar", "area", "table")
#: source -> what it shows (its params)
PANEL_SOURCES: dict[str, str] = {
    "ash_wait_class": "DB time per minute by wait class (ASH)",
    "ash_top": "top contributors to DB time (ASH); params: by (event, sql, user, ...), limit",
    "load_trends": "per-snapshot rates over the window; params: columns (e.g. xacts_per_s)",
    "targets": "every target: reachability, sessions, freshness",
    "alerts": "open alerts",
    "quotas": "quotas and their latest state",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}")

BUILTIN_DASHBOARDS: dict[str, dict[str, Any]] = {
    "fleet-overview": {
        "title": "Fleet overview",
        "description": "Every target at a glance: reachability, sessions, alerts, quotas.",
        "panels": [
            {"title": "Targets", "kind": "table", "source": "targets"},
            {"title": "Open alerts", "kind": "table", "source": "alerts"},
            {"title": "Quotas", "kind": "table", "source": "quotas"},
        ],
    },
    "target": {
        "title": "One target",
        "description": "DB time by wait class, top SQL and events, load over the snapshots.",
        "panels": [
            {"title": "DB time by wait class", "kind": "area", "source": "ash_wait_class"},
            {
                "title": "Top SQL",
                "kind": "bar",
                "source": "ash_top",
                "params": {"by": "sql", "limit": 10},
            },
            {
                "title": "Top wait events",
                "kind": "bar",
                "source": "ash_top",
                "params": {"by": "event", "limit": 10},
            },
            {
                "title": "Transactions and calls per second",
                "kind": "line",
                "source": "load_trends",
                "params": {"columns": ["xacts_per_s", "calls_per_s"]},
            },
        ],  # fmt: skip
    },
}


@dataclass
class Dashboard:
    dashboard_id: int
    name: str
    title: str
    description: str
    target: str | None
    panels: list[dict[str, Any]]
    builtin: bool
    created_at: datetime
    updated_at: datetime


@dataclass
class PanelData:
    title: str
    kind: str
    source: str
    x: str | None  # the columns a chart uses
    y: list[str]
    color: str | None
    rows: pd.DataFrame
    note: str | None = None  # why it is empty or not available


@dataclass
class DashboardData:
    name: str
    title: str
    target: str | None
    begin: datetime
    end: datetime
    panels: list[PanelData] = field(default_factory=list)


def _check_panels(panels: Any) -> list[dict[str, Any]]:
    if not isinstance(panels, list) or not panels:
        raise InvalidInput("A dashboard needs a list of panels.", "Give at least one panel.")
    out = []
    for i, p in enumerate(panels, 1):
        if not isinstance(p, dict):
            raise InvalidInput(f"Panel {i} is not an object with title, kind and source.")
        src, kind = p.get("source"), p.get("kind", "table")
        if src not in PANEL_SOURCES:
            raise InvalidInput(
                f"Panel {i}: unknown source {src!r}.", "Use one of: " + ", ".join(PANEL_SOURCES)
            )
        if kind not in PANEL_KINDS:
            raise InvalidInput(
                f"Panel {i}: unknown kind {kind!r}.", "Use line, bar, area or table."
            )
        params = p.get("params") or {}
        if not isinstance(params, dict):
            raise InvalidInput(f"Panel {i}: params must be an object.")
        out.append(
            {"title": str(p.get("title") or src), "kind": kind, "source": src, "params": params}
        )
    return out


def _ensure_builtins(repo) -> None:
    for name, d in BUILTIN_DASHBOARDS.items():
        store.insert_if_missing(
            repo, name, d["title"], d["description"], None, _check_panels(d["panels"]), True
        )


def create_dashboard(
    name: str,
    title: str,
    panels: list[dict[str, Any]],
    description: str = "",
    target: str | None = None,
) -> Dashboard:
    """Save a dashboard: panels of {title, kind (line/bar/area/table), source, params}."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(f"Dashboard name {name!r} is not a name.", "Use letters, digits, _.:-")
    checked = _check_panels(panels)
    tname = resolve_target(target).name if target else None
    with repository.session() as repo:
        _ensure_builtins(repo)
        return Dashboard(**store.insert(repo, name, title or name, description, tname, checked))


def list_dashboards() -> list[Dashboard]:
    with repository.session() as repo:
        _ensure_builtins(repo)
        return [Dashboard(**r) for r in store.all_dashboards(repo)]


def get_dashboard(name: str) -> Dashboard:
    with repository.session() as repo:
        _ensure_builtins(repo)
        return Dashboard(**store.get(repo, name))


def update_dashboard(
    name: str,
    title: str | None = None,
    panels: list[dict[str, Any]] | None = None,
    description: str | None = None,
    target: str | None = None,
) -> Dashboard:
    """Change a dashboard's title, panels, description or target (built-in ones too)."""
    checked = _check_panels(panels) if panels is not None else None
    tname = resolve_target(target).name if target else None
    with repository.session() as repo:
        _ensure_builtins(repo)
        return Dashboard(**store.update(repo, name, title, checked, description, tname))


def delete_dashboard(name: str) -> Dashboard:
    """Delete a user dashboard (a built-in one is refused)."""
    with repository.session() as repo:
        _ensure_builtins(repo)
        d = Dashboard(**store.get(repo, name))
        if d.builtin:
            raise InvalidInput(
                f"{name!r} is built in and cannot be deleted.", "Update it, or copy it."
            )
        store.delete(repo, name)
    return d


def _panel(p: dict[str, Any], target: str | None, b: datetime, e: datetime) -> PanelData:
    src, kind, params = p["source"], p["kind"], p.get("params", {})
    x: str | None = None
    y: list[str] = []
    color: str | None = None
    if src in ("ash_wait_class", "ash_top", "load_trends") and target is None:
        return PanelData(p["title"], kind, src, None, [], None, pd.DataFrame(), "pick a target")
    if src == "ash_wait_class":
        df = ash_db_time(target, b, e, ["minute", "wait_class"])
        x, y, color = "minute", ["db_time_s"], "wait_class"
        df = df.sort_values("minute") if len(df) else df
    elif src == "ash_top":
        by = str(params.get("by", "event"))
        df = ash_top(target, b, e, by=by, limit=int(params.get("limit", 10)))
        label = (
            "query"
            if by in ("sql",) and "query" in df
            else df.columns[0]
            if len(df.columns)
            else None
        )
        x, y = label, ["db_time_s"]
    elif src == "load_trends":
        snaps = [s for s in list_snapshots(target, 1000) if b <= s.captured_at <= e]
        if len(snaps) < 2:
            return PanelData(p["title"], kind, src, None, [], None, pd.DataFrame(),
                             "fewer than two snapshots in the window")  # fmt: skip
        ids = sorted(s.snapshot_id for s in snaps)
        df = load_trends(target, ids[0], ids[-1])
        cols = [c for c in params.get("columns", ["xacts_per_s"]) if c in df.columns]
        x, y = ("captured_at" if "captured_at" in df else "snapshot_id"), cols
    elif src == "targets":
        df = pd.DataFrame(to_jsonable(targets_status()))
    elif src == "alerts":
        df = pd.DataFrame(to_jsonable(list_alerts(target=target)))
    else:
        df = pd.DataFrame(to_jsonable(list_quotas(target)))
    note = None if len(df) else "no data in the window"
    return PanelData(p["title"], kind, src, x, y, color, df.reset_index(drop=True), note)


def dashboard_data(name: str, target: str | None = None, since: str = "1h") -> DashboardData:
    """Every panel of a dashboard evaluated for a target (the dashboard's own, else the one
    given, else the only one) over the last ``since``."""
    d = get_dashboard(name)
    secs = parse_duration(since, "since")
    if secs <= 0:
        raise InvalidInput("since must be a positive duration.", "Use e.g. 1h or 6h.")
    e = datetime.now(UTC)
    b = e - timedelta(seconds=secs)
    tname = d.target or target
    if tname is None:
        try:
            tname = resolve_target(None).name
        except OpsCoreError:
            tname = None
    out = DashboardData(d.name, d.title, tname, b, e)
    for p in d.panels:
        try:
            out.panels.append(_panel(p, tname, b, e))
        except OpsCoreError as exc:
            out.panels.append(
                PanelData(
                    p["title"], p["kind"], p["source"], None, [], None, pd.DataFrame(), exc.message
                )  # fmt: skip
            )
    return out
