"""The "what stands out" lines of the AWR report, most important first, from the assembled
report (:class:`ops_core.analysis.awr.AwrReport`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

BLOCK = 8192  # PostgreSQL block size assumed for block -> bytes (the default build)


def _short(q: Any, n: int = 80) -> str:
    s = " ".join(str(q or "").split())
    return s if len(s) <= n else s[: n - 1] + "…"


def highlights(r: Any, elapsed_s: float) -> list[str]:
    out: list[str] = []
    real = [x for x in r.resets if "eviction" not in str(x.get("reason"))]
    if real:
        out.append(
            f"{len(real)} statistics reset(s) or restart(s) inside the interval: "
            "counters are counted from the reset (see Resets)."
        )
    el = r.top_sql.get("elapsed")
    if el is not None and not el.empty:
        top = el.iloc[0]
        out.append(
            f"Top SQL by elapsed time takes {top.share_pct:.0f} % of SQL time: "
            f"{top.total_exec_time / 1000:,.1f} s in {int(top.calls):,} calls "
            f"({top.mean_exec_time:,.1f} ms each) — {_short(top.query)}"
        )
    if r.top_waits is not None and not r.top_waits.empty:
        w = r.top_waits.iloc[0]
        what = "CPU (running, no wait event)" if w.event == "CPU" else f"{w.event} ({w.wait_class})"
        out.append(
            f"Top ASH event: {what} with {w.pct:.0f} % of sampled DB time ({w.db_time_s:,.1f} s)."
        )
    eff = r.efficiency.set_index("metric")["value_pct"]
    hit = eff.get("buffer hit")
    if hit is not None and pd.notna(hit) and hit < 99.0:
        out.append(f"Buffer hit ratio is {hit:.1f} %: reads are going to disk or the OS cache.")
    spill = eff.get("SQL time in statements that spilled to temp")
    tmp = r.top_sql.get("temp")
    if tmp is not None and not tmp.empty:
        t = tmp.iloc[0]
        out.append(
            f"Temp spills: {spill or 0:.0f} % of SQL time is in statements that wrote temp files; "
            f"top spiller wrote {t.temp_blks_written * BLOCK / 1048576:,.1f} MB — {_short(t.query)}"
        )
    rb = eff.get("rollbacks")
    if rb is not None and pd.notna(rb) and rb >= 5.0:
        out.append(f"{rb:.1f} % of transactions rolled back.")
    ck = r.checkpoints.set_index("metric")["value"] if not r.checkpoints.empty else {}
    req = ck.get("checkpoints requested") if len(ck) else None
    timed = ck.get("checkpoints by timeout") if len(ck) else None
    if req and req >= 3 and req > (timed or 0):
        out.append(
            f"{req:.0f} checkpoints were requested (WAL volume) vs {timed or 0:.0f} by timeout: "
            "consider a larger max_wal_size."
        )
    if not r.settings_changes.empty:
        names = ", ".join(r.settings_changes["name"].head(5))
        out.append(f"{len(r.settings_changes)} setting(s) changed in the interval: {names}.")
    if not r.tables.empty and "n_dead_tup" in r.tables.columns:
        d = r.tables.sort_values("n_dead_tup", ascending=False).iloc[0]
        live = float(d.n_live_tup or 0)
        dead = float(d.n_dead_tup or 0)
        if dead > 10000 and dead > 0.2 * live:
            out.append(f"Table {d.relname} has {dead:,.0f} dead rows ({live:,.0f} live).")
    if not out:
        out.append(
            "Nothing stands out: no SQL ran in the interval."
            if el is None or el.empty
            else "Nothing stands out."
        )
    return out


def addm_highlights(findings: list[Any], n: int = 3) -> list[str]:
    """The top ADDM problems of the range, for the top of "What stands out"."""
    return [
        f"ADDM #{f.rank}: {f.title}"
        + ("" if "% of DB time" in f.title else f" ({f.score:.0f} % of DB time)")
        + (" [snapshot only: no ASH samples]" if f.snapshot_only else "")
        for f in findings
        if f.is_problem
    ][:n]
