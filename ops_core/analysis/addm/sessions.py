"""Findings about sessions: lock contention (root blockers), sessions idle in transaction
holding locks, vacuum blocked by an old snapshot (bloat growing), connection saturation."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import blocking
from . import horizon
from .dbtime import db_samples
from .model import (
    AddmInput,
    Finding,
    Recommendation,
    autovacuum_off,
    enable_autovacuum,
    fmt_bytes,
    pct,
    qtable,
    short,
)
from .sqlshape import shape, strong_lock_command, written_tables

IDLE_TX = ("idle in transaction", "idle in transaction (aborted)")


def _stmt(prof: pd.DataFrame, qid: Any, text: str | None = None) -> dict[str, Any]:
    q = text
    if qid is not None and not pd.isna(qid):
        hit = prof[prof["queryid"] == int(qid)]
        if len(hit):
            q = hit["query"].iloc[0] or q
        return {"queryid": int(qid), "query": q}
    return {"queryid": None, "query": q}


def _idle_blame(s: pd.DataFrame, locks: pd.DataFrame) -> pd.DataFrame:
    """Lock waits blamed on a blocker idle in transaction, judged sample by sample.

    At each sample time the waiter -> root blocker graph is built from ``blocking_pids``; a
    waiter's time is blamed on a root only if that root was sampled *idle in transaction at
    that moment*, and had been idle for at least ``max(1 s, 2 sampling intervals)`` (a worker
    caught between two statements of a short transaction is not an idle blocker). One row per
    blamed wait: root pid, the root's transaction (``xact_start`` identifies it), weight."""
    rows: list[dict[str, Any]] = []
    times = set(locks["sample_time"])
    cur = s[s["sample_time"].isin(times)]
    for ts, group in cur.groupby("sample_time", sort=True):
        by_pid = {int(r.pid): r for r in group.itertuples(index=False)}
        blocked: dict[int, list[int]] = {}
        for r in group.itertuples(index=False):
            bp = r.blocking_pids
            if bp is not None and not (isinstance(bp, float) and pd.isna(bp)) and len(bp) > 0:
                blocked[int(r.pid)] = [int(x) for x in bp]
        for waiter, wr in ((p, by_pid[p]) for p in blocked):
            if wr.wait_class != "Lock" or not wr.db_time:
                continue
            for root in sorted(blocking._roots(waiter, blocked)):
                rr = by_pid.get(root)
                if rr is None or rr.state not in IDLE_TX:
                    continue
                idle_for = (
                    (ts - rr.state_change).total_seconds()
                    if rr.state_change is not None and not pd.isna(rr.state_change)
                    else 0.0
                )
                if idle_for < max(1.0, 2 * float(wr.weight_s)):
                    continue
                rows.append(
                    {
                        "sample_time": ts,
                        "root_pid": root,
                        "xact_start": rr.xact_start,
                        "weight_s": float(wr.weight_s),
                        "waiter": waiter,
                        "event": wr.event,
                        "idle_for_s": idle_for,
                        "query": rr.query,
                    }
                )
                break  # a waiter's time is blamed once
    return pd.DataFrame(
        rows,
        columns=[
            "sample_time",
            "root_pid",
            "xact_start",
            "weight_s",
            "waiter",
            "event",
            "idle_for_s",
            "query",
        ],
    )


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
    blame = _idle_blame(s, locks)
    for pid, grp in blame.groupby("root_pid"):
        pid = int(pid)
        blocked = float(grp["weight_s"].sum())
        idle_time += blocked
        holder = s[s["pid"] == pid]
        # per transaction of the holder: how long it was open when last seen
        tx = []
        for xs, g in grp.groupby("xact_start", dropna=False):
            seen = holder[holder["xact_start"] == xs] if not pd.isna(xs) else holder.iloc[0:0]
            last = seen["sample_time"].max() if len(seen) else g["sample_time"].max()
            tx.append(
                {
                    "xact_start": xs,
                    "open_s": (last - xs).total_seconds() if not pd.isna(xs) else None,
                    "blocked_s": float(g["weight_s"].sum()),
                    "idle_for_s": float(g["idle_for_s"].max()),
                }
            )
        tx.sort(key=lambda x: -x["blocked_s"])
        held = tx[0]["open_s"]
        idle_samples = int((holder["state"].isin(IDLE_TX)).sum())
        waiter_q = locks[locks["pid"].isin(set(grp["waiter"]))]
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
        queued = _queued_ddl(waiter_q)
        if queued is not None and queued["queued_behind_s"] < QUEUED_DDL_SHARE * blocked:
            queued = None
        amplifier = (
            f", with {queued['command']} (pid {queued['pid']}) queued behind it and the others "
            "behind that"
            if queued is not None
            else ""
        )
        out.append(
            Finding(
                type="idle_in_transaction",
                title=(
                    f"Session {pid} ({user or '?'}, {app or '?'}) idle in transaction held "
                    f"locks that others waited {blocked:.1f} s for while it was idle{amplifier}"
                ),
                impact_db_time_s=blocked,
                impact_pct=pct(blocked, total),
                evidence={
                    "holder_pid": pid,
                    "holder_user": user,
                    "holder_application": app,
                    "holder_last_query": short(grp["query"].iloc[-1], 300),
                    "transaction_open_s": round(held, 1) if held is not None else None,
                    "transactions_blamed": len(tx),
                    "longest_idle_s": round(max(x["idle_for_s"] for x in tx), 1),
                    "holder_samples": int(len(holder)),
                    "holder_idle_samples": idle_samples,
                    "waiters": int(grp["waiter"].nunique()),
                    "blocked_time_s": round(blocked, 2),
                    "waiter_events": sorted(set(grp["event"].dropna())),
                    "judged": "per sample: only waits while the holder was idle in its "
                    "transaction are counted",
                    **({"queued_ddl": queued} if queued is not None else {}),
                },
                objects=tables,
                statements=stmts,
                sessions=[pid],
                recommendations=[
                    Recommendation(
                        "session",
                        f"SELECT pg_terminate_backend({pid});",
                        f"End the idle-in-transaction session {pid}: its open transaction "
                        "holds the locks the waiters queue on.",
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
                    *(
                        [
                            Recommendation(
                                "application",
                                "SET lock_timeout = '2s';  -- before the "
                                f"{queued['command']}, retried until it gets its lock",
                                f"{queued['command']} (pid {queued['pid']}: "
                                f"{short(queued['query'], 100)}) waited for session {pid} and "
                                "every query on the table queued behind its request "
                                f"({queued['queued_behind_s']:.1f} s): with a lock_timeout "
                                "it gives up instead of holding the queue.",
                                None,
                                None,
                            )
                        ]
                        if queued is not None
                        else []
                    ),
                ],
            )
        )
    if float(locks["weight_s"].sum()) - idle_time <= 0:
        return out
    idle_pids = {f.sessions[0] for f in out}
    rest = chains[~chains["root_pid"].isin(idle_pids)] if not chains.empty else chains
    blamed = set(zip(blame["sample_time"], blame["waiter"], strict=True))
    waiters = locks[
        [(t, p) not in blamed for t, p in zip(locks["sample_time"], locks["pid"], strict=True)]
    ]
    kinds = waiters["event"].map(lambda e: "extend" if e == "extend" else "other")
    for kind in ("extend", "other"):
        w = waiters[kinds == kind]
        if not w.empty and float(w["weight_s"].sum()) > 0:
            f = _lock_finding(kind, w, rest, prof, total)
            if kind == "other":
                _trigger_writes(inp, f)
                horizon.name_prepared_roots(inp, f, set(w["datname"].dropna()), total)
            n = _deadlocks(inp, set(w["datname"].dropna())) if kind == "other" else 0
            if n:
                # the waits ended by the deadlock detector (deadlock_timeout each) are in them
                f.title += f"; {n} deadlock(s) in the range"
                f.evidence["deadlocks"] = n
                f.recommendations.insert(
                    0,
                    Recommendation(
                        "application",
                        "Take row and table locks in one consistent order in every transaction "
                        "(e.g. update rows sorted by key, lock the parent before the child); "
                        "the server log's 'deadlock detected' entries (opscore deadlocks) name "
                        "the statements.",
                        f"{n} transaction(s) were rolled back by the deadlock detector after "
                        "waiting deadlock_timeout.",
                        None,
                        None,
                    ),
                )
            out.append(f)
    return out


def _trigger_writes(inp: AddmInput, f: Finding) -> None:
    """Row locks the waiters' writes take through a trigger: an INSERT into "Orders" whose
    trigger updates one counter row of another table queues every writer on that row, and no
    statement of the application names it. The finding names the trigger, its function and the
    table it writes (its objects gain it), with the advice first."""
    found = []
    for st in f.statements:
        sh = shape(st.get("query"))
        if sh.kind not in ("insert", "update", "delete"):
            continue
        for table in sh.tables[:1]:  # the statement's target
            for trg in (inp.table_catalog.get(table) or {}).get("triggers", []):
                writes = [
                    t
                    for t in written_tables(trg.get("source") or "", trg.get("language") or "")
                    if t != table
                ]
                if writes and trg["name"] not in {x["trigger"] for x in found}:
                    found.append({"table": table, "trigger": trg["name"], "timing": trg["timing"],
                                  "function": trg["function"], "writes": writes})  # fmt: skip
    if not found:
        return
    f.evidence["triggers"] = found
    first = found[0]
    writes = ", ".join(first["writes"])
    f.title += (
        f"; taken by trigger {first['trigger']} on {first['table']} ({first['function']}() "
        f"writes {writes})"
    )
    f.objects += [t for x in found for t in x["writes"] if t not in f.objects]
    f.recommendations.insert(
        0,
        Recommendation(
            "application",
            f"Take the write to {writes} out of trigger {first['trigger']} ({first['timing']} "
            f"on {first['table']}), or make it touch different rows per writer (a counter "
            "per session or shard summed when read, an insert-only log aggregated later).",
            f"Every write to {first['table']} runs {first['function']}(), which writes "
            f"{writes}: when that is the same row for everyone, each writer holds its lock "
            "until commit and the others queue on it.",
            None,
            None,
        ),
    )


def _deadlocks(inp: AddmInput, databases: set[str]) -> int:
    """Deadlocks counted in the range (pg_stat_database deltas) in the waiters' databases
    (all of them when the samples name none): another database's deadlocks are not these
    waits'."""
    db = inp.databases
    if db is None or db.empty or "deadlocks" not in db.columns:
        return 0
    if databases and "datname" in db.columns:
        db = db[db["datname"].isin(databases)]
    return int(pd.to_numeric(db["deadlocks"], errors="coerce").fillna(0).sum())


#: lock type (the ``wait_event`` of a Lock wait) -> what is locked, and what to do about it
LOCK_TYPES: dict[str, tuple[str, str]] = {
    "extend": (
        "relation extension lock",
        "Several sessions insert into the same table at once and queue to extend its file. "
        "Load with fewer concurrent writers per table (one COPY stream, or batch rows per "
        "transaction), or partition the table so the writers extend different files.",
    ),
    "tuple": (
        "row lock (tuple)",
        "Shorten the transactions that update the hot rows: commit right after the UPDATE, "
        "do no other work while holding the row lock, or spread updates over more rows "
        "(e.g. sharded counters).",
    ),
    "transactionid": (
        "row lock (transactionid: waiting for the transaction that changed the row)",
        "Shorten the transactions that update the hot rows: commit right after the UPDATE, "
        "do no other work while holding the row lock, or spread updates over more rows "
        "(e.g. sharded counters).",
    ),
    "relation": (
        "table lock (relation)",
        "A session takes a strong table lock (DDL, LOCK TABLE, VACUUM FULL, REINDEX, or a "
        "query queued behind one): run such commands off-peak with a short lock_timeout, use "
        "the CONCURRENTLY forms, and keep transactions that hold table locks short.",
    ),
    "advisory": (
        "advisory lock",
        "The application serializes its sessions on advisory locks "
        "(pg_advisory_lock): hold them for less time or use finer-grained keys.",
    ),
    "page": (
        "page lock",
        "Sessions queue on a page lock (e.g. a GIN index's pending list being cleaned): "
        "consider fastupdate=off on the GIN index or fewer concurrent writers.",
    ),
    "virtualxid": (
        "virtual transaction lock (waiting for other transactions to end)",
        "A command waits for every older transaction to end (e.g. CREATE INDEX "
        "CONCURRENTLY, a replica's conflict): end the long transactions it waits for.",
    ),
    "object": (
        "object lock",
        "Sessions queue on a lock of a non-relation object (a DDL on a type, schema or "
        "role): run the DDL off-peak.",
    ),
}


def _lock_finding(
    kind: str, waiters: pd.DataFrame, chains: pd.DataFrame, prof: pd.DataFrame, total: float
) -> Finding:
    lock_time = float(waiters["weight_s"].sum())
    mine = set(waiters["pid"])
    rest = chains[[bool(set(w) & mine) for w in chains["waiters"]]] if not chains.empty else chains
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
    by_q = waiters.groupby("query_id", dropna=False)["weight_s"].sum().sort_values(ascending=False)
    stmts = [_stmt(prof, q) for q in by_q.index[:3]]
    if kind != "extend":
        for q in roots["query"].head(2):
            # a root blocker never sampled itself has no text (NaN in the frame): nothing to add
            if isinstance(q, str) and q and all(short(q) != short(st["query"]) for st in stmts):
                stmts.append({"queryid": None, "query": q})
    tables: list[str] = []
    for st in stmts:
        sh = shape(st["query"])
        for t in sh.tables[:1] if sh.kind in ("update", "delete", "insert") else sh.tables:
            if t not in tables:
                tables.append(t)
    events = waiters.groupby("event")["weight_s"].sum().sort_values(ascending=False)
    lock_type = str(events.index[0]) if len(events) else "unknown"
    what, advice = LOCK_TYPES.get(
        lock_type,
        (f"{lock_type} lock", "Find the sessions holding the lock (root blockers) and shorten "
         "what they do while holding it."),
    )  # fmt: skip
    top_root = roots.iloc[0] if len(roots) else None
    on = ", ".join(tables) or "unknown objects"
    if kind == "extend":
        title = (
            f"Relation extension lock contention on {on}: concurrent bulk inserts waited "
            f"{lock_time:.1f} s to extend the table"
        )
    else:
        title = f"Lock contention ({what}) on {on}: {lock_time:.1f} s of DB time waiting"
    if top_root is not None and kind != "extend" and short(top_root["query"], 100):
        advice += f" Root blocker statement: {short(top_root['query'], 100)}."
    queued = _queued_ddl(waiters) if kind != "extend" else None
    if queued is not None and queued["queued_behind_s"] < QUEUED_DDL_SHARE * lock_time:
        queued = None  # a DDL waiting beside the queue, not holding it up
    recs = [
        Recommendation(
            "application",
            advice,
            f"The waits are on a {what}; less time holding it is less waiting.",
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
    ]
    if queued is not None:
        held_by = ", ".join(str(p) for p in queued["waiting_for"]) or "another session"
        title += (
            f", queued behind {queued['command']} (pid {queued['pid']}) waiting for pid {held_by}"
        )
        behind = queued["queued_behind_s"]
        recs.insert(
            0,
            Recommendation(
                "session",
                f"SELECT pg_cancel_backend({queued['pid']});",
                f"{queued['command']} (pid {queued['pid']}: {short(queued['query'], 100)}) "
                f"waits for a lock pid {held_by} holds, and every query on the table queues "
                f"behind its request ({behind:.1f} s of the waits): cancelling it releases "
                "the queue now. Run it again with SET lock_timeout = '2s' (and retries), or "
                "once the blocking session is done.",
                behind,
                pct(behind, total),
            ),
        )
    return Finding(
        type="relation_extension" if kind == "extend" else "lock_contention",
        title=title,
        impact_db_time_s=lock_time,
        impact_pct=pct(lock_time, total),
        evidence={
            "lock_wait_s": round(lock_time, 2),
            "lock_type": lock_type,
            "lock_description": what,
            "events": {k: round(float(v), 2) for k, v in events.items()},
            "root_blockers": [
                {
                    "pid": int(r.root_pid),
                    "blocked_time_s": round(float(r.blocked), 2),
                    "state": r.state if isinstance(r.state, str) else None,
                    "query": short(r.query, 200),
                }
                for r in roots.itertuples(index=False)
            ],
            "distinct_root_blockers": int(rest["root_pid"].nunique()) if not rest.empty else 0,
            "waiting_sessions": int(waiters["pid"].nunique()),
            **({"queued_ddl": queued} if queued is not None else {}),
        },
        objects=tables,
        statements=stmts,
        sessions=[int(p) for p in roots["root_pid"]],
        recommendations=recs,
    )


#: share of a lock finding's waits queued behind a waiting DDL for it to be named the amplifier
QUEUED_DDL_SHARE = 0.25


def _queued_ddl(waiters: pd.DataFrame) -> dict[str, Any] | None:
    """A strong-lock command (ALTER TABLE, VACUUM FULL, ...) that is itself waiting, with the
    other waiters queued behind its lock request (it is in their blocking pids): the queue's
    amplifier, though it holds nothing the waiters need. The one most waited behind, with the
    sessions it waits for."""
    if "blocking_pids" not in waiters.columns or waiters.empty:
        return None
    ddl: dict[int, tuple[str, str, set[int]]] = {}
    for r in waiters.itertuples(index=False):
        cmd = strong_lock_command(r.query if isinstance(r.query, str) else None)
        if cmd is not None:
            _, _, waits_for = ddl.setdefault(int(r.pid), (cmd, r.query, set()))
            waits_for.update(int(p) for p in (r.blocking_pids if r.blocking_pids is not None
                                             else ()))  # fmt: skip
    if not ddl:
        return None
    behind: dict[int, float] = dict.fromkeys(ddl, 0.0)
    for r in waiters.itertuples(index=False):
        bp = r.blocking_pids
        if bp is None or int(r.pid) in ddl:
            continue
        for p in {int(x) for x in bp} & set(ddl):
            behind[p] += float(r.weight_s)
    pid = max(behind, key=lambda p: behind[p])
    if behind[pid] <= 0:
        return None
    cmd, query, waits_for = ddl[pid]
    return {
        "pid": pid,
        "command": cmd,
        "query": short(query, 200),
        "waiting_for": sorted(waits_for - {pid}),
        "queued_behind_s": round(behind[pid], 2),
    }


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
    min_open_s = min(60.0, max(3.0, 0.4 * inp.elapsed_s))
    if not s.empty and "xmin_age" in s.columns:
        # what a session holds back is the older of its snapshot (backend_xmin) and its own
        # transaction id (backend_xid): a writer idle in a READ COMMITTED transaction has no
        # snapshot, only its xid - and the sessions waiting for its row locks have snapshots
        cols = ["xmin_age", "xid_age"] if "xid_age" in s.columns else ["xmin_age"]
        held = s[cols].apply(pd.to_numeric, errors="coerce")  # None in an object column: NaN
        s = s.assign(xmin_age=held.max(axis=1))
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
                waiting=("wait_event_type", lambda w: float((w == "Lock").mean())),
            )
            g["open_s"] = [
                (last - start).total_seconds()
                for (_, start), last in zip(g.index, g["last_seen"], strict=True)
            ]
            g = g[g["open_s"] >= min_open_s]
            if not g.empty:
                # the oldest horizon first; a session that spent the range waiting for a lock
                # is the holder's victim, named only when no other session held one
                g = g.assign(victim=g["waiting"] >= 0.8)
                g = g.sort_values(["victim", "xmin_age", "open_s"], ascending=[True, False, False])
                holder = g.iloc[0]
                holder_pid = int(g.index[0][0])
    # a prepared transaction, a replication slot or a standby's feedback holding an older
    # xmin than any session: it is what vacuum waits for
    other = horizon.holders(inp, min_open_s)
    if other and (holder is None or other[0]["xmin_age"] > int(holder["xmin_age"])):
        holder, outside = None, other[0]
    else:
        outside = None
    av_off: dict[str, str] = {}
    if s.empty is False and holder is None and outside is None:
        # dead rows grew and nothing held them back: autovacuum's ordinary work, unless
        # autovacuum cannot run there (disabled on the table or server-wide) and no vacuum ran
        for x in bloat:
            why = autovacuum_off(inp, x["table"])
            if why and x["vacuums_in_range"] == 0:
                av_off[x["table"]] = why
        if not av_off:
            return []
        bloat = [x for x in bloat if x["table"] in av_off]
        for x in bloat:
            x["autovacuum"] = av_off[x["table"]]
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
                f"Session {holder_pid} holds back the xmin horizon (its snapshot or its "
                f"transaction id; transaction open {holder['open_s']:.0f} s, age "
                f"{int(holder['xmin_age'])}): VACUUM cannot remove rows deleted after it.",
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
    if outside is not None:
        recs += horizon.recommendations(outside, impact, total, "the xmin horizon")
    for table, why in sorted(av_off.items()):
        recs.append(
            enable_autovacuum(
                table,
                why,
                f"Autovacuum is {why}: nothing removes the dead rows of {table} as they "
                "accumulate, so every scan reads them.",
                impact,
                pct(impact, total),
            )
        )
    recs.append(
        Recommendation(
            "sql",
            "; ".join(f"VACUUM (VERBOSE) {qtable(x['table'])}" for x in bloat) + ";",
            "Once the snapshot is released, vacuum removes the dead rows (VACUUM FULL or "
            "pg_repack to give the space back).",
            None,
            None,
        )
    )
    who = f", held back by session {holder_pid}" if holder is not None else ""
    if outside is not None:
        who = f", held back by the {horizon.describe(outside)}"
    if av_off:
        kinds = sorted(set(av_off.values()))
        who = f": autovacuum {' / '.join(kinds)}, no vacuum in the range"
    return [
        Finding(
            type="vacuum_blocked",
            title=f"Bloat growing on {', '.join(sorted(names))}: vacuum blocked{who}",
            impact_db_time_s=impact,
            impact_pct=pct(impact, total),
            evidence={
                "tables": bloat,
                **(
                    {"horizon_holder": {k: v for k, v in outside.items() if k != "active"}}
                    if outside is not None
                    else {}
                ),
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
