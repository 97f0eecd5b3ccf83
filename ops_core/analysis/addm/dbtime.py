"""DB time: the total (ASH, cross-checked with pg_stat_statements), its breakdowns (wait
class, event, SQL, object, session) and one profile row per statement. Pure."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...model.waits import ACTIVE_STATES, FOREGROUND_BACKEND_TYPES, IDLE_CLASSES
from .model import AddmInput, pct, short
from .sqlshape import shape

OPSCORE_MARKER = "/* opscore */"


def is_opscore(text: object) -> bool:
    """An opscore statement: every one carries the marker comment right after its first
    keyword (pg_stat_statements drops comments before a statement, keeps those inside)."""
    return isinstance(text, str) and OPSCORE_MARKER in text[:200]


def own_samples(samples: pd.DataFrame) -> pd.Series:
    """Samples of opscore's own sessions (application_name opscore...) or statements."""
    app = samples["application_name"].fillna("").astype(str)
    return app.str.startswith("opscore") | samples["query"].map(is_opscore)


#: backend types whose time is DB time (the sessions' own work); the others (checkpointer,
#: autovacuum, WAL writer, background writer, I/O workers, WAL senders...) are background work.
#: The one definition is ops_core.model.waits (the repository reads apply it in SQL).
FOREGROUND = frozenset(FOREGROUND_BACKEND_TYPES)


def foreground(samples: pd.DataFrame) -> pd.Series:
    bt = samples["backend_type"] if "backend_type" in samples.columns else None
    if bt is None:
        return pd.Series(True, index=samples.index)
    return bt.isna() | bt.isin(FOREGROUND)


def working(samples: pd.DataFrame) -> pd.Series:
    """Running, on CPU or in a non-idle wait (model.waits.is_working), whatever the backend."""
    st = samples["state"]
    running = st.isna() | st.isin(ACTIVE_STATES)
    return running & ~samples["wait_class"].isin(IDLE_CLASSES)


def db_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """DB time samples: foreground sessions on CPU or in a non-idle wait."""
    if samples.empty:
        return samples
    return samples[samples["db_time"].astype(bool) & foreground(samples)]


def background_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """Background processes working or waiting (not idling in their main loop): not DB time."""
    if samples.empty:
        return samples
    return samples[working(samples) & ~foreground(samples)]


def _top(df: pd.DataFrame, by: list[str], total: float, n: int = 10) -> list[dict[str, Any]]:
    if df.empty:
        return []
    g = df.groupby(by, dropna=False)["weight_s"].agg(["sum", "count"]).reset_index()
    g = g.sort_values("sum", ascending=False).head(n)
    out = []
    for r in g.itertuples(index=False):
        row = {k: (None if pd.isna(v) else v) for k, v in zip(by, r[: len(by)], strict=True)}
        row["db_time_s"] = round(float(r[-2]), 3)
        row["samples"] = int(r[-1])
        row["pct"] = pct(float(r[-2]), total)
        out.append(row)
    return out


def statement_profile(inp: AddmInput) -> pd.DataFrame:
    """One row per queryid: pg_stat_statements sums and ASH DB time by wait class."""
    st = inp.statements
    cols = [
        "calls",
        "total_exec_time",
        "rows",
        "shared_blks_hit",
        "shared_blks_read",
        "temp_blks_written",
        "wal_bytes",
        "jit_time",  # NULL before PostgreSQL 15 and in snapshots before migration 0034: 0
        "jit_functions",
    ]
    if st.empty:
        prof = pd.DataFrame(columns=["queryid", "query", "datname", "username", *cols])
    else:
        st = st[st["queryid"].notna() & ~st["query"].map(is_opscore)].copy()
        for c in ("datname", "username"):
            if c not in st.columns:
                st[c] = None
        for c in cols:
            st[c] = pd.to_numeric(st[c]).fillna(0) if c in st.columns else 0.0
        prof = (
            st.groupby("queryid")
            .agg(
                query=("query", "first"),
                datname=("datname", "first"),
                username=("username", "first"),
                **{c: (c, "sum") for c in cols},
            )
            .reset_index()
        )
    prof["queryid"] = prof["queryid"].astype("int64")
    prof["exec_s"] = prof["total_exec_time"].astype(float) / 1000.0
    ds = db_samples(inp.samples)
    ds = ds[ds["query_id"].notna() & ~own_samples(ds)] if not ds.empty else ds
    if not ds.empty:
        ds = ds.assign(query_id=ds["query_id"].astype("int64"))
        by_cls = ds.pivot_table(
            index="query_id", columns="wait_class", values="weight_s", aggfunc="sum", fill_value=0
        )
        texts = ds.groupby("query_id")["query"].first()
        dbs = ds.groupby("query_id")["datname"].first()
        ash = pd.DataFrame({"ash_s": by_cls.sum(axis=1)})
        for c in ("CPU", "IO", "Lock", "LWLock", "IPC"):
            ash[f"ash_{c.lower()}_s"] = by_cls[c] if c in by_cls.columns else 0.0
        ash["ash_query"] = texts
        ash["ash_datname"] = dbs
        ash.index.name = "queryid"
        prof = prof.merge(ash.reset_index(), on="queryid", how="outer")
        prof["query"] = prof["query"].fillna(prof["ash_query"])
        prof["datname"] = prof["datname"].fillna(prof["ash_datname"])
    else:
        for c in ("ash_s", "ash_cpu_s", "ash_io_s", "ash_lock_s", "ash_lwlock_s", "ash_ipc_s"):
            prof[c] = 0.0
    for c in [*cols, "exec_s"] + [
        c for c in prof.columns if c.startswith("ash_") and c not in ("ash_query", "ash_datname")
    ]:
        prof[c] = pd.to_numeric(prof[c]).fillna(0.0)
    use_ash = not inp.samples.empty
    prof["db_time_s"] = prof["ash_s"] if use_ash else prof["exec_s"]
    return prof.sort_values("db_time_s", ascending=False).reset_index(drop=True)


def _plan_status(inp: AddmInput, r: Any) -> dict[str, Any]:
    """How the statement was planned (method) or why it was not (reason): every top
    statement gets one or the other."""
    planner = getattr(inp.explain, "plan", None)
    if planner is None:
        why = "not planned: the target was not reachable for plan reads"
        return {"plan": None, "plan_reason": why}
    db = getattr(r, "datname", None)
    if isinstance(db, str) and db != inp.catalog_database:
        return {
            "plan": None,
            "plan_reason": f"not planned: the statement ran in database {db}, the plan reads "
            f"connect to {inp.catalog_database} (analyse with --database {db} on a target "
            "registered for that database)",
        }
    if not isinstance(r.query, str) or not r.query.strip():
        return {"plan": None, "plan_reason": "no statement text (not kept by the statistics)"}
    p = planner(r.query)
    return {"plan": p.method if p.plan is not None else None, "plan_reason": p.reason}


def breakdown(inp: AddmInput, prof: pd.DataFrame, total: float) -> dict[str, list[dict]]:
    ds = db_samples(inp.samples)
    bg = background_samples(inp.samples)
    out: dict[str, list[dict]] = {
        # not DB time: the sampled time of background processes, no share of DB time
        "background": [
            {k: v for k, v in r.items() if k not in ("db_time_s", "pct")}
            | {"time_s": r["db_time_s"]}
            for r in _top(bg, ["backend_type", "wait_class", "event"], total)
        ],
        "wait_class": _top(ds, ["wait_class"], total),
        "event": _top(ds, ["wait_class", "event"], total),
        "session": _top(ds, ["pid", "usename", "application_name"], total),
    }
    sql_rows = []
    objects: dict[str, float] = {}
    for r in prof.head(50).itertuples(index=False):
        if r.db_time_s <= 0:
            continue
        if len(sql_rows) < 10:
            sql_rows.append(
                {
                    "queryid": int(r.queryid),
                    "query": short(r.query, 200),
                    "db_time_s": round(float(r.db_time_s), 3),
                    "pct": pct(r.db_time_s, total),
                    "calls": int(r.calls),
                    **_plan_status(inp, r),
                }
            )
        tables = shape(r.query).tables
        for t in tables:  # a statement's time is attributed to each table it reads
            objects[t] = objects.get(t, 0.0) + float(r.db_time_s)
    out["sql"] = sql_rows
    out["object"] = [
        {"object": k, "db_time_s": round(v, 3), "pct": pct(v, total)}
        for k, v in sorted(objects.items(), key=lambda kv: -kv[1])[:10]
    ]
    return out
