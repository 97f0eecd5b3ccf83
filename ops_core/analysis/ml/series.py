"""Regular time series from irregular snapshot rows."""

from __future__ import annotations

import pandas as pd

DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(days=7)


def regular(
    frame: pd.DataFrame, time_col: str = "captured_at"
) -> tuple[pd.DataFrame, pd.Timedelta]:
    """Resample ``frame`` (one row per snapshot) onto its median step: the mean of each bucket,
    short gaps (up to 3 steps) interpolated, longer ones left empty. Returns the frame (indexed
    by UTC time) and the step."""
    if frame.empty:
        return frame.set_index(pd.DatetimeIndex([], tz="UTC")), pd.Timedelta(minutes=15)
    df = frame.copy()
    df[time_col] = pd.to_datetime(df[time_col], utc=True)
    df = df.sort_values(time_col).set_index(time_col)
    numeric = df.select_dtypes("number")
    diffs = numeric.index.to_series().diff().dropna()
    step = diffs.median() if len(diffs) else pd.Timedelta(minutes=15)
    step = max(pd.Timedelta(seconds=1), pd.Timedelta(seconds=round(step.total_seconds())))
    out = numeric.resample(step).mean().interpolate(limit=3, limit_area="inside")
    return out, step


def steps_per(step: pd.Timedelta, span: pd.Timedelta) -> int:
    return max(1, int(round(span / step)))


def load_rates(trends: pd.DataFrame) -> pd.DataFrame:
    """Per-snapshot rates from the repository's per-interval deltas (perf_reads.trends):
    captured_at + stmt_time_s_per_s (statement execution time per second, from
    pg_stat_statements: the average number of statements executing; not ASH DB time, which
    counts sessions), calls_per_s, xacts_per_s, rows_per_s, blks_read_per_s, temp_mb_per_s,
    wal_mb_per_s, backends."""
    iv = trends["interval_s"].astype("float64")
    return pd.DataFrame(
        {
            "captured_at": pd.to_datetime(trends["captured_at"], utc=True),
            "stmt_time_s_per_s": trends["exec_ms"].astype("float64") / 1000.0 / iv,
            "calls_per_s": trends["calls"].astype("float64") / iv,
            "xacts_per_s": trends["xacts"].astype("float64") / iv,
            "rows_per_s": trends["rows"].astype("float64") / iv,
            "blks_read_per_s": trends["blks_read"].astype("float64") / iv,
            "temp_mb_per_s": trends["temp_bytes"].astype("float64") / 1048576.0 / iv,
            "wal_mb_per_s": pd.to_numeric(trends["wal_bytes"]).astype("float64") / 1048576.0 / iv,
            "backends": pd.to_numeric(trends["backends"]).astype("float64"),
        }
    )


#: the name the statement-time rate had before migration 0027 (models stored then use it)
OLD_NAMES = {"db_time_s_per_s": "stmt_time_s_per_s"}

#: the load-profile columns the multivariate detector looks at together
LOAD_PROFILE = [
    "stmt_time_s_per_s",
    "calls_per_s",
    "xacts_per_s",
    "rows_per_s",
    "blks_read_per_s",
    "wal_mb_per_s",
]
