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


# --------------------------------------------------------- short history (2-second snapshots)


def _old_short(y: pd.Series) -> pd.Series:
    """The detector's short-history scoring before issue 15's fix, kept here as the
    baseline: a rolling median of the 5 preceding points, one global MAD of all residuals
    (the incident included), no minimum history, per-minute floors."""
    base = y.shift(1).rolling(5, min_periods=3).median()
    base = base.fillna(y.expanding(min_periods=1).median())
    resid = y - base
    sigma = anomaly.robust_sigma(resid, y)
    z = (resid - resid.median()) / sigma
    floor = anomaly.floor_of(str(y.name))
    if floor > 0:
        z = np.sign(z) * np.minimum(z.abs(), (resid.abs() / floor))
    return z


def run_short_history(seed: int, runs: int = 200) -> list[dict]:
    """Short captured runs like the captured-series test: 40 intervals of 2 s of DB time
    (AAS ~1.1, relative noise 10-25 % with heavy tails and rare one-interval bursts); in half
    of them a fault triples the load for 6 intervals from interval 30. Per detector: runs with
    an alert in the healthy part (false alarms), faults found (an alert inside the fault),
    runs with an alert after the fault."""
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(seconds=2)
    idx = pd.date_range("2026-02-02", periods=40, freq=step, tz="UTC")
    counts = {"old": [0, 0, 0], "new": [0, 0, 0]}
    faults = 0
    for r in range(runs):
        sd = rng.uniform(0.1, 0.25)
        y = 1.1 * np.exp(rng.normal(0, sd, 40) + 0.3 * sd * rng.standard_t(3, 40))
        if rng.random() < 0.3:  # a one-interval burst (autovacuum, a checkpoint's flush)
            y[rng.integers(12, 28)] *= rng.uniform(1.5, 2.2)
        fault = r % 2 == 1
        if fault:
            faults += 1
            y[30:36] += 2.0 * rng.uniform(0.8, 1.2)
        s = pd.Series(y, idx, name="stmt_time_s_per_s")
        det = anomaly.detect(s.to_frame(), step)
        new = np.zeros(40, dtype=bool)
        for inc in det.incidents:
            if inc.severity == "alert":
                new[(idx >= inc.begin_at) & (idx < inc.end_at)] = True
        for name, alert in (
            ("old", (_old_short(s).abs() >= anomaly.ALERT_Z).to_numpy()),
            ("new", new),
        ):
            counts[name][0] += bool(alert[:30].any())
            if fault:
                counts[name][1] += bool(alert[30:36].any())
                counts[name][2] += bool(alert[36:].any())
    out = []
    for name, label in (
        ("old", "rolling median(5), global MAD (before)"),
        ("new", "opscore: causal median/MAD, min history 10, alert >= 6 s"),
    ):
        fa, found, after = counts[name]
        out.append(
            {
                "detector": label,
                "healthy runs with an alert": f"{fa}/{runs}",
                "faults found": f"{found}/{faults}",
                "alert after the fault": f"{after}/{faults}",
            }
        )
    return out


# ------------------------------------------------------- response-time predictions


def run_predictions(seed: int, statements: int = 300, intervals: int = 60) -> list[dict]:
    """Per statement, mean time per call per interval: a log-normal level, noise 5-50 %,
    slow drift, and in a third of them a regression (x2-x4) from a random interval. Walk
    forward over the last 20 intervals: one-step MAPE and 90 % interval coverage of opscore
    (median of the last 12, empirical log-error interval) vs last value (interval from past
    log changes) and the history's mean +- 1.645 sd."""
    from ops_core.analysis.ml import patterns

    rng = np.random.default_rng(seed)
    err = {k: [] for k in ("opscore", "last value", "mean +- 1.645 sd")}
    cov = {k: [] for k in err}
    for _ in range(statements):
        level = np.exp(rng.normal(1, 1.5))
        sd = rng.uniform(0.05, 0.5)
        drift = np.linspace(0, rng.normal(0, 0.3), intervals)
        y = level * np.exp(rng.normal(0, sd, intervals) + drift)
        if rng.random() < 1 / 3:
            y[rng.integers(10, intervals - 5) :] *= rng.uniform(2, 4)
        for t in range(intervals - 20, intervals):
            hist, actual = pd.Series(y[:t]), y[t]
            p = patterns.predict_mean_time(hist, level=0.9)
            lv = np.diff(np.log(y[:t]))
            lq, hq = np.quantile(lv, [0.05, 0.95])
            m, s = float(np.mean(y[:t])), float(np.std(y[:t]))
            for k, (e, lo, hi) in {
                "opscore": (p["expected_ms"], p["lower_ms"], p["upper_ms"]),
                "last value": (y[t - 1], y[t - 1] * np.exp(lq), y[t - 1] * np.exp(hq)),
                "mean +- 1.645 sd": (m, m - 1.645 * s, m + 1.645 * s),
            }.items():
                err[k].append(abs(actual - e) / actual)
                cov[k].append(lo <= actual <= hi)
    return [
        {
            "predictor": k,
            "one-step MAPE %": round(100 * float(np.mean(err[k])), 2),
            "median APE %": round(100 * float(np.median(err[k])), 2),
            "90% coverage": round(float(np.mean(cov[k])), 3),
        }
        for k in err
    ]


# ---------------------------------------------------------------- statement clusters


def run_clustering(seed: int, per_kind: int = 40) -> list[dict]:
    """Statements of four known profiles (point lookups, reporting scans, bulk writes,
    temp-spilling sorts) with +-50 % noise per feature: adjusted Rand index of opscore's
    clusters vs a single-feature baseline (quartiles of time per call)."""
    from sklearn.metrics import adjusted_rand_score

    from ops_core.analysis.ml import patterns

    rng = np.random.default_rng(seed)
    kinds = {  # ms/call, rows/call, blocks/call, write share, temp blocks/call
        "oltp": (0.3, 1, 4, 0.02, 0),
        "reporting": (80, 2000, 20000, 0.0, 0),
        "bulk write": (40, 5000, 15000, 0.6, 0),
        "sort spill": (120, 50, 3000, 0.0, 2000),
    }
    rows, truth = [], []
    for i, prof in enumerate(kinds.values()):
        for _ in range(per_kind):
            f = [v * np.exp(rng.normal(0, 0.4)) for v in prof]
            f[3] = min(1.0, prof[3] * np.exp(rng.normal(0, 0.3)))
            rows.append(dict(zip(patterns.FEATURES, f, strict=True)))
            truth.append(i)
    prof = pd.DataFrame(rows)
    prof["exec_ms"] = prof["ms_per_call"] * 100
    labels, summary = patterns.cluster_statements(prof)
    quart = pd.qcut(prof["ms_per_call"], 4, labels=False)
    return [
        {
            "method": "opscore KMeans (k by silhouette)",
            "clusters": len(summary),
            "ARI": round(adjusted_rand_score(truth, labels), 3),
        },
        {
            "method": "quartiles of time per call",
            "clusters": 4,
            "ARI": round(adjusted_rand_score(truth, quart), 3),
        },
    ]


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
    short = run_short_history(args.seed)
    print()
    print(markdown(short))
    pred = run_predictions(args.seed)
    print()
    print(markdown(pred))
    clus = run_clustering(args.seed)
    print()
    print(markdown(clus))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "detection": det,
                    "forecast": fc,
                    "short_history": short,
                    "predictions": pred,
                    "clusters": clus,
                },
                indent=1,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
