"""Compare-periods report model: the differences that matter, ranked. Pure.

Builds on :class:`ops_core.analysis.compare.Comparison` (period 1 = the period under study,
period 2 = the reference: a second range or a baseline) and ranks:

- SQL that got slower (mean time up), by the extra time it cost in period 1;
- new top SQL (in period 1's top, absent from period 2) and SQL that disappeared;
- wait classes whose DB time changed (seconds, period 2 scaled to period 1's length; the
  share of DB time beside it), when ASH covers both periods;
- load profile metrics that changed most per second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..model.serialize import frame_records
from .compare import Comparison


@dataclass
class CompareReport:
    target: str
    period1: dict[str, Any]
    period2: dict[str, Any]
    highlights: list[str]
    notes: list[str]
    differences: pd.DataFrame  # kind, subject, period1, period2, change, score
    load_profile: pd.DataFrame
    slower_sql: pd.DataFrame
    new_sql: pd.DataFrame
    gone_sql: pd.DataFrame
    top_sql: pd.DataFrame
    wait_shifts: pd.DataFrame | None
    io: pd.DataFrame | None
    resets: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "period1": self.period1,
            "period2": self.period2,
            "highlights": self.highlights,
            "notes": self.notes,
            "differences": frame_records(self.differences),
            "load_profile": frame_records(self.load_profile),
            "slower_sql": frame_records(self.slower_sql),
            "new_sql": frame_records(self.new_sql),
            "gone_sql": frame_records(self.gone_sql),
            "top_sql": frame_records(self.top_sql),
            "wait_shifts": frame_records(self.wait_shifts),
            "io": frame_records(self.io),
            "resets": self.resets,
        }


def _short(q: Any, n: int = 70) -> str:
    s = " ".join(str(q or "").split())
    return s if len(s) <= n else s[: n - 1] + "…"


def _f(df: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(df[col], errors="coerce").astype("float64")


def slower_sql(top_sql: pd.DataFrame, min_ratio: float = 1.2) -> pd.DataFrame:
    """Statements in both periods whose mean time grew by ``min_ratio`` or more, ranked by the
    extra time that cost in period 1 ((mean1 - mean2) * calls1)."""
    df = top_sql
    if df is None or df.empty:
        return pd.DataFrame(columns=["queryid", "mean_ms_1", "mean_ms_2", "ratio", "extra_ms"])
    m1, m2 = _f(df, "mean_exec_time_1"), _f(df, "mean_exec_time_2")
    both = m1.notna() & m2.notna() & (m2 > 0) & (_f(df, "calls_1") > 0)
    out = df[both].copy()
    out["ratio"] = m1[both] / m2[both]
    out["extra_ms"] = (m1[both] - m2[both]) * _f(df, "calls_1")[both]
    out = out[out["ratio"] >= min_ratio].sort_values("extra_ms", ascending=False)
    return out.rename(columns={"mean_exec_time_1": "mean_ms_1", "mean_exec_time_2": "mean_ms_2"})[
        [
            "queryid",
            "datname",
            "calls_1",
            "calls_2",
            "mean_ms_1",
            "mean_ms_2",
            "ratio",
            "extra_ms",
            "query",
        ]
    ].reset_index(drop=True)


def new_and_gone(top_sql: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    cols = ["queryid", "datname", "calls", "total_exec_time", "mean_exec_time", "query"]
    if top_sql is None or top_sql.empty:
        e = pd.DataFrame(columns=cols)
        return e, e.copy()
    t1 = _f(top_sql, "total_exec_time_1")
    t2 = _f(top_sql, "total_exec_time_2")
    new = top_sql[t1.fillna(0).gt(0) & t2.fillna(0).eq(0)]
    gone = top_sql[t2.fillna(0).gt(0) & t1.fillna(0).eq(0)]

    def pick(df: pd.DataFrame, s: str) -> pd.DataFrame:
        out = df[
            [
                "queryid",
                "datname",
                f"calls_{s}",
                f"total_exec_time_{s}",
                f"mean_exec_time_{s}",
                "query",
            ]
        ]
        out.columns = cols
        return out.sort_values("total_exec_time", ascending=False).reset_index(drop=True)

    return pick(new, "1"), pick(gone, "2")


def wait_shifts(waits: pd.DataFrame | None, scale: float = 1.0) -> pd.DataFrame | None:
    """Per wait class: DB time in each period, the change in seconds (period 2 scaled to
    period 1's length by ``scale``) and the share of DB time in each period, ranked by the
    absolute change in seconds: a class whose share fell while its time rose is a rise."""
    if waits is None or waits.empty:
        return None
    w = waits.rename(columns={"wait_event_type": "wait_class"})  # compare keys waits by type
    by = w.groupby("wait_class", as_index=False)[["db_time_s_1", "db_time_s_2"]].sum()
    t1, t2 = by["db_time_s_1"].sum(), by["db_time_s_2"].sum()
    if t1 <= 0 or t2 <= 0:  # ASH covers one period only: no shift to speak of
        return None
    by["pct_1"] = by["db_time_s_1"] / t1 * 100
    by["pct_2"] = by["db_time_s_2"] / t2 * 100
    by["shift_points"] = by["pct_1"] - by["pct_2"]
    by["change_s"] = by["db_time_s_1"] - by["db_time_s_2"] * scale
    return by.sort_values("change_s", key=abs, ascending=False).reset_index(drop=True)


def period_scale(cmp: Comparison) -> float:
    """Factor that brings period 2's time to period 1's length (1.0 when unknown)."""
    e1, e2 = cmp.period1.get("elapsed_s"), cmp.period2.get("elapsed_s")
    return float(e1) / float(e2) if e1 and e2 else 1.0


def differences(
    cmp: Comparison,
    slower: pd.DataFrame,
    new: pd.DataFrame,
    shifts: pd.DataFrame | None,
    top: int = 15,
) -> pd.DataFrame:
    """One ranked list: every difference scored by the DB time (s) it stands for, or, for load
    metrics, by its relative change (capped) so that big ratios of tiny numbers stay low."""
    rows: list[dict[str, Any]] = []
    for r in slower.itertuples(index=False):
        rows.append(
            {
                "kind": "SQL slower",
                "subject": f"{r.queryid}: {_short(r.query)}",
                "period1": f"{r.mean_ms_1:,.2f} ms/call",
                "period2": f"{r.mean_ms_2:,.2f} ms/call",
                "change": f"×{r.ratio:,.1f}",
                "score": r.extra_ms / 1000.0,
            }
        )
    for r in new.itertuples(index=False):
        rows.append(
            {
                "kind": "new SQL",
                "subject": f"{r.queryid}: {_short(r.query)}",
                "period1": f"{r.total_exec_time:,.0f} ms in {r.calls:,.0f} calls",
                "period2": "absent",
                "change": "new",
                "score": float(r.total_exec_time) / 1000.0,
            }
        )
    if shifts is not None:
        total1 = float(shifts["db_time_s_1"].sum())
        for r in shifts.itertuples(index=False):
            # a change that matters: 5 % of period 1's DB time, or 5 points of share
            if abs(r.change_s) < 0.05 * total1 and abs(r.shift_points) < 5:
                continue
            rows.append(
                {
                    "kind": "wait class",
                    "subject": r.wait_class,
                    "period1": f"{r.db_time_s_1:,.1f} s ({r.pct_1:.0f} %)",
                    "period2": f"{r.db_time_s_2:,.1f} s ({r.pct_2:.0f} %)",
                    "change": f"{r.change_s:+,.1f} s",
                    "score": abs(r.change_s),
                }
            )
    lp = cmp.load_profile
    for r in lp.itertuples(index=False):
        ch = r.change_pct
        if ch is None or pd.isna(ch) or abs(ch) < 25:
            continue
        div, metric = (
            (1048576.0, r.metric.replace(" bytes", " (MB)"))
            if "bytes" in r.metric
            else (1.0, r.metric)
        )
        rows.append(
            {
                "kind": "load",
                "subject": f"{metric} per second",
                "period1": f"{r.per_second_1 / div:,.2f}" if pd.notna(r.per_second_1) else "",
                "period2": f"{r.per_second_2 / div:,.2f}" if pd.notna(r.per_second_2) else "",
                "change": f"{ch:+.0f} %",
                "score": None,  # not DB time: ranked after the DB-time items, by |change|
                "_order": abs(ch),
            }
        )
    cols = ["kind", "subject", "period1", "period2", "change", "score"]
    out = pd.DataFrame(rows, columns=[*cols, "_order"])
    timed = out[out["score"].notna()].sort_values("score", ascending=False)
    load = out[out["score"].isna()].sort_values("_order", ascending=False)
    out = pd.concat([timed, load.head(max(3, top - len(timed)))], ignore_index=True)
    return out[cols].head(top).reset_index(drop=True)


def _by_elapsed(top_sql: pd.DataFrame | None) -> pd.DataFrame | None:
    """Top SQL side by side, largest elapsed time first (period 1, then period 2)."""
    if top_sql is None or top_sql.empty:
        return top_sql
    key = pd.concat(
        [_f(top_sql, "total_exec_time_1").fillna(0), _f(top_sql, "total_exec_time_2").fillna(0)],
        axis=1,
    ).max(axis=1)
    return top_sql.loc[key.sort_values(ascending=False).index].reset_index(drop=True)


def build(cmp: Comparison) -> CompareReport:
    slower = slower_sql(cmp.top_sql)
    new, gone = new_and_gone(cmp.top_sql)
    shifts = wait_shifts(cmp.waits, period_scale(cmp))
    diffs = differences(cmp, slower, new, shifts)
    notes = list(cmp.notes)
    if shifts is None and cmp.waits is not None:
        notes.append("ASH samples cover only one of the two periods: wait class shifts need both.")
    hl: list[str] = []
    for r in diffs.head(5).itertuples(index=False):
        hl.append(f"{r.kind}: {r.subject} — {r.period1} vs {r.period2} ({r.change})")
    if not hl:
        hl.append("No difference that matters between the two periods.")
    return CompareReport(
        target=cmp.target,
        period1=cmp.period1,
        period2=cmp.period2,
        highlights=hl,
        notes=notes,
        differences=diffs,
        load_profile=cmp.load_profile,
        slower_sql=slower,
        new_sql=new,
        gone_sql=gone,
        top_sql=_by_elapsed(cmp.top_sql),
        wait_shifts=shifts,
        io=cmp.io,
        resets=cmp.resets,
    )


__all__ = ["CompareReport", "build"]
