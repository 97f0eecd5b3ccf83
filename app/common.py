"""Shared pieces of the app: the target picker, time ranges, cached reads, formatting,
confirmations. No SQL here: every number comes from ops_core.api."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import streamlit as st

from ops_core import api
from ops_core.errors import OpsCoreError

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


# ------------------------------------------------------------------------------ cached reads
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


# ------------------------------------------------------------------------------ time
RANGES: dict[str, timedelta] = {
    "Last 15 minutes": timedelta(minutes=15),
    "Last hour": timedelta(hours=1),
    "Last 6 hours": timedelta(hours=6),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
}


def local_tz() -> ZoneInfo:
    """The browser's time zone (UTC when the browser did not say, e.g. in tests)."""
    name = None
    try:
        name = st.context.timezone
    except Exception:  # noqa: BLE001 - no browser context
        name = None
    try:
        return ZoneInfo(name or "UTC")
    except ZoneInfoNotFoundError:
        return ZoneInfo("UTC")


def to_local(value: Any) -> Any:
    """A UTC timestamp (or a column of them) in the browser's time zone, without tz suffix."""
    tz = local_tz()
    if isinstance(value, pd.Series):
        s = pd.to_datetime(value, utc=True)
        return s.dt.tz_convert(tz).dt.tz_localize(None)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    return ts.tz_convert(tz).tz_localize(None)


def now_step(step_s: int) -> datetime:
    """The current UTC time rounded up to ``step_s`` seconds: a range ending there holds
    everything up to now and keeps the same cache key for ``step_s`` seconds."""
    now = datetime.now(UTC).replace(microsecond=0)
    rest = now.timestamp() % step_s
    return now + timedelta(seconds=step_s - rest) if rest else now


def fmt_time(value: Any) -> str:
    ts = to_local(value)
    return "" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S")


def fmt_age(value: Any, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    secs = ((now or datetime.now(UTC)) - ts.to_pydatetime()).total_seconds()
    if secs < 90:
        return f"{max(secs, 0):.0f} s ago"
    if secs < 5400:
        return f"{secs / 60:.0f} min ago"
    if secs < 172800:
        return f"{secs / 3600:.1f} h ago"
    return f"{secs / 86400:.1f} days ago"


def tz_caption() -> None:
    st.caption(f"Times in {local_tz().key} (your browser's time zone).")


def range_picker(key: str, default: str = "Last hour") -> tuple[datetime, datetime]:
    """A time range (UTC) picked as 'last N' or custom dates in the browser's time zone."""
    options = [*RANGES, "Custom"]
    cols = st.columns([2, 3])
    choice = cols[0].selectbox("Time range", options, index=options.index(default), key=key)
    # a range ending "now" moves on in steps, so cached reads are reused between reruns
    step = 10 if choice != "Custom" and RANGES[choice] <= timedelta(hours=1) else 60
    now = now_step(step)
    if choice != "Custom":
        return now - RANGES[choice], now
    tz = local_tz()
    today = datetime.now(tz).date()
    picked = cols[1].date_input(
        "From / to (inclusive)", (today - timedelta(days=1), today), key=f"{key}_dates"
    )
    if not isinstance(picked, tuple | list) or len(picked) != 2:
        st.caption("Pick an end date too.")
        return now - timedelta(days=1), now
    b = datetime.combine(picked[0], datetime.min.time(), tzinfo=tz).astimezone(UTC)
    e = datetime.combine(picked[1] + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return b, min(e.astimezone(UTC), now)


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


# ------------------------------------------------------------------------------ format
def fmt_ms(v: float | None) -> str:
    return "" if v is None or pd.isna(v) else f"{v:,.1f} ms"


def fmt_aas(v: float | None) -> str:
    """Average active sessions: three decimals when small, so a light load is not '0.00'."""
    if v is None or pd.isna(v):
        return "—"
    return f"{v:.3f}" if abs(v) < 0.1 else f"{v:.2f}"


def fmt_s(v: float | None) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:,.1f} s"


def fmt_bytes(v: float | None) -> str:
    if v is None or pd.isna(v):
        return ""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(v) < 1024 or unit == "TB":
            return f"{v:,.0f} {unit}" if unit == "B" else f"{v:,.1f} {unit}"
        v /= 1024
    return ""


def short(text: str | None, n: int = 90) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= n else t[: n - 1] + "…"


NUM = st.column_config.NumberColumn
TXT = st.column_config.TextColumn

#: one colour per ASH wait class, the same on every chart (CPU green, I/O blue, locks red)
WAIT_COLORS: dict[str, str] = {
    "CPU": "#2e9e44",
    "IO": "#1f5fbf",
    "Lock": "#d62728",
    "LWLock": "#ff7f0e",
    "BufferPin": "#8c564b",
    "IPC": "#9467bd",
    "Timeout": "#e6b800",
    "Extension": "#17becf",
    "Client": "#7f7f7f",
    "Activity": "#c7c7c7",
    "Other": "#e377c2",
}


def table_height(rows: int, max_rows: int = 25) -> int:
    """Pixel height that shows ``rows`` rows without an inner scroll bar (up to max_rows)."""
    return 38 + 35 * max(1, min(rows, max_rows))


def time_axis(fig: Any, begin: Any = None, end: Any = None) -> None:
    """Readable time ticks; with ``begin``/``end`` the axis spans that range (so a single
    point sits at its time instead of filling a millisecond-wide axis)."""
    fig.update_xaxes(tickformat="%H:%M\n%b %d", title=None)
    if begin is not None and end is not None:
        fig.update_xaxes(range=[to_local(begin), to_local(end)])
    fig.update_yaxes(rangemode="tozero")


def profile_in_mb(lp: pd.DataFrame) -> pd.DataFrame:
    """Load-profile rows counted in bytes shown in MB (display only)."""
    out = lp.copy()
    is_bytes = out["metric"].str.endswith(" bytes")
    num = [col for col in out.columns if col not in ("metric", "change_pct")]
    for col in num:
        out[col] = out[col].astype("float64")
        out.loc[is_bytes, col] = out.loc[is_bytes, col] / 1048576.0
    out.loc[is_bytes, "metric"] = out.loc[is_bytes, "metric"].str.replace(" bytes", " (MB)")
    return out


def activity_chart(act: pd.DataFrame, height: int = 300, slider: bool = True) -> Any:
    """Stacked area of average active sessions by wait class (from api.ash_activity)."""
    import plotly.express as px

    df = act.copy()
    df["time"] = to_local(df["bucket_start"])
    fig = px.area(
        df, x="time", y="aas", color="wait_class", color_discrete_map=WAIT_COLORS,
        category_orders={"wait_class": list(api.WAIT_CLASSES)},
        labels={"aas": "average active sessions", "time": "", "wait_class": ""},
    )  # fmt: skip
    fig.update_traces(line_width=0.5)
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )  # fmt: skip
    time_axis(fig)
    if slider:
        fig.update_xaxes(rangeslider=dict(visible=True, thickness=0.08))
    return fig


# ------------------------------------------------------------------------------ tables
#: words a header spells in capitals or otherwise than its snake_case name
_WORDS = {
    "db": "DB",
    "id": "id",
    "queryid": "query id",
    "pid": "PID",
    "pids": "PIDs",
    "sql": "SQL",
    "io": "I/O",
    "wal": "WAL",
    "ash": "ASH",
    "cpu": "CPU",
    "lsn": "LSN",
    "pct": "%",
    "usename": "user",
    "datname": "database",
    "blks": "blocks",
    "tup": "tuples",
    "xact": "transaction",
    "addr": "address",
    "avg": "average",
}
_UNITS = {"s": "s", "ms": "ms", "bytes": "bytes", "pct": "%", "mb": "MB"}
#: identifiers: plain text, never thousands separators, never truncated
ID_NAMES = {"queryid", "query_id", "pid", "root_pid", "blocker_pid", "leader_pid"}
#: whole numbers: counts of things
COUNT_WORDS = ("calls", "rows", "samples", "count", "blks", "blocks", "tup", "sessions",
               "commits", "rollbacks", "deadlocks", "executions", "n_", "findings",
               "statements", "scans", "scan")  # fmt: skip


def human(name: str, unit: bool = True) -> str:
    """snake_case column name -> a header a DBA reads: db_time_s -> "DB time (s)" (without
    the unit when the values carry it: ``unit=False``)."""
    parts = str(name).split("_")
    u = _UNITS.get(parts[-1]) if len(parts) > 1 else None
    if u:
        parts = parts[:-1]
    words = " ".join(_WORDS.get(p, p) for p in parts if p)
    words = words[:1].upper() + words[1:]
    return f"{words} ({u})" if u and unit else words


def _is_id(col: str) -> bool:
    return col in ID_NAMES or col.endswith("_id") or col in ("analysis", "snapshot")


def _is_count(col: str, s: pd.Series) -> bool:
    if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return False
    whole = s.dropna()
    whole = whole.empty or bool((whole == whole.round()).all())
    return whole and any(w in col for w in COUNT_WORDS)


def table_view(df: pd.DataFrame, column_config: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """``df`` and a column configuration formatted by column meaning, for st.dataframe:
    identifiers (queryid, pids, *_id) as plain text, counts as whole numbers, times with their
    unit, bytes scaled, human headers, and no literal None (an empty cell). Columns already in
    ``column_config`` keep their configuration (headers and formats a page chose)."""
    out = df.copy()
    cfg: dict[str, Any] = {}
    given = column_config or {}
    for col in out.columns:
        s = out[col]
        name = str(col)
        if col in given:  # the page's own header and format; only no literal None
            conf = given[col] if isinstance(given[col], dict) else {}
            tc = conf.get("type_config") or {}
            if s.dtype == object:
                out[col] = ["" if v is None else v for v in s]
            elif tc.get("type") == "number" and s.isna().any():
                fmt = tc.get("format") or "%,.2f"
                fmt = fmt if "f" in fmt else "%,.0f"
                out[col] = ["" if pd.isna(v) else _fmt_num(float(v), fmt) for v in s]
                cfg[col] = TXT(conf.get("label") or human(name))
            continue
        if _is_id(name):
            out[col] = [
                ""
                if v is None or (isinstance(v, float) and pd.isna(v))
                else str(int(v))
                if isinstance(v, int | float) and not isinstance(v, bool)
                else str(v)
                for v in s
            ]
            wide = "query" in name  # a 20-digit queryid whole; a pid is short
            cfg[col] = TXT(human(name), width="medium" if wide else "small")
        elif name.endswith("bytes") and pd.api.types.is_numeric_dtype(s):
            out[col] = [fmt_bytes(v) for v in s]
            cfg[col] = TXT(human(name).replace(" (bytes)", ""))
        elif _is_count(name, s):
            if s.isna().any():
                out[col] = ["" if pd.isna(v) else f"{int(v):,}" for v in s]
                cfg[col] = TXT(human(name))
            else:
                out[col] = s.astype("int64")
                cfg[col] = NUM(human(name), format="localized")
        elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            unit = name.rsplit("_", 1)[-1] if "_" in name else ""
            fmt = {"s": "%,.1f s", "ms": "%,.1f ms", "pct": "%.1f %%"}.get(unit, "%,.2f")
            if s.isna().any():
                out[col] = ["" if pd.isna(v) else _fmt_num(v, fmt) for v in s]
                cfg[col] = TXT(human(name).replace(f" ({_UNITS.get(unit, '')})", ""))
            else:
                cfg[col] = NUM(human(name).replace(f" ({_UNITS.get(unit, '')})", ""), format=fmt)
        elif pd.api.types.is_datetime64_any_dtype(s):
            out[col] = [fmt_time(v) if not pd.isna(v) else "" for v in s]
            cfg[col] = TXT(human(name))
        else:
            out[col] = [_cell_text(v) for v in s]
            cfg[col] = TXT(human(name))
    for k, v in given.items():  # the page's own, unless made text above
        cfg.setdefault(k, v)
    return out, cfg


def _cell_text(v: Any) -> str:
    """A cell of a text column: lists joined, mappings as key: value, nothing as empty."""
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, list | tuple):
        return ", ".join(str(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}: {x}" for k, x in v.items())
    return str(v)


def _fmt_num(v: float, fmt: str) -> str:
    """A number as NumberColumn's printf-like format would show it ("%,.1f s" -> 1,234.5 s)."""
    unit = fmt.split("f", 1)[1].replace("%%", "%") if "f" in fmt else ""
    decimals = int(fmt.split(".")[1][0]) if "." in fmt else 2
    return f"{v:,.{decimals}f}{unit}"


def dataframe(
    df: pd.DataFrame, column_config: dict | None = None, where: Any = None, **kw: Any
) -> Any:
    """st.dataframe (or ``where``.dataframe: a column, a tab) through :func:`table_view`
    (hide_index and full width by default)."""
    view, cfg = table_view(df, column_config)
    kw.setdefault("hide_index", True)
    kw.setdefault("width", "stretch")
    return (where or st).dataframe(view, column_config=cfg, **kw)


def evidence_tables(evidence: dict[str, Any]) -> None:
    """An ADDM finding's evidence as a DBA reads it: the scalar facts in one two-column table,
    each list of records (per statement, per session) as its own table, nested mappings as
    what/value tables; headers and figures through :func:`table_view`."""
    facts: list[dict[str, str]] = []
    for key, value in evidence.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            st.markdown(f"**{human(key)}**")
            dataframe(pd.DataFrame(value), height=table_height(len(value), 10))
        elif isinstance(value, dict):
            st.markdown(f"**{human(key)}**")
            rows = [
                {"what": human(k, unit=False), "value": _evidence_value(k, v)}
                for k, v in value.items()
            ]
            dataframe(pd.DataFrame(rows), height=table_height(len(rows), 10))
        else:
            facts.append({"what": human(key, unit=False), "value": _evidence_value(key, value)})
    if facts:
        dataframe(pd.DataFrame(facts), height=table_height(len(facts), 15))


def _evidence_value(key: str, v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    unit = key.rsplit("_", 1)[-1] if "_" in key else ""
    if isinstance(v, int | float) and unit in ("s", "ms", "pct"):
        v = float(v)
    if isinstance(v, float):
        if unit == "s":
            return f"{v:,.1f} s"
        if unit == "ms":
            return f"{v:,.1f} ms"
        if unit == "pct":
            return f"{v:.1f} %"
        return f"{v:,.0f}" if v.is_integer() else f"{v:,.3g}"
    if isinstance(v, int):
        return str(v) if _is_id(key) else f"{v:,}"
    if isinstance(v, list | tuple):
        return ", ".join(str(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}: {x}" for k, x in v.items())
    return str(v)
