"""Maintenance windows: the recurring hour-of-week slots with the least DB time.

From at least two weeks of history, each of the 168 hour-of-week slots gets its mean DB time
(average active sessions), the number of weeks it was observed, and a confidence: the share of
observed weeks in which that slot was among the quietest quarter of its week, times the share of
weeks observed. Shorter history answers "not enough history" and no windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MIN_DAYS = 14
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def slot_label(slot: int, hours: int = 1) -> str:
    d, h = divmod(slot, 24)
    return f"{DAYS[d]} {h:02d}:00-{(h + hours) % 24:02d}:00 UTC"


@dataclass
class Windows:
    enough_history: bool
    history_days: float
    note: str
    heatmap: pd.DataFrame  # slot, day, hour, mean_aas, weeks, quiet_share
    windows: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "enough_history": self.enough_history,
            "history_days": round(self.history_days, 2),
            "note": self.note,
            "windows": self.windows,
            "heatmap": self.heatmap,
        }


def maintenance_windows(
    db_time: pd.Series, *, hours: int = 1, top: int = 3, min_days: float = MIN_DAYS
) -> Windows:
    """``db_time``: average active sessions (DB time per second) indexed by UTC time."""
    s = db_time.dropna()
    s.index = pd.to_datetime(s.index, utc=True)
    days = (s.index.max() - s.index.min()).total_seconds() / 86400 if len(s) > 1 else 0.0
    hourly = s.resample("1h").mean().dropna()
    hm = pd.DataFrame({"aas": hourly})
    hm["slot"] = hm.index.day_of_week * 24 + hm.index.hour
    hm["week"] = (hm.index - pd.to_timedelta(hm.index.day_of_week, unit="D")).normalize()
    # quiet: within the quietest quarter of its own week
    hm["quiet"] = hm.groupby("week")["aas"].transform(lambda v: v <= v.quantile(0.25))
    n_weeks = max(1, hm["week"].nunique())
    grid = hm.groupby("slot").agg(
        mean_aas=("aas", "mean"), weeks=("week", "nunique"), quiet_share=("quiet", "mean")
    )
    grid = grid.reindex(range(168))
    grid["day"] = [DAYS[i // 24] for i in grid.index]
    grid["hour"] = [i % 24 for i in grid.index]
    grid = grid.reset_index(names="slot")[
        ["slot", "day", "hour", "mean_aas", "weeks", "quiet_share"]
    ]
    if days < min_days:
        return Windows(
            False,
            days,
            f"not enough history: {days:.1f} days of snapshots, maintenance windows need "
            f"{min_days:g} (two weeks, so each hour of the week is seen at least twice)",
            grid,
        )
    vals = grid["mean_aas"].to_numpy()
    # a window of `hours` consecutive slots (wrapping around the week)
    scores = []
    for start in range(168):
        span = [(start + i) % 168 for i in range(hours)]
        if np.isnan(vals[span]).any():
            continue
        load = float(np.mean(vals[span]))
        weeks = int(grid["weeks"].iloc[span].min())
        quiet = float(grid["quiet_share"].iloc[span].mean())
        conf = quiet * min(1.0, weeks / n_weeks) * min(1.0, weeks / 2)
        scores.append((load, -conf, start, weeks, quiet, conf))
    scores.sort()
    chosen: list[dict[str, Any]] = []
    taken: set[int] = set()
    peak = float(np.nanmax(vals)) if np.isfinite(vals).any() else 0.0
    for load, _, start, weeks, quiet, conf in scores:
        span = {(start + i) % 168 for i in range(hours)}
        if span & taken:
            continue
        taken |= {(start + i) % 168 for i in range(-hours + 1, hours)}
        chosen.append(
            {
                "slot": start,
                "window": slot_label(start, hours),
                "hours": hours,
                "mean_aas": round(load, 4),
                "peak_aas": round(peak, 4),
                "weeks_observed": weeks,
                "quiet_share": round(quiet, 3),
                "confidence": round(conf, 3),
            }
        )
        if len(chosen) >= top:
            break
    return Windows(True, days, f"{days:.1f} days of history, {n_weeks} weeks", grid, chosen)
