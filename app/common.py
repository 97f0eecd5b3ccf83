"""Shared pieces of the app: the target picker, cached reads, formatting. No SQL here: every
number comes from ops_core.api."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from ops_core import api
from ops_core.errors import OpsCoreError


def guarded(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """Call an api function; on an opscore error show its message and hint, return None."""
    try:
        return fn(*args, **kwargs)
    except OpsCoreError as exc:
        st.error(exc.message)
        if exc.hint:
            st.caption(exc.hint)
        return None


@st.cache_data(ttl=15, show_spinner=False)
def cached_targets() -> list[dict]:
    return [t.as_dict() for t in api.list_targets()]


@st.cache_data(ttl=30, show_spinner=False)
def cached_check(name: str) -> dict:
    try:
        return {"ok": True, **api.check_target(name).as_dict()}
    except OpsCoreError as exc:
        return {"ok": False, "error": exc.message, "hint": exc.hint or ""}


def target_picker() -> str | None:
    """Sidebar select box of registered targets; the choice is shared by all pages."""
    targets = guarded(cached_targets)
    if targets is None:
        st.sidebar.error("Repository unreachable")
        return None
    names = [t["name"] for t in targets]
    if not names:
        st.sidebar.info("No targets yet: `opscore target add NAME DSN` or `opscore demo`.")
        return None
    current = st.session_state.get("target")
    index = names.index(current) if current in names else 0
    choice = st.sidebar.selectbox("Target", names, index=index, key="target_select")
    st.session_state["target"] = choice
    return choice


def fmt_ms(v: float | None) -> str:
    return "" if v is None else f"{v:,.1f} ms"


def fmt_bytes(v: float | None) -> str:
    if v is None:
        return ""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(v) < 1024 or unit == "TB":
            return f"{v:,.0f} {unit}" if unit == "B" else f"{v:,.1f} {unit}"
        v /= 1024
    return ""
