"""Tables of the app: st.dataframe with columns formatted by meaning (identifiers, counts,
units, human headers), column settings from the report spec, ADDM evidence tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import streamlit as st

from ops_core.model.formats import BLOCK, WITH_UNIT, fmt_bytes, isnull
from ops_core.reports import spec

from .times import fmt_time

NUM = st.column_config.NumberColumn
TXT = st.column_config.TextColumn


def table_height(rows: int, max_rows: int = 25) -> int:
    """Pixel height that shows ``rows`` rows without an inner scroll bar (up to max_rows)."""
    return 38 + 35 * max(1, min(rows, max_rows))


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
            out[col] = [_id_text(v) for v in s]
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


def _id_text(v: Any) -> str:
    """An identifier whole and plain (no thousands separators, no '.0')."""
    if isnull(v):
        return ""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(int(v))
    return str(v)


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
        if unit in WITH_UNIT:
            return WITH_UNIT[unit](v)
        return f"{v:,.0f}" if v.is_integer() else f"{v:,.3g}"
    if isinstance(v, int):
        return str(v) if _is_id(key) else f"{v:,}"
    if isinstance(v, list | tuple):
        return ", ".join(str(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}: {x}" for k, x in v.items())
    return str(v)


# ------------------------------------------------------------------------------ report spec
def spec_view(df: pd.DataFrame, cols: Iterable[spec.Column]) -> tuple[pd.DataFrame, dict]:
    """``df`` reduced to the report spec's columns ``cols`` (those it has, in the spec's order)
    and their Streamlit settings: the HTML report's headings and display formats, sizes in MB
    as there, times in the browser's time zone, identifiers whole, SQL text wide."""
    use = [col for col in cols if col.field in df.columns]
    out = df[[col.field for col in use]].copy()
    cfg: dict[str, Any] = {}
    for col in use:
        s = out[col.field]
        if col.kind in ("mb", "blocks_mb"):
            scale = (BLOCK if col.kind == "blocks_mb" else 1) / 1048576.0
            out[col.field] = pd.to_numeric(s, errors="coerce").astype("float64") * scale
        if col.kind in spec.APP_FORMATS:
            cfg[col.field] = NUM(col.label, format=spec.APP_FORMATS[col.kind])
        elif col.kind in ("time", "clock"):
            out[col.field] = ["" if isnull(v) else fmt_time(v) for v in s]
            cfg[col.field] = TXT(col.label.replace(" (UTC)", ""))
        elif col.kind == "bytes":
            out[col.field] = [fmt_bytes(v) for v in s]
            cfg[col.field] = TXT(col.label)
        elif col.kind == "query":
            out[col.field] = [_cell_text(v) for v in s]
            cfg[col.field] = TXT(col.label, width="large")
        else:
            ident = _is_id(col.field)
            out[col.field] = [_id_text(v) if ident else _cell_text(v) for v in s]
            wide = ident and "query" in col.field  # a 20-digit query id whole
            cfg[col.field] = TXT(col.label, width="medium" if wide else None)
    return out, cfg


def spec_table(df: pd.DataFrame, cols: Iterable[spec.Column], where: Any = None, **kw: Any) -> Any:
    """st.dataframe of ``df`` with the report spec's columns (see :func:`spec_view`), so a
    table of the app and the same table of the HTML report agree column for column."""
    view, cfg = spec_view(df, cols)
    return dataframe(view, cfg, where=where, **kw)
