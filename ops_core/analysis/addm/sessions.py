"""Findings about sessions: lock contention (root blockers), sessions idle in transaction
holding locks, vacuum blocked by an old snapshot (bloat growing), connection saturation."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import blocking
from .dbtime import db_samples
from .model import AddmInput, Finding, Recommendation, fmt_bytes, pct, short
from .sqlshape import shape

IDLE_TX = ("idle in transaction", "idle in transaction (aborted)")


def _stmt(prof: pd.DataFrame, qid: Any, text: str | None = None) -> dict[str, Any]:
    q = text
    if qid is not None and not pd.isna(qid):
        hit = prof[prof["queryid"] == int(qid)]
        if len(hit):
            q = hit["query"].iloc[0] or q
        return {"queryid": int(qid), "query": q}
    return {"queryid": None, "query": q}


def lock_findings(inp: AddmInput, prof: pd.DataFrame, total: float) -> list[Finding]:
    s = inp.samples
    if s.empty:
        return []
    ds = db_samples(s)
    locks = ds[ds["wait_class"] == "Lock"]
    if locks.empty:
        return []
    times = set(locks["sample_time"])
    chains = blocking.blocking_chains(s[s["sample_time"].isin(times)])
    out: list[Finding] = []
    idle_time = 0.0
    if not chains.empty:
        for pid, grp in chains.groupby("root_pid"):
            if not grp["root_state"].isin(IDLE_TX).any():
                continue
            blocked = float(grp["blocked_time_s"].sum())
            idle_time += blocked
            holder = s[s["pid"] == pid]
            xact_start = holder["xact_start"].min() if len(holder) else None
            last = holder["sample_time"].max() if len(holder) else None
            held = (
                (last - xact_start).total_seconds()
                if xact_start is not None and last is not None and not pd.isna(xact_start)
                else None
            )
            waiter_q = locks[locks["pid"] != pid]
            stmts = [
                _stmt(prof, q)
                for q in waiter_q.groupby("query_id")["weight_s"]
                .sum()
                .sort_values(ascending=False)
                .index[:3]
            ]
            tables = sorted({t for st in stmts for t in shape(st["query"]).tables})
            user = holder["usename"].iloc[0] if len(holder) else None
            app = holder["application_name"].iloc[0] if len(holder) else None
            out.append(
                Finding(
                    type="idle_in_transaction",
                    title=(
                        f"Session {pid} ({user or '?'}, {app or '?'}) idle in transaction held "
                        f"locks that others waited {blocked:.1f} s for"
                    ),
                    impact_db_time_s=blocked,
                    impact_pct=pct(blocked, total),
                    evidence={
                        "holder_pid": int(pid),
                        "holder_user": user,
                        "holder_application": app,
                        "holder_last_query": short(grp["root_query"].iloc[0], 300),
                        "transaction_open_s": round(held, 1) if held is not None else None,
                        "waiters": int(grp["max_waiters"].max()),
                        "blocked_time_s": round(blocked, 2),
                        "waiter_events": grp["waiter_events"].iloc[0],
                    },
                    objects=tables,
                    statements=stmts,
                    sessions=[int(pid)],
                    recommendations=[
                        Recommendation(
                            "session",
                            f"SELECT pg_terminate_backend({int(pid)});",
                            f"End the idle-in-transaction session {pid}: its open transaction "
                            "holds the row locks the waiters queue on.",
                            blocked,
                            pct(blocked, total),
                        ),
                        Recommendation(
                            "setting",
                            "ALTER SYSTEM SET idle_in_transaction_session_timeout = '60s'; "
                            "SELECT pg_reload_conf();",
                            "Stop any session from holding locks while idle; fix the application "
                            f"({app or 'the holder'}) to commit or roll back promptly.",
                            blocked,
                            pct(blocked, total),
                        ),
                    ],
                )
            )
    lock_time = float(locks["weight_s"].sum()) - idle_time
    if lock_time <= 0:
        return out
    rest = chains[~chains["root_state"].isin(IDLE_TX)] if not chains.empty else chains
    roots = (
        rest.groupby("root_pid")
        .agg(
            blocked=("blocked_time_s", "sum"),
            query=("root_query", "first"),
            state=("root_state", "first"),
        )
        .sort_values("blocked", ascending=False)
        .head(5)
        .reset_index()
        if not rest.empty
        else pd.DataFrame(columns=["root_pid", "blocked", "query", "state"])
    )
    idle_pids = {f.sessions[0] for f in out}
    waiters = locks[~locks["pid"].isin(idle_pids)]
    by_q = waiters.groupby("query_id", dropna=False)["weight_s"].sum().sort_values(ascending=False)
    stmts = [_stmt(prof, q) for q in by_q.index[:3]]
    for q in roots["query"].head(2):
        if all(short(q) != short(st["query"]) for st in stmts):
            stmts.append({"queryid": None, "query": q})
    tables: list[str] = []
    for st in stmts:
        sh = shape(st["query"])
        for t in sh.tables[:1] if sh.kind in ("update", "delete") else sh.tables:
            if t not in tables:
                tables.append(t)
    events = waiters.groupby("event")["weight_s"].sum().sort_values(ascending=False)
    top_root = roots.iloc[0] if len(roots) else None
    out.append(
        Finding(
            type="lock_contention",
            title=(
                f"Row/table lock contention on {', '.join(tables) or 'unknown objects'}: "
                f"{lock_time:.1f} s of DB time waiting for locks"
            ),
            impact_db_time_s=lock_time,
            impact_pct=pct(lock_time, total),
            evidence={
                "lock_wait_s": round(lock_time, 2),
                "events": {k: round(float(v), 2) for k, v in events.items()},
                "root_blockers": [
                    {
                        "pid": int(r.root_pid),
                        "blocked_time_s": round(float(r.blocked), 2),
                        "state": r.state,
                        "query": short(r.query, 200),
                    }
                    for r in roots.itertuples(index=False)
                ],
                "distinct_root_blockers": int(rest["root_pid"].nunique()) if not rest.empty else 0,
                "waiting_sessions": int(waiters["pid"].nunique()),
            },
            objects=tables,
            statements=stmts,
            sessions=[int(p) for p in roots["root_pid"]],
            recommendations=[
                Recommendation(
                    "application",
                    "Shorten the transactions that update the hot rows"
                    + (
                        f" (root blocker statement: {short(top_root['query'], 100)})"
                        if top_root is not None
                        else ""
                    )
                    + ": commit right after the UPDATE, do no other work while holding the row "
                    "lock, or spread updates over more rows (e.g. sharded counters).",
                    "The waiters queue behind the blockers' row locks; less lock hold time is "
                    "less waiting.",
                    lock_time,
                    pct(lock_time, total),
                ),
                Recommendation(
                    "setting",
                    "SET lock_timeout = '2s';  -- in the application's sessions",
                    "Bound the wait: a waiter fails fast and can retry instead of queueing.",
                    None,
                    None,
                ),
            ],
        )
    )
    return out


def vacuum_findings(inp: AddmInput, prof: pd.DataFrame, total: float) -> list[Finding]:
    t, b = inp.tables, inp.tables_begin
    if t.empty:
        return []
    begin_dead = dict(zip(b["relid"], b["n_dead_tup"], strict=False)) if not b.empty else {}
    bloat = []
    for r in t.itertuples(index=False):
        dead = float(r.n_dead_tup or 0)
        grew = dead - float(begin_dead.get(r.relid, 0) or 0)
        live = float(r.n_live_tup or 0)
        vac = int((r.vacuum_count or 0) + (r.autovacuum_count or 0))
        if grew >= 10_000 and dead >= max(1.0, 0.5 * live):
            bloat.append(
                {
                    "table": f"{r.schemaname}.{r.relname}",
                    "n_dead_tup": int(dead),
                    "dead_growth": int(grew),
                    "n_live_tup": int(live),
                    "vacuums_in_range": vac,
                    "table_size": fmt_bytes(float(r.table_bytes))
                    if getattr(r, "table_bytes", None) and not pd.isna(r.table_bytes)
                    else None,
                }
            )
    if not bloat:
        return []
    s = inp.samples
    holder = None
    if not s.empty and "xmin_age" in s.columns:
        xs = s[s["xmin_age"].notna() & s["xact_start"].notna()]
        if not xs.empty:
            # one row per transaction (pid, xact_start): how long it was seen holding its xmin
            g = xs.groupby(["pid", "xact_start"]).agg(
                xmin_age=("xmin_age", "max"),
                last_seen=("sample_time", "max"),
                state=("state", "last"),
                user=("usename", "first"),
                app=("application_name", "first"),
                query=("query", "last"),
            )
            g["open_s"] = [
                (last - start).total_seconds()
                for (_, start), last in zip(g.index, g["last_seen"], strict=True)
            ]
            g = g[g["open_s"] >= min(60.0, max(3.0, 0.4 * inp.elapsed_s))]
            if not g.empty:
                g = g.sort_values(["open_s", "xmin_age"], ascending=False)
                holder = g.iloc[0]
                holder_pid = int(g.index[0][0])
    if s.empty is False and holder is None:
        return []  # dead rows grew but nothing held them back: autovacuum's ordinary work
    names = {x["table"] for x in bloat}
    stmts = [
        {"queryid": int(r.queryid), "query": r.query, "db_time_s": round(float(r.db_time_s), 3)}
        for r in prof.itertuples(index=False)
        if r.db_time_s > 0 and names & set(shape(r.query).tables)
    ]
    impact = sum(x["db_time_s"] for x in stmts)
    recs = []
    if holder is not None:
        recs.append(
            Recommendation(
                "session",
                f"SELECT pg_terminate_backend({holder_pid});",
                f"Session {holder_pid} holds a snapshot (transaction open "
                f"{holder['open_s']:.0f} s, "
                f"xmin age {int(holder['xmin_age'])}): VACUUM cannot remove rows deleted after it.",
                impact,
                pct(impact, total),
            )
        )
        recs.append(
            Recommendation(
                "setting",
                "ALTER SYSTEM SET idle_in_transaction_session_timeout = '60s'; "
                "SELECT pg_reload_conf();",
                "Bound how long a transaction can hold its snapshot while idle.",
                None,
                None,
            )
        )
    recs.append(
        Recommendation(
            "sql",
            "; ".join(f"VACUUM (VERBOSE) {x['table']}" for x in bloat) + ";",
            "Once the snapshot is released, vacuum removes the dead rows (VACUUM FULL or "
            "pg_repack to give the space back).",
            None,
            None,
        )
    )
    who = f" held back by session {holder_pid}" if holder is not None else ""
    return [
        Finding(
            type="vacuum_blocked",
            title=f"Bloat growing on {', '.join(sorted(names))}: vacuum blocked{who}",
            impact_db_time_s=impact,
            impact_pct=pct(impact, total),
            evidence={
                "tables": bloat,
                "xmin_holder": None
                if holder is None
                else {
                    "pid": holder_pid,
                    "transaction_open_s": round(float(holder["open_s"]), 1),
                    "xmin_age": int(holder["xmin_age"]),
                    "state": holder["state"],
                    "user": holder["user"],
                    "application": holder["app"],
                    "query": short(holder["query"], 200),
                },
            },
            objects=sorted(names),
            statements=[{"queryid": x["queryid"], "query": x["query"]} for x in stmts[:5]],
            sessions=[holder_pid] if holder is not None else [],
            recommendations=recs,
            basis="ash" if not s.empty else "snapshot",
        )
    ]


def connection_findings(inp: AddmInput, total: float) -> list[Finding]:
    maxc = inp.settings.get("max_connections")
    db = inp.databases
    if not maxc or db.empty or "numbackends" not in db.columns:
        return []
    used = int(pd.to_numeric(db["numbackends"]).fillna(0).sum())
    risk = pct(used, float(maxc))
    if risk < 80.0:
        return []
    per_db = {
        (r.datname if isinstance(r.datname, str) else "(no database)"): int(r.numbackends or 0)
        for r in db.itertuples(index=False)
    }
    active = int(inp.samples["pid"].nunique()) if not inp.samples.empty else None
    return [
        Finding(
            type="connection_saturation",
            title=(
                f"{used} of {maxc} connections in use ({risk:.0f} %): new sessions will be refused"
            ),
            impact_db_time_s=0.0,
            impact_pct=0.0,
            risk_pct=risk,
            basis="risk",
            evidence={
                "connections": used,
                "max_connections": int(maxc),
                "by_database": per_db,
                "sessions_seen_active_in_ash": active,
                "note": "idle sessions take no DB time; ranked by the share of max_connections "
                "in use",
            },
            objects=[
                f"database {k}"
                for k, v in sorted(per_db.items(), key=lambda kv: -kv[1])
                if k and not str(k).startswith("(") and v > 0
            ][:3],
            recommendations=[
                Recommendation(
                    "application",
                    "Put a connection pooler (PgBouncer, transaction pooling) in front of the "
                    "server "
                    "and cap each application's pool size.",
                    "Most of these sessions are idle: a pool of a few server connections serves "
                    "them.",
                    None,
                    None,
                ),
                Recommendation(
                    "setting",
                    "ALTER SYSTEM SET idle_session_timeout = '10min'; SELECT pg_reload_conf();",
                    "Close sessions left idle by the application.",
                    None,
                    None,
                ),
            ],
        )
    ]
