"""DB time cross-check of a snapshot interval: ASH DB time against pg_stat_database.active_time,
with the reasons they differ taken from the data. Pure.

``active_time`` grows when a client session's statement ends (or the session goes idle), so:

- a backend terminated (``pg_terminate_backend``) or ended by a FATAL error while running never
  reports that statement: ASH sampled it, active_time never gets it;
- a statement still running at the end snapshot is reported after the interval;
- a statement running at the begin snapshot is reported whole when it ends, with its time
  before the interval;
- parallel workers are not client sessions: ASH samples them (their time is DB time),
  active_time does not count them (background processes are not DB time at all).

What remains is sampling: each ASH sample stands for its interval, so a few minutes of ASH
differ from the exact figure by several percent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

AGREE_PCT = 10.0  # ASH within this many percent of active_time: the two agree
END_SLACK_S = 1.0  # slack (s) beyond two sampling intervals for "sampled at the end snapshot"


@dataclass
class DbTimeCheck:
    active_time_s: float
    ash_db_time_s: float
    parts: list[dict[str, Any]] = field(default_factory=list)  # component, time_s, effect, detail
    residual_s: float = 0.0
    summary: str = ""
    sessions_checked: bool = True  # False: ASH sessions not read (range too long)

    @property
    def ratio_pct(self) -> float | None:
        return 100.0 * self.ash_db_time_s / self.active_time_s if self.active_time_s > 0 else None

    def frame(self) -> pd.DataFrame:
        rows = [
            {"component": "pg_stat_database.active_time", "time_s": self.active_time_s,
             "effect": "", "detail": "client sessions' statements that ended in the interval"},
            *self.parts,
            {"component": "not explained above", "time_s": self.residual_s,
             "effect": "sampling", "detail": "ASH is a sample: each one stands for its interval"},
            {"component": "DB time sampled by ASH", "time_s": self.ash_db_time_s, "effect": "",
             "detail": "= active_time + the rows above"},
        ]  # fmt: skip
        return pd.DataFrame(rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "active_time_s": self.active_time_s,
            "ash_db_time_s": self.ash_db_time_s,
            "ratio_pct": self.ratio_pct,
            "parts": self.parts,
            "residual_s": self.residual_s,
            "summary": self.summary,
            "sessions_checked": self.sessions_checked,
        }


def _sum(df: pd.DataFrame | None, col: str) -> int:
    if df is None or df.empty or col not in df.columns:
        return 0
    return int(pd.to_numeric(df[col], errors="coerce").fillna(0).sum())


def _pids(df: pd.DataFrame, n: int = 5) -> str:
    pids = [str(int(p)) for p in df["pid"].head(n)]
    return ", ".join(pids) + (", ..." if len(df) > n else "")


def check(
    active_s: float,
    ash_s: float,
    databases: pd.DataFrame | None,
    sessions: pd.DataFrame | None,
    begin: datetime,
    end: datetime,
) -> DbTimeCheck:
    """``databases``: the interval's pg_stat_database deltas (sessions_killed, sessions_fatal);
    ``sessions``: ``report_reads.ash_session_edges`` of the interval, or None (not read)."""
    out = DbTimeCheck(round(active_s, 3), round(ash_s, 3), sessions_checked=sessions is not None)
    killed, fatal = _sum(databases, "sessions_killed"), _sum(databases, "sessions_fatal")
    s = sessions if sessions is not None else pd.DataFrame()
    if not s.empty:
        client = s[s["backend_type"] == "client backend"]
        other = s[s["backend_type"] != "client backend"]
        if other["db_time_s"].sum() > 0:
            kinds = ", ".join(sorted({str(k) for k in other["backend_type"].dropna()}))
            out.parts.append(
                _part(
                    "parallel workers",
                    float(other["db_time_s"].sum()),
                    "+",
                    f"{kinds}: sampled by ASH; active_time counts client sessions only",
                )
            )
        running = client["last_db"].astype(bool)
        # running at the end snapshot: sampled within two sampling intervals of it (a session
        # running then is in every sample up to the end)
        to_end = (end - client["last_sample"]).dt.total_seconds()
        at_end = running & (to_end <= 2 * client["weight_s"].astype(float) + END_SLACK_S)
        # sessions last seen running (two samples or more into a statement) whose statement
        # did not reach the end of the interval: as many as pg_stat_database says ended by
        # termination or FATAL, the longest first (a session that just finished a short
        # statement is not one of them)
        gone = client[running & ~at_end & (client["last_stretch_samples"] >= 2)]
        gone = gone.sort_values("last_stretch_db_s", ascending=False).head(killed + fatal)
        if len(gone):
            out.parts.append(
                _part(
                    "statements of sessions terminated while running",
                    float(gone["last_stretch_db_s"].sum()),
                    "+",
                    f"{killed} session(s) terminated and {fatal} ended by a FATAL error in the "
                    f"interval (pg_stat_database); ASH last saw {len(gone)} session(s) in a "
                    f"statement that did not reach the end of the interval (pids {_pids(gone)}): "
                    "a backend that ends while running never reports that statement's time",
                )
            )
        ending = client[at_end]
        if ending["last_stretch_db_s"].sum() > 0:
            out.parts.append(
                _part(
                    "statements still running at the end snapshot",
                    float(ending["last_stretch_db_s"].sum()),
                    "+",
                    f"{len(ending)} session(s): reported to active_time when they finish, "
                    "after the interval",
                )
            )
        # running at the begin snapshot, and that statement reported inside the interval (not
        # still running at the end, not ended by termination)
        early = client["first_db"].astype(bool) & client["first_change"].notna()
        early &= client["first_change"] < begin
        unreported = (client["first_change"] == client["last_change"]) & (
            at_end | client.index.isin(gone.index)
        )
        ended = client[early & ~unreported]
        before = sum((begin - t).total_seconds() for t in ended["first_change"])
        if before > 0:
            out.parts.append(
                _part(
                    "time before the begin snapshot of statements running at it",
                    -before,
                    "-",
                    f"{len(ended)} session(s): active_time counts a statement whole when it "
                    "ends, with its time before the interval",
                )
            )
    out.residual_s = round(ash_s - active_s - sum(p["time_s"] for p in out.parts), 3)
    out.summary = _summary(out, killed, fatal)
    return out


def _part(component: str, seconds: float, effect: str, detail: str) -> dict[str, Any]:
    what = "in ASH, not in active_time" if effect == "+" else "in active_time, not in ASH"
    return {"component": component, "time_s": round(seconds, 3), "effect": what, "detail": detail}


def _summary(c: DbTimeCheck, killed: int, fatal: int) -> str:
    ratio = c.ratio_pct
    if ratio is None:
        return "pg_stat_database.active_time recorded no time in this interval."
    head = f"ASH {c.ash_db_time_s:,.1f} s is {ratio:.0f} % of active_time {c.active_time_s:,.1f} s"
    big = [p for p in c.parts if abs(p["time_s"]) >= 0.02 * max(c.active_time_s, 1e-9)]
    big.sort(key=lambda p: -abs(p["time_s"]))
    if abs(ratio - 100.0) <= AGREE_PCT and not big:
        return f"{head}: the two agree (ASH is a sample; within {AGREE_PCT:g} % is normal)."
    if big:
        why = "; ".join(f"{p['component']} {p['time_s']:+,.1f} s" for p in big)
        if abs(c.residual_s) >= 0.05 * c.active_time_s:
            why += f"; not explained by these {c.residual_s:+,.1f} s (ASH is a sample)"
        return f"{head}. Why: {why} (see the DB time cross-check in the Time model)."
    if not c.sessions_checked and (killed or fatal) and ratio > 100:
        return (
            f"{head}: {killed + fatal} session(s) ended by termination or a FATAL error in the "
            "interval, and a backend that ends while running never reports that statement's "
            "time (ASH sessions not checked for ranges this long)."
        )
    if ratio > 100:
        return (
            f"{head}: no terminated session, parallel worker or unfinished statement explains "
            "it; ASH is a sample (each sample stands for its interval), so over a short interval "
            "it can read high."
        )
    return (
        f"{head}: ASH leaves out opscore's own sessions and is a sample (each sample stands for "
        "its interval); statements shorter than the sampling interval are counted by chance."
    )
