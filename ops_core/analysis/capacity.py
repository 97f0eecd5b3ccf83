"""Capacity forecasts with prediction intervals, pure (series in, forecast out).

Candidates, chosen by their error on a held-out tail of the history (the last 20 %, at least one
day when the history allows) and then refitted on all of it:

- ``linear``: least-squares trend; interval from the residuals, widened with the distance from
  the data (ordinary regression prediction interval);
- ``linear+weekly`` / ``linear+daily``: the trend plus an hour-of-week (or hour-of-day) profile
  of the detrended values; interval from the residual quantiles;
- ``ets``: statsmodels ETSModel, additive damped trend (daily season when two days exist);
- ``arima``: statsmodels SARIMAX(1,1,1) with drift;
- ``seasonal-naive+drift`` (two weeks and more): the same hour a week earlier plus the mean
  week-over-week change; interval from the week-over-week differences.

Short history (fewer than 12 points) uses ``linear`` only, and says so. ``days_until``: when
the forecast mean reaches the limit (within the horizon, else on the fitted trend within
``MAX_LOOKAHEAD_DAYS``); null when there is no limit or none is in sight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .ml.fitting import caught

MAX_LOOKAHEAD_DAYS = 5 * 365
MIN_POINTS = 12
MAX_FUTURE = 2000  # forecast points at most (the horizon's grid is coarsened beyond)


@dataclass
class Forecast:
    metric: str
    unit: str
    method: str
    history_points: int
    history_begin: Any
    history_end: Any
    last_value: float | None
    limit: float | None
    limit_source: str | None
    days_until: float | None
    days_until_upper: float | None  # the pessimistic bound: the interval's upper edge
    slope_per_day: float | None
    holdout: dict[str, float]
    notes: list[str] = field(default_factory=list)
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)  # at, mean, lower, upper
    level: float = 0.95  # of the prediction interval (lower, upper)
    horizon_days: float | None = None  # how far ahead the frame goes

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _t_days(index: pd.DatetimeIndex, origin: pd.Timestamp) -> np.ndarray:
    return np.asarray((index - origin) / pd.Timedelta(days=1), dtype="float64")


def _profile_key(index: pd.DatetimeIndex, kind: str) -> np.ndarray:
    if kind == "weekly":
        return np.asarray(index.day_of_week * 24 + index.hour)
    return np.asarray(index.hour)


def _fit_predict(
    y: pd.Series,
    future: pd.DatetimeIndex,
    method: str,
    level: float,
    warned: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mean, lower, upper at ``future`` from a model of ``y`` (regular, no NaN); what the
    statsmodels fit warned (a maximum-likelihood fit that did not converge) is appended to
    ``warned`` instead of reaching the output."""
    origin = y.index[0]
    t = _t_days(y.index, origin)
    tf = _t_days(future, origin)
    alpha = 1 - level
    if method == "seasonal-naive+drift":
        # the same hour one week earlier, plus the average week-over-week change
        week = int(round(pd.Timedelta(days=7) / (y.index[1] - y.index[0])))
        v = y.to_numpy()
        d = v[week:] - v[:-week]
        drift = float(np.mean(d))
        k = np.arange(len(future)) // week + 1
        pos = len(v) - week + (np.arange(len(future)) % week)
        mean = v[pos] + drift * k
        lo_q, hi_q = np.quantile(d - drift, [alpha / 2, 1 - alpha / 2])
        return mean, mean + lo_q * np.sqrt(k), mean + hi_q * np.sqrt(k)
    if method.startswith("linear"):
        slope, icpt = np.polyfit(t, y.to_numpy(), 1) if len(y) > 1 else (0.0, float(y.iloc[0]))
        trend = icpt + slope * t
        mean = icpt + slope * tf
        resid = y.to_numpy() - trend
        if method != "linear":
            kind = method.split("+")[1]
            prof = pd.Series(resid).groupby(_profile_key(y.index, kind)).median()
            seas = prof.reindex(_profile_key(y.index, kind)).fillna(0.0).to_numpy()
            resid = resid - seas
            mean = mean + prof.reindex(_profile_key(future, kind)).fillna(0.0).to_numpy()
            lo_q, hi_q = np.quantile(resid, [alpha / 2, 1 - alpha / 2])
            n = len(t)
            grow = np.sqrt(
                1 + 1 / n + (tf - t.mean()) ** 2 / max(((t - t.mean()) ** 2).sum(), 1e-9)
            )
            return mean, mean + lo_q * grow, mean + hi_q * grow
        n = len(t)
        dof = max(n - 2, 1)
        s = float(np.sqrt((resid**2).sum() / dof))
        sxx = max(((t - t.mean()) ** 2).sum(), 1e-9)
        from scipy import stats  # imported here: scipy.stats costs a second at start-up

        half = stats.t.ppf(1 - alpha / 2, dof) * s * np.sqrt(1 + 1 / n + (tf - t.mean()) ** 2 / sxx)
        return mean, mean - half, mean + half
    steps = len(future)
    with caught(warned):
        if method.startswith("ets"):
            from statsmodels.tsa.exponential_smoothing.ets import ETSModel

            season = int(method.split(":")[1]) if ":" in method else None
            model = ETSModel(
                y.reset_index(drop=True).astype("float64"),
                error="add",
                trend="add",
                damped_trend=True,
                seasonal="add" if season else None,
                seasonal_periods=season,
            ).fit(disp=False, maxiter=200)
            pred = model.get_prediction(start=len(y), end=len(y) + steps - 1)
            sf = pred.summary_frame(alpha=alpha)
            return (
                sf["mean"].to_numpy(),
                sf["pi_lower"].to_numpy(),
                sf["pi_upper"].to_numpy(),
            )
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        model = SARIMAX(y.reset_index(drop=True).astype("float64"), order=(1, 1, 1), trend="t").fit(
            disp=False
        )
        fc = model.get_forecast(steps)
        ci = np.asarray(fc.conf_int(alpha=alpha))
        return np.asarray(fc.predicted_mean), ci[:, 0], ci[:, 1]


def candidates(y: pd.Series, step: pd.Timedelta) -> list[str]:
    n = len(y)
    if n < MIN_POINTS:
        return ["linear"]
    span = y.index[-1] - y.index[0]
    per_day = pd.Timedelta(days=1) / step
    out = ["linear", "arima"]
    if step <= pd.Timedelta(hours=1) and span >= pd.Timedelta(days=2):
        out.append("linear+daily")
    if step <= pd.Timedelta(hours=1) and span >= pd.Timedelta(days=14):
        out.append("linear+weekly")
        out.append("seasonal-naive+drift")
    season = int(round(per_day)) if 2 <= per_day <= 48 and n >= 3 * per_day else None
    out.append(f"ets:{season}" if season else "ets")
    return out


def _mape(actual: np.ndarray, pred: np.ndarray) -> float:
    denom = np.maximum(np.abs(actual), 1e-9 + 0.01 * np.mean(np.abs(actual)))
    return float(np.mean(np.abs(actual - pred) / denom) * 100)


def choose(
    y: pd.Series,
    step: pd.Timedelta,
    level: float = 0.95,
    warned: dict[str, list[str]] | None = None,
) -> tuple[str, dict[str, float]]:
    """The candidate with the least MAPE on the held-out tail, and every candidate's MAPE;
    what each candidate's held-out fit warned goes to ``warned`` (by candidate)."""
    names = candidates(y, step)
    if len(names) == 1:
        return names[0], {}
    hold = max(int(len(y) * 0.2), min(int(pd.Timedelta(days=1) / step), len(y) // 3), 3)
    train, test = y.iloc[:-hold], y.iloc[-hold:]
    errors: dict[str, float] = {}
    for name in names:
        said: list[str] = []
        try:
            mean, _, _ = _fit_predict(train, test.index, name, level, said)
            if np.all(np.isfinite(mean)):
                errors[name] = round(_mape(test.to_numpy(), mean), 3)
        except Exception:  # noqa: BLE001 - a candidate that cannot fit this series is skipped
            continue
        finally:
            if said and warned is not None:
                warned[name] = said
    best = min(errors, key=lambda k: errors[k]) if errors else "linear"
    return best, errors


def _crossing(
    at: pd.DatetimeIndex, values: np.ndarray, limit: float, now: pd.Timestamp
) -> float | None:
    hit = np.flatnonzero(values >= limit)
    if not hit.size:
        return None
    return max(0.0, (at[hit[0]] - now) / pd.Timedelta(days=1))


def forecast(
    series: pd.Series,
    *,
    metric: str,
    unit: str = "",
    horizon: pd.Timedelta = pd.Timedelta(days=30),
    limit: float | None = None,
    limit_source: str | None = None,
    level: float = 0.95,
    method: str | None = None,
) -> Forecast:
    """Forecast a gauge (sizes, connections, ages) or a rate over ``horizon``."""
    from .ml.series import regular

    notes: list[str] = []
    s = series.dropna()
    if s.empty:
        return Forecast(
            metric,
            unit,
            "none",
            0,
            None,
            None,
            None,
            limit,
            limit_source,
            None,
            None,
            None,
            {},
            ["no history for this metric"],
        )
    frame, step = regular(pd.DataFrame({"captured_at": s.index, "v": s.to_numpy()}))
    if step < pd.Timedelta(hours=1) and (frame.index[-1] - frame.index[0]) > pd.Timedelta(days=3):
        frame = frame.resample("1h").mean()
        step = pd.Timedelta(hours=1)
    y = frame["v"].interpolate(limit_direction="both")
    if len(y) < MIN_POINTS:
        notes.append(
            f"short history ({len(y)} points): a linear trend is used until {MIN_POINTS} "
            "points exist; the interval is wide"
        )
    fstep = step
    if horizon / step > MAX_FUTURE:
        # snapshots far denser than the horizon needs (seconds apart, a month ahead): the
        # models step on a coarser grid (the history's means on it) when the history fills
        # enough of its points, else a linear trend over time is extrapolated on that grid
        fstep = horizon / MAX_FUTURE
        coarse = frame["v"].resample(fstep).mean().interpolate(limit_direction="both")
        if len(coarse) >= MIN_POINTS:
            y, step = coarse, fstep
        elif method is None:
            method = "linear"
            notes.append(
                f"history spans {(y.index[-1] - y.index[0]).total_seconds():.0f} s, short "
                f"for a {horizon.total_seconds() / 86400:g}-day horizon: linear trend"
            )
    held: dict[str, list[str]] = {}
    chosen, errors = (method, {}) if method else choose(y, step, level, held)
    n_future = max(1, int(horizon / fstep))
    future = pd.date_range(y.index[-1] + fstep, periods=n_future, freq=fstep)
    said: list[str] = []
    try:
        mean, lo, hi = _fit_predict(y, future, chosen, level, said)
    except Exception as e:  # noqa: BLE001 - fall back to the always-fittable trend
        notes.append(f"{chosen} failed to fit ({e}); linear trend used")
        chosen = "linear"
        said = []
        mean, lo, hi = _fit_predict(y, future, chosen, level)
    for line in said:
        notes.append(f"{chosen} fit on the whole history warned: {line}")
    for name, lines in held.items():
        notes.append(f"{name} fit on the held-out split warned: {'; '.join(lines)}")
    now = y.index[-1]
    t = _t_days(y.index, y.index[0])
    tail = max(len(y) // 2, 2)
    slope = float(np.polyfit(t[-tail:], y.to_numpy()[-tail:], 1)[0]) if len(y) > 1 else 0.0
    days_until = days_upper = None
    if limit is not None:
        days_until = _crossing(future, mean, limit, now)
        days_upper = _crossing(future, hi, limit, now)
        if days_until is None and slope > 0:
            d = (limit - float(mean[-1])) / slope + (future[-1] - now) / pd.Timedelta(days=1)
            if d <= MAX_LOOKAHEAD_DAYS:
                days_until = round(d, 1)
                notes.append("days_until beyond the horizon: from the recent linear trend")
        if float(s.iloc[-1]) >= limit:
            days_until = days_upper = 0.0
            notes.append("already at or above the limit")
    return Forecast(
        metric=metric,
        unit=unit,
        method=chosen,
        history_points=len(y),
        history_begin=y.index[0].to_pydatetime(),
        history_end=now.to_pydatetime(),
        # the value last observed, not the model grid's mean around it (a coarse grid averages
        # the newest points: 574 shown for a sequence at 599)
        last_value=float(s.iloc[-1]),
        limit=limit,
        limit_source=limit_source,
        days_until=None if days_until is None else round(float(days_until), 2),
        days_until_upper=None if days_upper is None else round(float(days_upper), 2),
        slope_per_day=slope,
        holdout=errors,
        notes=notes,
        frame=pd.DataFrame({"at": future, "mean": mean, "lower": lo, "upper": hi}),
        level=level,
        horizon_days=round(horizon / pd.Timedelta(days=1), 3),
    )


def days_to(f: Forecast, value: float) -> float | None:
    """Days from the forecast's last point until its mean reaches ``value`` (within the
    horizon, else on the recent linear trend up to ``MAX_LOOKAHEAD_DAYS``); 0 when already
    there; None when not in sight."""
    if f.last_value is None:
        return None
    if f.last_value >= value:
        return 0.0
    if not f.frame.empty:
        now = pd.Timestamp(f.history_end)
        d = _crossing(pd.DatetimeIndex(f.frame["at"]), f.frame["mean"].to_numpy(), value, now)
        if d is not None:
            return round(d, 2)
        end = float(f.frame["mean"].iloc[-1])
        if f.slope_per_day and f.slope_per_day > 0:
            d = (value - end) / f.slope_per_day + (
                pd.Timestamp(f.frame["at"].iloc[-1]) - now
            ) / pd.Timedelta(days=1)
            return round(d, 1) if d <= MAX_LOOKAHEAD_DAYS else None
    return None
