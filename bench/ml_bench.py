"""Benchmark of opscore's workload anomaly detection and capacity forecasts on a month of
generated, realistic per-minute series.

Series (30 days at one-minute steps, seeded): average active sessions (db_time), calls per
second and WAL MB/s, with a daily shape (business hours), quieter weekends, growth (~1.5 % a
week), multiplicative noise with heavy tails, and injected incidents of three shapes:
spikes (5-20 minutes), level shifts (2-4 hours) and slow drifts (a ramp over 3-6 hours). Each
incident touches one or more metrics.

Detection, scored on days 8-30 (the first week is history for every detector):
- static threshold: value above 1.2 x the 99.9th percentile of the first week;
- seasonal naive: robust z of y(t) - y(t - 1 week);
- opscore per-metric: STL (daily) + weekly profile, robust z on log scale (ALERT_Z);
- opscore + IsolationForest: the above with the multivariate detector over the residuals.
Measures: event precision / recall at each detector's alert level (an incident is found when an
alert falls inside it or up to 30 minutes after; an alert run is a true positive when it
touches an incident), and VUS-PR (TSB-AD, Liu & Paparrizos, NeurIPS 2024): the range-based
PR-AUC averaged over buffer lengths 0..60 minutes, threshold-free.

Forecasts: hourly means; fit on 2 and 3 weeks, forecast the next 7 days (held-out weeks);
MAPE and 95 % interval coverage of opscore (method chosen by held-out error) vs last value and
seasonal naive (one week back), both with empirical intervals from their training errors.

Run: python bench/ml_bench.py [--days 30] [--seed 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops_core.analysis import capacity  # noqa: E402
from ops_core.analysis.ml import anomaly  # noqa: E402

METRICS = ("db_time", "calls_per_s", "wal_mb_per_s")


def generate(days: int, seed: int) -> tuple[pd.DataFrame, list[dict]]:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2026-02-02", periods=days * 1440, freq="1min", tz="UTC")
    h = idx.hour.to_numpy() + idx.minute.to_numpy() / 60
    dow = idx.day_of_week.to_numpy()
    business = np.clip(np.sin(np.pi * (h - 7) / 12), 0, None) ** 1.5  # 07-19 UTC
    evening = 0.3 * np.exp(-(((h - 21) / 1.5) ** 2))  # a smaller evening batch
    weekly = np.where(dow >= 5, 0.45, 1.0)
    growth = 1 + 0.015 * np.arange(len(idx)) / (7 * 1440)
    shape = (0.4 + 2.6 * business * weekly + evening) * growth
    n = len(idx)

    def noise(sd: float) -> np.ndarray:
        e = rng.normal(0, sd, n)
        e += rng.standard_t(3, n) * sd * 0.3  # heavy tails
        return np.exp(e)

    base = {
        "db_time": shape * noise(0.12),
        "calls_per_s": 800 * shape * noise(0.08),
        "wal_mb_per_s": 1.5 * (0.3 + shape) * noise(0.15),
    }
    frame = pd.DataFrame(base, index=idx)
    incidents: list[dict] = []
    start_min = 7 * 1440 + 600
    kinds = ["spike", "level_shift", "drift"] * 5
    rng.shuffle(kinds)
    gap = (n - start_min - 1440) // len(kinds)
    for k, kind in enumerate(kinds):
        at = start_min + k * gap + int(rng.integers(0, gap // 2))
        metrics = list(rng.choice(METRICS, size=int(rng.integers(1, 3)), replace=False))
        if kind == "spike":
            length, factor = int(rng.integers(5, 21)), float(rng.uniform(2.5, 5))
            prof = np.full(length, factor)
        elif kind == "level_shift":
            length, factor = int(rng.integers(120, 241)), float(rng.uniform(1.6, 2.5))
            prof = np.full(length, factor)
        else:
            length, factor = int(rng.integers(180, 361)), float(rng.uniform(2.0, 3.0))
            prof = np.linspace(1.0, factor, length)
        for m in metrics:
            col = frame.columns.get_loc(m)
            frame.iloc[at : at + length, col] *= prof
        incidents.append({"kind": kind, "start": at, "end": at + length, "metrics": metrics})
    return frame, incidents


# ------------------------------------------------------------------------ measures


def labels_of(n: int, incidents: list[dict]) -> np.ndarray:
    y = np.zeros(n, dtype=bool)
    for inc in incidents:
        y[inc["start"] : inc["end"]] = True
    return y


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    idx = np.flatnonzero(flags)
    if not idx.size:
        return []
    cuts = np.flatnonzero(np.diff(idx) > 1)
    starts = np.r_[idx[0], idx[cuts + 1]]
    ends = np.r_[idx[cuts], idx[-1]]
    return list(zip(starts, ends, strict=True))


def event_pr(alerts: np.ndarray, incidents: list[dict], tol: int = 30) -> tuple[float, float]:
    found = sum(bool(alerts[i["start"] : i["end"] + tol].any()) for i in incidents)
    runs = _runs(alerts)
    tp = sum(any(a <= i["end"] + tol and b >= i["start"] for i in incidents) for a, b in runs)
    precision = tp / len(runs) if runs else 0.0
    return precision, found / len(incidents)


def range_pr_auc(score: np.ndarray, incidents: list[dict], buffer: int, n_th: int = 200) -> float:
    """Range-based PR-AUC with a soft buffer around each range (TSB-AD's VUS building block):
    labels ramp down as sqrt(1 - d / buffer) outside a range; recall is the soft-label recall
    times the share of ranges touched (existence reward)."""
    n = len(score)
    soft = np.zeros(n)
    for inc in incidents:
        s, e = inc["start"], inc["end"]
        soft[s:e] = 1.0
        if buffer:
            d = np.arange(1, buffer + 1)
            ramp = np.sqrt(1 - d / (buffer + 1))
            left = np.arange(s - buffer, s)[::-1]
            right = np.arange(e, e + buffer)
            for pos, r in ((left, ramp), (right, ramp)):
                ok = (pos >= 0) & (pos < n)
                soft[pos[ok]] = np.maximum(soft[pos[ok]], r[ok])
    p_total = soft.sum()
    ths = np.unique(np.quantile(score, np.linspace(0.5, 1.0, n_th)))
    prec, rec = [1.0], [0.0]
    for th in ths[::-1]:
        pred = score >= th
        npred = pred.sum()
        if not npred:
            continue
        tp = soft[pred].sum()
        exist = np.mean(
            [pred[max(0, i["start"] - buffer) : i["end"] + buffer].any() for i in incidents]
        )
        rec.append(min(tp / p_total, 1.0) * exist)
        prec.append(tp / npred)
    order = np.argsort(rec, kind="stable")
    r, p = np.asarray(rec)[order], np.asarray(prec)[order]
    return float(np.sum(np.diff(r) * (p[1:] + p[:-1]) / 2))


def vus_pr(score: np.ndarray, incidents: list[dict], max_buffer: int = 60) -> float:
    return float(
        np.mean(
            [range_pr_auc(score, incidents, b) for b in np.linspace(0, max_buffer, 5).astype(int)]
        )
    )


# ------------------------------------------------------------------------ detectors


def static_threshold(frame: pd.DataFrame, train: int) -> tuple[np.ndarray, float]:
    ref = frame.iloc[:train].quantile(0.999) * 1.2
    return (frame / ref).max(axis=1).to_numpy(), 1.0


def seasonal_naive(frame: pd.DataFrame, lag: int) -> tuple[np.ndarray, float]:
    d = frame - frame.shift(lag)
    med = d.median()
    mad = (d - med).abs().median() * 1.4826
    z = ((d - med) / mad).abs().fillna(0.0)
    return z.max(axis=1).to_numpy(), anomaly.ALERT_Z


def run_detection(frame: pd.DataFrame, incidents: list[dict]) -> list[dict]:
    n = len(frame)
    week = 7 * 1440
    eval_from = week
    inc_eval = [i for i in incidents if i["start"] >= eval_from]
    shifted = [dict(i, start=i["start"] - eval_from, end=i["end"] - eval_from) for i in inc_eval]
    rows = []
    t0 = time.perf_counter()
    det = anomaly.detect(frame, pd.Timedelta("1min"), multivariate=list(METRICS))
    t_ops = time.perf_counter() - t0
    per_metric = pd.concat([f.z.abs() for f in det.fits.values()], axis=1).max(axis=1).to_numpy()
    combined = det.score().to_numpy()
    candidates = {
        "static threshold (1.2 x p99.9 of week 1)": static_threshold(frame, week),
        "seasonal naive (robust z vs 1 week back)": seasonal_naive(frame, week),
        "opscore STL+weekly, robust z": (per_metric, anomaly.ALERT_Z),
        "opscore STL+weekly + IsolationForest": (combined, anomaly.ALERT_Z),
    }
    for name, (score, level) in candidates.items():
        s = np.nan_to_num(np.asarray(score, dtype="float64")[eval_from:])
        p, r = event_pr(s >= level, shifted)
        rows.append(
            {
                "detector": name,
                "alert level": level,
                "precision": round(p, 3),
                "recall": round(r, 3),
                "VUS-PR": round(vus_pr(s, shifted), 3),
            }
        )
    by_kind = {}
    s = np.nan_to_num(combined[eval_from:])
    for kind in ("spike", "level_shift", "drift"):
        sub = [i for i in shifted if i["kind"] == kind]
        hits = sum(bool((s >= anomaly.ALERT_Z)[i["start"] : i["end"] + 30].any()) for i in sub)
        by_kind[kind] = f"{hits}/{len(sub)}"
    rows.append({"detector": "opscore recall by shape", **by_kind, "fit seconds": round(t_ops, 1)})
    assert n
    return rows


# ------------------------------------------------------------------------ forecasts


def _coverage(actual: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    return float(np.mean((actual >= lo) & (actual <= hi)))


def run_forecasts(frame: pd.DataFrame) -> list[dict]:
    hourly = frame.resample("1h").mean()
    # a gauge too: database size growing by the WAL it keeps (cumulative, with vacuum dips)
    size = 50e9 + (hourly["wal_mb_per_s"] * 3600 * 1e6 * 0.02).cumsum()
    series = {"db_time (AAS)": hourly["db_time"], "database size": size}
    out = []
    for name, y in series.items():
        for weeks in (2, 3):
            train = y.iloc[: weeks * 168]
            test = y.iloc[weeks * 168 : weeks * 168 + 168]
            if len(test) < 168:
                continue
            a = test.to_numpy()
            f = capacity.forecast(train, metric=name, horizon=pd.Timedelta(days=7))
            m = f.frame["mean"].to_numpy()[: len(a)]
            res = {
                "opscore (" + f.method + ")": (
                    m,
                    f.frame["lower"].to_numpy()[: len(a)],
                    f.frame["upper"].to_numpy()[: len(a)],
                )
            }
            tr = train.to_numpy()
            last = np.full(len(a), tr[-1])
            diffs = np.concatenate([tr[h:] - tr[:-h] for h in range(1, 169)])
            lq, hq = np.quantile(diffs, [0.025, 0.975])
            res["last value"] = (last, last + lq, last + hq)
            sn = tr[-168:][: len(a)]
            d = tr[168:] - tr[:-168]
            lq, hq = np.quantile(d, [0.025, 0.975])
            res["seasonal naive (1 week)"] = (sn, sn + lq, sn + hq)
            for method, (mean, lo, hi) in res.items():
                out.append(
                    {
                        "series": name,
                        "train weeks": weeks,
                        "method": method,
                        "MAPE %": round(capacity._mape(a, mean), 2),
                        "95% coverage": round(_coverage(a, lo, hi), 3),
                    }
                )
    return out


def markdown(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    frame, incidents = generate(args.days, args.seed)
    print(f"{len(frame):,} minutes x {frame.shape[1]} metrics, {len(incidents)} incidents")
    det = run_detection(frame, incidents)
    print(markdown(det), flush=True)
    fc = run_forecasts(frame)
    print()
    print(markdown(fc))
    if args.json:
        args.json.write_text(json.dumps({"detection": det, "forecast": fc}, indent=1, default=str))


if __name__ == "__main__":
    main()
