"""Workload patterns (pure: frames in, frames out).

- :func:`statement_profiles` / :func:`cluster_statements`: each statement's resource profile
  over the history (time/call, rows/call, blocks/call, write share, temp blocks/call), and
  clusters of statements with similar profiles (scikit-learn KMeans on the standardized log
  profile, the number of clusters chosen by silhouette), each named by its centroid.
- :func:`statement_kind` and :func:`classify_intervals`: every statement in every interval gets
  a kind (maintenance / batch / reporting / OLTP) from its profile in that interval; the
  interval is the kind holding at least ``DOMINANT`` of its statement time, else ``mixed``,
  with the evidence (time share per kind, calls/s, mean time per call, top statements).
- :func:`predict_mean_time`: per statement, the expected mean time per call of the next
  interval (the median of the recent intervals) with an empirical prediction interval (the
  quantiles of the past one-step log errors of the same predictor), and the past intervals
  that fell far outside theirs.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pandas as pd

DOMINANT = 0.6
FEATURES = ["ms_per_call", "rows_per_call", "blks_per_call", "write_share", "temp_per_call"]
KINDS = ("maintenance", "batch", "reporting", "oltp")
MAINTENANCE_NODES = {
    "VacuumStmt",
    "IndexStmt",
    "ReindexStmt",
    "ClusterStmt",
    "RefreshMatViewStmt",
    "CheckPointStmt",
}
BATCH_NODES = {"CopyStmt", "CreateTableAsStmt"}
DML_NODES = {"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"}
BULK_ROWS = 1000


@cache
def statement_node(query: str | None) -> str | None:
    """The parse node of a statement text (pglast), e.g. ``SelectStmt``; None when the text
    is missing or does not parse (pg_stat_statements texts can be truncated)."""
    if not query:
        return None
    try:
        import pglast

        stmts = pglast.parse_sql(query)
    except Exception:  # noqa: BLE001 - a text that does not parse has no node
        return None
    if not stmts:
        return None
    return type(stmts[0].stmt).__name__


def _profile(df: pd.DataFrame) -> pd.DataFrame:
    calls = df["calls"].clip(lower=1)
    touched = df["blks_hit"] + df["blks_read"]
    writes = df["blks_dirtied"] + df["blks_written"]
    return pd.DataFrame(
        {
            "ms_per_call": df["exec_ms"] / calls,
            "rows_per_call": df["rows"] / calls,
            "blks_per_call": (touched + writes) / calls,
            "write_share": (writes / (touched + writes).where(touched + writes > 0)).fillna(0.0),
            "temp_per_call": df["temp_blks"] / calls,
        },
        index=df.index,
    )


def statement_profiles(intervals: pd.DataFrame) -> pd.DataFrame:
    """Per statement over the whole history: calls, total time, the profile columns and its
    text (one row per queryid, busiest first)."""
    cols = [
        "calls",
        "exec_ms",
        "rows",
        "blks_hit",
        "blks_read",
        "blks_dirtied",
        "blks_written",
        "temp_blks",
    ]
    g = intervals.groupby("queryid")
    tot = g[cols].sum()
    out = pd.concat([tot[["calls", "exec_ms"]], _profile(tot)], axis=1)
    out["query"] = g["query"].first()
    return out.sort_values("exec_ms", ascending=False)


def statement_kind(profile: dict[str, float], node: str | None) -> str:
    """A statement's kind from its profile (and parse node): maintenance commands (VACUUM,
    CREATE INDEX, REINDEX, CLUSTER, REFRESH MATERIALIZED VIEW, CHECKPOINT); batch (COPY,
    CREATE TABLE AS, and bulk writes: INSERT/UPDATE/DELETE/MERGE of 1,000 rows or more per
    call, or any statement that many rows mostly writing); reporting (long reads: 50 ms or
    more per call, or 1,000 rows or 10,000 blocks per call); else OLTP."""
    rows = profile["rows_per_call"]
    if node in MAINTENANCE_NODES:
        return "maintenance"
    if (
        node in BATCH_NODES
        or (node in DML_NODES and rows >= BULK_ROWS)
        or (rows >= BULK_ROWS and profile["write_share"] >= 0.3)
    ):
        return "batch"
    if profile["ms_per_call"] >= 50 or rows >= BULK_ROWS or profile["blks_per_call"] >= 10000:
        return "reporting"
    return "oltp"


def _name_cluster(c: dict[str, float]) -> str:
    parts = []
    if c["temp_per_call"] >= 1:
        parts.append("temp-spilling")
    if c["write_share"] >= 0.3:
        parts.append("write-heavy")
    if c["ms_per_call"] >= 50:
        parts.append("long")
    elif c["ms_per_call"] < 1:
        parts.append("fast")
    if c["rows_per_call"] >= 1000:
        parts.append("bulk-row")
    elif c["rows_per_call"] <= 1.5:
        parts.append("single-row")
    if c["blks_per_call"] >= 10000:
        parts.append("scan")
    return " ".join(parts) or "medium"


def cluster_statements(
    profiles: pd.DataFrame, *, max_k: int = 6, seed: int = 0
) -> tuple[pd.Series, pd.DataFrame]:
    """Cluster label per statement and one row per cluster (size, share of statement time,
    the median profile of its members and a name). Fewer than 3 statements: one cluster."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    x = np.log1p(profiles[FEATURES].clip(lower=0).to_numpy(dtype="float64"))
    x[:, FEATURES.index("write_share")] = profiles["write_share"].to_numpy() * 3
    n = len(profiles)
    labels = np.zeros(n, dtype=int)
    distinct = len(np.unique(np.round(x, 6), axis=0)) if n else 0
    if n >= 3 and distinct >= 2:
        xs = StandardScaler().fit_transform(x)
        best = (-2.0, labels)
        for k in range(2, min(max_k, distinct - 1 if distinct > 2 else 2, n - 1) + 1):
            lab = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(xs)
            if len(set(lab)) < 2:
                continue
            score = float(silhouette_score(xs, lab))
            if score > best[0]:
                best = (score, lab)
        labels = best[1]
    lab = pd.Series(labels, index=profiles.index, name="cluster")
    total = float(profiles["exec_ms"].sum()) or 1.0
    rows = []
    for c, members in profiles.groupby(lab):
        med = members[FEATURES].median().to_dict()
        rows.append(
            {
                "cluster": int(c),
                "name": _name_cluster(med),
                "statements": len(members),
                "time_share": round(float(members["exec_ms"].sum()) / total, 4),
                **{k: round(float(v), 4) for k, v in med.items()},
                "top_queryids": [int(q) for q in members.index[:5]],
            }
        )
    summary = pd.DataFrame(rows).sort_values("time_share", ascending=False, ignore_index=True)
    return lab, summary


def classify_intervals(intervals: pd.DataFrame) -> pd.DataFrame:
    """One row per snapshot interval: its workload class (oltp / reporting / batch /
    maintenance / mixed / idle) and the evidence."""
    if intervals.empty:
        return pd.DataFrame(columns=["snapshot_id", "captured_at", "class", "share", "evidence"])
    df = intervals.copy()
    prof = _profile(df)
    df["kind"] = [
        statement_kind(p, statement_node(q))
        for p, q in zip(prof.to_dict("records"), df["query"], strict=True)
    ]
    rows = []
    for (sid, at, secs), g in df.groupby(["snapshot_id", "captured_at", "interval_s"], sort=True):
        total = float(g["exec_ms"].sum())
        calls = float(g["calls"].sum())
        if total <= 0:
            rows.append(
                {"snapshot_id": sid, "captured_at": at, "class": "idle", "share": 1.0,
                 "evidence": {"statement_time_ms": 0.0, "calls_per_s": calls / secs}}
            )  # fmt: skip
            continue
        shares = g.groupby("kind")["exec_ms"].sum() / total
        top_kind = str(shares.idxmax())
        cls = top_kind if shares.max() >= DOMINANT else "mixed"
        top = g.sort_values("exec_ms", ascending=False).head(3)
        rows.append(
            {
                "snapshot_id": int(sid),
                "captured_at": at,
                "class": cls,
                "share": round(float(shares.max()), 3),
                "evidence": {
                    "time_share": {k: round(float(v), 3) for k, v in shares.items()},
                    "statement_time_s_per_s": round(total / 1000 / secs, 4),
                    "calls_per_s": round(calls / secs, 2),
                    "ms_per_call": round(total / max(calls, 1), 3),
                    "rows_per_call": round(float(g["rows"].sum()) / max(calls, 1), 2),
                    "top": [
                        {
                            "queryid": int(r["queryid"]),
                            "kind": r["kind"],
                            "share": round(float(r["exec_ms"]) / total, 3),
                        }
                        for _, r in top.iterrows()
                    ],
                },
            }
        )
    return pd.DataFrame(rows)


def predict_mean_time(
    series: pd.Series, *, window: int = 12, level: float = 0.9, far: float = 2.0
) -> dict[str, Any]:
    """``series``: one statement's mean time per call per interval (ms), in time order.

    The next interval's expected mean is the median of the last ``window`` intervals; the
    interval comes from the quantiles of the past one-step errors of that same predictor on
    the log scale (an empirical interval: no normality assumed); a past interval is flagged
    when it lies outside its own prediction interval widened ``far`` times (on the log
    scale). Fewer than 4 intervals: no interval, said in ``note``."""
    y = series.dropna()
    y = y[y > 0]
    out: dict[str, Any] = {
        "intervals": len(y),
        "expected_ms": None,
        "lower_ms": None,
        "upper_ms": None,
        "last_ms": float(y.iloc[-1]) if len(y) else None,
        "outliers": [],
        "note": None,
    }
    if len(y) < 4:
        out["note"] = f"too little history ({len(y)} intervals; 4 needed)"
        if len(y):
            out["expected_ms"] = float(y.median())
        return out
    logy = np.log(y)
    pred = logy.shift(1).rolling(window, min_periods=3).median()
    err = (logy - pred).dropna()
    center = float(logy.iloc[-window:].median())
    alpha = 1 - level
    if len(err) >= 3:
        lo_q, hi_q = np.quantile(err, [alpha / 2, 1 - alpha / 2])
    else:  # pragma: no cover - len(y) >= 4 gives at least one error; 3 needed for quantiles
        lo_q, hi_q = -abs(float(err.abs().max())), abs(float(err.abs().max()))
    out["expected_ms"] = float(np.exp(center))
    out["lower_ms"] = float(np.exp(center + lo_q))
    out["upper_ms"] = float(np.exp(center + hi_q))
    width = max(hi_q - lo_q, 1e-9)
    mid = (hi_q + lo_q) / 2
    flag = (err - mid).abs() > far * width / 2 + 0.05
    out["outliers"] = [
        {
            "at": at,
            "mean_ms": float(y.loc[at]),
            "expected_ms": float(np.exp(pred.loc[at])),
            "ratio": round(float(np.exp(err.loc[at])), 3),
        }
        for at in err.index[flag.to_numpy()]
    ]
    return out
