"""Anomaly detection on regular metric series.

Per metric: the expected value comes from a seasonal decomposition once enough history exists
(robust STL with a daily period from two days, plus a weekly profile from two weeks); its
residual is scored as a robust z-score (median and MAD of all residuals). Short of two days,
each point is scored causally against the median and MAD of the values before it, and only
once ``MIN_HISTORY`` of them exist (before that: not enough history, nothing is raised).
Deviations smaller than a per-metric floor never alert; for rates over intervals shorter
than a minute the floor grows with the counting noise (sqrt(60 s / interval)), and an alert
must last ``MIN_ALERT_S`` (a one-interval burst on snapshots seconds apart is a warning).
Multivariate: an IsolationForest over the standardized load-profile columns, its score turned
into the same robust z scale.

Points at or above ``alert_z`` are alerts; consecutive flagged points form one incident, which
lists the metrics that moved with their value and expected range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .fitting import caught
from .series import DAY, WEEK, steps_per

ALERT_Z = 6.0
WARN_Z = 4.0
MAD_K = 1.4826
MAX_PER_DAY = 288  # decomposition grid: at most 5-minute points
LOG_SIGMA_FLOOR = 0.05  # on the log scale: a 5 % change is never more than one sigma
#: the smallest deviation that matters, in the metric's units (by name prefix): a move
#: smaller than alert_z times this never alerts, however flat the metric was before
FLOORS = {
    "stmt_time": 0.02,  # statement time per second (average statements executing)
    "db_time": 0.02,  # average active sessions (generated series of bench/ml_bench.py)
    "ash_": 0.02,
    "calls": 1.0,  # per second
    "xacts": 1.0,
    "rows": 10.0,
    "blks_read": 10.0,
    "temp_mb": 0.2,  # MB/s
    "wal_mb": 0.05,
    "backends": 0.5,  # sessions
}


#: gauges: a value as read, not a count over the interval (their floor does not depend on it)
GAUGES = ("backends",)
#: the interval the floors are stated for: a rate over a shorter interval counts fewer events
#: and carries more counting noise (about sqrt(60 s / interval) times a minute's)
FLOOR_INTERVAL_S = 60.0
#: short history (no seasonal model): a point is scored against the preceding values only,
#: and needs this many of them before it can raise anything ("not enough history" before)
MIN_HISTORY = 10
BASELINE_WINDOW = 60
#: an alert lasts at least this long: on snapshots seconds apart a single interval's burst (a
#: checkpoint's flush, one slow statement finishing) is a warning, not an incident
MIN_ALERT_S = 6.0
#: throughput rates: how much work got done per second. The same sessions doing the same
#: work get more or less of it done as the server (or the host under it) runs faster or
#: slower for everyone
THROUGHPUT = ("calls_per_s", "xacts_per_s", "rows_per_s", "blks_read_per_s", "wal_mb_per_s")
#: the work in flight: statement time per second (the average number of statements
#: executing). More work arriving raises it with the throughput; the same work at another
#: speed moves the throughput and not it (``db_time``: average active sessions, the generated
#: series of bench/ml_bench.py)
IN_FLIGHT = ("stmt_time_s_per_s", "db_time")
#: a throughput move is "the same work at another speed" when the work in flight stays
#: inside its warning band and moved (log scale) less than this share of the throughput's move
SPEED_SHARE = 0.5


def floor_of(metric: str, step: pd.Timedelta | None = None) -> float:
    """The smallest deviation that matters for ``metric`` at snapshot interval ``step``: the
    per-minute floor, scaled up by sqrt(60 s / interval) for rates over shorter intervals."""
    base = next((v for k, v in FLOORS.items() if metric.startswith(k)), 0.0)
    if step is None or metric.startswith(GAUGES):
        return base
    secs = step.total_seconds()
    if 0 < secs < FLOOR_INTERVAL_S:
        base *= float(np.sqrt(FLOOR_INTERVAL_S / secs))
    return base


@dataclass
class MetricFit:
    metric: str
    method: str
    expected: pd.Series  # in the metric's units
    sigma: float  # robust scale of the residual, on the scale the metric was scored on
    z: pd.Series  # signed robust z of the residual
    offset: float | None = None  # scored as log(value + offset) when set (non-negative rates)
    center: pd.Series | None = None  # expected value on the scored scale
    scale: pd.Series | None = None  # per-point scale (causal baseline), else ``sigma``

    def band(self, k: float = WARN_Z) -> tuple[pd.Series, pd.Series]:
        c = self.center if self.center is not None else self.expected
        sd = self.scale if self.scale is not None else self.sigma
        lo, hi = c - k * sd, c + k * sd
        if self.offset is not None:
            return np.exp(lo) - self.offset, np.exp(hi) - self.offset
        return lo, hi


def robust_sigma(resid: np.ndarray | pd.Series, level: np.ndarray | pd.Series) -> float:
    """MAD-based scale of residuals, floored so a flat series (all zeros) does not make every
    tiny change infinite: 5 % of the median level, 1 % of the 95th percentile."""
    r = np.asarray(pd.Series(resid).dropna(), dtype="float64")
    lv = np.abs(np.asarray(pd.Series(level).dropna(), dtype="float64"))
    if r.size == 0:
        return 1.0
    mad = MAD_K * float(np.median(np.abs(r - np.median(r))))
    floor = 0.0
    if lv.size:
        floor = max(0.05 * float(np.median(lv)), 0.01 * float(np.quantile(lv, 0.95)))
    return max(mad, floor, 1e-9)


def seasonal_method(n: int, step: pd.Timedelta) -> str:
    """Which decomposition ``n`` regular points of ``step`` allow."""
    day, week = steps_per(step, DAY), steps_per(step, WEEK)
    if day >= 4 and n >= 2 * week:
        return "stl(daily)+weekly"
    if day >= 4 and n >= 2 * day:
        return "stl(daily)"
    return "baseline-median"


def expected_values(
    y: pd.Series, step: pd.Timedelta, method: str | None = None
) -> tuple[pd.Series, str]:
    """Expected value of every point of a regular series, and the method used.

    ``stl(daily)``: robust STL with the daily period (trend + seasonal). ``+weekly`` (two weeks
    and more): plus the median, over the weeks, of what STL left at the same position of the
    week (from three weeks a median ignores an incident in one of them; MSTL's weekly smoother,
    with so few cycles, absorbed whole incidents into the weekly component)."""
    from statsmodels.tsa.seasonal import STL

    method = method or seasonal_method(len(y), step)
    filled = y.interpolate(limit_direction="both").fillna(0.0)
    coarse = DAY / MAX_PER_DAY
    if method.startswith("stl") and step < coarse and isinstance(y.index, pd.DatetimeIndex):
        # finer than 5 minutes: decompose the 5-minute means (STL's loess cost grows with the
        # period) and interpolate the expected values back onto the original points
        small = filled.resample(coarse).mean().interpolate(limit_direction="both")
        exp_small, used = expected_values(small, coarse, method)
        mid = exp_small.copy()
        mid.index = mid.index + coarse / 2
        joined = mid.reindex(mid.index.union(y.index)).interpolate(
            method="time", limit_direction="both"
        )
        return joined.reindex(y.index).rename(y.name), used + "@5min"
    if method.startswith("stl"):
        period = steps_per(step, DAY)
        with caught():  # what STL warns is not kept: its fit is judged by the residuals
            res = STL(filled, period=period, robust=True).fit(outer_iter=3)
        expected = res.trend + res.seasonal
        if method.endswith("+weekly"):
            week = steps_per(step, WEEK)
            pos = (
                (filled.index - filled.index[0]) // step % week
                if isinstance(filled.index, pd.DatetimeIndex)
                else np.arange(len(filled)) % week
            )
            left = (filled - expected).groupby(np.asarray(pos)).transform("median")
            expected = expected + left
        return expected.rename(y.name), method
    base, _ = causal_baseline(filled)
    # before MIN_HISTORY preceding points: the median so far (shown, never scored)
    base = base.fillna(filled.expanding(min_periods=1).median())
    return base.rename(y.name), f"baseline-median({BASELINE_WINDOW})"


def causal_baseline(
    y: pd.Series, window: int = BASELINE_WINDOW, min_history: int = MIN_HISTORY
) -> tuple[pd.Series, pd.Series]:
    """Median and robust scale (1.4826 MAD) of the up to ``window`` values before each point
    (NaN until ``min_history`` of them exist). Causal: an incident neither moves the baseline
    it is compared with nor inflates the scale it is measured in, and the return to normal
    is compared with the healthy values before the incident."""
    prev = y.shift(1)
    med = prev.rolling(window, min_periods=min_history).median()
    mad = prev.rolling(window, min_periods=min_history).apply(
        lambda a: np.nanmedian(np.abs(a - np.nanmedian(a))), raw=True
    )
    return med, MAD_K * mad


def _fit_causal(y: pd.Series, step: pd.Timedelta) -> MetricFit:
    """Short history: each point against the median and MAD of the values before it (see
    :func:`causal_baseline`), the scale floored by 5 % of that median and by the metric's
    floor at this interval; points with fewer than ``MIN_HISTORY`` values before them score
    0 (not enough history to judge them)."""
    filled = y.interpolate(limit_direction="both").fillna(0.0)
    med, scale = causal_baseline(filled)
    floor = floor_of(str(y.name), step)
    scale = np.maximum(np.maximum(scale, 0.05 * med.abs()), max(floor, 1e-9))
    z = ((filled - med) / scale).where(med.notna(), 0.0).where(y.notna(), 0.0)
    center = med.fillna(filled.expanding(min_periods=1).median())
    sigma_ser = scale.where(med.notna())
    sigma = float(sigma_ser.median()) if sigma_ser.notna().any() else max(floor, 1e-9)
    return MetricFit(
        str(y.name),
        f"baseline-median({BASELINE_WINDOW})",
        center.rename(y.name),
        sigma,
        z.rename(y.name),
        None,
        center,
        scale=sigma_ser.fillna(sigma),
    )


def _fit_on(
    y: pd.Series, step: pd.Timedelta, method: str | None, offset: float | None
) -> MetricFit:
    scored = np.log(y + offset) if offset is not None else y
    expected, used = expected_values(scored, step, method)
    resid = scored - expected
    sigma = robust_sigma(resid, scored if offset is None else pd.Series(dtype="float64"))
    if offset is not None:
        sigma = max(sigma, LOG_SIGMA_FLOOR)
    shift = float(np.nanmedian(resid)) if resid.notna().any() else 0.0
    z = (resid - shift) / sigma
    center = expected + shift
    exp_units = np.exp(center) - offset if offset is not None else center
    floor = floor_of(str(y.name), step)
    if floor > 0:  # a deviation too small to matter in the metric's units is capped
        cap = (y - exp_units).abs() / floor
        z = np.sign(z) * np.minimum(z.abs(), cap.fillna(0.0))
    return MetricFit(str(y.name), used, exp_units.rename(y.name), sigma, z, offset, center)


def fit_metric(y: pd.Series, step: pd.Timedelta, method: str | None = None) -> MetricFit:
    """Expected values and robust z-scores of one metric.

    Scored on its own scale first; when the residuals grow with the level (Spearman
    correlation of |residual| and expected value above 0.3: load that varies
    multiplicatively, a busy hour noisier in absolute terms than a quiet one) and the metric
    is non-negative, it is scored on log(value + offset) instead (offset: 5 % of its median
    level), so relative deviations are what is compared across the day.

    Without enough history for a seasonal model, each point is scored against the values
    before it (:func:`_fit_causal`)."""
    if (method or seasonal_method(len(y), step)).startswith("baseline"):
        return _fit_causal(y, step)
    fit = _fit_on(y, step, method, None)
    vals = y.dropna()
    if len(vals) < 20 or float(vals.min()) < 0:
        return fit
    with caught():  # a constant series has no correlation: kept linear
        rho = pd.Series(fit.z.abs().to_numpy()).corr(
            pd.Series(fit.expected.to_numpy()), method="spearman"
        )
    if not np.isfinite(rho) or rho <= 0.3:
        return fit
    offset = max(0.05 * float(vals.median()), 0.01 * float(vals.quantile(0.95)), 1e-9)
    return _fit_on(y, step, method, offset)


def isolation_z(frame: pd.DataFrame, *, seed: int = 0, model: Any = None) -> tuple[pd.Series, Any]:
    """IsolationForest anomaly score of each row as a robust z (higher = more anomalous).
    ``model`` (a fitted pipeline from a previous call) scores without refitting."""
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import RobustScaler

    x = frame.interpolate(limit_direction="both").fillna(0.0)
    if model is None:
        model = make_pipeline(
            RobustScaler(), IsolationForest(n_estimators=200, random_state=seed)
        ).fit(x.to_numpy())
        raw_train = -model.score_samples(x.to_numpy())
        med = float(np.median(raw_train))
        # scale from the upper tail (normal-equivalent of the 99th percentile): IsolationForest
        # scores are skewed, a MAD of the bulk makes ordinary rows look extreme
        tail = (float(np.quantile(raw_train, 0.99)) - med) / 2.326
        model.opscore_center_, model.opscore_scale_ = med, max(tail, 1e-6)
    raw = -model.score_samples(x.to_numpy())
    z = (raw - model.opscore_center_) / model.opscore_scale_
    return pd.Series(z, index=frame.index, name="isolation_forest"), model


@dataclass
class Incident:
    begin_at: pd.Timestamp
    end_at: pd.Timestamp
    score: float
    severity: str  # alert / warning
    detector: str
    metrics: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None  # why an incident that reached the alert level is only a warning

    def as_dict(self) -> dict[str, Any]:
        return {
            "begin_at": self.begin_at.to_pydatetime(),
            "end_at": self.end_at.to_pydatetime(),
            "score": round(self.score, 2),
            "severity": self.severity,
            "detector": self.detector,
            "metrics": self.metrics,
            "note": self.note,
        }


@dataclass
class Detection:
    step: pd.Timedelta
    fits: dict[str, MetricFit]
    multivariate: pd.Series | None
    incidents: list[Incident]

    def score(self) -> pd.Series:
        """Per point: the largest |z| over metrics and the multivariate detector."""
        cols = [f.z.abs() for f in self.fits.values()]
        if self.multivariate is not None:
            cols.append(self.multivariate.clip(lower=0))
        if not cols:
            return pd.Series(dtype="float64")
        return pd.concat(cols, axis=1).max(axis=1).fillna(0.0)


def _runs(flags: pd.Series, gap: int = 1) -> list[tuple[int, int]]:
    idx = np.flatnonzero(flags.to_numpy())
    runs: list[tuple[int, int]] = []
    for i in idx:
        if runs and i - runs[-1][1] <= gap + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def detect(
    frame: pd.DataFrame,
    step: pd.Timedelta,
    *,
    multivariate: list[str] | None = None,
    alert_z: float = ALERT_Z,
    warn_z: float = WARN_Z,
    methods: dict[str, str] | None = None,
    iforest: Any = None,
    since: pd.Timestamp | None = None,
) -> Detection:
    """Score every column of a regular frame and group flagged points into incidents (only
    points at or after ``since``, when given, are reported)."""
    fits = {c: fit_metric(frame[c], step, (methods or {}).get(c)) for c in frame.columns}
    mv = None
    cols = [c for c in (multivariate or []) if c in frame.columns]
    if len(cols) >= 2 and len(frame) >= 20:
        # over the residual z-scores: the load profile's usual daily/weekly shape is not
        # anomalous, an unusual combination of deviations is
        resid = pd.DataFrame({c: fits[c].z.clip(-50, 50) for c in cols})
        mv, _ = isolation_z(resid, model=iforest)
    det = Detection(step, fits, mv, [])
    score = det.score()
    flags = score >= warn_z
    min_points = max(1, int(np.ceil(MIN_ALERT_S / max(step.total_seconds(), 1e-9) - 1e-9)))
    if since is not None:
        flags &= score.index >= since
    for a, b in _runs(flags):
        seg = score.iloc[a : b + 1]
        moved = []
        for name, f in fits.items():
            zs = f.z.iloc[a : b + 1]
            if zs.abs().max() >= warn_z:
                at = zs.abs().idxmax()
                lo, hi = f.band(warn_z)
                moved.append(
                    {
                        "metric": name,
                        "value": float(frame[name].loc[at]),
                        "expected": float(f.expected.loc[at]),
                        "low": float(lo.loc[at]),
                        "high": float(hi.loc[at]),
                        "z": round(float(zs.loc[at]), 2),
                        "method": f.method,
                    }
                )
        moved.sort(key=lambda m: -abs(m["z"]))
        detector = "per-metric"
        if mv is not None and (not moved or mv.iloc[a : b + 1].max() > seg.max() - 1e-9):
            detector = "isolation_forest" if not moved else "per-metric+isolation_forest"
        top = float(seg.max())
        lasting = int((seg >= warn_z).sum()) >= min_points
        note = None
        if top >= alert_z and lasting:
            note = speed_only(frame, fits, a, b, alert_z=alert_z, warn_z=warn_z)
        det.incidents.append(
            Incident(
                begin_at=score.index[a],
                end_at=score.index[b] + step,
                score=top,
                severity="alert" if top >= alert_z and lasting and note is None else "warning",
                detector=detector,
                metrics=moved,
                note=note,
            )
        )
    return det


def _log_ratio(value: float, expected: float, floor: float) -> float:
    """|log| of value over expected, both floored (a rate near zero is not infinitely moved)."""
    v, e = max(value, floor, 1e-9), max(expected, floor, 1e-9)
    return abs(float(np.log(v / e)))


def speed_only(
    frame: pd.DataFrame,
    fits: dict[str, MetricFit],
    a: int,
    b: int,
    *,
    alert_z: float = ALERT_Z,
    warn_z: float = WARN_Z,
) -> str | None:
    """Why the incident over points ``a``..``b`` is the same work at another speed, else None.

    It is when only throughput rates reach the alert level (no statement time, wait class,
    sessions, temp), and at each point where one does, the work in flight (statement time
    per second) stays inside its warning band and moved, on the log scale, less than
    ``SPEED_SHARE`` of the largest throughput move, and the time in flight per unit of that
    throughput stays within ``warn_z`` robust sigmas of its values before (a speed the
    history has already shown). Closed-loop sessions (an application's
    connection pool, a batch) complete more or fewer calls per second as the server runs
    faster or slower, with their statements in flight unchanged; more work arriving raises
    the statements in flight with the throughput (Little's law: in flight = throughput x
    time per call), and a fault that slows statements down raises it too. Needs the work in
    flight among the scored metrics; the multivariate score alone never qualifies."""
    flight_name = next((n for n in IN_FLIGHT if n in fits), None)
    if flight_name is None:
        return None
    fl = fits[flight_name]
    others = [
        n
        for n, f in fits.items()
        if n not in THROUGHPUT and f.z.iloc[a : b + 1].abs().max() >= alert_z
    ]
    thr = [n for n in THROUGHPUT if n in fits]
    if others or not thr:
        return None
    z = pd.DataFrame({n: fits[n].z.iloc[a : b + 1].abs() for n in thr})
    hot = z.max(axis=1) >= alert_z
    if not hot.any():  # the multivariate detector alone: not explained here
        return None
    worst = 0.0
    per_unit: dict[str, pd.Series] = {}
    for at in z.index[hot.to_numpy()]:
        if abs(float(fl.z.loc[at])) >= warn_z:
            return None
        hot_here = [n for n in thr if z.loc[at, n] >= alert_z]
        moved = max(
            _log_ratio(float(frame[n].loc[at]), float(fits[n].expected.loc[at]), floor_of(n))
            for n in hot_here
        )
        flight = _log_ratio(
            float(frame[flight_name].loc[at]), float(fl.expected.loc[at]), floor_of(flight_name)
        )
        if flight > SPEED_SHARE * moved:
            return None
        for n in hot_here:
            if n not in per_unit:
                per_unit[n] = _per_unit_z(frame[flight_name], frame[n], flight_name, n)
            if not abs(float(per_unit[n].loc[at])) < warn_z:  # NaN: no history to compare
                return None
        worst = max(worst, moved)
    names = sorted({n for n in thr if z[n].max() >= alert_z})
    return (
        f"same work at another speed: {', '.join(names)} moved (by up to a factor of "
        f"{np.exp(worst):.2f} from the expected value) while the statements in flight "
        f"({flight_name}) stayed in their range and the time per unit of work stayed inside "
        "the spread it had before: the sessions completed more or fewer calls as the server "
        "ran faster or slower for everyone, not a change of the workload"
    )


def _per_unit_z(flight: pd.Series, rate: pd.Series, flight_name: str, name: str) -> pd.Series:
    """Robust z of log(time in flight per unit of work) against the values before each point
    (:func:`causal_baseline`): how unusual the speed a throughput move implies is."""
    r = np.log(
        np.maximum(flight, max(floor_of(flight_name), 1e-9))
        / np.maximum(rate, max(floor_of(name), 1e-9))
    )
    med, scale = causal_baseline(r)
    return (r - med) / np.maximum(scale, LOG_SIGMA_FLOOR)
