"""Cached reads of the app: each an ops_core.api call kept for a few seconds (st.cache_data),
so reruns of a page and pages showing the same figures read the repository once."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from ops_core import api
from ops_core.errors import OpsCoreError


@st.cache_data(ttl=15, show_spinner=False)
def cached_targets() -> list[dict]:
    return [t.as_dict() for t in api.list_targets()]


@st.cache_data(ttl=30, show_spinner=False)
def cached_check(name: str) -> dict:
    try:
        return {"ok": True, **api.check_target(name).as_dict()}
    except OpsCoreError as exc:
        return {"ok": False, "error": exc.message, "hint": exc.hint or ""}


@st.cache_data(ttl=15, show_spinner=False)
def cached_status() -> list[dict]:
    return [s.as_dict() for s in api.targets_status()]


@st.cache_data(ttl=10, show_spinner=False)
def cached_snapshots(target: str, limit: int = 500) -> pd.DataFrame:
    rows = [s.as_dict() for s in api.list_snapshots(target, limit)]
    return pd.DataFrame(rows)


@st.cache_data(ttl=10, show_spinner=False)
def cached_baselines(target: str) -> list[dict]:
    return [b.as_dict() for b in api.list_baselines(target)]


@st.cache_data(ttl=60, show_spinner=False)
def cached_bounds(target: str, begin: datetime, end: datetime) -> tuple[int, int]:
    return api.snapshot_bounds(target, begin, end)


@st.cache_data(ttl=60, show_spinner=False)
def cached_top_sql(target: str, b: int, e: int, order_by: str, limit: int) -> pd.DataFrame:
    return api.top_statements(target, b, e, order_by=order_by, limit=limit)


@st.cache_data(ttl=60, show_spinner=False)
def cached_load_profile(target: str, b: int, e: int) -> pd.DataFrame:
    return api.load_profile(target, b, e)


@st.cache_data(ttl=60, show_spinner=False)
def cached_compare(target: str, b1: int, e1: int, b2, e2, baseline: str | None):
    return api.compare_periods(target, b1, e1, b2, e2, baseline=baseline)


@st.cache_data(ttl=60, show_spinner=False)
def cached_trends(target: str, b: int, e: int) -> pd.DataFrame:
    return api.load_trends(target, b, e)


@st.cache_data(ttl=60, show_spinner=False)
def cached_object_io(target: str, b: int, e: int) -> dict:
    return api.object_io(target, b, e)


@st.cache_data(ttl=60, show_spinner=False)
def cached_history(target: str, queryid: int, b: int | None, e: int | None) -> pd.DataFrame:
    return api.statement_history(target, queryid, b, e)


@st.cache_data(ttl=30, show_spinner=False)
def cached_ash_activity(target: str, begin: datetime, end: datetime) -> pd.DataFrame:
    return api.ash_activity_grid(target, begin, end)


@st.cache_data(ttl=30, show_spinner=False)
def cached_ash_top(target: str, begin: datetime, end: datetime, by: str, limit: int = 15, **kw):
    return api.ash_top(target, begin, end, by=by, limit=limit, **kw)


@st.cache_data(ttl=30, show_spinner=False)
def cached_blocking(target: str, begin: datetime, end: datetime) -> pd.DataFrame:
    return api.blocking_chains(target, begin, end)
