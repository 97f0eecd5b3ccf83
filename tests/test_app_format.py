"""The app's tables formatted by column meaning (app.common.table_view): identifiers as plain
text, counts as whole numbers, times with units, human headers, no literal None."""

from __future__ import annotations

import pandas as pd

from app import common as c


def _cfg(cfg, col):
    x = cfg[col]
    return x.get("label"), x.get("type_config", {}).get("type"), x.get("type_config", {})


def test_columns_formatted_by_meaning():
    df = pd.DataFrame(
        {
            "queryid": [-7851924583224740102, 2927535412527505107],
            "pid": [9344, 12],
            "calls": [8059.0, 3.0],
            "db_time_s": [1.234, None],
            "mean_ms": [0.5, 2.0],
            "blocking_pids": [[1, 2], None],
            "wal_bytes": [1048576.0, 2048.0],
            "state": ["active", None],
        }
    )
    view, cfg = c.table_view(df)
    # identifiers: whole, plain text, no thousands separators
    assert list(view["queryid"]) == ["-7851924583224740102", "2927535412527505107"]
    assert list(view["pid"]) == ["9344", "12"] and _cfg(cfg, "pid")[:2] == ("PID", "text")
    # counts: integers shown localized (8,059 not 8,059.0)
    assert view["calls"].dtype == "int64" and _cfg(cfg, "calls")[2]["format"] == "localized"
    # a time with nulls: text with its unit, an empty cell for the null, unit not in header
    assert list(view["db_time_s"]) == ["1.2 s", ""] and _cfg(cfg, "db_time_s")[0] == "DB time"
    assert _cfg(cfg, "mean_ms")[2]["format"] == "%,.1f ms"
    assert list(view["blocking_pids"]) == ["1, 2", ""]
    assert list(view["wal_bytes"]) == ["1.0 MB", "2.0 kB"] and _cfg(cfg, "wal_bytes")[0] == "WAL"
    assert "None" not in view.astype(str).to_string()
    assert _cfg(cfg, "state")[0] == "State"


def test_a_page_config_wins_but_never_shows_none():
    df = pd.DataFrame({"interval_s": [4.0, None], "statements": [81.0, 0.0]})
    view, cfg = c.table_view(df, {"interval_s": c.NUM("interval (s)", format="%,.0f")})
    assert list(view["interval_s"]) == ["4", ""] and _cfg(cfg, "interval_s")[:2] == (
        "interval (s)",
        "text",
    )
    assert _cfg(cfg, "statements")[2]["format"] == "localized"


def test_human_headers():
    assert c.human("db_time_s") == "DB time (s)"
    assert c.human("pct_db_time") == "% DB time"
    assert c.human("usename") == "User" and c.human("datname") == "Database"
    assert c.human("wait_class") == "Wait class"


def test_spec_tables_show_the_report_columns():
    """A table the app draws from the report spec has the HTML report's columns, in its order,
    under its headings and units (bytes shown in MB as there, identifiers whole)."""
    from ops_core.reports import spec

    df = pd.DataFrame(
        {
            "username": ["app"],
            "queryid": [-7851924583224740102],
            "total_ms": [1234.5],
            "wal_bytes": [3 * 1048576.0],
            "pct_db_time": [None],
            "query": ["SELECT 1"],
            "not_in_spec": [1],
        }
    )
    view, cfg = c.spec_view(df, spec.HUB_TOP_SQL)
    want = [col for col in spec.HUB_TOP_SQL if col.field in df.columns]
    assert list(view.columns) == [col.field for col in want]
    assert [_cfg(cfg, col.field)[0] for col in want] == [col.label for col in want]
    assert view["wal_bytes"].iloc[0] == 3.0  # "WAL (MB)", as the HTML report shows it
    assert list(view["queryid"]) == ["-7851924583224740102"]
    assert _cfg(cfg, "total_ms")[0] == spec.labels(spec.TOP_SQL)["total_exec_time"]
    shown, shown_cfg = c.table_view(view, cfg)  # a missing share is an empty cell
    assert list(shown["pct_db_time"]) == [""]
