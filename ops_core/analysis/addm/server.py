"""Server-wide findings: checkpoint/WAL pressure and commit (WAL fsync) waits."""

from __future__ import annotations

import math

import pandas as pd

from .dbtime import db_samples
from .model import AddmInput, Finding, Recommendation, fmt_bytes, pct

#: WAL write/flush waits of a commit: IO WALSync/WALWrite (PostgreSQL 17 renamed them WalSync,
#: WalWrite, ...), the LWLock WALWrite; compared in lower case so every major matches
WAL_EVENTS = frozenset(
    {"walsync", "walwrite", "walflush", "walinitsync", "walinitwrite", "walsyncread"}
)
#: fewer samples than this are too few to call a wait a problem (3 samples could be chance)
MIN_SAMPLES = 8
#: a commit's WAL flush wait, averaged over the range's commits, below which the waits are the
#: normal price of durability (local storage flushes in ~0.1-3 ms), not a problem
SLOW_COMMIT_MS = 5.0


def _commits(inp: AddmInput) -> int | None:
    db = inp.databases
    if db is None or db.empty or "xact_commit" not in db.columns:
        return None
    return int(pd.to_numeric(db["xact_commit"]).fillna(0).sum())


def checkpoint_findings(
    inp: AddmInput, prof: pd.DataFrame, total: float, basis: str
) -> list[Finding]:
    cp = inp.cluster.get("checkpointer") or {}
    req, timed = int(cp.get("num_requested") or 0), int(cp.get("num_timed") or 0)
    if req < 2 or req <= timed:
        return []
    wal = inp.cluster.get("pg_stat_wal") or {}
    wal_bytes = float(wal.get("wal_bytes") or prof["wal_bytes"].sum())
    fpi = wal.get("wal_fpi")
    total_wal = float(prof["wal_bytes"].sum()) or 1.0
    writers = prof[prof["wal_bytes"] >= 0.05 * total_wal]
    impact = float(writers["db_time_s"].sum())
    mws = inp.settings.get("max_wal_size")  # MB
    cpt = float(inp.settings.get("checkpoint_timeout") or 300)  # s
    rate = wal_bytes / max(inp.elapsed_s, 1.0)  # bytes/s
    want_mb = 2 ** math.ceil(math.log2(max(rate * cpt * 2 / 1048576, 64)))
    if isinstance(mws, int | float):
        want_mb = max(want_mb, int(mws) * 4)
    want = f"{want_mb // 1024}GB" if want_mb >= 1024 and want_mb % 1024 == 0 else f"{want_mb}MB"
    return [
        Finding(
            type="checkpoint_pressure",
            title=(
                f"Checkpoint pressure: {req} requested checkpoints vs {timed} timed "
                f"(max_wal_size {mws} MB is too small for {fmt_bytes(rate * 60)}/min of WAL)"
            ),
            impact_db_time_s=impact,
            impact_pct=pct(impact, total),
            evidence={
                "checkpoints_requested": req,
                "checkpoints_timed": timed,
                "checkpoints_per_min": round(60.0 * (req + timed) / max(inp.elapsed_s, 1), 2),
                "max_wal_size_mb": mws,
                "checkpoint_timeout_s": cpt,
                "wal": fmt_bytes(wal_bytes),
                "wal_per_min": fmt_bytes(rate * 60),
                "wal_full_page_images": fpi,
                "write_time_ms": cp.get("write_time"),
                "sync_time_ms": cp.get("sync_time"),
            },
            objects=[],
            statements=[
                {"queryid": int(r.queryid), "query": r.query}
                for r in writers.head(5).itertuples(index=False)
            ],
            recommendations=[
                Recommendation(
                    "setting",
                    f"ALTER SYSTEM SET max_wal_size = '{want}'; SELECT pg_reload_conf();",
                    "Checkpoints then come from checkpoint_timeout, not from WAL volume: fewer "
                    "full-page "
                    "images and less checkpoint I/O competing with the writers.",
                    0.3 * impact,
                    pct(0.3 * impact, total),
                )
            ],
            basis=basis,
        )
    ]


#: WAL written per call from which a statement is a bulk writer (a load, not an OLTP change)
BULK_WAL_PER_CALL = 1 << 20
#: WAL insert/buffer contention of bulk writers (LWLocks), besides the write/flush waits
WAL_LWLOCKS = frozenset({"walinsert", "walbufmapping", "walwrite"})


def bulk_writers(prof: pd.DataFrame) -> pd.DataFrame:
    """Statements that write at least BULK_WAL_PER_CALL of WAL per call."""
    if prof.empty:
        return prof
    per_call = prof["wal_bytes"].astype(float) / prof["calls"].clip(lower=1).astype(float)
    return prof[(per_call >= BULK_WAL_PER_CALL) & (prof["db_time_s"] > 0)]


def wal_volume_findings(inp: AddmInput, prof: pd.DataFrame, total: float) -> list[Finding]:
    """Bulk writes: statements writing megabytes of WAL per call; their DB time (less their
    lock waits, which the lock findings explain) is the price of the WAL volume."""
    bw = bulk_writers(prof)
    if bw.empty or inp.elapsed_s <= 0:
        return []
    wal = float(bw["wal_bytes"].sum())
    impact = float((bw["db_time_s"] - bw["ash_lock_s"]).clip(lower=0).sum())
    ds = db_samples(inp.samples)
    waits: dict[str, float] = {}
    if not ds.empty:
        mine = ds[ds["query_id"].isin(set(bw["queryid"]))]
        ev = mine["event"].astype(str)
        ww = mine[ev.str.lower().isin(WAL_EVENTS | WAL_LWLOCKS) | ev.str.startswith("DataFile")]
        waits = {
            k: round(float(v), 2)
            for k, v in ww.groupby("event")["weight_s"].sum().sort_values(ascending=False).items()
        }
    from .sqlshape import shape

    tables = sorted({t for q in bw["query"] for t in shape(q).tables[:1]})
    rate = wal / inp.elapsed_s
    return [
        Finding(
            type="wal_volume",
            title=(
                f"Bulk writes: {fmt_bytes(wal)} of WAL ({fmt_bytes(rate)}/s) from "
                f"{len(bw)} statement(s) writing "
                f"{fmt_bytes(wal / max(float(bw['calls'].sum()), 1))} per call"
                + (f" into {', '.join(tables)}" if tables else "")
            ),
            impact_db_time_s=impact,
            impact_pct=pct(impact, total),
            evidence={
                "wal": fmt_bytes(wal),
                "wal_per_s": fmt_bytes(rate),
                "wal_waits_s": waits,
                "statements": int(len(bw)),
                "calls": int(bw["calls"].sum()),
            },
            objects=tables,
            statements=[
                {"queryid": int(r.queryid), "query": r.query}
                for r in bw.sort_values("db_time_s", ascending=False).head(5).itertuples()
            ],
            recommendations=[
                Recommendation(
                    "application",
                    "Load with COPY (or multi-row INSERT) into a table created or truncated in "
                    "the same transaction (with wal_level=minimal no WAL is written for it), or "
                    "into an UNLOGGED staging table; load off-peak.",
                    "The statements' time goes to generating and writing WAL for every row.",
                    0.5 * impact,
                    pct(0.5 * impact, total),
                ),
                Recommendation(
                    "setting",
                    "ALTER SYSTEM SET wal_compression = 'lz4'; SELECT pg_reload_conf();",
                    "Fewer WAL bytes for full-page images written during the load.",
                    None,
                    None,
                ),
            ],
        )
    ]


def commit_findings(
    inp: AddmInput, total: float, prof: pd.DataFrame | None = None
) -> list[Finding]:
    ds = db_samples(inp.samples)
    if ds.empty:
        return []
    if prof is not None:  # waits of bulk writers are WAL volume, not commit latency
        ds = ds[~ds["query_id"].isin(set(bulk_writers(prof)["queryid"]))]
    w = ds[ds["event"].astype(str).str.lower().isin(WAL_EVENTS)]
    t = float(w["weight_s"].sum())
    if t <= 0 or len(w) < MIN_SAMPLES:
        return []
    commits = _commits(inp)
    per_commit_ms = 1000.0 * t / commits if commits else None
    if per_commit_ms is not None and per_commit_ms < SLOW_COMMIT_MS:
        return []  # many commits, each flushed in normal time: durability's price
    by = w.groupby("event")["weight_s"].sum().sort_values(ascending=False)
    sc = inp.settings.get("synchronous_commit")
    # the statements that waited (mostly COMMIT): theirs is this time, not a "top SQL" of its own
    q = w[w["query_id"].notna()]
    stmts = [
        {"queryid": int(qid), "query": q.loc[q["query_id"] == qid, "query"].iloc[0]}
        for qid in q.groupby("query_id")["weight_s"].sum().sort_values(ascending=False).index[:3]
    ]
    return [
        Finding(
            type="commit_waits",
            title=f"Commit waits: {t:.1f} s of DB time waiting for WAL write/fsync",
            impact_db_time_s=t,
            impact_pct=pct(t, total),
            evidence={
                "events": {k: round(float(v), 2) for k, v in by.items()},
                "synchronous_commit": sc,
                "commits": commits,
                "wal_wait_per_commit_ms": None
                if per_commit_ms is None
                else round(per_commit_ms, 2),
                "sessions": int(w["pid"].nunique()),
            },
            sessions=sorted(int(p) for p in w["pid"].unique())[:10],
            statements=stmts,
            recommendations=[
                Recommendation(
                    "application",
                    "Batch small transactions (commit every N rows, not every row).",
                    "Each commit waits for one WAL flush.",
                    0.5 * t,
                    pct(0.5 * t, total),
                ),
                Recommendation(
                    "setting",
                    "SET synchronous_commit = off;  -- only in sessions that can lose the last "
                    "commits on a crash",
                    "The commit returns before the WAL flush.",
                    t,
                    pct(t, total),
                ),
                Recommendation(
                    "setting",
                    "ALTER SYSTEM SET commit_delay = 1000; SELECT pg_reload_conf();",
                    "Group commits of concurrent sessions into one flush.",
                    None,
                    None,
                ),
            ],
        )
    ]
