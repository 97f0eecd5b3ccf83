"""The page shell of the app: errors shown with their hint, the target picker, login,
confirmed writes, flash messages. No SQL here: every number comes from ops_core.api.

Pages use ``from app import common as c``; the helpers of the focused modules are re-exported
here under their old names: cached reads (``app.cached``), time (``app.times``), tables
(``app.tables``), charts (``app.charts``) and value formats (``ops_core.model.formats``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import streamlit as st

from ops_core import api
from ops_core.errors import OpsCoreError
from ops_core.model.formats import fmt_aas, fmt_age, fmt_bytes, fmt_ms, fmt_s, short

from .cached import (
    cached_ash_activity,
    cached_ash_top,
    cached_baselines,
    cached_blocking,
    cached_bounds,
    cached_check,
    cached_compare,
    cached_history,
    cached_load_profile,
    cached_object_io,
    cached_snapshots,
    cached_status,
    cached_targets,
    cached_top_sql,
    cached_trends,
)
from .charts import WAIT_COLORS, activity_chart, time_axis
from .tables import (
    COUNT_WORDS,
    ID_NAMES,
    NUM,
    TXT,
    dataframe,
    evidence_tables,
    human,
    profile_in_mb,
    spec_table,
    spec_view,
    table_height,
    table_view,
)
from .times import RANGES, fmt_time, local_tz, now_step, range_picker, to_local, tz_caption

# ------------------------------------------------------------------------------ errors


def guarded(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """Call an api function; on an opscore error show its message and hint, return None."""
    try:
        return fn(*args, **kwargs)
    except OpsCoreError as exc:
        st.error(exc.message)
        if exc.hint:
            st.caption(exc.hint)
        return None


def try_call(fn: Callable[..., Any], *args, **kwargs) -> tuple[Any, OpsCoreError | None]:
    """Call an api function; return (result, None) or (None, the opscore error)."""
    try:
        return fn(*args, **kwargs), None
    except OpsCoreError as exc:
        return None, exc


# ------------------------------------------------------------------------------ target
def target_picker() -> str | None:
    """Sidebar select box of registered targets; the choice is shared by all pages."""
    targets, err = try_call(cached_targets)
    if err is not None:
        st.sidebar.error(f"Repository unreachable: {err.message}")
        if err.hint:
            st.sidebar.caption(err.hint)
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


def current_target() -> str | None:
    """The target picked in the sidebar; says what to do (and returns None) when there is none."""
    name = st.session_state.get("target")
    if name:
        return name
    targets, err = try_call(cached_targets)
    if err is not None:
        st.error(f"The repository is unreachable: {err.message}")
        st.caption(err.hint or "Check OPSCORE_REPOSITORY_DSN, or start it with `opscore db start`.")
    else:
        st.info(
            "No target registered yet. Run `opscore demo` for the embedded demo, or "
            "`opscore target add NAME DSN` for your own server, then reload this page."
        )
    return None


# ------------------------------------------------------------------------------ login
def logged_in() -> bool:
    return bool(st.session_state.get("_opscore_login")) and api.app_token() is not None


def login_form(where: Any = None) -> None:
    """The login (the operator's OPSCORE_APP_TOKEN); needed for every write action."""
    box = where or st
    if api.app_token() is None:
        box.info(
            "Write actions need a login and none is set up: start the app with "
            "`opscore app` (it prints a token) or set OPSCORE_APP_TOKEN."
        )
        return
    token = box.text_input("Login token", type="password", key="login_token")
    if box.button("Log in", key="login_go"):
        if api.app_login_ok(token):
            st.session_state["_opscore_login"] = True
            st.rerun()
        box.error("Wrong token.")


def require_page_login() -> None:
    """Stop the page until logged in when the app listens beyond this machine."""
    bind = os.environ.get(api.APP_BIND_ENV)
    if bind is None or api.app_bind_is_loopback(bind) or logged_in():
        return
    st.title("opscore")
    st.write("This app listens on the network: log in with the token set by its operator.")
    login_form()
    st.stop()


def write_allowed() -> bool:
    """True once logged in; otherwise says to log in. Every write action of the app checks it
    (:func:`confirm` does, for the writes that ask for confirmation)."""
    if logged_in():
        return True
    st.warning(
        "This action changes something: log in first (sidebar, Log in). "
        + ("" if api.app_token() else "No login is set up: start the app with `opscore app`.")
    )
    return False


# ------------------------------------------------------------------------------ confirm
def confirm(action_key: str, question: str) -> bool:
    """Two-step confirmation: returns True once the user confirmed ``question``.

    Call after a button set ``st.session_state[action_key] = True``. Every write action
    passes here (or through :func:`write_allowed`): without a login it says to log in."""
    if not st.session_state.get(action_key):
        return False
    if not write_allowed():
        return False
    st.warning(question)
    c1, c2, _ = st.columns([1, 1, 6])
    if c1.button("Confirm", key=f"{action_key}_yes", type="primary"):
        st.session_state[action_key] = False
        return True
    if c2.button("Cancel", key=f"{action_key}_no"):
        st.session_state[action_key] = False
        st.rerun()
    return False


def confirmed_write(
    key: str,
    question: str,
    fn: Callable[..., Any],
    *args: Any,
    done: Callable[[Any], str | tuple[str, str]],
    failed: str,
    busy: str | None = None,
    **kwargs: Any,
) -> None:
    """The one shape of every write in the app: once ``question`` is confirmed (see
    :func:`confirm`), call the api function, drop cached reads, flash ``done(result)`` (a
    message, or (message, kind)) or ``failed: <error>``, and rerun so the page shows it."""
    if not confirm(key, question):
        return
    with st.spinner(busy) if busy else nullcontext():
        result, err = try_call(fn, *args, **kwargs)
    st.cache_data.clear()
    if err is not None:
        flash(f"{failed}: {err.message}", "error")
    else:
        outcome = done(result)
        flash(*outcome) if isinstance(outcome, tuple) else flash(outcome)
    st.rerun()


def flash(message: str, kind: str = "success") -> None:
    """A message shown once after the next rerun (the outcome of a write)."""
    st.session_state["_flash"] = (kind, message)


def show_flash() -> None:
    item = st.session_state.pop("_flash", None)
    if item:
        kind, message = item
        getattr(st, kind)(message)


def offer_report(out: Any, label: str = "Download the HTML report", key: str | None = None) -> None:
    """Say where a rendered report (api.render_report) was written and offer it for download."""
    st.success(f"Report written: {out.html} ({out.seconds:.0f} s)")
    st.download_button(
        label,
        api.report_download(out.html),
        file_name=out.html.name,
        mime="text/html",
        key=key,
    )


__all__ = [
    # shell
    "guarded", "try_call", "target_picker", "current_target", "logged_in", "login_form",
    "require_page_login", "write_allowed", "confirm", "confirmed_write", "flash", "show_flash",
    "offer_report",
    # cached reads
    "cached_ash_activity", "cached_ash_top", "cached_baselines", "cached_blocking",
    "cached_bounds", "cached_check", "cached_compare", "cached_history", "cached_load_profile",
    "cached_object_io", "cached_snapshots", "cached_status", "cached_targets", "cached_top_sql",
    "cached_trends",
    # time
    "RANGES", "fmt_time", "local_tz", "now_step", "range_picker", "to_local", "tz_caption",
    # formats
    "fmt_aas", "fmt_age", "fmt_bytes", "fmt_ms", "fmt_s", "short",
    # tables and charts
    "COUNT_WORDS", "ID_NAMES", "NUM", "TXT", "dataframe", "evidence_tables", "human",
    "profile_in_mb", "spec_table", "spec_view", "table_height", "table_view", "WAIT_COLORS",
    "activity_chart", "time_axis",
]  # fmt: skip
