"""What the alert engine's ``anomaly_score`` rules read: the anomaly detector's score of a
target's latest snapshot interval, with the metrics that moved (value and expected range) and
the ADDM analysis of the anomaly. Registered with ``ops_core.alerts.metrics`` on import (the
alert engine sits below the service layer and does not import it).

Cost: scoring re-reads the target's series and refits the per-metric models, so the result is
kept per target until a new snapshot (or a new model) arrives: the alerts flow evaluates every
minute, snapshots come every few minutes."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import repository
from ..alerts import metrics as alert_metrics
from ..analysis.ml import anomaly as am
from ..repository import ml as repo_ml
from .ml import KIND, score_frame, store_incident, workload_series

__all__ = []  # nothing of its own to export: it registers a reader with the alert engine

#: target (id, name, registered at) -> (key, scored latest interval); key = (newest interval,
#: intervals, active model, threshold)
_CACHE: dict[tuple[Any, ...], tuple[tuple[Any, ...], dict[str, Any]]] = {}


def _not_enough(n: int, step: pd.Timedelta) -> str:
    return (
        f"not enough history: {n} snapshot intervals of {step.total_seconds():g} s; the "
        f"detector judges an interval against at least {am.MIN_HISTORY} before it (and "
        "against the daily profile from two days of snapshots): the rule stays silent until "
        "then"
    )


def _moved(det: am.Detection, frame: pd.DataFrame, at: pd.Timestamp) -> list[dict[str, Any]]:
    """The metrics of the interval ending ``at`` that moved most, with their expected range
    (the warning band of the detector)."""
    rows = []
    for name, f in det.fits.items():
        z = float(f.z.loc[at])
        lo, hi = f.band(am.WARN_Z)
        rows.append(
            {
                "metric": name,
                "value": round(float(frame[name].loc[at]), 6),
                "expected": round(float(f.expected.loc[at]), 6),
                "low": round(float(lo.loc[at]), 6),
                "high": round(float(hi.loc[at]), 6),
                "z": round(z, 2),
                "method": f.method,
            }
        )
    rows.sort(key=lambda m: -abs(m["z"]))
    strong = [m for m in rows if abs(m["z"]) >= am.WARN_Z]
    return strong or rows[:3]


def latest_interval_anomaly(t: Any, addm_at: float = am.ALERT_Z) -> dict[str, Any]:
    """The detector's score of the target's latest snapshot interval: ``score`` (robust z, the
    largest over the metrics and the multivariate detector), ``detail`` (interval, metrics that
    moved with their expected range, detector, model version, and — when the interval belongs
    to an incident — the stored anomaly and its ADDM analysis, run now if none covers it and
    the score reaches ``addm_at``), or ``unavailable`` with the reason."""
    frame = workload_series(t.name)
    step = pd.Timedelta(seconds=frame.attrs["step"])
    n = len(frame)
    if n <= am.MIN_HISTORY:
        return {"unavailable": _not_enough(n, step)}
    with repository.session() as repo:
        active = repo_ml.active_model(repo, t.target_id, KIND)
    key = (frame.index[-1], n, active["model_id"] if active else None, addm_at)
    who = (t.target_id, t.name, t.created_at)
    hit = _CACHE.get(who)
    if hit is not None and hit[0] == key:
        return hit[1]
    det, active = score_frame(t, frame)
    last = frame.index[-1]
    score = float(det.score().loc[last])
    detail: dict[str, Any] = {
        "interval_begin": (last - step).to_pydatetime(),
        "interval_end": last.to_pydatetime(),
        "step_s": step.total_seconds(),
        "methods": sorted({f.method for f in det.fits.values()}),
        "model_version": active["version"] if active else None,
        "metrics": _moved(det, frame, last),
        "anomaly_id": None,
        "addm_analysis_id": None,
    }
    if active is None:
        detail["model_note"] = (
            "no trained model: scored with the defaults for this history (opscore ml train)"
        )
    inc = det.incidents[-1] if det.incidents else None
    if inc is not None and inc.end_at > last and inc.note:
        # the same work at another speed (throughput alone moved): the score is that of the
        # metrics the explanation leaves, the full one kept beside it
        detail.update(score_with_throughput=round(score, 2), note=inc.note)
        score = max(
            (abs(float(f.z.loc[last])) for n, f in det.fits.items() if n not in am.THROUGHPUT),
            default=0.0,
        )
    if inc is not None and inc.end_at > last:  # the latest interval is part of an incident
        stored = store_incident(
            t,
            inc,
            step,
            active["model_id"] if active else None,
            None,
            run_addm=score >= addm_at,
        )
        detail.update(
            anomaly_id=stored["anomaly_id"],
            anomaly_begin=stored["begin_at"],
            anomaly_severity=stored["severity"],
            detector=stored["detector"],
            addm_analysis_id=stored["addm_analysis_id"],
        )
        if stored["addm_analysis_id"] is not None:
            detail["addm"] = f"opscore addm show {stored['addm_analysis_id']}"
    out = {"score": score, "detail": detail}
    _CACHE[who] = (key, out)
    return out


alert_metrics.ANOMALY_READER[:] = [latest_interval_anomaly]
