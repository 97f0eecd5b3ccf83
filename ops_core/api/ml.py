"""Workload ML: training, anomaly detection (stored, each linked to the ADDM analysis of its
interval) and maintenance windows, over a target's snapshot and ASH series."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from .. import repository
from ..analysis.ml import anomaly as am
from ..analysis.ml import patterns as pm
from ..analysis.ml import windows as wm
from ..analysis.ml.series import LOAD_PROFILE, OLD_NAMES, load_rates, regular
from ..config import get_settings
from ..errors import InvalidInput, OpsCoreError
from ..repository import ml as repo_ml
from ..repository import targets as repo_targets
from .common import opscore_shown, utc_time
from .targets import resolve_target

__all__ = [
    "ModelInfo",
    "PatternReport",
    "ml_patterns",
    "ml_classifications",
    "ml_predictions",
    "train_ml",
    "ml_models",
    "ml_anomalies",
    "detect_anomalies",
    "maintenance_windows",
    "workload_series",
]

log = logging.getLogger(__name__)
KIND = "anomaly"


def _database(t: Any, database: str | None) -> str | None:
    if database is None:
        return None
    with repository.session() as repo:
        known = repo_ml.database_names(repo, t.target_id)
    if database not in known:
        raise InvalidInput(
            f"Database {database!r} is not in the snapshots of target {t.name!r}.",
            "Databases seen: " + (", ".join(known) or "none (take snapshots first)") + ".",
        )
    return database


def workload_series(
    target: str | None, *, include_ash: bool = True, database: str | None = None
) -> pd.DataFrame:
    """The target's regular per-snapshot series: load-profile rates, backends, and (when ASH
    was sampled) average active sessions by wait class (``ash_<class>``). Indexed by UTC time;
    ``attrs['step']`` is the step in seconds. ``database``: that database's load only (its
    statements and pg_stat_database row; no WAL or ASH columns, which are cluster-wide)."""
    t = resolve_target(target)
    db = _database(t, database)
    with repository.session() as repo:
        if db is None:
            trends = repo_ml.snapshot_series(repo, t.target_id, opscore_shown(None))
        else:
            trends = repo_ml.database_series(repo, t.target_id, db)
    if trends.empty:
        frame = pd.DataFrame(columns=["captured_at"])
        out, step = regular(frame)
        out.attrs["step"] = step.total_seconds()
        return out
    rates = load_rates(trends)
    if db is not None:
        rates = rates.drop(columns=["wal_mb_per_s"])
    out, step = regular(rates)
    if include_ash and db is None and len(out) > 1:
        from .ash import ash_db_time

        bucket = "minute" if step < pd.Timedelta(hours=1) else "hour"
        try:
            ash = ash_db_time(t.name, out.index[0] - step, out.index[-1], by=[bucket, "wait_class"])
        except OpsCoreError as e:  # no ASH for this target: the snapshot series stand alone
            log.info("no ASH series for %s: %s", t.name, e)
            ash = pd.DataFrame()
        if not ash.empty:
            secs = 60.0 if bucket == "minute" else 3600.0
            wide = (
                ash.assign(aas=ash["db_time_s"] / secs, at=pd.to_datetime(ash[bucket], utc=True))
                .pivot_table(index="at", columns="wait_class", values="aas", aggfunc="sum")
                .resample(step, origin=out.index[0] - step, label="right", closed="right")
                .mean()
            )
            wide.columns = [f"ash_{str(c).lower().replace(' ', '_')}" for c in wide.columns]
            out = out.join(wide.reindex(out.index)).fillna({c: 0.0 for c in wide.columns})
    out.attrs["step"] = step.total_seconds()
    return out


# ---------------------------------------------------------------------------------- models


@dataclass
class ModelInfo:
    target: str
    model_id: int
    kind: str
    version: int
    status: str
    trained_at: datetime
    data_begin: datetime | None
    data_end: datetime | None
    points: int
    enough_history: bool
    methods: dict[str, Any]
    validation: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _info(target: str, row: dict[str, Any]) -> ModelInfo:
    return ModelInfo(
        target=target,
        **{k: row[k] for k in ModelInfo.__dataclass_fields__ if k not in ("target",)},
    )


def _model_dir(target: str) -> Path:
    d = get_settings().home_dir / "models" / target
    d.mkdir(parents=True, exist_ok=True)
    return d


def train_ml(target: str | None = None) -> ModelInfo:
    """Fit the anomaly model of a target on all its history and store it (metadata in the
    repository, the fitted objects with joblib under OPSCORE_HOME/models/<target>/); the
    previous version stays as ``previous`` for rollback. With too little history the model
    says so in ``notes`` and what is used meanwhile."""
    t = resolve_target(target)
    frame = workload_series(t.name)
    step = pd.Timedelta(seconds=frame.attrs["step"])
    n = len(frame)
    notes: list[str] = []
    methods: dict[str, str] = {}
    validation: dict[str, Any] = {}
    iforest = None
    if n < 3:
        notes.append(
            f"too little history to train: {n} snapshot intervals; take snapshots for a while "
            "(a day for daily seasonality, three weeks for the weekly profile). Meanwhile "
            "anomalies are scored against the median of the preceding snapshots."
        )
    else:
        method = am.seasonal_method(n, step)
        span_days = (frame.index[-1] - frame.index[0]).total_seconds() / 86400
        if method == "baseline-median":
            notes.append(
                f"not enough history for seasonal models ({span_days:.1f} days of snapshots; "
                "STL needs two days, the weekly profile two weeks): robust z-scores against "
                "the median of the preceding snapshots are used meanwhile"
            )
        elif method == "stl(daily)":
            notes.append(
                f"{span_days:.1f} days of history: daily seasonality (STL); the weekly profile "
                "is added from two weeks"
            )
        cols = [c for c in LOAD_PROFILE if c in frame.columns]
        det = am.detect(frame, step, multivariate=cols)
        methods = {c: f.method for c, f in det.fits.items()}
        score = det.score()
        validation = {
            "points": n,
            "step_s": step.total_seconds(),
            "warning_rate": round(float((score >= am.WARN_Z).mean()), 4),
            "alert_rate": round(float((score >= am.ALERT_Z).mean()), 4),
            "incidents_in_history": len(det.incidents),
            "sigma": {c: round(f.sigma, 6) for c, f in det.fits.items()},
        }
        if n >= 20 and len(cols) >= 2:
            resid = pd.DataFrame({c: det.fits[c].z.clip(-50, 50) for c in cols})
            _, iforest = am.isolation_z(resid)
        else:
            notes.append("fewer than 20 intervals: no multivariate (IsolationForest) model yet")
    with repository.session() as repo:
        version = repo_ml.next_version(repo, t.target_id, KIND)
        path = _model_dir(t.name) / f"{KIND}-v{version}.joblib"
        joblib.dump(
            {
                "methods": methods,
                "iforest": iforest,
                "columns": list(frame.columns),
                "step_s": step.total_seconds(),
            },
            path,
        )
        row = repo_ml.store_model(
            repo,
            t.target_id,
            KIND,
            {
                "version": version,
                "data_begin": frame.index[0].to_pydatetime() if n else None,
                "data_end": frame.index[-1].to_pydatetime() if n else None,
                "points": n,
                "enough_history": n >= 3 and "baseline" not in am.seasonal_method(n, step),
                "methods": methods,
                "validation": validation,
                "notes": notes,
                "path": str(path),
            },
        )
    return _info(t.name, row)


def ml_models(target: str | None = None) -> list[ModelInfo]:
    """Every stored model version of a target, newest first (active, previous, retired)."""
    t = resolve_target(target)
    with repository.session() as repo:
        return [_info(t.name, r) for r in repo_ml.models(repo, t.target_id)]


def _load_model(path: str | None) -> dict[str, Any] | None:
    if not path or not Path(path).exists():
        return None
    saved = joblib.load(path)
    # a model stored before the statement-time rate got its own name (migration 0027)
    saved["methods"] = {OLD_NAMES.get(k, k): v for k, v in saved.get("methods", {}).items()}
    saved["columns"] = [OLD_NAMES.get(c, c) for c in saved.get("columns", [])]
    return saved


# ------------------------------------------------------------------------------- anomalies


def detect_anomalies(
    target: str | None = None,
    since: datetime | str | None = None,
    *,
    alert_z: float = am.ALERT_Z,
    warn_z: float = am.WARN_Z,
    run_addm: bool = True,
    database: str | None = None,
) -> pd.DataFrame:
    """Score the target's series with its active model (or, untrained, the defaults for its
    history) and store every incident at or after ``since`` (default: all history) with the
    metrics that moved, their expected range, and the ADDM analysis of its interval (an
    existing one covering it, else one is run for alerts when ``run_addm``). Returns the stored
    anomalies of the period. ``database``: that database's load only (the trained model is
    the cluster's: the defaults for the history are used)."""
    t = resolve_target(target)
    frame = workload_series(t.name, database=database)
    if len(frame) < 3:
        out = _anomaly_frame(t.target_id, None, database=database)
        out.attrs["note"] = _too_short(len(frame))
        return out
    step = pd.Timedelta(seconds=frame.attrs["step"])
    start = pd.Timestamp(utc_time(since, "since")) if since is not None else None
    det, active = score_frame(
        t, frame, alert_z=alert_z, warn_z=warn_z, since=start, database=database
    )
    model_id = active["model_id"] if active else None
    for inc in det.incidents:
        store_incident(
            t, inc, step, model_id, database, run_addm=run_addm and inc.severity == "alert"
        )
    out = _anomaly_frame(t.target_id, start, database=database)
    out.attrs["methods"] = {c: f.method for c, f in det.fits.items()}
    out.attrs["model_version"] = active["version"] if active else None
    if len(frame) <= am.MIN_HISTORY:
        out.attrs["note"] = _too_short(len(frame))
    return out


def score_frame(
    t: Any,
    frame: pd.DataFrame,
    *,
    alert_z: float = am.ALERT_Z,
    warn_z: float = am.WARN_Z,
    since: pd.Timestamp | None = None,
    database: str | None = None,
) -> tuple[am.Detection, dict[str, Any] | None]:
    """Score ``frame`` with the target's active model (the cluster's; ``database`` scores
    with the defaults for the history); the detection and the active model's row."""
    step = pd.Timedelta(seconds=frame.attrs["step"])
    with repository.session() as repo:
        active = None if database else repo_ml.active_model(repo, t.target_id, KIND)
    saved = _load_model(active["path"]) if active else None
    methods = None
    iforest = None
    if saved and saved.get("step_s") == step.total_seconds():
        # a seasonal method only where the history still allows it
        allowed = am.seasonal_method(len(frame), step)
        methods = {
            c: m if m == allowed or m.startswith("baseline") else allowed
            for c, m in saved["methods"].items()
        }
        iforest = saved.get("iforest")
    cols = [c for c in LOAD_PROFILE if c in frame.columns]
    kw = dict(multivariate=cols, alert_z=alert_z, warn_z=warn_z, methods=methods, since=since)
    try:
        det = am.detect(frame, step, iforest=iforest, **kw)  # type: ignore[arg-type]
    except ValueError:  # a model fitted on other columns: score without it
        det = am.detect(frame, step, **kw)  # type: ignore[arg-type]
    return det, active


def store_incident(
    t: Any,
    inc: am.Incident,
    step: pd.Timedelta,
    model_id: int | None,
    database: str | None,
    *,
    run_addm: bool,
) -> dict[str, Any]:
    """Store one incident with the snapshots around it and the ADDM analysis of its interval
    (an existing one covering it, else one run now when ``run_addm``); the stored fields."""
    a = inc.as_dict()
    with repository.session() as repo:
        b_id, e_id = repo_ml.snapshots_around(
            repo, t.target_id, (inc.begin_at - step).to_pydatetime(), inc.end_at.to_pydatetime()
        )
        addm_id = None
        if b_id is not None and e_id is not None and b_id < e_id:
            addm_id = repo_ml.addm_covering(repo, t.target_id, b_id, e_id)
    if addm_id is None and run_addm and b_id and e_id and b_id < e_id:
        from .addm import run_addm as _run

        try:
            addm_id = _run(t.name, b_id, e_id).analysis_id
        except OpsCoreError as e:
            log.warning("ADDM for the anomaly at %s failed: %s", inc.begin_at, e)
    a.update(
        datname=database,
        model_id=model_id,
        begin_snapshot_id=b_id,
        end_snapshot_id=e_id,
        addm_analysis_id=addm_id,
    )
    for m in a["metrics"]:
        for k in ("value", "expected", "low", "high"):
            m[k] = None if not np.isfinite(m[k]) else round(m[k], 6)
    with repository.session() as repo:
        a["anomaly_id"] = repo_ml.store_anomaly(repo, t.target_id, a)
    return a


def _too_short(n: int) -> str:
    return (
        f"not enough history: {n} snapshot intervals; a point is judged against at least "
        f"{am.MIN_HISTORY} intervals before it, nothing is raised before that"
    )


def _anomaly_frame(
    target_id: int, begin: Any, severity: str | None = None, database: str | None = None
) -> pd.DataFrame:
    with repository.session() as repo:
        return repo_ml.anomalies(repo, target_id, begin, None, severity, database)


def ml_anomalies(
    target: str | None = None,
    begin: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    severity: str | None = None,
    detect: bool = True,
    database: str | None = None,
) -> pd.DataFrame:
    """Detected anomalies of a target, newest first: begin_at, end_at, score (robust z),
    severity (alert / warning), detector, metrics (each: metric, value, expected, low, high,
    z, method), the snapshots around it and ``addm_analysis_id``. ``detect`` first scores the
    series (storing what it finds) — without it only stored anomalies are read.
    ``database``: anomalies of that database's load alone (a cluster shared by several
    applications: the others' sessions and transactions left out)."""
    if severity is not None and severity not in ("alert", "warning"):
        raise InvalidInput(f"{severity!r} is not a severity.", "Use alert or warning.")
    t = resolve_target(target)
    b = utc_time(begin, "begin") if begin is not None else None
    e = utc_time(end, "end") if end is not None else None
    attrs: dict[str, Any] = {}
    if detect:
        attrs = dict(detect_anomalies(t.name, b, database=database).attrs)
    elif database is not None:
        _database(t, database)
    with repository.session() as repo:
        out = repo_ml.anomalies(repo, t.target_id, b, e, severity, database)
    out.attrs.update(attrs)
    return out


# ------------------------------------------------------------------------- windows


def maintenance_windows(target: str | None = None, *, hours: int = 1, top: int = 3) -> wm.Windows:
    """The recurring hour-of-week windows with the least DB time (statement time per second
    from the snapshots), with a confidence; ``enough_history`` false and no windows below two
    weeks of history."""
    if not 1 <= hours <= 24:
        raise InvalidInput(f"hours={hours} is out of range.", "Give 1 to 24 hours.")
    if not 1 <= top <= 20:
        raise InvalidInput(f"top={top} is out of range.", "Give 1 to 20 windows.")
    t = resolve_target(target)
    with repository.session() as repo:
        repo_targets.get(repo, t.name)
        trends = repo_ml.snapshot_series(repo, t.target_id, opscore_shown(None))
    if trends.empty:
        series = pd.Series(dtype="float64", index=pd.DatetimeIndex([], tz="UTC"))
    else:
        rates = load_rates(trends)
        # a snapshot closes its interval: place its load at the middle of the interval
        mid = rates["captured_at"] - pd.to_timedelta(
            trends["interval_s"].astype("float64") / 2, unit="s"
        )
        series = pd.Series(rates["stmt_time_s_per_s"].to_numpy(), index=mid)
    return wm.maintenance_windows(series, hours=hours, top=top)


# ------------------------------------------------------------- patterns and classification


@dataclass
class PatternReport:
    target: str
    statements: int
    intervals: int
    clusters: list[dict[str, Any]]
    members: list[dict[str, Any]]  # queryid, cluster, name, kind, profile, text
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _statement_intervals(
    target: str | None, database: str | None = None
) -> tuple[Any, pd.DataFrame]:
    t = resolve_target(target)
    db = _database(t, database)
    with repository.session() as repo:
        return t, repo_ml.statement_intervals(repo, t.target_id, opscore_shown(None), db)


def ml_patterns(
    target: str | None = None, *, max_clusters: int = 6, database: str | None = None
) -> PatternReport:
    """Statements clustered by resource profile (time/call, rows/call, blocks/call, write
    share, temp blocks/call over the whole history; KMeans, the number of clusters chosen by
    silhouette), each cluster named by its median profile, each statement with its kind."""
    if not 1 <= max_clusters <= 12:
        raise InvalidInput(f"max_clusters={max_clusters} is out of range.", "Give 1 to 12.")
    t, iv = _statement_intervals(target, database)
    if iv.empty:
        return PatternReport(
            t.name, 0, 0, [], [], ["no statement history: take snapshots of a running workload"]
        )
    prof = pm.statement_profiles(iv)
    labels, summary = pm.cluster_statements(prof, max_k=max_clusters)
    names = dict(zip(summary["cluster"], summary["name"], strict=True))
    members = []
    for qid, row in prof.iterrows():
        p = {k: round(float(row[k]), 4) for k in pm.FEATURES}
        members.append(
            {
                "queryid": int(qid),
                "cluster": int(labels.loc[qid]),
                "cluster_name": names[int(labels.loc[qid])],
                "kind": pm.statement_kind(p, pm.statement_node(row["query"])),
                "calls": float(row["calls"]),
                "exec_ms": round(float(row["exec_ms"]), 3),
                **p,
                "query": (row["query"] or "")[:200],
            }
        )
    notes = []
    if len(prof) < 3:
        notes.append(f"{len(prof)} statements: too few to cluster, one group")
    return PatternReport(
        t.name,
        len(prof),
        int(iv["snapshot_id"].nunique()),
        summary.to_dict("records"),
        members,
        notes,
    )


def ml_classifications(
    target: str | None = None,
    begin: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    database: str | None = None,
) -> pd.DataFrame:
    """Each snapshot interval's workload class (oltp / reporting / batch / maintenance /
    mixed / idle), the share of statement time of that class, and the evidence (time share
    per kind, statement time per second, calls/s, time and rows per call, top statements).
    ``database``: only that database's statements (pg_stat_statements is cluster-wide)."""
    b = utc_time(begin, "begin") if begin is not None else None
    e = utc_time(end, "end") if end is not None else None
    _, iv = _statement_intervals(target, database)
    if not iv.empty:
        at = pd.to_datetime(iv["captured_at"], utc=True)
        keep = pd.Series(True, index=iv.index)
        if b is not None:
            keep &= at >= pd.Timestamp(b)
        if e is not None:
            keep &= at <= pd.Timestamp(e)
        iv = iv[keep]
    return pm.classify_intervals(iv)


def ml_predictions(
    target: str | None = None,
    *,
    top: int = 10,
    level: float = 0.9,
    database: str | None = None,
) -> pd.DataFrame:
    """Per top statement (by statement time): the expected mean time per call of the next
    interval with its prediction interval (``level``), the last interval's mean, whether it
    is outside the interval, and the past intervals far outside theirs."""
    if not 1 <= top <= 100:
        raise InvalidInput(f"top={top} is out of range.", "Give 1 to 100 statements.")
    if not 0.5 <= level < 1:
        raise InvalidInput(f"level={level} is out of range.", "Give 0.5 to 0.99.")
    _, iv = _statement_intervals(target, database)
    cols = [
        "queryid", "intervals", "expected_ms", "lower_ms", "upper_ms", "last_ms",
        "last_outside", "outliers", "note", "query",
    ]  # fmt: skip
    if iv.empty:
        return pd.DataFrame(columns=cols)
    prof = pm.statement_profiles(iv).head(top)
    rows = []
    for qid, row in prof.iterrows():
        g = iv[iv["queryid"] == qid]
        mean = pd.Series(
            (g["exec_ms"] / g["calls"]).to_numpy(),
            index=pd.to_datetime(g["captured_at"], utc=True),
        )
        # the last interval is judged against a prediction made without it
        p = pm.predict_mean_time(mean.iloc[:-1], level=level) if len(mean) > 1 else None
        nxt = pm.predict_mean_time(mean, level=level)
        last = float(mean.iloc[-1])
        outside = (
            None
            if p is None or p["lower_ms"] is None
            else bool(last < p["lower_ms"] or last > p["upper_ms"])
        )
        rows.append(
            {
                "queryid": int(qid),
                "intervals": nxt["intervals"],
                "expected_ms": nxt["expected_ms"],
                "lower_ms": nxt["lower_ms"],
                "upper_ms": nxt["upper_ms"],
                "last_ms": last,
                "last_outside": outside,
                "outliers": nxt["outliers"],
                "note": nxt["note"],
                "query": (row["query"] or "")[:200],
            }
        )
    return pd.DataFrame(rows, columns=cols)
